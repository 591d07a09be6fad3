"""Retention: events older than retention_days are purged in batches; alert evidence is kept until
an admin deletes the alert."""

from __future__ import annotations

import dataclasses
import time

from sqlalchemy import select

from server.retention import purge_events
from server.schema import events
from tests.server.factories import alerts_of, make_egress, make_event

DAY = 86400


def _stored(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(events.c.id)).scalars())


def test_old_events_are_purged_and_recent_ones_kept(send, store, engine, clock):
    old = [make_event("file.created", path=f"/srv/rnd/{i}.txt") for i in range(7)]
    send(*old)
    clock.advance(1000 * DAY)
    recent = make_event("file.created", path="/srv/rnd/recent.txt")
    send(recent)
    clock.advance(96 * DAY)  # the old ones are 1,096 days old now, the recent one 96

    assert store.purge_events() == 7  # the default, 1,095 days
    assert _stored(engine) == {recent["id"]}
    assert store.purge_events() == 0


def test_events_that_are_alert_evidence_are_kept_until_the_alert_is_deleted(client, reader, send, store, engine, clock):
    evidence, routine = make_egress("core"), make_event("file.created")
    send(evidence, routine)
    clock.advance(1096 * DAY)

    assert store.purge_events() == 1
    assert _stored(engine) == {evidence["id"]}
    (alert,) = alerts_of(client, reader)
    assert client.get(f"/api/v1/alerts/{alert['id']}", headers=reader).json()["events"][0]["id"] == evidence["id"]

    assert client.delete(f"/api/v1/alerts/{alert['id']}", headers=reader).status_code == 200
    assert store.purge_events() == 1
    assert _stored(engine) == set()


def test_a_shorter_period_and_batches(send, engine, clock):
    send(*[make_event("file.created", path=f"/srv/rnd/{i}.txt") for i in range(12)])
    clock.advance(31 * DAY)
    assert purge_events(engine, clock(), 30, batch=5, max_batches=1) == 5  # one batch per transaction
    assert purge_events(engine, clock(), 30, batch=5) == 7
    assert _stored(engine) == set()


def test_age_counts_from_arrival_not_from_the_agents_clock(send, store, engine):
    ancient = make_event("file.created", ts="2019-01-01T00:00:00.000Z")  # a PC clock years off
    send(ancient)
    assert store.purge_events() == 0
    assert _stored(engine) == {ancient["id"]}


def test_the_collector_purges_on_a_schedule(config, store, send, clock, engine, monkeypatch):
    from fastapi.testclient import TestClient

    from server import app as app_module
    from server.app import create_app
    from server.retention import RetentionSchedule

    send(make_event("file.created"))
    clock.advance(11 * DAY)
    monkeypatch.setattr(app_module, "RetentionSchedule", lambda purge: RetentionSchedule(purge, first_delay_s=0.01, every_s=0.05))

    with TestClient(create_app(dataclasses.replace(config, retention_days=10), store)):
        deadline = time.monotonic() + 10
        while _stored(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert _stored(engine) == set()
