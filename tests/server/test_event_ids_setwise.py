"""Ingest's events insert records the batch's ids in event_ids itself on PostgreSQL (one statement,
server/database.py _insert_events_setwise) instead of migration 0017's trigger doing it row by row;
migration 0018 makes the trigger step aside for that statement only.

What must not change: every id is stored once (a resend in the batch, in a later batch, into
another month, or from a second collector's transaction is refused), the first of two rows with
one id is the one kept, the rows keep the batch's order, and every other insert into events (a
collector's finding in the same transaction, retention's kept evidence) still goes through the
trigger. The same script of batches through the set-wise insert and through the reference (the
trigger's way, database.SETWISE_EVENT_IDS = False) into two fresh databases stores the same rows
and the same event_ids. The duplicate tests run on SQLite too, whose UNIQUE (id) does the work.
"""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import create_engine, insert, select, text

from server import database
from server.database import _alembic_config, insert_new, make_engine, migrate, writing
from server.schema import events
from tests.server import test_backends

pg_cluster, backend = test_backends.pg_cluster, test_backends.backend  # the storage contract's fixtures
NOW = datetime.now(UTC).replace(microsecond=0)
LAST_MONTH = (NOW.replace(day=1) - timedelta(days=1)).replace(hour=12)


def _id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def _row(i: int, received_at: datetime = NOW, **values) -> dict:
    row = dict(
        id=_id(i), type="file.created", ts="2026-03-02T01:00:00.000Z", received_at=received_at, agent_id="agent-1",
        host="pc-1", user="zhang.san", path=f"/srv/{i}", size=i, sha256=None, level=None, source_path=None,
        severity=None, body=f'{{"n": {i}}}', agent_seq=i, chain_hash=None, prev_hash=None, claimed_host=None,
    )  # fmt: skip
    return {**row, **values}


@pytest.fixture(params=[True, False], ids=["setwise", "reference"])
def way(request):
    """Both ways of inserting events, the set-wise one and the trigger's."""
    saved = database.SETWISE_EVENT_IDS
    database.SETWISE_EVENT_IDS = request.param
    yield request.param
    database.SETWISE_EVENT_IDS = saved


def _stored(engine) -> list[tuple]:
    """Every events row but its seq, in seq order, and event_ids (PostgreSQL) sorted."""
    names = [c for c in events.c if c.name != "seq"]
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(*names).order_by(events.c.seq))]
        ids = []
        if conn.dialect.name == "postgresql":
            ids = [tuple(r) for r in conn.exec_driver_sql("SELECT id, received_at FROM event_ids ORDER BY id")]
    return rows + [("event_ids", *r) for r in ids]


def test_a_resend_in_the_batch_or_later_is_refused_and_the_first_row_kept(backend, way):
    with writing(backend) as conn:
        assert insert_new(conn, events, [_row(1), _row(2), _row(1, path="/later"), _row(3), _row(2, path="/x")], "id") == [
            _id(1), _id(2), _id(3),
        ]  # fmt: skip
    with writing(backend) as conn:
        assert insert_new(conn, events, [_row(4), _row(3, path="/again"), _row(5)], "id") == [_id(4), _id(5)]
        assert insert_new(conn, events, [_row(5), _row(4)], "id") == []
    with backend.connect() as conn:
        stored = conn.execute(select(events.c.id, events.c.path).order_by(events.c.seq)).all()
    assert [tuple(r) for r in stored] == [(_id(i), f"/srv/{i}") for i in range(1, 6)]


def test_a_resend_into_another_month_is_refused(backend, way):
    with writing(backend) as conn:
        assert insert_new(conn, events, [_row(1, LAST_MONTH), _row(2, LAST_MONTH)], "id") == [_id(1), _id(2)]
    with writing(backend) as conn:  # a month later: the events sit in another partition, event_ids knows them
        assert insert_new(conn, events, [_row(2), _row(3), _row(1)], "id") == [_id(3)]
    with backend.connect() as conn:
        assert conn.execute(select(events.c.id).order_by(events.c.seq)).scalars().all() == [_id(1), _id(2), _id(3)]


def test_other_inserts_in_the_same_transaction_are_still_recorded(backend, way):
    """A collector's finding (Store._store_findings) is inserted after the batch in its transaction:
    the trigger must record it, so the setting that sends the trigger away lasts one statement."""
    with writing(backend) as conn:
        assert insert_new(conn, events, [_row(1), _row(2)], "id") == [_id(1), _id(2)]
        conn.execute(insert(events), [_row(7)])
        if backend.dialect.name == "postgresql":
            conn.execute(insert(events), [_row(1, path="/finding-twice")])  # the trigger drops it
    with backend.connect() as conn:
        assert conn.execute(select(events.c.id).order_by(events.c.seq)).scalars().all() == [_id(1), _id(2), _id(7)]
    if backend.dialect.name != "postgresql":
        return
    with backend.connect() as conn:
        assert conn.exec_driver_sql("SELECT id FROM event_ids ORDER BY id").scalars().all() == [_id(1), _id(2), _id(7)]
        assert conn.execute(select(events.c.id).order_by(events.c.seq)).scalars().all() == [_id(1), _id(2), _id(7)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_setwise_insert_stores_what_the_trigger_stores(pg_cluster, seed):
    """The same random script (resends within and across batches and months, findings inserted in
    the batch's transaction) through both ways into two fresh databases: the same keys returned,
    the same rows in the same order (seq aside: the trigger's way spends a seq on each row it
    drops), the same event_ids."""
    rng = random.Random(seed)
    script = []
    for _ in range(12):
        month = rng.choice([NOW, LAST_MONTH])
        batch = [_row(rng.randrange(60), month, path=f"/p{rng.randrange(1000)}") for _ in range(rng.randrange(1, 40))]
        finding = _row(1000 + len(script), NOW) if rng.random() < 0.3 else None
        script.append((batch, finding))
    results, saved = [], database.SETWISE_EVENT_IDS
    try:
        for setwise in (True, False):
            database.SETWISE_EVENT_IDS = setwise
            with _fresh(pg_cluster) as engine:
                returned = []
                for batch, finding in script:
                    with writing(engine) as conn:
                        returned.append(insert_new(conn, events, batch, "id"))
                        if finding is not None:
                            conn.execute(insert(events), [finding])
                results.append((returned, _stored(engine)))
    finally:
        database.SETWISE_EVENT_IDS = saved
    assert results[0] == results[1]
    assert sum(map(len, results[0][0])) == len({r["id"] for batch, _ in script for r in batch})


def test_a_second_collector_storing_the_same_ids_waits_and_stores_only_the_rest(pg_cluster):
    """Two collectors' transactions with overlapping batches: the second waits for the first's ids
    and stores only the ones it did not take (the ids go in sorted: no deadlock either way)."""
    with _fresh(pg_cluster) as engine:
        answer: list = []
        with writing(engine) as first:
            assert insert_new(first, events, [_row(3), _row(1), _row(2)], "id") == [_id(3), _id(1), _id(2)]

            def second() -> None:
                with writing(engine) as conn:
                    answer.append(insert_new(conn, events, [_row(4), _row(2), _row(1), _row(5)], "id"))

            other = threading.Thread(target=second)
            other.start()
            other.join(0.5)
            assert other.is_alive()  # waiting for the first transaction's ids
        other.join(30)
        assert answer == [[_id(4), _id(5)]]
        assert [r[0] for r in _stored(engine) if r[0] != "event_ids"] == [_id(3), _id(1), _id(2), _id(4), _id(5)]


def test_migration_0018_up_and_down_keeps_the_trigger_deduplicating(pg_cluster):
    """Down to 0017 (the trigger for every row) and up again: rows stored before stay, and either
    way a resend is refused (the reference way, the trigger's, under 0017; both under 0018)."""
    with _fresh(pg_cluster) as engine:
        saved = database.SETWISE_EVENT_IDS
        try:
            with writing(engine) as conn:
                assert insert_new(conn, events, [_row(1), _row(2)], "id") == [_id(1), _id(2)]
            _to(engine, "0017", downgrade=True)
            database.SETWISE_EVENT_IDS = False
            with writing(engine) as conn:
                assert insert_new(conn, events, [_row(2), _row(3)], "id") == [_id(3)]
            assert _trigger(engine) == "ALWAYS"
            migrate(engine)
            assert _trigger(engine) == "WHEN"
            for setwise, i in ((True, 4), (False, 5)):
                database.SETWISE_EVENT_IDS = setwise
                with writing(engine) as conn:
                    assert insert_new(conn, events, [_row(3), _row(i), _row(1)], "id") == [_id(i)]
        finally:
            database.SETWISE_EVENT_IDS = saved
        stored = _stored(engine)
        assert [r[0] for r in stored if r[0] != "event_ids"] == [_id(i) for i in range(1, 6)]
        assert [r[1] for r in stored if r[0] == "event_ids"] == [_id(i) for i in range(1, 6)]


def _trigger(engine) -> str:
    with engine.connect() as conn:
        definition = conn.exec_driver_sql(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND tgname = 'events_once'"
        ).scalar()
    return "WHEN" if " WHEN " in definition else "ALWAYS"


def _to(engine, revision: str, downgrade: bool = False) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if downgrade else command.upgrade)(cfg, revision)


class _fresh:
    """A migrated engine on a new database of the cluster, dropped afterwards."""

    def __init__(self, cluster):
        self.cluster, self.name = cluster, f"t_{uuid.uuid4().hex[:12]}"
        self.admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")

    def __enter__(self):
        with self.admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {self.name}"))
        self.engine = make_engine(self.cluster.url(self.name))
        migrate(self.engine)
        return self.engine

    def __exit__(self, *exc):
        self.engine.dispose()
        with self.admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {self.name} WITH (FORCE)"))
        self.admin.dispose()
