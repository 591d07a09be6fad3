"""Copy a SQLite collector database into PostgreSQL (`miwei-server copy-database`), so a firm that
outgrows SQLite keeps its agents' enrolments, chains, alerts, seals and users instead of starting
again (docs/database.md, "Moving from SQLite to PostgreSQL").

- The source is only read. It must be at this version's Alembic head (the tool refuses
  otherwise: `miwei-server migrate` first), and it is held still for the whole copy: the SQLite
  write lock (BEGIN IMMEDIATE, after the workers' flock of server/writerlock.py where one exists),
  so the copy is one consistent snapshot and a collector left running cannot add to it unseen.
- The target is migrated to head, then everything else happens in ONE transaction: every table
  is locked, checked empty (the default group migration 0013 seeds is replaced), filled and
  verified. Any failure, or a verification that does not hold, rolls it back: the target is left
  migrated and empty, and the same command can simply be run again.
- Every table of the MetaData, parents before children, streamed in COPY (bounded memory: rows
  are read in BATCH_ROWS and written as they come), every id kept. Events go through the
  partitioned table, so they land in their months (created first, from the oldest event on) and
  the dedup trigger records their ids in event_ids (server/partitions.py).
- Sequences are set past the highest id copied, so new rows get fresh ids.
- Verified before the commit, apart from the copy's own bookkeeping: both databases read again,
  per table the number of rows and an order-independent digest of their values; event_ids holds
  every event; every seal still checks (server/seals.py,
  as `miwei-server seal --check` does), or fails exactly as it already did in the source.

Errors are reported by class and PostgreSQL's primary message only: a failed COPY's context
names the row's values (password hashes, channel secrets), and URLs are shown without password.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import DateTime, Table, create_engine, func, select
from sqlalchemy.engine import Connection, Engine, make_url

import server.console.tables  # noqa: F401 - console_sessions on the one MetaData
from server import partitions
from server.database import WRITE_OPTION, current_revision, head_revision, make_engine, migrate
from server.filemodes import sqlite_path
from server.schema import metadata
from server.schema import seals as seals_table
from server.times import aware

BATCH_ROWS = 5_000
PROGRESS_ROWS = 100_000
SEAL_PAGE = 500
LOCK_WAIT_MS = 5_000
DIGEST_MOD = 1 << 128
# rows a freshly migrated database already holds, by table: the condition of any OTHER row
SEEDED = {"agent_groups": "id <> 1"}  # the default group (migration 0013)

Progress = Callable[[str], None]


class CopyRefused(Exception):
    """A precondition does not hold; nothing was written to the target's data."""


class CopyFailed(Exception):
    """The copy or its verification failed; the target's transaction was rolled back."""


@dataclass(frozen=True)
class TableCopied:
    name: str
    rows: int


@dataclass(frozen=True)
class CopyReport:
    tables: tuple[TableCopied, ...]
    months_created: tuple[str, ...]
    sequences: tuple[tuple[str, int], ...]  # sequence, the next value it hands out
    seals_checked: int
    seals_failing_in_source: tuple[str, ...]  # agent/day of seals that failed before the copy too


def safe_url(url: str) -> str:
    """A database URL as it may be shown: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unreadable database URL>"


def describe(exc: BaseException) -> str:
    """One line about a failure, without the rows or parameters a database error may carry."""
    orig = getattr(exc, "orig", None) or exc
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        return f"{type(orig).__name__}: {primary}"
    if orig is not exc or hasattr(exc, "statement"):  # a SQLAlchemy error: its text holds the statement
        return f"{type(orig).__name__}: {str(orig).splitlines()[0] if str(orig) else ''}"
    return f"{type(exc).__name__}: {exc}"


def copy_database(
    source_url: str,
    target_url: str,
    *,
    public_key: Ed25519PublicKey | None,
    now: datetime,
    retention_days: int,
    replace_target: bool = False,
    check_seals: bool = True,
    progress: Progress = lambda _: None,
    lock_wait_ms: int = LOCK_WAIT_MS,
) -> CopyReport:
    """Copy every row of the SQLite `source_url` into the PostgreSQL `target_url` (see the module's
    docstring); `public_key` checks the seals (None: seals are not checked)."""
    try:  # the URL's own text never goes into the message: it may hold the password
        url = make_url(target_url)
        is_psycopg = url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg"
    except Exception as exc:
        raise CopyRefused(
            f"the target URL cannot be read ({type(exc).__name__}): postgresql+psycopg://user@host/db"
        ) from None
    if not is_psycopg:
        raise CopyRefused("the target must be a PostgreSQL database through psycopg: postgresql+psycopg://user@host/db")
    path = sqlite_path(source_url) if source_url.startswith("sqlite:") else None
    if not path:
        raise CopyRefused("the source must be a SQLite database file (sqlite:///path/miwei.db)")
    if not os.path.isfile(path):
        raise CopyRefused(f"there is no database file at {path}")
    source = make_engine(source_url)
    target = create_engine(url, hide_parameters=True, pool_size=2)
    try:
        try:
            _refuse_behind(source)
            with _source_held(source, path, lock_wait_ms) as src:
                _refuse_foreign(target)
                before, _ = migrate(target)
                if before is not None and before != head_revision():
                    progress(f"target schema brought from revision {before} to {head_revision()}")
                months = _months_for(src, target, now)
                with target.begin() as dst:  # one transaction: all of it, or none
                    tables, sequences, checked, old = _fill_and_verify(
                        src, dst, public_key, now, retention_days, replace_target, check_seals, progress
                    )
        except (CopyRefused, CopyFailed):
            raise
        except Exception as exc:  # the databases' own errors, told without the rows they may quote
            raise CopyFailed(describe(exc)) from exc
        try:  # the planner's statistics now, not at autovacuum's leisure; the copy is committed either way
            with target.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        except Exception as exc:
            progress(f"warning: ANALYZE failed ({describe(exc)}); autovacuum will gather the statistics later")
        return CopyReport(tables, tuple(months), sequences, checked, old)
    finally:
        source.dispose()
        target.dispose()


def _refuse_behind(source: Engine) -> None:
    """The source must be at this version's schema: its tables are read by today's MetaData."""
    head, found = head_revision(), current_revision(source)
    if found != head:
        raise CopyRefused(
            f"the source database is at schema revision {found or 'none (not a MiWei database?)'}, this miwei-server's is {head}:"
            " run `miwei-server migrate` with the old configuration first (the collector stopped)"
        )


def _refuse_foreign(target: Engine) -> None:
    """A database that holds tables but no Alembic revision is someone else's: not migrated into."""
    with target.connect() as conn:
        names = set(
            conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").scalars()
        )
    if names and "alembic_version" not in names:
        shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
        raise CopyRefused(f"the target database holds tables that are not MiWei's ({shown}): give an empty database")


@contextmanager
def _source_held(source: Engine, path: str, lock_wait_ms: int) -> Iterator[Connection]:
    """The source, still for as long as the copy reads it: the workers' flock where they ever ran
    (taken without waiting: held means a collector is writing now), then SQLite's write lock."""
    lock_path = path + "-writer"
    fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC) if os.path.exists(lock_path) else None
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CopyRefused(
                    "a collector is writing the source database: stop it first (systemctl stop miwei-server)"
                ) from None
        try:
            with source.connect() as src:
                src.exec_driver_sql(f"PRAGMA busy_timeout={int(lock_wait_ms)}")  # a collector's transaction is short
                src.commit()
                # BEGIN IMMEDIATE (server/database.py); only read, so its commit writes nothing
                with src.execution_options(**{WRITE_OPTION: True}).begin():
                    yield src
        except Exception as exc:
            if "database is locked" in str(getattr(exc, "orig", exc)):
                raise CopyRefused(
                    "the source database is locked by another process: stop the collector first"
                ) from None
            raise
    finally:
        if fd is not None:
            os.close(fd)  # closing the file gives the flock back


def _months_for(src: Connection, target: Engine, now: datetime) -> list[str]:
    """The event months from the oldest copied event to MONTHS_AHEAD after now (or after the
    newest event, should the old collector's clock have run ahead), created before the copy."""
    oldest, newest = src.execute(
        select(func.min(metadata.tables["events"].c.received_at), func.max(metadata.tables["events"].c.received_at))
    ).one()
    if oldest is None:
        return partitions.ensure(target, now)
    first, last = partitions.month_start(aware(oldest)), partitions.month_start(max(aware(newest), now))
    span = (last.year - first.year) * 12 + last.month - first.month
    return partitions.ensure(target, first, ahead=span + partitions.MONTHS_AHEAD)


def _fill_and_verify(src, dst, public_key, now, retention_days, replace_target, check_seals, progress):
    tables = metadata.sorted_tables  # parents before children (foreign keys)
    names = [t.name for t in tables] + ["event_ids"]
    dst.exec_driver_sql(
        f"LOCK TABLE {', '.join(_q(n) for n in names)} IN ACCESS EXCLUSIVE MODE"
    )  # a collector started meanwhile waits
    held = _data_in(dst, tables)
    if held and not replace_target:
        raise CopyRefused(
            f"the target database already holds data ({', '.join(held)}): MiWei never mixes two databases."
            " Give an empty database, or --replace-target to delete everything it holds first"
        )
    dst.exec_driver_sql(f"TRUNCATE {', '.join(_q(n) for n in names)}")
    for table in tables:
        _copy_table(src, dst, table, progress)
    sequences = _reset_sequences(dst, tables)
    verified = _verify(src, dst, tables, progress)
    checked, old = (
        _check_seals(src, dst, public_key, now, retention_days, progress)
        if check_seals and public_key is not None
        else (0, ())
    )
    return verified, tuple(sequences), checked, old


def _verify(src: Connection, dst: Connection, tables: list[Table], progress: Progress) -> tuple[TableCopied, ...]:
    """Both databases read again, table by table, apart from the copy's own bookkeeping: the same
    number of rows with the same values, and event_ids holding every event's id."""
    verified = []
    for table in tables:
        rows, digest = _digest(_rows(src, table))
        got_rows, got_digest = _digest(_rows(dst, table))
        if (got_rows, got_digest) != (rows, digest):
            same = " with different values" if got_rows == rows else ""
            raise CopyFailed(f"table {table.name}: {rows} rows read from the source, {got_rows} in the target{same}")
        verified.append(TableCopied(table.name, rows))
    ids = dst.exec_driver_sql("SELECT count(*) FROM event_ids").scalar()
    events = next(t.rows for t in verified if t.name == "events")
    if ids != events:
        raise CopyFailed(f"event_ids holds {ids} ids for {events} events: resends would not be recognised")
    progress(f"verified: {len(verified)} tables, {sum(t.rows for t in verified):,} rows, same values")
    return tuple(verified)


def _data_in(dst: Connection, tables: list[Table]) -> list[str]:
    held = []
    for table in tables:
        where = f" WHERE {SEEDED[table.name]}" if table.name in SEEDED else ""
        if dst.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {_q(table.name)}{where})").scalar():
            held.append(table.name)
    return held


def _copy_table(src: Connection, dst: Connection, table: Table, progress: Progress) -> None:
    """Stream one table into the target by COPY, as it is read."""
    columns = ", ".join(_q(c.name) for c in table.columns)
    rows = 0
    try:
        with dst.connection.dbapi_connection.cursor() as cursor:
            with cursor.copy(f"COPY {_q(table.name)} ({columns}) FROM STDIN") as copy:
                for row in _rows(src, table):
                    copy.write_row(row)
                    rows += 1
                    if rows % PROGRESS_ROWS == 0:
                        progress(f"{table.name}: {rows:,} rows")
    except Exception as exc:  # which table: PostgreSQL's primary message does not say (its context would quote the row)
        raise CopyFailed(f"copying table {table.name}: {describe(exc)}") from exc
    progress(f"{table.name}: {rows:,} rows copied")


def _rows(conn: Connection, table: Table) -> Iterator[tuple]:
    """A table's rows, BATCH_ROWS at a time (a server-side cursor on PostgreSQL), times as aware UTC."""
    zoned = [i for i, c in enumerate(table.columns) if isinstance(c.type, DateTime)]
    result = conn.execute(select(*table.columns), execution_options={"yield_per": BATCH_ROWS})
    for part in result.partitions():
        for row in part:
            if zoned:
                row = list(row)
                for i in zoned:
                    if row[i] is not None:
                        row[i] = aware(row[i]).astimezone(UTC)
            yield tuple(row)


def _digest(rows: Iterator[tuple]) -> tuple[int, int]:
    count = digest = 0
    for row in rows:
        digest = (digest + _row_digest(row)) % DIGEST_MOD
        count += 1
    return count, digest


def _row_digest(row: tuple) -> int:
    """A row's values as a number; summed, they make a digest no row order changes (SQLite and
    PostgreSQL sort text differently)."""
    text = "\x1f".join(v.isoformat() if isinstance(v, datetime) else repr(v) for v in row)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16], "big")


def _reset_sequences(dst: Connection, tables: list[Table]) -> list[tuple[str, int]]:
    """Every sequence that feeds a column of these tables (serial or identity), set to hand out the
    highest id copied plus one, as SQLite's rowids do (the schema has no AUTOINCREMENT)."""
    owned = dst.exec_driver_sql(
        "SELECT s.relname, t.relname, a.attname FROM pg_class s"
        " JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass"
        " JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid"
        " WHERE s.relkind = 'S' AND d.deptype IN ('a', 'i') ORDER BY s.relname"
    ).all()
    names = {t.name for t in tables}
    done = []
    for sequence, table, column in owned:
        if table not in names:
            continue
        highest = dst.exec_driver_sql(f"SELECT max({_q(column)}) FROM {_q(table)}").scalar() or 0
        following = highest + 1
        dst.exec_driver_sql(f"SELECT setval('{_q(sequence)}', {following}, false)")
        done.append((sequence, following))
    return done


def _check_seals(src, dst, public_key, now, retention_days, progress) -> tuple[int, tuple[str, ...]]:
    """Every seal checked in the target as `seal --check` does, SEAL_PAGE at a time. One that fails
    must fail the same way in the source: tampering the copy did not cause is reported, not held
    against it."""
    from server.seals import check_seal

    checked, old, after = 0, [], -1
    query = select(seals_table).order_by(seals_table.c.id).limit(SEAL_PAGE)
    while page := dst.execute(query.where(seals_table.c.id > after)).mappings().all():
        after = page[-1]["id"]
        for row in page:
            verdict = check_seal(dst, row, public_key, now, retention_days)
            checked += 1
            if verdict.ok:
                continue
            if check_seal(src, row, public_key, now, retention_days).problems != verdict.problems:
                raise CopyFailed(
                    f"the seal of agent {row['agent_id']} for {row['day']} no longer checks: {'; '.join(verdict.problems)}"
                )
            old.append(f"{row['agent_id']}/{row['day']}")
    progress(f"seals: {checked} checked")
    return checked, tuple(old)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
