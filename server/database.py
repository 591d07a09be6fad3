"""Engine creation (SQLite in WAL mode by default), write transactions, locks, schema migration.

Several collector processes may share one database. Writes that read before they decide (ingest,
correlation, policy activation, migration) run in `writing()` transactions: on SQLite these start
with BEGIN IMMEDIATE, which takes the database's write lock first, so two processes' transactions
run one after the other; on PostgreSQL they take transaction-scoped advisory locks (`lock()`) on
what they are about to decide, e.g. one correlation rule and group.
"""

from __future__ import annotations

import hashlib
import operator
import os
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Boolean, DateTime, Float, Integer, Table, create_engine, event, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from server.filemodes import create_private_file, sqlite_path

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:"):
        path = sqlite_path(url)
        if path:  # 0600 before SQLite opens it: its WAL and SHM files take the database file's mode
            create_private_file(path)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    event.listen(engine, "connect", _postgres_utc)
    return engine


def _postgres_utc(dbapi_conn, _record) -> None:
    """Every session in UTC, whatever the server's or the database's TimeZone: timestamptz values
    come back in the session's zone, so on a server kept in Beijing time the API's times ended in
    +08:00 where SQLite's (and the API's documented form) end in Z. A SET, not the startup option,
    so a connection pooler that refuses startup options (PgBouncer) passes it too."""
    with dbapi_conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
    dbapi_conn.commit()  # outside the transactions SQLAlchemy starts, so no rollback undoes it


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # sqlite3's own transaction handling starts transactions late (at the first INSERT) and
    # never for SELECT; SQLAlchemy emits BEGIN itself instead (_sqlite_begin), as its SQLite
    # documentation describes, so a transaction's reads and writes are one unit.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # an acknowledged batch survives a power cut
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


WRITE_OPTION = "miwei_write"


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the write lock from its first statement."""
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        yield conn


def lock(conn: Connection, names: list[str] | set[str]) -> None:
    """Serialize decisions about `names` across processes until the transaction ends.

    PostgreSQL: one advisory lock per name, taken in sorted order so that two transactions
    cannot deadlock. SQLite: nothing to do, a `writing()` transaction holds the whole database.
    """
    if conn.dialect.name != "postgresql" or not names:
        return
    keys = [int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True) for name in sorted(set(names))]
    # one round trip for all of them (a batch locks a few dozen alert and correlation groups); the
    # function scan hands the array's elements over in order, so the locks are taken in that order
    conn.exec_driver_sql("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%(keys)s::bigint[]) AS k", {"keys": keys})


def insert_ignore(conn: Connection, table: Table, keys: list[str]):
    """INSERT ... ON CONFLICT (keys) DO NOTHING, for the connection's database."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    return dialect.insert(table).on_conflict_do_nothing(index_elements=keys)


def insert_new(conn: Connection, table: Table, rows: list[dict], key: str) -> list:
    """Insert rows that are not there yet (ON CONFLICT (key) DO NOTHING), in their order; returns
    the keys of those inserted.

    On PostgreSQL the rows travel as one binary array per column through unnest(): SQLAlchemy's
    multi-VALUES form sends one placeholder per value, and psycopg splits that query text in
    Python for every batch (a 500-event batch spent more time there than in the database).
    """
    if not rows:
        return []
    if conn.dialect.name != "postgresql":
        return _insert_new_sqlite(conn, table, rows, key)
    if table.name == "events" and SETWISE_EVENT_IDS:
        return _insert_events_setwise(conn, table, rows, key)
    names = list(rows[0])
    quoted = ", ".join(f'"{n}"' for n in names)
    # %b: binary arrays; in text format psycopg quotes and escapes every element in Python (4x slower)
    arrays = ", ".join(f"%({_param(i)})b::{_pg_array_type(table.c[n].type)}" for i, n in enumerate(names))
    # events (partitioned, 0017): no unique (id) to name; the trigger of server/partitions.py drops repeats
    target = "" if table.name == "events" else f'("{key}") '
    sql = (
        f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM unnest({arrays}) WITH ORDINALITY AS r({quoted}, "ord") '
        f'ORDER BY "ord" ON CONFLICT {target}DO NOTHING RETURNING "{key}"'
    )
    params = {_param(i): [r[n] for r in rows] for i, n in enumerate(names)}
    return [r[0] for r in conn.exec_driver_sql(sql, params)]


# PostgreSQL's events: ingest records a batch's ids in event_ids itself, in the statement that
# inserts the events (_insert_events_setwise), instead of migration 0017's trigger doing it row by
# row. False: the reference, the trigger's way (tests/server/test_event_ids_setwise.py compares).
SETWISE_EVENT_IDS = True
EVENT_IDS_SETTING = "miwei.event_ids"  # migration 0018: the trigger fires unless this says 'taken'


def _insert_events_setwise(conn: Connection, table: Table, rows: list[dict], key: str) -> list:
    """insert_new for PostgreSQL's partitioned events: one statement inserts the batch's ids into
    event_ids (ON CONFLICT DO NOTHING: an id stored before, in any month, or by another collector's
    transaction committed meanwhile, is not returned) and the events whose ids went in, in the
    rows' order; the transaction-local setting tells the trigger (0018) that this statement did its
    work. The trigger's way costs a PL/pgSQL call and an INSERT per row, 4-8 ms of a 500-event
    batch's 15-25; this, one set-wise insert of the ids, some 2-4 ms.

    The same rows stored and the same keys returned as the trigger's way: a key twice in the rows
    is stored as its first row (the trigger saw the rows in order and dropped the later ones).
    The ids go into event_ids sorted, so two collectors storing overlapping batches take their
    index entries in one order and cannot deadlock on them. The events need no ON CONFLICT: their
    only unique key is (seq, received_at), and seq comes from the sequence."""
    first: dict = {}
    for r in rows:
        first.setdefault(r[key], r)
    if len(first) < len(rows):
        rows = list(first.values())
    names = list(rows[0])
    quoted = ", ".join(f'"{n}"' for n in names)
    arrays = ", ".join(f"%({_param(i)})b::{_pg_array_type(table.c[n].type)}" for i, n in enumerate(names))
    # t sets the setting: every row r yields is joined with t's one row, so the setting is made
    # before the first event reaches the trigger, whatever order the plan takes (one round trip less
    # than a statement of its own: under load each cost a millisecond or two)
    sql = (
        f"WITH t AS MATERIALIZED (SELECT set_config('{EVENT_IDS_SETTING}', 'taken', true)), "
        f'r AS (SELECT u.* FROM t, unnest({arrays}) WITH ORDINALITY AS u({quoted}, "ord")), '
        f'i AS (INSERT INTO event_ids (id, received_at) SELECT "{key}", received_at FROM r ORDER BY "{key}" '
        f"ON CONFLICT (id) DO NOTHING RETURNING id) "
        f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM r WHERE "{key}" IN (SELECT id FROM i) ORDER BY "ord" '
        f'RETURNING "{key}"'
    )
    params = {_param(i): [r[n] for r in rows] for i, n in enumerate(names)}
    inserted = [r[0] for r in conn.exec_driver_sql(sql, params)]
    conn.exec_driver_sql(f"SELECT set_config('{EVENT_IDS_SETTING}', '', true)")  # later inserts are the trigger's again
    return inserted


def insert_rows(conn: Connection, table: Table, rows: list[dict], ignore: list[str] | None = None) -> None:
    """Insert rows (all with the same keys) in their order; with `ignore`, ON CONFLICT (ignore) DO
    NOTHING. A serial id follows the rows' order: history and evidence are read back in id order.

    On PostgreSQL one INSERT ... SELECT FROM unnest() of one binary array per column, as insert_new:
    an executemany is one statement per row for the server to run (a 500-event batch's rule hits,
    evidence links and history rows took 4 to 10 ms each that way). Elsewhere SQLAlchemy's
    executemany, as before.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert_ignore(conn, table, ignore) if ignore else insert(table), rows)
        return
    names = list(rows[0])
    _no_python_defaults(table, names)
    quoted = ", ".join(f'"{n}"' for n in names)
    arrays = ", ".join(f"%({_param(i)})b::{_pg_array_type(table.c[n].type)}" for i, n in enumerate(names))
    conflict = (" ON CONFLICT (" + ", ".join(f'"{k}"' for k in ignore) + ") DO NOTHING") if ignore else ""
    sql = f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM unnest({arrays}) WITH ORDINALITY AS r({quoted}, "ord") ORDER BY "ord"{conflict}'
    conn.exec_driver_sql(sql, {_param(i): [r[n] for r in rows] for i, n in enumerate(names)})


def update_rows(conn: Connection, table: Table, rows: list[dict], keys: tuple[str, ...], added: tuple[str, ...] = ()) -> None:
    """PostgreSQL: set each row's other values on the table's row its `keys` name, one UPDATE ...
    FROM unnest() for all of them; a column in `added` gets the value added to what it holds.

    UPDATE ... FROM applies one source row per target row, so rows naming one key twice are sent in
    rounds, each key once a round, in the rows' order: the result is the executemany's. SQLite
    callers keep their executemany (there it is the driver's own loop, cheaper than a statement).
    """
    if not rows:
        return
    names = list(rows[0])
    rounds: list[list[dict]] = []
    seen: dict[tuple, int] = {}
    for r in rows:
        k = tuple(r[n] for n in keys)
        i = seen.get(k, -1) + 1
        seen[k] = i
        if i == len(rounds):
            rounds.append([])
        rounds[i].append(r)
    quoted = ", ".join(f'"{n}"' for n in names)
    arrays = ", ".join(f"%({_param(i)})b::{_pg_array_type(table.c[n].type)}" for i, n in enumerate(names))
    sets = ", ".join(f'"{n}" = t."{n}" + r."{n}"' if n in added else f'"{n}" = r."{n}"' for n in names if n not in keys)
    match = " AND ".join(f't."{k}" = r."{k}"' for k in keys)
    sql = f'UPDATE "{table.name}" AS t SET {sets} FROM unnest({arrays}) AS r({quoted}) WHERE {match}'
    for part in rounds:
        conn.exec_driver_sql(sql, {_param(i): [r[n] for r in part] for i, n in enumerate(names)})


def _no_python_defaults(table: Table, names: list[str]) -> None:
    """insert_rows sends the columns it is given: one left out with a default made in Python
    (SQLAlchemy's, not the database's) would be stored NULL instead."""
    missing = [c.name for c in table.columns if c.name not in names and (c.default is not None or c.onupdate is not None)]
    if missing:
        raise ValueError(f"insert_rows into {table.name}: no value for {', '.join(missing)}, whose default is made in Python")


def _insert_new_sqlite(conn: Connection, table: Table, rows: list[dict], key: str) -> list:
    """SQLite: which keys are there already (one SELECT per 500), then one executemany of the new
    rows, the driver's own loop, as the bare benchmark inserts them: the multi-VALUES INSERT ...
    RETURNING cost twice the database's time in SQLAlchemy's parameter handling. Called inside
    writing() (BEGIN IMMEDIATE: no other connection inserts between the two); ON CONFLICT DO
    NOTHING stays, so a caller outside one still stores each key once."""
    column = table.c[key]
    keys = list(dict.fromkeys(r[key] for r in rows))
    present: set = set()
    plain = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect) is None
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        if plain:  # the driver's own placeholders: SQLAlchemy's expanding IN costs a millisecond a batch
            sql = f'SELECT "{key}" FROM "{table.name}" WHERE "{key}" IN ({", ".join(["?"] * len(chunk))})'
            present.update(r[0] for r in conn.exec_driver_sql(sql, tuple(chunk)))
        else:
            present.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
    new, seen = [], set(present)
    for r in rows:
        if r[key] not in seen:
            seen.add(r[key])
            new.append(r)
    if not new:
        return []
    names = list(new[0])
    processors = [table.c[n].type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for n in names]
    quoted = ", ".join(f'"{n}"' for n in names)
    marks = ", ".join(["?"] * len(names))
    sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks}) ON CONFLICT ("{key}") DO NOTHING'
    conn.exec_driver_sql(sql, _bound(new, names, processors))
    return [r[key] for r in new]


def _bound(rows: list[dict], names: list[str], processors: list) -> list[tuple]:
    """The rows as the driver takes them: values in column order (itemgetter, in C), each through
    its column's bind processor where there is one (a datetime's text), once per value object: a
    batch's received_at is one object for all its rows (keyed by identity: equal datetimes in two
    zones are written differently; the rows keep every object alive meanwhile)."""
    get = operator.itemgetter(*names)
    if len(names) > 1 and all(p is None for p in processors):
        return [get(r) for r in rows]
    values = [list(row) for row in map(get, rows)] if len(names) > 1 else [[r[names[0]]] for r in rows]
    for i, process in enumerate(processors):
        if process is None:
            continue
        done: dict[int, object] = {}
        for row in values:
            v = row[i]
            if v is not None:
                key = id(v)
                if key not in done:
                    done[key] = process(v)
                row[i] = done[key]
    return [tuple(row) for row in values]


def _param(i: int) -> str:
    return f"c{i}"


def _pg_array_type(column_type) -> str:
    """The PostgreSQL array type a column's values travel in (text for every string type)."""
    if isinstance(column_type, DateTime):
        return "timestamptz[]" if column_type.timezone else "timestamp[]"
    if isinstance(column_type, Integer):  # BigInteger and SmallInteger are Integers
        return "bigint[]"
    if isinstance(column_type, Boolean):
        return "boolean[]"
    if isinstance(column_type, Float):
        return "double precision[]"
    return "text[]"


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS)
    return cfg


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (revision before, revision after)."""
    cfg = _alembic_config()
    with writing(engine) as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
