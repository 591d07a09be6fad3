"""Monthly partitions of the events table on PostgreSQL (migration 0017): retention drops a month
whole instead of deleting its rows one by one, and next months exist before they start.

- Partition key: `received_at`, the collector's clock, which retention already counts from. The
  agent's `ts` is not used: a PC whose clock is years off (or a hostile agent) would put rows in
  months retention drops at once, or in months nobody created.
- Dedup: a unique index on a partitioned table must hold the partition key, so `UNIQUE (id)` is
  gone; `event_ids(id PK)` holds every stored event's id and the `miwei_event_once` trigger drops
  a row whose id is there (a resend next month included). Ingest's insert (server/database.py
  insert_new) records its batch's ids itself, in the same statement, and the trigger steps aside
  for that statement only (migration 0018).
- `events_default` catches a row no month covers, so an insert never fails; `ensure` creates the
  current month and MONTHS_AHEAD after it (at migrate, and with each retention run), moving any
  rows of that month out of the default partition first.
- Dropping a month (`drop_month`): in one transaction the partition is detached and the rows an
  alert links (alert_events: evidence) are inserted again into events, where no month covers
  them any more, so they land in `events_default` with their seq, id and body. Ingest waits for
  that transaction only (ACCESS EXCLUSIVE on events while detaching). Then the month's other ids
  leave event_ids in batches (a resend after that is stored again, as after a row purge) and the
  detached table is dropped; a month left detached by a stopped collector is finished by the next
  retention run (`leftovers`).

Seals (server/seals.py) keep each day's event digests, so a kept event's Merkle proof still works
after its month is gone, and check_seal counts the dropped ones as purged by retention (a month is
dropped only when it ended before the retention cutoff).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from loguru import logger
from sqlalchemy.engine import Connection, Engine

from server.database import writing

MONTHS_AHEAD = 3
FORGET_BATCH = 50_000
LOCK = "SELECT pg_advisory_xact_lock(hashtext('miwei:partitions'))"
NAME = re.compile(r"^events_p(\d{4})(\d{2})$")
COLUMNS = (
    'seq, id, type, ts, received_at, agent_id, host, "user", path, size, sha256, level, source_path, severity, body,'
    " agent_seq, chain_hash, prev_hash, claimed_host"
)


@dataclass(frozen=True)
class MonthDropped:
    name: str  # events_pYYYYMM
    rows: int  # how many the partition held
    kept: int  # of them, linked to an alert: moved to events_default


def partitioned(conn: Connection) -> bool:
    """Is the events table partitioned here (PostgreSQL after 0017)?"""
    if conn.dialect.name != "postgresql":
        return False
    return conn.exec_driver_sql("SELECT relkind = 'p' FROM pg_class WHERE oid = 'events'::regclass").scalar() is True


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + 1, 1, 1, tzinfo=UTC) if start.month == 12 else datetime(start.year, start.month + 1, 1, tzinfo=UTC)


def name_of(start: datetime) -> str:
    return f"events_p{start.year:04d}{start.month:02d}"


def months(conn: Connection) -> dict[str, datetime]:
    """The attached month partitions: name -> first instant of the month (UTC)."""
    rows = conn.exec_driver_sql("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass")
    found = {}
    for (name,) in rows:
        m = NAME.match(name)
        if m:
            found[name] = datetime(int(m[1]), int(m[2]), 1, tzinfo=UTC)
    return found


def ensure(engine: Engine, now: datetime, ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the current month's partition and the `ahead` next ones where missing; returns the
    names created. Rows of such a month already in events_default move into it."""
    created = []
    with writing(engine) as conn:
        if not partitioned(conn):
            return []
        conn.exec_driver_sql(LOCK)
        have = months(conn)
        start = month_start(now)
        for _ in range(ahead + 1):
            name = name_of(start)
            if name not in have:
                _create(conn, name, start, next_month(start))
                created.append(name)
            start = next_month(start)
    if created:
        logger.info("event partitions created names={}", ",".join(created))
    return created


def _create(conn: Connection, name: str, start: datetime, end: datetime) -> None:
    low, high = start.isoformat(), end.isoformat()
    # a standalone table first: attaching checks that events_default holds none of its rows
    conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS)")
    moved = conn.exec_driver_sql(
        f"WITH moved AS (DELETE FROM events_default WHERE received_at >= '{low}' AND received_at < '{high}' RETURNING {COLUMNS})"
        f" INSERT INTO {name} ({COLUMNS}) SELECT {COLUMNS} FROM moved"
    ).rowcount
    conn.exec_driver_sql(f"ALTER TABLE events ATTACH PARTITION {name} FOR VALUES FROM ('{low}') TO ('{high}')")
    if moved:
        logger.warning("event partition created late name={} rows_moved_from_default={}", name, moved)


def droppable(conn: Connection, cutoff: datetime) -> list[str]:
    """The month partitions that ended at or before `cutoff`, oldest first."""
    return [name for name, start in sorted(months(conn).items(), key=lambda kv: kv[1]) if next_month(start) <= cutoff]


def drop_month(engine: Engine, name: str) -> MonthDropped:
    """Detach one month, keep its alert-linked events in events_default, then forget its ids and
    drop it (`_forget`): ingest waits only for the detach and the copy of the linked rows."""
    if not NAME.match(name):
        raise ValueError(f"not an event month partition: {name!r}")
    linked = "EXISTS (SELECT 1 FROM alert_events a WHERE a.event_id = p.id)"
    with writing(engine) as conn:
        conn.exec_driver_sql(LOCK)
        if name not in months(conn):
            return MonthDropped(name, 0, 0)  # another collector dropped it
        conn.exec_driver_sql(f"ALTER TABLE events DETACH PARTITION {name}")
        # the linked rows go back into events (to events_default: no month covers them now); their
        # ids leave event_ids first, or the trigger would take them for resends
        conn.exec_driver_sql(f"DELETE FROM event_ids e USING {name} p WHERE e.id = p.id AND {linked}")
        kept = conn.exec_driver_sql(f"INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} FROM {name} p WHERE {linked} ORDER BY p.seq").rowcount
    rows = _forget(engine, name) + kept
    logger.info("event month dropped name={} rows={} kept_linked={}", name, rows, kept)
    return MonthDropped(name, rows, kept)


def leftovers(conn: Connection) -> list[str]:
    """Months detached but not dropped yet (a collector stopped in between)."""
    return list(
        conn.exec_driver_sql(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition AND relname ~ '^events_p[0-9]{6}$' ORDER BY relname"
        ).scalars()
    )


def _forget(engine: Engine, name: str) -> int:
    """A detached month's ids leave event_ids in short transactions (FORGET_BATCH each: a resend
    of one of its events meanwhile is refused, as it is past retention anyway), then the table is
    dropped; returns how many ids went."""
    if not NAME.match(name):
        raise ValueError(f"not an event month partition: {name!r}")
    with engine.connect() as conn:
        if conn.exec_driver_sql(f"SELECT to_regclass('{name}')").scalar() is None:
            return 0
        low, high = conn.exec_driver_sql(f"SELECT min(seq), max(seq) FROM {name}").one()
    total = 0
    for start in range(low or 0, (high or -1) + 1, FORGET_BATCH):
        with writing(engine) as conn:
            conn.exec_driver_sql(LOCK)
            if conn.exec_driver_sql(f"SELECT to_regclass('{name}')").scalar() is None:
                return total  # another collector finished it
            total += conn.exec_driver_sql(
                f"DELETE FROM event_ids e USING {name} p WHERE e.id = p.id AND p.seq >= {start} AND p.seq < {start + FORGET_BATCH}"
                " AND NOT EXISTS (SELECT 1 FROM alert_events a WHERE a.event_id = p.id)"
            ).rowcount
    with writing(engine) as conn:
        conn.exec_driver_sql(LOCK)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    return total


def finish(engine: Engine, name: str) -> int:
    """Forget and drop a month a stopped collector left detached; returns how many ids went."""
    gone = _forget(engine, name)
    logger.warning("detached event month finished name={} ids_forgotten={}", name, gone)
    return gone
