"""Retention: events older than `server.retention_days` (default 1,095) are purged in batches.

Age is counted from when the collector received an event (`received_at`), not from the agent's
clock, so a PC whose clock is years off cannot get its events purged at once. Events linked to an
alert are never purged: alerts and their evidence stay until an admin deletes the alert (DELETE
/api/v1/alerts/{id}), and then its events age out like the rest. Each batch is its own short
transaction, so ingest is held up for one batch at most; several collectors may purge at once
(a delete of rows already gone deletes nothing).

On PostgreSQL the events table is partitioned by month of received_at (migration 0017,
server/partitions.py): a month that ended before the cutoff is dropped whole, its alert-linked
events kept in the default partition, and next months' partitions are created; the row-by-row
delete then only sees the default partition (rows older than the cutoff's month). An event is
thus kept for retention_days and at most one month more there.

`RetentionSchedule` runs the purge on a thread: once FIRST_DELAY_S after startup, then daily.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import delete, exists, select
from sqlalchemy.engine import Engine

from server import partitions
from server.database import writing
from server.periodic import Periodic
from server.schema import alert_events, events

DEFAULT_RETENTION_DAYS = 1095
BATCH = 5000
FIRST_DELAY_S = 300.0
EVERY_S = 86400.0


def purge_events(engine: Engine, now: datetime, retention_days: int, batch: int = BATCH, max_batches: int | None = None) -> int:
    """Delete events received before now - retention_days that no alert links; returns how many."""
    cutoff = now - timedelta(days=retention_days)
    total = _drop_months(engine, now, cutoff)
    with engine.connect() as conn:
        if partitioned := partitions.partitioned(conn):
            cutoff = partitions.month_start(cutoff)  # older months are gone; what is left of them is in events_default
    linked = exists().where(alert_events.c.event_id == events.c.id)
    rounds = 0
    while max_batches is None or rounds < max_batches:
        with writing(engine) as conn:
            seqs = list(
                conn.execute(select(events.c.seq).where(events.c.received_at < cutoff, ~linked).order_by(events.c.seq).limit(batch)).scalars()
            )
            if seqs:
                gone = list(conn.execute(delete(events).where(events.c.seq.in_(seqs)).returning(events.c.id)).scalars())
                if partitioned:  # a resend of a purged event is stored again, as on SQLite
                    conn.exec_driver_sql("DELETE FROM event_ids WHERE id = ANY(%(ids)s)", {"ids": gone})
        total += len(seqs)
        rounds += 1
        if len(seqs) < batch:
            break
    if total:
        logger.info("events purged count={} older_than_days={} cutoff={} by_month={}", total, retention_days, cutoff.isoformat(), partitioned)
    return total


def _drop_months(engine: Engine, now: datetime, cutoff: datetime) -> int:
    """PostgreSQL: create next months' partitions, drop the months that ended before the cutoff;
    returns how many events went (not the linked ones kept)."""
    if engine.dialect.name != "postgresql":
        return 0
    partitions.ensure(engine, now)
    with engine.connect() as conn:
        if not partitions.partitioned(conn):
            return 0
        names, unfinished = partitions.droppable(conn, cutoff), partitions.leftovers(conn)
    gone = sum(partitions.finish(engine, n) for n in unfinished)  # detached by a collector that stopped
    return gone + sum(d.rows - d.kept for d in (partitions.drop_month(engine, n) for n in names))


class RetentionSchedule(Periodic):
    """Calls `purge` after `first_delay_s`, then every `every_s`, on its own thread until stopped."""

    def __init__(self, purge: Callable[[], int], first_delay_s: float = FIRST_DELAY_S, every_s: float = EVERY_S):
        super().__init__("retention purge", purge, first_delay_s, every_s)
