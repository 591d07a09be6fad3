"""Values at the edges the event model allows must not fail a batch with a 500.

An agent's reporter puts aside an event the collector refuses (400, 413, 422: it halves the batch
until the one is found) but sends a batch that failed with a 500 again and again: every later
event of that agent, a classified copy among them, was held behind it. Each case here was a 500:
sizes whose sum passes an incident's 64-bit total (a FUSE file system claims any size, and the
agent reports a vanished file's size as it saw it), a chain seq at the column's last value, a gap
naming seqs past it, and times at years 1 and 9999, where the collector's windows overflowed."""

from __future__ import annotations

import pytest

from rules.events import Event
from tests.server.factories import alerts_of, at, make_egress, make_event

BIG = 2**63 - 1


def test_sizes_past_an_incidents_total_are_stored_and_the_copy_beside_them_alerts(client, agent, reader, clock):
    stick = "/media/zhang/KINGSTON"
    first = make_egress("core", ts=at(0), path=f"{stick}/a.dwg", sha256="1" * 64, size=BIG)
    r = client.post("/api/v1/events", json={"events": [first]}, headers=agent.headers)
    assert r.status_code == 200, r.text
    clock.advance(30)
    batch = [
        make_egress("core", ts=at(30), path=f"{stick}/b.dwg", sha256="2" * 64, size=BIG),
        make_egress("core", ts=at(60), path=f"{stick}/secret.dwg", sha256="3" * 64, size=1000),
    ]
    r = client.post("/api/v1/events", json={"events": batch}, headers=agent.headers)
    assert r.status_code == 200, r.text
    (incident,) = [a for a in alerts_of(client, reader) if a.get("file_count", 0) >= 3] or [None]
    assert incident is not None, alerts_of(client, reader)
    assert incident["total_bytes"] == BIG  # the total stops at what the column holds


def test_a_seq_at_the_columns_end_and_a_gap_past_it_are_taken(client, agent):
    last = Event.from_dict(make_event(path="/srv/rnd/a.dwg", ts=at(1), seq=BIG)).to_dict()
    gap = make_event("agent.gap", ts=at(2), details={"seq_from": 5, "seq_to": BIG + 1, "reason": "test"})
    copy = make_egress("core", ts=at(3), path="/media/zhang/KINGSTON/c.dwg", sha256="4" * 64, size=10)
    r = client.post("/api/v1/events", json={"events": [last, gap, copy]}, headers=agent.headers)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3


@pytest.mark.parametrize(
    "ts",
    ["0001-01-01T00:00:30Z", "0001-12-31T23:59:59Z", "9999-12-31T23:40:00Z", "9999-01-01T00:00:00Z"],
)
def test_a_time_without_room_for_the_windows_is_that_events_422(client, agent, ts):
    odd = make_egress("core", ts=ts, path="/media/zhang/KINGSTON/odd.dwg", sha256="5" * 64, size=10)
    r = client.post("/api/v1/events", json={"events": [odd]}, headers=agent.headers)
    assert r.status_code == 422 and "between years 2 and 9998" in r.text


@pytest.mark.parametrize("ts", ["0002-01-01T00:00:00Z", "9998-12-31T23:59:59Z"])
def test_the_edges_of_the_range_are_stored(client, agent, ts):
    for kind in ("egress.file", "file.deleted", "media.mounted"):
        event = make_egress("core", ts=ts, path="/media/zhang/KINGSTON/edge.dwg", sha256="6" * 64, size=10)
        if kind != "egress.file":
            event = make_event(kind, ts=ts, path="/srv/rnd/edge.dwg")
        r = client.post("/api/v1/events", json={"events": [event]}, headers=agent.headers)
        assert r.status_code == 200, (kind, r.text)
