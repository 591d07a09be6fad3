"""Dedup, agent-offline and retention on PostgreSQL with two collectors racing (each its own
engine, as two processes have). Skips with the reason when PostgreSQL is not installed."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from sqlalchemy import select

from rules.events import Event
from server.absence import Health
from server.database import make_engine, migrate
from server.schema import alert_history, alerts, events
from server.store import Store
from tests.server import postgres
from tests.server.factories import make_event

pytestmark = pytest.mark.slow
OFFLINE_S = 120.0


@pytest.fixture(scope="module")
def cluster():
    with postgres.running() as cluster:
        yield cluster


@pytest.fixture
def stores(cluster, clock):
    with postgres.fresh_database(cluster) as url:
        engines = [make_engine(url) for _ in range(2)]
        migrate(engines[0])
        yield [Store(e, clock=clock) for e in engines]
        for e in engines:
            e.dispose()


def _race(*calls) -> list:
    results, barrier = [None] * len(calls), threading.Barrier(len(calls))

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _event(agent_id: str, minute: int) -> tuple[Event, str]:
    body = make_event("file.opened", ts=f"2026-03-01T10:{minute:02d}:00.000Z", level="core", path=f"/srv/rnd/{minute}.dwg", agent_id=agent_id)
    return Event.from_dict(body), json.dumps(body)


def test_two_collectors_folding_repeats_of_one_group_update_one_alert(stores):
    one, two = stores
    agent_id = one.enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_" + uuid.uuid4().hex)
    batches = [[_event(agent_id, m)] for m in range(20)]
    _race(*[lambda b=b, s=s: s.ingest(b) for s, b in zip([one, two] * 10, batches, strict=True)])

    with one.engine.connect() as conn:
        rows = conn.execute(select(alerts.c.id, alerts.c.count).where(alerts.c.category == "off-hours")).all()
        repeated = conn.execute(select(alert_history.c.id).where(alert_history.c.action == "repeated")).all()
    assert [r.count for r in rows] == [20]
    assert len(repeated) == 19


def test_two_collectors_raise_and_escalate_agent_offline_once(stores, clock):
    one, two = stores
    one.enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_" + uuid.uuid4().hex)
    health = Health(OFFLINE_S, (3.0,), None)
    clock.advance(OFFLINE_S + 1)
    assert sum(_race(lambda: one.check_absence(OFFLINE_S, None, health), lambda: two.check_absence(OFFLINE_S, None, health))) == 1
    clock.advance(3 * OFFLINE_S)
    _race(lambda: one.check_absence(OFFLINE_S, None, health), lambda: two.check_absence(OFFLINE_S, None, health))

    with one.engine.connect() as conn:
        actions = conn.execute(select(alert_history.c.action).order_by(alert_history.c.id)).scalars().all()
        severity = conn.execute(select(alerts.c.severity)).scalar()
    assert (actions, severity) == (["created", "escalated"], "critical")


def test_a_heartbeat_racing_the_check_never_leaves_an_open_alert(stores, clock):
    one, two = stores
    agent_id = one.enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_" + uuid.uuid4().hex)
    health = Health(OFFLINE_S, (), None)
    for _ in range(10):
        clock.advance(OFFLINE_S + 1)
        _race(lambda: one.check_absence(OFFLINE_S, None, health), lambda: two.heartbeat(agent_id, "pc-0042", "0.1.0", None, 0, {}))
    with one.engine.connect() as conn:
        statuses = conn.execute(select(alerts.c.status)).scalars().all()
    assert "open" not in statuses  # each one raised was resolved by the heartbeat it raced


def test_retention_purges_on_postgresql(stores, clock):
    one, _ = stores
    agent_id = one.enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_" + uuid.uuid4().hex)
    one.ingest([_event(agent_id, m) for m in range(3)])  # one off-hours alert links all three
    routine = make_event("file.created", agent_id=agent_id)
    one.ingest([(Event.from_dict(routine), json.dumps(routine))])
    clock.advance(1130 * 86400)  # the month is wholly past retention: PostgreSQL drops months (server/partitions.py)
    assert one.purge_events() == 1
    with one.engine.connect() as conn:
        assert len(conn.execute(select(events.c.id)).all()) == 3
