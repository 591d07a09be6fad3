"""Three years of a fleet's events on PostgreSQL (issue 21 item 6): 10 million events in monthly
partitions (migration 0017, server/partitions.py), one month's purge by partition drop against
the same purge by DELETE, and the console's pages with 10 million events stored.

A throwaway cluster (tests/server/postgres.py: initdb in a temporary folder, Unix socket, fsync
off) is migrated to head; the events are written by SQL (INSERT ... SELECT generate_series, one
statement per month, the dedup trigger off and the indexes built afterwards, event_ids filled in
one statement): that is a bulk-load rate, not an ingest rate (bench/ingest.py measures ingest).
The events: 100 agents, 200 users, spread evenly over the 36 months before the last 30 days (70%
file events in classified folders, 20% egress.file, 5% media.mounted, 5% agent events, bodies as
agents send them, ~450 bytes); then bench/console.py's own fill adds the last 30 days (100,000
events, 5,000 alerts linked to egress events, an incident of 10,000 files); one old event in a
thousand is linked to an alert, so a dropped month has evidence to keep. Then VACUUM (ANALYZE):
autovacuum visits an insert-only table too (PostgreSQL 13+), so three years' table is vacuumed;
the bulk load gives it no time to, and index-only scans need the visibility map it sets.

Purge: the second oldest month (the oldest is a part of one) is removed by the row purge as server/retention.py does it on SQLite
(batches of 5,000: select the unlinked seqs, DELETE them, DELETE their event_ids), the third
by server/partitions.drop_month (detach, keep the linked rows, drop); both months hold about the
same number of events. The DELETE leaves dead rows for VACUUM, not counted.

Pages: bench/console.py's page list and goal, served by `miwei-server run` (one uvicorn worker)
on this database; median and p95 of `runs` GETs after one warm-up.

`python -m bench.partitions [--quick]` runs this section alone (quick: 500,000 events, 5 runs).
"""

from __future__ import annotations

import importlib
import json
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import console
from bench.measure import median, percentile
from bench.report import Figure, ratio, reproduce
from rules.events import new_event_id

TITLE = "Three years of events on PostgreSQL (monthly partitions)"
EVENTS = 10_000_000
QUICK_EVENTS = 500_000
MONTHS = 36
LINKED_EVERY = 1000  # one old event in this many is an alert's evidence
NOTES = (
    "A throwaway PostgreSQL cluster (fsync off, default memory settings) on the shared 2-core machine; "
    "wall-clock times while other work ran. The fill is SQL generate_series with the dedup trigger off and "
    "indexes built afterwards: a bulk-load rate, not an ingest rate."
)
MIGRATION = importlib.import_module("server.migrations.versions.0017_event_partitions")


def run(quick: bool) -> list[Figure]:
    from tests.server import postgres

    reason = postgres.why_not()
    if reason:
        raise RuntimeError(reason)
    cluster = postgres.Cluster()
    cluster.start()
    try:
        return _measure(cluster, quick)
    finally:
        cluster.stop()  # removes its folder: nothing stays on disk


def _measure(cluster, quick: bool) -> list[Figure]:
    from sqlalchemy import create_engine, text

    from server.database import make_engine, migrate

    total = QUICK_EVENTS if quick else EVENTS
    runs = 5 if quick else 20
    admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE bench"))
    admin.dispose()
    url = cluster.url("bench")
    engine = make_engine(url)
    migrate(engine)
    now = datetime.now(UTC)
    agent_ids = _console_agent_ids()
    old = total - console.EVENTS
    fill_s, index_s, months = _bulk_fill(engine, now, old, agent_ids)
    started = time.monotonic()
    alert_id = console.fill(url, now, random.Random(7))
    recent_s = time.monotonic() - started
    _link_old_events(engine)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("VACUUM (ANALYZE)")  # what autovacuum does to an insert-only table over three years
        stored = conn.exec_driver_sql("SELECT count(*) FROM events").scalar()
        size_gb = conn.exec_driver_sql("SELECT pg_database_size('bench')").scalar() / 1e9
    purge = _purge(engine, months[1], months[2])  # the first is a part of a month
    pages = _pages(cluster, url, alert_id, runs, quick, f"{stored / 1e6:.1f}M events")
    engine.dispose()
    rep = reproduce("partitions", quick)
    figures = [
        Figure(
            name="bulk fill (SQL, not ingest)", value=round(old / fill_s), unit="events/s", runs=1, reproduce=rep,
            notes=f"{old:,} events over {MONTHS} months in {fill_s:.0f} s, then indexes and event_ids in {index_s:.0f} s; "
            f"bench/console.py's fill of the last 30 days ({console.EVENTS:,} events through SQLAlchemy, the trigger on) {recent_s:.0f} s; "
            f"{stored:,} events stored, database {size_gb:.1f} GB",
        ),
        *purge,
        *pages,
    ]
    return figures


def _console_agent_ids() -> list[str]:
    """The agents bench/console.py's fill enrols (its first draws of Random(7)), so old and recent events share hosts."""
    rng = random.Random(7)
    return [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(console.AGENTS)]


def _bulk_fill(engine, now: datetime, count: int, agent_ids: list[str]) -> tuple[float, float, list[str]]:
    """`count` events spread evenly over the MONTHS months before the last 30 days; returns the
    fill's seconds, the index and event_ids build's seconds, and the month partitions oldest first."""
    from server import partitions

    end = now - timedelta(days=31)
    start = end - timedelta(days=MONTHS * 365.25 / 12)
    span_s = (end - start).total_seconds()
    with engine.begin() as conn:  # the migration made months from now on; these are past months
        month = partitions.month_start(start)
        while month < end:
            if partitions.name_of(month) not in partitions.months(conn):
                nxt = partitions.next_month(month)
                conn.exec_driver_sql(
                    f"CREATE TABLE {partitions.name_of(month)} PARTITION OF events FOR VALUES FROM ('{month.isoformat()}') TO ('{nxt.isoformat()}')"
                )
            month = partitions.next_month(month)
        conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER events_once")
        conn.exec_driver_sql("ALTER TABLE events DROP CONSTRAINT events_pkey")
        for name in ["events_id"] + [n for n, _ in MIGRATION.INDEXES]:
            conn.exec_driver_sql(f"DROP INDEX {name}")
    started = time.monotonic()
    done, month = 0, partitions.month_start(start)
    while month < end:
        lo, hi = max(month, start), min(partitions.next_month(month), end)
        upto = round(count * (hi - start).total_seconds() / span_s)
        n = upto - done
        if n > 0:
            with engine.begin() as conn:
                conn.exec_driver_sql("SET LOCAL timezone = 'UTC'")
                conn.exec_driver_sql(
                    _FILL,
                    {"n": n, "lo": lo, "step": (hi - lo).total_seconds() / n, "agents": agent_ids, "base": done},
                )
            done = upto
        month = partitions.next_month(month)
    fill_s = time.monotonic() - started
    started = time.monotonic()
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO event_ids (id, received_at) SELECT id, received_at FROM events")
        conn.exec_driver_sql("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (seq, received_at)")
        conn.exec_driver_sql("CREATE INDEX events_id ON events (id)")
        for name, columns in MIGRATION.INDEXES:
            conn.exec_driver_sql(f"CREATE INDEX {name} ON events {columns}")
        conn.exec_driver_sql("ALTER TABLE events ENABLE TRIGGER events_once")
    index_s = time.monotonic() - started
    with engine.connect() as conn:
        ordered = sorted(partitions.months(conn).items(), key=lambda kv: kv[1])
    return fill_s, index_s, [name for name, _ in ordered]


# One month's events: agents in turn, a file event's path in one of three classified folders, the body
# as an agent sends it (JSON with its details). %(step)s: seconds between two events' arrivals.
_FILL = """
WITH g AS (
    SELECT i, (%(base)s + i)::int AS k, %(lo)s::timestamptz + make_interval(secs => i * %(step)s) AS at, random() AS r,
           -- a version 7 UUID of the arrival's millisecond, as agents make ids (rules.events.new_event_id)
           overlay(gen_random_uuid()::text PLACING substr(ms, 1, 8) || '-' || substr(ms, 9, 4) || '-7' FROM 1 FOR 15) AS id
    FROM (SELECT i, lpad(to_hex((extract(epoch FROM %(lo)s::timestamptz + make_interval(secs => i * %(step)s)) * 1000)::bigint), 12, '0') AS ms
          FROM generate_series(0, %(n)s - 1) AS i) AS t
), e AS (
    SELECT g.*, (%(agents)s::text[])[1 + k %% 100] AS agent_id, 'pc-' || lpad((k %% 100)::text, 4, '0') AS host,
           'user' || lpad(((k %% 100) * 2 + (k / 100) %% 2)::text, 3, '0') AS usr,
           CASE WHEN r < 0.70 THEN (ARRAY['file.created', 'file.modified', 'file.opened', 'file.deleted', 'file.moved'])[1 + k %% 5]
                WHEN r < 0.90 THEN 'egress.file' WHEN r < 0.95 THEN 'media.mounted'
                ELSE (ARRAY['agent.started', 'agent.stopped', 'agent.tamper', 'agent.error'])[1 + k %% 4] END AS type,
           (ARRAY['/srv/rnd/drawings', '/srv/sales/quotation', '/srv/process/formulas'])[1 + k %% 3] AS folder,
           (ARRAY['pump', 'housing', 'quotation', 'formula', 'report'])[1 + k %% 5] || '-' || k || (ARRAY['.dwg', '.docx', '.xlsx', '.pdf'])[1 + k %% 4] AS name,
           (ARRAY['core', 'important', 'general', 'internal', NULL])[1 + k %% 5] AS level,
           md5(id) || md5(k::text) AS digest
    FROM g
), f AS (
    SELECT e.*, to_char(at - interval '1 second' * (r * 5), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts,
           CASE WHEN type LIKE 'file.%%' THEN folder || '/' || name WHEN type = 'egress.file' THEN '/media/' || usr || '/KINGSTON/' || name END AS path
    FROM e
)
INSERT INTO events (id, type, ts, received_at, agent_id, host, "user", path, size, sha256, level, source_path, severity, body, agent_seq, chain_hash, prev_hash)
SELECT id, type, ts, at, agent_id, host, usr, path, CASE WHEN path IS NOT NULL THEN (k::bigint * 7919) %% 10000000 END,
       CASE WHEN path IS NOT NULL THEN md5(name) || md5(folder || name) END, CASE WHEN path IS NOT NULL THEN level END,
       CASE WHEN type = 'egress.file' THEN folder || '/' || name END, NULL,
       json_build_object('id', id, 'type', type, 'ts', ts, 'host', host, 'user', usr, 'path', path,
                         'size', CASE WHEN path IS NOT NULL THEN (k::bigint * 7919) %% 10000000 END,
                         'sha256', CASE WHEN path IS NOT NULL THEN md5(name) || md5(folder || name) END,
                         'level', CASE WHEN path IS NOT NULL THEN level END, 'seq', k / 100, 'prev_hash', md5(k::text) || md5(id),
                         'details', json_build_object('pid', 1000 + k %% 30000, 'exe', '/usr/bin/cp', 'uid', 1000 + k %% 200))::text,
       k / 100, digest, md5(k::text) || md5(id)
FROM f ORDER BY at
"""


def _link_old_events(engine) -> None:
    """One old event in LINKED_EVERY is evidence of an alert (a dropped month has rows to keep)."""
    with engine.begin() as conn:
        alert = conn.exec_driver_sql(
            "INSERT INTO alerts (id, rule_id, category, severity, title, status, created_at, updated_at, count, explanation, suppressed, kind, file_count, total_bytes)"
            " SELECT max(id) + 1, 'MW-BENCH-OLD', 'classified-egress', 'high', 'old evidence', 'resolved', now(), now(), 1, 'kept evidence', 0, 'alert', 0, 0 FROM alerts RETURNING id"
        ).scalar()
        conn.exec_driver_sql(
            "INSERT INTO alert_events (alert_id, event_id) SELECT %(a)s, id FROM events"
            " WHERE received_at < now() - interval '31 days' AND seq %% %(every)s = 0 ON CONFLICT DO NOTHING",
            {"a": alert, "every": LINKED_EVERY},
        )


def _purge(engine, by_delete: str, by_drop: str) -> list[Figure]:
    from server import partitions
    from server.retention import BATCH

    with engine.connect() as conn:
        counts = {
            name: conn.exec_driver_sql(f"SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM alert_events a WHERE a.event_id = p.id)) FROM {name} p").one()
            for name in (by_delete, by_drop)
        }
    with engine.connect() as conn:
        start = partitions.months(conn)[by_delete]
    end = partitions.next_month(start)
    started = time.monotonic()
    deleted = 0
    while True:  # server/retention.py's row purge, on this one month
        with engine.begin() as conn:
            seqs = [
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT seq FROM events e WHERE received_at >= %(lo)s AND received_at < %(hi)s"
                    " AND NOT EXISTS (SELECT 1 FROM alert_events a WHERE a.event_id = e.id) ORDER BY seq LIMIT %(n)s",
                    {"lo": start, "hi": end, "n": BATCH},
                )
            ]
            if seqs:
                ids = [r[0] for r in conn.exec_driver_sql("DELETE FROM events WHERE seq = ANY(%(s)s) RETURNING id", {"s": seqs})]
                conn.exec_driver_sql("DELETE FROM event_ids WHERE id = ANY(%(ids)s)", {"ids": ids})
        deleted += len(seqs)
        if len(seqs) < BATCH:
            break
    delete_s = time.monotonic() - started
    stop, waits = threading.Event(), []
    writer = threading.Thread(target=_ingest_meanwhile, args=(engine, stop, waits))
    writer.start()
    started = time.monotonic()
    dropped = partitions.drop_month(engine, by_drop)
    drop_s = time.monotonic() - started
    stop.set()
    writer.join()
    rep = reproduce("partitions", False)
    return [
        Figure(
            name="purge one month: partition drop", value=round(drop_s, 2), unit="s", baseline=round(delete_s, 2),
            baseline_unit="s by DELETE in batches of 5,000", ratio=ratio(drop_s, delete_s), runs=1, reproduce=rep,
            notes=f"{by_drop}: {dropped.rows:,} events, {dropped.kept:,} linked kept (moved to events_default); "
            f"the DELETE: {by_delete}, {deleted:,} of {counts[by_delete][0]:,} events ({counts[by_delete][1]:,} linked kept), dead rows left for VACUUM",
        ),
        Figure(
            name="ingest held up by the month drop", value=round(max(waits) * 1000) if waits else None, unit="ms longest insert",
            baseline=round(median(waits) * 1000, 1) if waits else None, baseline_unit="ms median insert meanwhile", runs=len(waits), reproduce=rep,
            notes="one event inserted through server/database.insert_new every 10 ms on another connection while the month was dropped "
            "(the detach takes ACCESS EXCLUSIVE on events until the linked rows are copied)",
        ),
    ]


def _ingest_meanwhile(engine, stop, waits: list[float]) -> None:
    from server.database import insert_new, writing
    from server.schema import events

    while not stop.is_set():
        now = datetime.now(UTC)
        body = {"id": new_event_id(), "type": "file.created", "ts": now.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        row = {**body, "received_at": now, "agent_id": "bench-meanwhile", "body": json.dumps(body)}
        started = time.monotonic()
        with writing(engine) as conn:
            insert_new(conn, events, [row], "id")
        waits.append(time.monotonic() - started)
        time.sleep(0.01)


def _pages(cluster, url: str, alert_id: int, runs: int, quick: bool, label: str) -> list[Figure]:
    import requests  # noqa: F401 - bench.console's helpers use it

    root = Path(cluster.root).parent / f"miwei-bench-partitions-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    port = console._free_port()
    config = root / "config.yaml"
    config.write_text(f"server:\n  listen: 127.0.0.1:{port}\n  database: '{url}'\n  enroll_secret: {uuid.uuid4().hex}\n", encoding="utf-8")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "miwei-server"), "run", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    figures = []
    try:
        console._wait_healthy(base_url, server, timeout_s=120)
        session = console._sign_in(base_url)
        base = median(console._times(session, base_url + "/api/v1/health", runs))
        first: dict[str, float] = {}
        for name, path in console.PAGES:
            path = path.format(alert=alert_id, incident=console.BIG_INCIDENT, **console._days())
            times = console._times(session, base_url + path, runs, first)
            p95 = percentile(times, 95)
            figures.append(
                Figure(
                    name=f"page, {label}: {name}", value=round(median(times), 1), unit="ms median", baseline=round(base, 2),
                    baseline_unit="ms /api/v1/health", ratio=ratio(median(times), base), goal=f"p95 < {console.GOAL_MS:.0f} ms",
                    met=p95 < console.GOAL_MS, runs=runs, reproduce=reproduce("partitions", quick),
                    notes=f"p95 {p95:.1f} ms, first visit {first[base_url + path]:.0f} ms; {path}",
                )
            )
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    return figures


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.partitions", description=TITLE)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS:,} events, 5 runs per page")
    args = parser.parse_args()
    for figure in run(args.quick):
        print(f"{figure.name:48s} {figure.value!s:>10} {figure.unit:12s} {'' if figure.met is None else 'met' if figure.met else 'MISSED'} {figure.notes}")
