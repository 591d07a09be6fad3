"""POST /api/v1/events: idempotent by event id, agent id from the token, bounded batches."""

from __future__ import annotations

from server.models import MAX_EVENTS_PER_BATCH
from tests.server.factories import make_egress, make_event


def _stored(client, reader) -> list[dict]:
    response = client.get("/api/v1/events", params={"limit": 1000}, headers=reader)
    assert response.status_code == 200, response.text
    return response.json()["events"]


def test_resent_batch_is_stored_once_and_counted_as_duplicates(client, reader, store, send):
    batch = [make_event(), make_event("file.modified"), make_event("file.deleted")]

    assert send(*batch) == {"accepted": 3, "duplicates": 0}
    assert send(*batch) == {"accepted": 0, "duplicates": 3}

    assert store.count_events() == 3
    assert sorted(e["id"] for e in _stored(client, reader)) == sorted(e["id"] for e in batch)


def test_batch_mixing_new_and_known_events_accepts_only_the_new(store, send):
    known = [make_event(), make_event()]
    send(*known)

    new = [make_event(), make_event(), make_event()]
    assert send(known[1], *new, known[0]) == {"accepted": 3, "duplicates": 2}
    assert store.count_events() == 5


def test_duplicate_ids_within_one_batch_are_stored_once(client, reader, store, send):
    a, b = make_event(), make_event()
    twin = dict(a, path="/srv/rnd/drawings/other.dwg")  # same id, different content: still one event

    answer = send(a, b, twin, a)

    assert answer == {"accepted": 2, "duplicates": 2}
    assert store.count_events() == 2
    assert sorted(e["id"] for e in _stored(client, reader)) == sorted([a["id"], b["id"]])


def test_single_event_resent_is_a_duplicate(store, send):
    event = make_event()
    assert send(event) == {"accepted": 1, "duplicates": 0}
    assert send(event) == {"accepted": 0, "duplicates": 1}
    assert store.count_events() == 1


def test_empty_batch_accepts_nothing(store, send):
    assert send() == {"accepted": 0, "duplicates": 0}
    assert store.count_events() == 0


def test_resent_egress_event_raises_its_alert_once(client, reader, send):
    event = make_egress("core")
    send(event)
    send(event)
    send(event, make_event())

    alerts = client.get("/api/v1/alerts", headers=reader).json()["alerts"]
    assert [a["event_ids"] for a in alerts] == [[event["id"]]]


def test_agent_id_comes_from_the_token_not_the_body(client, reader, enroll, send):
    honest, other = enroll("pc-0041"), enroll("pc-0043")
    forged = make_egress("important", agent_id=other.agent_id)

    send(forged, make_event(agent_id="not-even-an-agent"), as_agent=honest)

    events = _stored(client, reader)
    assert {e["agent_id"] for e in events} == {honest.agent_id}
    (alert,) = [a for a in client.get("/api/v1/alerts", headers=reader).json()["alerts"] if a["category"] != "agent-tamper"]
    assert alert["agent_id"] == honest.agent_id
    only_other = client.get("/api/v1/events", params={"agent_id": other.agent_id}, headers=reader).json()
    assert only_other["events"] == []


def test_event_is_stored_with_its_fields_and_ts_in_utc(client, reader, agent, send):
    event = make_egress(
        "general",
        ts="2026-03-02T17:30:05.25+08:00",
        detections=[{"detector": "cn_resident_id", "count": 12, "sample": "3301**********123X"}],
        rule_ids=["MW-EGRESS-CLASSIFIED"],
        severity="medium",
    )
    send(event)

    (stored,) = _stored(client, reader)
    assert stored["ts"] == "2026-03-02T09:30:05.250Z"
    assert stored["agent_id"] == agent.agent_id
    for key in (
        "id",
        "type",
        "host",
        "user",
        "path",
        "size",
        "sha256",
        "level",
        "source_path",
        "register_entry",
        "match",
        "media",
        "egress",
        "detections",
        "rule_ids",
        "severity",
    ):
        assert stored[key] == event[key], key


def test_naive_ts_is_taken_as_utc(client, reader, send):
    send(make_event(ts="2026-03-02T08:00:00"))
    assert _stored(client, reader)[0]["ts"] == "2026-03-02T08:00:00.000Z"


def test_fields_from_a_newer_agent_are_kept(client, reader, send):
    send(make_event(entropy_bits=7.91, parent_process={"exe": "/usr/bin/cp", "pid": 4242}))

    (stored,) = _stored(client, reader)
    assert stored["entropy_bits"] == 7.91
    assert stored["parent_process"] == {"exe": "/usr/bin/cp", "pid": 4242}


def test_full_batch_of_the_maximum_size_is_accepted(store, send):
    batch = [make_event(path=f"/srv/rnd/drawings/part-{i:04d}.dwg") for i in range(MAX_EVENTS_PER_BATCH)]

    assert send(*batch) == {"accepted": MAX_EVENTS_PER_BATCH, "duplicates": 0}
    assert send(*batch[:10], make_event()) == {"accepted": 1, "duplicates": 10}
    assert store.count_events() == MAX_EVENTS_PER_BATCH + 1
