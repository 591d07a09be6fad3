"""insert_rows and update_rows, the set-wise statements a batch sends on PostgreSQL (one INSERT ...
SELECT FROM unnest() or UPDATE ... FROM unnest() for all its history rows, evidence links, rule
hits and alert changes) store what SQLAlchemy's executemany stores: the same values, ids in the
rows' order (history and evidence are read back in id order), repeats of a key applied in turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, delete, insert, select, update

from server.database import _no_python_defaults, insert_rows, update_rows, writing
from server.schema import alert_events, alert_history, alerts, incident_files, rule_hits
from tests.server import test_backends

pg_cluster, backend = test_backends.pg_cluster, test_backends.backend  # the storage contract's fixtures
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _alerts(conn, n: int) -> list[int]:
    rows = [
        dict(rule_id=f"R{i}", category="usb", severity="low", title="t", status="open", created_at=NOW, updated_at=NOW,
             count=1, explanation="", suppressed=0, last_ts=None)
        for i in range(n)
    ]  # fmt: skip
    return conn.execute(insert(alerts).returning(alerts.c.id, sort_by_parameter_order=True), rows).scalars().all()


def _history(ids: list[int]) -> list[dict]:
    comments = ["", "3 more matches", '引号 "quoted" {a,b} \\ back', "NULL", "x" * 3000]
    return [
        dict(alert_id=ids[i % len(ids)], at=NOW + timedelta(seconds=i), actor="system", action="repeated" if i % 3 else "created",
             from_status=None if i % 2 else "open", status="open", comment=comments[i % len(comments)])
        for i in range(23)
    ]  # fmt: skip


def _hits() -> list[dict]:
    return [
        dict(rule_id=f"C{i % 3}", group_key=f"{i % 4:064d}", step=i % 2, event_id=f"00000000-0000-4000-8000-{i:012d}",
             ts=f"2026-03-02T01:00:{59 - i:02d}.000Z", facts=f'{{"size": {i}, "user": "张三"}}')
        for i in range(40)
    ]  # fmt: skip


def _read(conn, table, order) -> list[tuple]:
    """Every row, in `order`, without a serial id (a sequence moves on even when rolled back)."""
    columns = [c for c in table.columns if c.name != "id"]
    return [tuple(r) for r in conn.execute(select(*columns).order_by(*order))]


@pytest.mark.parametrize("table", ["alert_history", "rule_hits"])
def test_rows_are_stored_as_executemany_stores_them_with_ids_in_their_order(backend, table):
    with writing(backend) as conn:
        ids = _alerts(conn, 3)
    target = {"alert_history": alert_history, "rule_hits": rule_hits}[table]
    rows = _history(ids) if table == "alert_history" else _hits()
    with writing(backend) as conn:
        conn.execute(insert(target), rows)
        expected = _read(conn, target, [target.c.id])
        conn.execute(delete(target))
    with writing(backend) as conn:
        insert_rows(conn, target, rows)
        insert_rows(conn, target, [])
    with backend.connect() as conn:
        assert _read(conn, target, [target.c.id]) == expected  # read in id order: the ids follow the rows
        assert len(expected) == len(rows)


def test_incident_files_and_links_keep_every_column_and_ignore_the_links_already_there(backend):
    with writing(backend) as conn:
        a, b = _alerts(conn, 2)
        insert_rows(conn, alert_events, [{"alert_id": a, "event_id": "e-1"}])
    files = [
        dict(alert_id=a, seq=i, event_id=f"e-{i}", at=NOW + timedelta(seconds=i), path=f"C:\\Users\\张三\\{i}.docx", name=f"{i}.docx",
             size=None if i == 2 else 2**40 + i, sha256="ab" * 32, level=None, register_item=None, source=None, match="exact",
             facets='[{"category": "classified"}]')
        for i in range(1, 5)
    ]  # fmt: skip
    links = [{"alert_id": a, "event_id": "e-2"}, {"alert_id": a, "event_id": "e-1"}, {"alert_id": b, "event_id": "e-1"}, {"alert_id": a, "event_id": "e-2"}]
    with writing(backend) as conn:
        insert_rows(conn, incident_files, files)
        insert_rows(conn, alert_events, links, ignore=["alert_id", "event_id"])
    with backend.connect() as conn:
        stored = [r._asdict() for r in conn.execute(select(incident_files).order_by(incident_files.c.seq))]
        assert [(r.alert_id, r.event_id) for r in conn.execute(select(alert_events).order_by(alert_events.c.alert_id, alert_events.c.event_id))] == [
            (a, "e-1"), (a, "e-2"), (b, "e-1"),
        ]  # fmt: skip
    assert [{**r, "at": r["at"].astimezone(UTC)} for r in stored] == files


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite keeps its executemany
def test_updates_match_executemany_with_a_key_named_twice_applied_in_turn(backend):
    with writing(backend) as conn:
        ids = _alerts(conn, 4)
    later = NOW + timedelta(minutes=5)
    changes = [
        dict(id=ids[0], count=3, severity="high", last_seen=later, last_ts="2026-03-02T01:05:00.000Z", user="李四"),
        dict(id=ids[2], count=1, severity="medium", last_seen=None, last_ts=None, user=None),
        dict(id=ids[0], count=5, severity="critical", last_seen=later, last_ts=None, user='o"k'),
        dict(id=ids[3], count=0, severity="low", last_seen=later, last_ts="z", user="x"),
    ]
    reference = (
        update(alerts)
        .where(alerts.c.id == bindparam("b_id"))
        .values(count=alerts.c.count + bindparam("b_count"), severity=bindparam("severity"), last_seen=bindparam("last_seen"),
                last_ts=bindparam("last_ts"), user=bindparam("user"))
    )  # fmt: skip
    with writing(backend) as conn:
        conn.execute(reference, [{**{k: v for k, v in c.items() if k not in ("id", "count")}, "b_id": c["id"], "b_count": c["count"]} for c in changes])
        expected = [r._asdict() for r in conn.execute(select(alerts).order_by(alerts.c.id))]
        conn.rollback()
    with writing(backend) as conn:
        update_rows(conn, alerts, changes, ("id",), added=("count",))
    with backend.connect() as conn:
        assert [r._asdict() for r in conn.execute(select(alerts).order_by(alerts.c.id))] == expected
    assert expected[0]["count"] == 9 and expected[0]["severity"] == "critical"  # both repeats of ids[0], the later last


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite keeps its executemany
def test_rule_hits_alert_and_facets_by_a_two_column_key(backend):
    with writing(backend) as conn:
        a, b = _alerts(conn, 2)
        insert_rows(conn, incident_files, [dict(alert_id=x, seq=s, facets="[]") for x in (a, b) for s in (1, 2)])
        insert_rows(conn, rule_hits, _hits()[:5])
        hit_ids = conn.execute(select(rule_hits.c.id).order_by(rule_hits.c.id)).scalars().all()
    with writing(backend) as conn:
        update_rows(conn, incident_files, [dict(alert_id=b, seq=1, facets='["usb"]'), dict(alert_id=a, seq=2, facets='["im"]')], ("alert_id", "seq"))
        update_rows(conn, rule_hits, [dict(id=hit_ids[1], alert_id=b), dict(id=hit_ids[3], alert_id=a)], ("id",))
    with backend.connect() as conn:
        assert conn.execute(select(incident_files.c.alert_id, incident_files.c.seq, incident_files.c.facets).order_by(incident_files.c.alert_id, incident_files.c.seq)).all() == [
            (a, 1, "[]"), (a, 2, '["im"]'), (b, 1, '["usb"]'), (b, 2, "[]"),
        ]  # fmt: skip
        assert conn.execute(select(rule_hits.c.alert_id).order_by(rule_hits.c.id)).scalars().all() == [None, b, None, a, None]


def test_a_column_whose_default_is_made_in_python_must_be_given():
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer, default=7))
    with pytest.raises(ValueError, match="no value for n"):
        _no_python_defaults(table, ["id"])
    _no_python_defaults(table, ["id", "n"])
