"""The triage state machine holds when two officers change one alert at once on PostgreSQL: the
second change is judged on the status the first one committed (the status is read FOR UPDATE),
not on the one both saw. Skips with the reason when PostgreSQL is not installed."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from rules.events import Event
from server.alerts import TransitionConflict, change_status
from server.database import make_engine, migrate, writing
from server.schema import alert_history, alerts
from server.store import Store
from tests.server import postgres
from tests.server.factories import make_event
from tests.server.postgres import cluster, db_url  # noqa: F401 - one cluster per module, a database per test

pytestmark = postgres.MARKS
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def engines(db_url):  # noqa: F811 (the fixture imported above, by name)
    both = [make_engine(db_url) for _ in range(2)]
    migrate(both[0])
    yield both
    for e in both:
        e.dispose()


def test_an_acknowledge_racing_a_resolve_is_judged_on_the_resolved_status(engines, clock):
    one, two = engines
    store = Store(one, clock=clock)
    agent_id = store.enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_" + uuid.uuid4().hex)
    body = make_event("file.opened", ts="2026-03-01T10:00:00.000Z", level="core", path="/srv/rnd/a.dwg", agent_id=agent_id)
    store.ingest([(Event.from_dict(body), json.dumps(body))])
    with one.connect() as conn:
        alert_id = conn.execute(select(alerts.c.id).where(alerts.c.status == "open")).scalars().first()
    assert alert_id is not None

    outcome: list = []

    def acknowledge() -> None:  # the second officer, on the other collector
        try:
            with writing(two) as conn:
                outcome.append(change_status(conn, alert_id, "acknowledged", "on it", "console:li.na", NOW))
        except TransitionConflict as exc:
            outcome.append(exc)

    with writing(one) as conn:  # the first officer resolves it; not committed yet
        assert change_status(conn, alert_id, "resolved", "done", "console:boss", NOW) == "status"
        other = threading.Thread(target=acknowledge)
        other.start()
        time.sleep(1.0)  # the other transaction reads the status meanwhile (and waits for this one)
    other.join(30)

    assert len(outcome) == 1 and isinstance(outcome[0], TransitionConflict), outcome
    with one.connect() as conn:
        assert conn.execute(select(alerts.c.status).where(alerts.c.id == alert_id)).scalar() == "resolved"
        steps = conn.execute(
            select(alert_history.c.action, alert_history.c.from_status, alert_history.c.status)
            .where(alert_history.c.alert_id == alert_id)
            .order_by(alert_history.c.id)
        ).all()
    assert [tuple(s) for s in steps] == [("created", None, "open"), ("status", "open", "resolved")]
