"""Monthly event partitions on PostgreSQL (migration 0017, server/partitions.py): the migration
from 0016 keeps every row, id and seq; an insert lands in its month; a resend next month is still
dropped; an agent's absurd clock does not matter; retention drops whole months and keeps alert
evidence findable; next months exist ahead. The ingest, chain and retention tests run here on
PostgreSQL too. Skips with the reason when PostgreSQL is not installed."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text

from server import partitions
from server.database import _alembic_config, make_engine
from server.retention import purge_events
from tests.console.conftest import CHEAP, PASSWORD, sign_in
from tests.server import postgres
from tests.server.factories import alerts_of, make_egress, make_event
from tests.server.postgres import cluster, db_url  # noqa: F401 - one cluster per module, a database per test
from tests.server.test_chain import (  # noqa: F401 - run here against PostgreSQL
    test_a_forged_successor_breaks_the_chain,
    test_a_gap_at_the_end_is_found_from_the_agents_count,
    test_a_rewritten_event_breaks_the_chain_whichever_arrives_first,
    test_an_event_deleted_before_it_was_sent_is_a_gap_raised_once,
    test_an_unbroken_chain_raises_nothing,
    test_batches_arriving_out_of_order_raise_nothing,
    test_resent_batches_change_nothing,
    test_two_events_claiming_one_seq_are_reported,
)
from tests.server.test_ingest import (  # noqa: F401 - run here against PostgreSQL
    test_batch_mixing_new_and_known_events_accepts_only_the_new,
    test_duplicate_ids_within_one_batch_are_stored_once,
    test_event_is_stored_with_its_fields_and_ts_in_utc,
    test_resent_batch_is_stored_once_and_counted_as_duplicates,
    test_resent_egress_event_raises_its_alert_once,
    test_single_event_resent_is_a_duplicate,
)

pytestmark = postgres.MARKS
DAY = 86400.0


def _to(engine, revision: str, downgrade: bool = False) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if downgrade else command.upgrade)(cfg, revision)


def _where(engine) -> dict[str, str]:
    """event id -> the partition (table) holding it."""
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT id, tableoid::regclass::text FROM events")).all())


def _attached(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass")).scalars())


def _month(moment: datetime) -> str:
    return partitions.name_of(partitions.month_start(moment))


def test_the_migration_from_0016_keeps_every_row_id_and_seq_and_goes_back(db_url):  # noqa: F811
    engine = make_engine(db_url)
    try:
        _to(engine, "0016")
        times = ["2026-09-15 10:00:00+00", "2026-10-31 23:59:59.999+00", "2026-11-01 00:00:00+00", "2026-11-20 08:00:00+08"]
        rows = [(str(uuid.uuid4()), t) for t in times for _ in range(3)]
        with engine.begin() as conn:
            for event_id, received in rows:
                conn.execute(
                    text(
                        "INSERT INTO events (id, type, ts, received_at, agent_id, body) VALUES (:id, 'file.created',"
                        " '2026-01-01T00:00:00.000Z', :at, 'a1', :body)"
                    ),
                    {"id": event_id, "at": received, "body": json.dumps({"id": event_id})},
                )
            conn.execute(text("DELETE FROM events WHERE id = :id"), {"id": rows[4][0]})  # a gap in seq
            before = dict(conn.execute(text("SELECT id, seq FROM events")).all())

        _to(engine, "head")

        with engine.connect() as conn:
            after = dict(conn.execute(text("SELECT id, seq FROM events")).all())
            assert conn.execute(text("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass")).scalar() == "p"
            assert conn.execute(text("SELECT count(*) FROM event_ids")).scalar() == len(before)
        assert after == before
        where = _where(engine)
        assert where[rows[0][0]] == "events_p202609"
        assert where[rows[3][0]] == "events_p202610"  # 23:59:59.999 on the 31st is October
        assert where[rows[6][0]] == "events_p202611" and where[rows[9][0]] == "events_p202611"  # 08:00+08 is 00:00 UTC
        assert {"events_p202609", "events_p202610", "events_p202611", "events_default"} <= _attached(engine)
        with engine.begin() as conn:  # the sequence goes on where it was
            seq = conn.execute(
                text("INSERT INTO events (id, type, ts, received_at, agent_id, body) VALUES ('x', 't', 't', now(), 'a', '{}') RETURNING seq")
            ).scalar()
        assert seq > max(before.values())

        _to(engine, "0016", downgrade=True)
        with engine.connect() as conn:
            back = dict(conn.execute(text("SELECT id, seq FROM events")).all())
            assert conn.execute(text("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass")).scalar() == "r"
            unique = conn.execute(text("SELECT count(*) FROM pg_constraint WHERE conname = 'events_id_key' AND contype = 'u'")).scalar()
        assert back == {**before, "x": seq} and unique == 1
    finally:
        engine.dispose()


def test_an_insert_lands_in_its_month_and_a_resend_next_month_is_dropped(send, store, engine, clock):
    partitions.ensure(engine, clock())
    event = make_event("file.created")
    assert send(event) == {"accepted": 1, "duplicates": 0}
    clock.advance(40 * DAY)  # next month on the collector's clock
    partitions.ensure(engine, clock())
    assert send(event, make_event("file.created", id=event["id"])) == {"accepted": 0, "duplicates": 2}
    assert _where(engine) == {event["id"]: _month(clock() - timedelta(days=40))}


def test_an_agent_clock_far_in_the_past_or_future_does_not_matter(send, engine, clock):
    partitions.ensure(engine, clock())
    past, future = make_event("file.created", ts="1970-01-01T00:00:00.000Z"), make_event("file.created", ts="2999-12-31T23:59:59.000Z")
    assert send(past, future) == {"accepted": 2, "duplicates": 0}
    assert set(_where(engine).values()) == {_month(clock())}  # the month it arrived in


def test_an_insert_in_a_month_nobody_created_goes_to_the_default_and_moves_later(send, engine, clock):
    clock.now = datetime(2031, 5, 10, tzinfo=UTC)  # past every month the migration created
    event = make_event("file.created")
    assert send(event)["accepted"] == 1
    assert _where(engine) == {event["id"]: "events_default"}
    assert _month(clock()) in partitions.ensure(engine, clock())
    assert _where(engine) == {event["id"]: "events_p203105"}


def test_next_months_exist_ahead(engine, clock):
    now = datetime.now(UTC)
    start = partitions.month_start(now)
    ahead = [start]
    for _ in range(partitions.MONTHS_AHEAD):
        ahead.append(partitions.next_month(ahead[-1]))
    assert {partitions.name_of(m) for m in ahead} | {"events_default"} <= _attached(engine)  # at migrate
    later = now + timedelta(days=200)
    purge_events(engine, later, 1095)  # and with each retention run
    assert partitions.name_of(partitions.next_month(partitions.month_start(later))) in _attached(engine)


def test_retention_drops_whole_months_and_keeps_alert_evidence(client, reader, send, store, engine, clock):
    clock.now = datetime(2027, 1, 10, tzinfo=UTC)
    partitions.ensure(engine, clock())
    evidence, routine = make_egress("core"), [make_event("file.created", path=f"/srv/rnd/{i}.txt") for i in range(5)]
    send(evidence, *routine)
    clock.advance(40 * DAY)  # February
    partitions.ensure(engine, clock())
    february = make_event("file.created")
    send(february)
    assert _where(engine)[evidence["id"]] == "events_p202701"

    # 1,095 days on: January is wholly past the cutoff, February is not
    clock.now = datetime(2030, 2, 5, tzinfo=UTC)
    with engine.connect() as conn:  # the same rows by DELETE would have been one by one
        assert partitions.droppable(conn, clock() - timedelta(days=1095))[-1] == "events_p202701"  # (and the migration's months)
    assert store.purge_events() == 5

    attached = _attached(engine)
    assert "events_p202701" not in attached and "events_p202702" in attached
    with engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('events_p202701')")).scalar() is None  # dropped, not only detached
        assert conn.execute(text("SELECT count(*) FROM event_ids")).scalar() == 2  # the kept one and February's
    assert _where(engine) == {evidence["id"]: "events_default", february["id"]: "events_p202702"}
    # the evidence is found as before: the API's alert, the console's event page, the evidence pack
    (alert,) = alerts_of(client, reader)
    assert client.get(f"/api/v1/alerts/{alert['id']}", headers=reader).json()["events"][0]["id"] == evidence["id"]
    pack = client.get(f"/api/v1/alerts/{alert['id']}/evidence.zip", headers=reader)
    assert pack.status_code == 200
    assert f"events/{evidence['id']}.json" in zipfile.ZipFile(io.BytesIO(pack.content)).namelist()
    store.create_user("boss", "admin", CHEAP.hash(PASSWORD))
    assert sign_in(client, "boss").status_code == 303
    page = client.get(f"/console/events/{evidence['id']}")
    assert page.status_code == 200 and evidence["path"] in page.text
    # a resend of a dropped event is stored again (as after a row purge); of the kept one, not
    assert send(routine[0], evidence) == {"accepted": 1, "duplicates": 1}


def test_a_purge_after_the_alert_is_deleted_removes_the_kept_event(client, reader, send, store, engine, clock):
    clock.now = datetime(2027, 1, 10, tzinfo=UTC)
    partitions.ensure(engine, clock())
    evidence = make_egress("core")
    send(evidence)
    clock.now = datetime(2030, 2, 5, tzinfo=UTC)
    assert store.purge_events() == 0
    (alert,) = alerts_of(client, reader)
    assert client.delete(f"/api/v1/alerts/{alert['id']}", headers=reader).status_code == 200
    assert store.purge_events() == 1  # from events_default, row by row
    assert _where(engine) == {}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_ids")).scalar() == 0


def test_a_month_left_detached_by_a_stopped_collector_is_finished(send, store, engine, clock):
    clock.now = datetime(2027, 1, 10, tzinfo=UTC)
    partitions.ensure(engine, clock())
    send(*[make_event("file.created") for _ in range(3)])
    with engine.begin() as conn:  # stopped after the detach, before the ids were forgotten
        conn.execute(text("ALTER TABLE events DETACH PARTITION events_p202701"))
    assert _where(engine) == {}
    clock.now = datetime(2027, 3, 5, tzinfo=UTC)  # within retention: nothing else to drop
    assert store.purge_events() == 3
    with engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('events_p202701')")).scalar() is None
        assert conn.execute(text("SELECT count(*) FROM event_ids")).scalar() == 0


def by_design(diff) -> bool:
    """A difference alembic's compare_metadata reports on PostgreSQL after 0017 that is there on
    purpose: server/schema.py describes the one events table SQLite has; PostgreSQL has its month
    partitions, event_ids and an ordinary index on events.id instead of UNIQUE (id)."""
    kind, item = diff[0], diff[1]
    table = getattr(item, "table", item)
    name = getattr(table, "name", "")
    if name == "event_ids" or name == "events_default" or partitions.NAME.match(name or ""):
        return True
    if name == "events" and kind == "remove_index" and item.name == "events_id":
        return True
    return name == "events" and kind == "add_constraint" and [c.name for c in item.columns] == ["id"]
