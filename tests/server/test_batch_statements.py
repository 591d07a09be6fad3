"""The statements ingest sends once per batch instead of once per row or group, on every backend:
insert_new (ON CONFLICT DO NOTHING, through unnest() arrays on PostgreSQL) and lock (all of a
batch's advisory locks in one statement)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from server.database import insert_new, lock, writing
from server.schema import events
from server.times import aware
from tests.server import test_backends

pg_cluster, backend = test_backends.pg_cluster, test_backends.backend  # the storage contract's fixtures
RECEIVED = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _row(i: int, **values) -> dict:
    row = dict(
        id=f"00000000-0000-4000-8000-{i:012d}", type="file.created", ts=f"2026-03-02T01:00:{i % 60:02d}.000Z", received_at=RECEIVED,
        agent_id="agent-1", host="pc-1", user="zhang.san", path=f"/srv/{i}", size=None, sha256=None, level=None,
        source_path=None, severity=None, body='{"path": "C:\\\\a\\"b\\" {x,y}"}', agent_seq=None, chain_hash=None, prev_hash=None,
    )
    return {**row, **values}


def test_insert_new_returns_only_the_new_rows_and_stores_them_in_order(backend):
    first = [_row(i, size=i * 1000 if i % 2 else None, agent_seq=i) for i in range(1, 6)]
    with writing(backend) as conn:
        assert insert_new(conn, events, first, "id") == [r["id"] for r in first]
    again = [_row(4), _row(9, user="李四", size=2**40), _row(2), _row(7, size=5)]
    with writing(backend) as conn:
        assert insert_new(conn, events, again, "id") == [_row(9)["id"], _row(7)["id"]]
        assert insert_new(conn, events, [], "id") == []
    with backend.connect() as conn:
        stored = conn.execute(select(events.c.id, events.c.size, events.c.user, events.c.agent_seq, events.c.received_at, events.c.body).order_by(events.c.seq)).all()
    assert [r.id for r in stored] == [r["id"] for r in first] + [_row(9)["id"], _row(7)["id"]]  # seq follows the rows' order
    assert [r.size for r in stored] == [1000, None, 3000, None, 5000, 2**40, 5]
    assert stored[5].user == "李四" and stored[0].agent_seq == 1 and stored[1].received_at is not None
    assert stored[0].body == _row(1)["body"]  # quotes, backslashes, braces and commas kept as they were
    assert all(aware(r.received_at) == RECEIVED for r in stored)  # stored as SQLAlchemy stores a DateTime, read back alike


def test_one_row_and_a_column_of_nulls_only(backend):
    with writing(backend) as conn:
        assert insert_new(conn, events, [_row(1)], "id") == [_row(1)["id"]]
        assert insert_new(conn, events, [_row(1)], "id") == []


def test_a_key_twice_in_one_call_is_stored_once(backend):
    with writing(backend) as conn:
        assert insert_new(conn, events, [_row(1), _row(2), _row(1, path="/other")], "id") == [_row(1)["id"], _row(2)["id"]]
    with backend.connect() as conn:
        assert conn.execute(select(events.c.path).where(events.c.id == _row(1)["id"])).scalars().all() == ["/srv/1"]


def test_a_batch_takes_every_lock_it_names(backend):
    if backend.dialect.name != "postgresql":
        pytest.skip("SQLite: a writing() transaction holds the whole database")
    with writing(backend) as holder:
        lock(holder, ["correlation:R:k2", "alert-group:R:k1", "chain:agent-1"])
        for name in ("alert-group:R:k1", "chain:agent-1", "correlation:R:k2"):
            with backend.connect() as other:
                other.exec_driver_sql("SET lock_timeout = '100ms'")
                with pytest.raises(sa_exc.OperationalError, match="lock timeout"):
                    lock(other, [name, "unrelated"])
                other.rollback()
    with backend.connect() as other:  # released with the transaction
        lock(other, ["alert-group:R:k1", "chain:agent-1", "correlation:R:k2"])
        other.rollback()
