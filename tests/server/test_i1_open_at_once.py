"""The alerts of the bursts one batch opens are inserted together (server/correlation.py,
Correlator._insert_opened: one insert_alerts for the batch), and every stored row must be what the
reference stores, one insert_alert as each burst opens (correlation.OPEN_AT_ONCE = False): the
alerts and their ids, their evidence, history and outbox rows, the hits and the state rows.

Random scripts on both backends: several users feed a counting rule and a two-step sequence, in
batches that open many bursts at once, and some that open two bursts of one group (a pause longer
than the window inside the batch) or join a burst opened before; a notification channel takes
every category, so each new alert has an outbox row.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, insert, select, text

from rules.worktime import WorkTime
from server import correlation
from server.database import make_engine, migrate, writing
from server.models import EventIn
from server.notify.tables import notifications, notify_channels
from server.schema import alert_events, alert_history, alerts, correlation_state, rule_hits
from server.store import Store
from tests.server import postgres, test_backends
from tests.server.factories import FakeClock

pg_cluster = test_backends.pg_cluster  # the storage contract's cluster, started only for PostgreSQL
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
USERS = ("zhang.wei", "li.na", "wang.fang", "chen.jie", "liu.yang", "zhao.lei")
RULES = """\
- id: ACME-OUT
  title: A file written to a stick
  category: classified-egress
  severity: info
  alert: false
  when:
    type: egress.file
    egress: removable

- id: ACME-MANY-OUT
  title: Files written to a stick, many at once
  category: bulk-egress
  severity: by-level
  correlate:
    rules: [ACME-OUT]
    group_by: [agent_id, user]
    window: 1m
    count: {gte: 3}

- id: ACME-ARCHIVE-MADE
  title: Archive created
  category: classified-egress
  severity: info
  alert: false
  when:
    type: file.created
    extension: [zip]

- id: ACME-ARCHIVE-OUT
  title: Archive written to a stick
  category: classified-egress
  severity: info
  alert: false
  when:
    type: egress.file
    extension: [zip]
    egress: removable

- id: ACME-ARCHIVE-THEN-OUT
  title: Archived, then the archive written to a stick
  category: bulk-egress
  severity: high
  correlate:
    sequence: [ACME-ARCHIVE-MADE, ACME-ARCHIVE-OUT]
    group_by: [agent_id, user]
    window: 2m
"""
TABLES = (alerts, alert_events, alert_history, notifications, rule_hits, correlation_state)


def _ts(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _script(seed: int) -> list[tuple[datetime, list[dict]]]:
    """(collector clock, event bodies) per batch."""
    rng = random.Random(seed)
    batches, start = [], T0
    for _ in range(8):
        users = rng.sample(USERS, rng.randint(2, len(USERS)))
        bodies = []
        for user in users:
            at = start + timedelta(seconds=rng.uniform(0, 20))
            for _ in range(rng.randint(1, 9)):
                at += timedelta(seconds=rng.choice((1, 2, 5, 90 if rng.random() < 0.1 else 3)))  # 90 s: a pause past the window
                archive = rng.random() < 0.25
                n = rng.randrange(10**6)
                body = {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "ts": _ts(at), "host": "pc-0042", "user": user}
                if archive and rng.random() < 0.5:
                    body.update(type="file.created", path=f"/srv/rnd/drawings/all-{n}.zip")
                else:
                    body.update(type="egress.file", path=f"/media/{user}/KINGSTON/part-{n}.{'zip' if archive else 'dwg'}",
                                egress="removable", size=rng.randint(1, 10**6), level=rng.choice(("core", "important", None)))
                bodies.append(body)
        rng.shuffle(bodies)
        batches.append((start + timedelta(seconds=40), bodies))
        start += timedelta(seconds=rng.choice((10, 30, 200)))
    return batches


def _engine(request, tmp_path, kind: str, name: str):
    if kind == "sqlite":
        return make_engine(f"sqlite:///{tmp_path / name}.db"), None
    cluster = request.getfixturevalue("pg_cluster")
    database = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {database}"))
    return make_engine(cluster.url(database)), (admin, database)


def _run(request, tmp_path, kind: str, at_once: bool, script, monkeypatch) -> dict[str, list[tuple]]:
    monkeypatch.setattr(correlation, "OPEN_AT_ONCE", at_once)
    engine, dropped = _engine(request, tmp_path, kind, f"at-once-{at_once}")
    try:
        migrate(engine)
        clock = FakeClock(T0)
        store = Store(engine, clock=clock)
        store.policies.activate_at_startup(WorkTime(timezone="UTC"))
        store.policies.propose([("acme.yaml", RULES)], WorkTime(timezone="UTC"), "token:ops")
        with writing(engine) as conn:
            conn.execute(insert(notify_channels).values(
                id="ch_test", source="api", name="ops", url="https://example.invalid/hook", severities="[]", categories="[]",
                max_per_hour=60, enabled=True, created_at=T0, updated_at=T0, created_by="token:ops"))  # fmt: skip
        agent_id = store.enroll_agent("6f1c2d4e-0000-4000-8000-00000000abcd", "pc-0042", "0.1.0", "mwa_test")
        for now, bodies in script:
            clock.now = now
            store.ingest([EventIn(**b).stored(agent_id) for b in bodies])
        with engine.connect() as conn:
            return {t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.columns))] for t in TABLES}
    finally:
        engine.dispose()
        if dropped:
            admin, database = dropped
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE {database} WITH (FORCE)"))
            admin.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=postgres.MARKS)])
@pytest.mark.parametrize("seed", range(6))
def test_the_bursts_a_batch_opens_store_what_opening_each_at_once_stores(request, tmp_path, monkeypatch, kind, seed):
    script = _script(seed)
    together = _run(request, tmp_path, kind, True, script, monkeypatch)
    each = _run(request, tmp_path, kind, False, script, monkeypatch)

    opened_in = Counter(row[6] for row in each["alerts"])  # created_at: the batch's clock
    assert max(opened_in.values()) >= 3, "some batch should open several bursts"
    assert {row[1] for row in each["alerts"]} == {"ACME-MANY-OUT", "ACME-ARCHIVE-THEN-OUT"}
    assert each["notifications"], "the channel should have an outbox row per alert"
    for table, rows in each.items():
        assert len(together[table]) == len(rows), table
        for a, b in zip(together[table], rows, strict=True):
            assert a == b, f"{table}:\n{a}\n!=\n{b}"
