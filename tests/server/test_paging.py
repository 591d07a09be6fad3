"""Listing alerts and events: newest first, `limit` and `next` walk every item once, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.server.factories import T0, make_egress, make_event, walk

LEVELS = ("core", "important", "general", "internal")


def _ts(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def egress_events(send, clock) -> list[dict]:
    """23 classified egress events of 23 users, sent one by one a minute apart: 23 alerts, oldest
    first (one user's files to one stick would be one incident: issue 19)."""
    events = []
    for i in range(23):
        event = make_egress(LEVELS[i % 4], ts=_ts(i), path=f"/media/usb/part-{i:02d}.dwg", user=f"user{i:02d}")
        send(event)
        events.append(event)
        clock.advance(60)
    return events


@pytest.mark.parametrize("limit", [1, 4, 7, 22, 23, 24, 1000])
def test_alert_pages_walk_every_alert_once_newest_first(client, reader, egress_events, limit):
    pages = walk(client, "/api/v1/alerts", "alerts", reader, limit=limit)

    alerts = [a for page in pages for a in page]
    assert [a["event_ids"][0] for a in alerts] == [e["id"] for e in reversed(egress_events)]
    assert [a["id"] for a in alerts] == sorted((a["id"] for a in alerts), reverse=True)
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit  # no empty page at the end, even when 23 divides evenly
    assert len(pages) == -(-23 // limit)


@pytest.mark.parametrize("limit", [1, 5, 23, 50])
def test_event_pages_walk_every_event_once_newest_first(client, reader, egress_events, limit):
    pages = walk(client, "/api/v1/events", "events", reader, limit=limit)

    events = [e for page in pages for e in page]
    assert [e["id"] for e in events] == [e["id"] for e in reversed(egress_events)]
    assert len(pages) == -(-23 // limit)


def test_default_page_is_100_and_says_where_to_go_on(client, reader, send):
    send(*[make_event(ts=_ts(i)) for i in range(150)])

    first = client.get("/api/v1/events", headers=reader).json()
    assert len(first["events"]) == 100 and "next" in first
    rest = client.get("/api/v1/events", params={"cursor": first["next"]}, headers=reader).json()
    assert len(rest["events"]) == 50 and "next" not in rest
    assert not {e["id"] for e in first["events"]} & {e["id"] for e in rest["events"]}


def test_empty_lists_have_no_next(client, reader):
    assert client.get("/api/v1/alerts", headers=reader).json() == {"alerts": []}
    assert client.get("/api/v1/events", headers=reader).json() == {"events": []}


def test_alert_filters_by_severity(client, reader, egress_events):
    critical = walk(client, "/api/v1/alerts", "alerts", reader, severity="critical", limit=2)
    alerts = [a for page in critical for a in page]
    assert [a["event_ids"][0] for a in alerts] == [e["id"] for e in reversed(egress_events) if e["level"] == "core"]
    assert {a["severity"] for a in alerts} == {"critical"}
    assert client.get("/api/v1/alerts", params={"severity": "info"}, headers=reader).json()["alerts"] == []


def test_alert_filters_by_status(client, reader, egress_events):
    ids = [a["id"] for a in client.get("/api/v1/alerts", headers=reader).json()["alerts"]]
    for alert_id in ids[::3]:
        client.patch(f"/api/v1/alerts/{alert_id}", json={"status": "resolved"}, headers=reader)
    client.patch(f"/api/v1/alerts/{ids[1]}", json={"status": "acknowledged"}, headers=reader)

    def listed(status):
        return [
            a["id"] for page in walk(client, "/api/v1/alerts", "alerts", reader, status=status, limit=3) for a in page
        ]

    assert listed("resolved") == ids[::3]
    assert listed("acknowledged") == [ids[1]]
    assert listed("open") == [i for i in ids if i not in ids[::3] and i != ids[1]]
    assert listed("false_positive") == []


def test_alert_filters_by_category(client, reader, egress_events):
    every = client.get("/api/v1/alerts", params={"category": "classified-egress"}, headers=reader).json()["alerts"]
    assert len(every) == 23
    assert client.get("/api/v1/alerts", params={"category": "bulk-egress"}, headers=reader).json()["alerts"] == []


@pytest.mark.parametrize(
    "since",
    [
        "2026-03-02T09:10:00Z",
        "2026-03-02T09:10:00",  # no zone: UTC
        "2026-03-02T17:10:00+08:00",  # the same instant in Beijing
        "2026-03-02T09:09:59.500Z",
    ],
)
def test_alert_filters_by_since(client, reader, egress_events, since):
    # alert i was created at T0 + i minutes (the store's clock), so since 09:10 keeps i = 10..22
    pages = walk(client, "/api/v1/alerts", "alerts", reader, since=since, limit=4)
    alerts = [a for page in pages for a in page]
    assert [a["event_ids"][0] for a in alerts] == [e["id"] for e in reversed(egress_events[10:])]
    assert all(
        datetime.fromisoformat(a["created_at"].replace("Z", "+00:00")) >= T0 + timedelta(minutes=10) for a in alerts
    )


def test_alert_filters_combine(client, reader, egress_events):
    alerts = client.get(
        "/api/v1/alerts", params={"since": "2026-03-02T09:10:00Z", "severity": "high", "status": "open"}, headers=reader
    ).json()["alerts"]
    expected = [e["id"] for i, e in enumerate(egress_events) if i >= 10 and e["level"] == "important"]
    assert [a["event_ids"][0] for a in alerts] == list(reversed(expected))


@pytest.fixture
def mixed_events(send, enroll) -> dict:
    """Two agents; file and media events with known timestamps, sent in timestamp order."""
    pc1, pc2 = enroll("pc-1"), enroll("pc-2")
    sent = {"pc1": pc1, "pc2": pc2, "events": []}
    for i in range(30):
        who = pc1 if i % 3 else pc2
        type_ = ("file.created", "file.modified", "media.mounted")[i % 3]
        extra = {"media": {"mountpoint": "/media/usb"}} if type_ == "media.mounted" else {}
        event = make_event(type_, ts=_ts(i), host="pc-1" if who is pc1 else "pc-2", **extra)  # each its enrolled host
        send(event, as_agent=who)
        sent["events"].append((who.agent_id, event))
    return sent


def _walk_events(client, reader, **params) -> list[str]:
    return [e["id"] for page in walk(client, "/api/v1/events", "events", reader, **params) for e in page]


def test_event_filters_by_type(client, reader, mixed_events):
    created = _walk_events(client, reader, type="file.created", limit=4)
    assert created == [e["id"] for _, e in reversed(mixed_events["events"]) if e["type"] == "file.created"]
    assert len(created) == 10
    assert _walk_events(client, reader, type="agent.tamper") == []


def test_event_filters_by_agent(client, reader, mixed_events):
    pc2 = mixed_events["pc2"].agent_id
    listed = _walk_events(client, reader, agent_id=pc2, limit=3)
    assert listed == [e["id"] for who, e in reversed(mixed_events["events"]) if who == pc2]
    assert len(listed) == 10


@pytest.mark.parametrize(
    "since", ["2026-03-02T09:20:00Z", "2026-03-02T17:20:00+08:00", "2026-03-02T09:20:00", "2026-03-02T09:19:59.999Z"]
)
def test_event_filters_by_since(client, reader, mixed_events, since):
    listed = _walk_events(client, reader, since=since, limit=4)
    assert listed == [e["id"] for _, e in reversed(mixed_events["events"][20:])]


def test_event_filters_combine(client, reader, mixed_events):
    pc1 = mixed_events["pc1"].agent_id
    listed = _walk_events(client, reader, agent_id=pc1, type="file.modified", since="2026-03-02T09:10:00Z", limit=2)
    expected = [e["id"] for who, e in mixed_events["events"][10:] if who == pc1 and e["type"] == "file.modified"]
    assert listed == list(reversed(expected))
    assert expected  # the filter left something to compare


def test_cursor_keeps_its_place_when_new_events_arrive(client, reader, send):
    send(*[make_event(ts=_ts(i)) for i in range(10)])
    first = client.get("/api/v1/events", params={"limit": 4}, headers=reader).json()

    newer = make_event(ts=_ts(60))
    send(newer)
    rest = _walk_events(client, reader, cursor=first["next"], limit=4)

    assert newer["id"] not in rest
    assert len(first["events"]) + len(rest) == 10
    assert not {e["id"] for e in first["events"]} & set(rest)


def test_since_in_the_future_lists_nothing(client, reader, egress_events):
    future = (datetime.now(UTC) + timedelta(days=3650)).isoformat()
    assert client.get("/api/v1/alerts", params={"since": future}, headers=reader).json() == {"alerts": []}
    assert client.get("/api/v1/events", params={"since": future}, headers=reader).json() == {"events": []}
