"""event partitions: on PostgreSQL the events table is partitioned by month of received_at

PostgreSQL only (SQLite keeps its one events table). Why and how: server/partitions.py.

- `events` becomes `PARTITION BY RANGE (received_at)`: one partition `events_pYYYYMM` per
  calendar month (UTC) from the oldest stored event to MONTHS_AHEAD months past now, and
  `events_default` for anything no month covers (alert evidence kept from dropped months, or an
  insert in a month nobody created), so an insert never fails. Columns, their order, the seq
  sequence and every seq value stay; the primary key becomes (seq, received_at) (a unique index
  on a partitioned table must hold the partition key) and `events.id` an ordinary index.
- `event_ids(id PK, received_at)`: the events' ids, the dedup `UNIQUE (id)` could no longer give.
  A BEFORE INSERT trigger on events (`miwei_event_once`) records the id there and drops the row
  when it was there already, so a resend in a later month is still stored once.

The existing rows are copied in seq batches of BATCH in the migration's transaction, indexes built
after the copy. Downgrade copies them back into one plain table (the ids are unique: event_ids).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from datetime import UTC, datetime

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

MONTHS_AHEAD = 3  # as server/partitions.py
BATCH = 100_000
INDEXES = [  # name, columns: the events indexes of 0001, 0004 and 0006 (server/console/tables.py)
    ("events_type_seq", "(type, seq)"),
    ("events_agent_seq", "(agent_id, seq)"),
    ("events_agent_chain", "(agent_id, agent_seq)"),
    ("events_user_ts", '("user", ts)'),
    ("events_type_ts", "(type, ts)"),
]
TRIGGER_FUNCTION = """
CREATE FUNCTION miwei_event_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_ids (id, received_at) VALUES (NEW.id, NEW.received_at) ON CONFLICT (id) DO NOTHING;
    IF FOUND THEN
        RETURN NEW;
    END IF;
    RETURN NULL;  -- stored before (a resend, perhaps in an earlier month): not again
END
$$
"""


def _months(first: datetime, last: datetime) -> list[tuple[int, int]]:
    y, m = first.year, first.month
    out = []
    while (y, m) <= (last.year, last.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _bound(y: int, m: int) -> str:
    return f"{y:04d}-{m:02d}-01 00:00:00+00"


def _next(y: int, m: int) -> tuple[int, int]:
    return (y + 1, 1) if m == 12 else (y, m + 1)


def _copy(run, source: str, target: str) -> None:
    """Every row of `source` into `target`, BATCH seqs at a time (one statement per batch)."""
    low, high = run(f"SELECT min(seq), max(seq) FROM {source}").one()
    if low is not None:
        for start in range(low, high + 1, BATCH):
            run(f"INSERT INTO {target} SELECT * FROM {source} WHERE seq >= {start} AND seq < {start + BATCH}")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    run = bind.exec_driver_sql
    run("ALTER TABLE events RENAME TO events_old")
    run("ALTER INDEX events_pkey RENAME TO events_old_pkey")
    run("ALTER INDEX events_id_key RENAME TO events_old_id_key")
    for name, _ in INDEXES:
        run(f"ALTER INDEX {name} RENAME TO {name}_old")
    run("CREATE TABLE events (LIKE events_old INCLUDING DEFAULTS) PARTITION BY RANGE (received_at)")
    run("ALTER SEQUENCE events_seq_seq OWNED BY events.seq")  # before events_old goes: it would take the sequence along
    now = datetime.now(UTC)
    oldest = run("SELECT min(received_at) FROM events_old").scalar()
    first = min(oldest.astimezone(UTC), now) if oldest is not None else now
    y, m = now.year, now.month
    for _ in range(MONTHS_AHEAD):
        y, m = _next(y, m)
    for y0, m0 in _months(first, datetime(y, m, 1, tzinfo=UTC)):
        y1, m1 = _next(y0, m0)
        run(f"CREATE TABLE events_p{y0:04d}{m0:02d} PARTITION OF events FOR VALUES FROM ('{_bound(y0, m0)}') TO ('{_bound(y1, m1)}')")
    run("CREATE TABLE events_default PARTITION OF events DEFAULT")
    run("CREATE TABLE event_ids (id varchar(36) NOT NULL, received_at timestamptz NOT NULL, CONSTRAINT event_ids_pkey PRIMARY KEY (id))")
    run("INSERT INTO event_ids (id, received_at) SELECT id, received_at FROM events_old")
    _copy(run, "events_old", "events")
    run("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (seq, received_at)")
    run("CREATE INDEX events_id ON events (id)")
    for name, columns in INDEXES:
        run(f"CREATE INDEX {name} ON events {columns}")
    run("DROP TABLE events_old")
    run(TRIGGER_FUNCTION)
    run("CREATE TRIGGER events_once BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION miwei_event_once()")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    run = bind.exec_driver_sql
    run("CREATE TABLE events_plain (LIKE events INCLUDING DEFAULTS)")
    run("ALTER SEQUENCE events_seq_seq OWNED BY events_plain.seq")
    _copy(run, "events", "events_plain")
    run("DROP TABLE events")  # its partitions, indexes and trigger with it
    run("DROP FUNCTION miwei_event_once()")
    run("DROP TABLE event_ids")
    run("ALTER TABLE events_plain RENAME TO events")
    run("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (seq)")
    run("ALTER TABLE events ADD CONSTRAINT events_id_key UNIQUE (id)")
    for name, columns in INDEXES:
        run(f"CREATE INDEX {name} ON events {columns}")
