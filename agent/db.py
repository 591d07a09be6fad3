"""SQLite connections for the agent's state files: WAL, fsync on commit, one per thread.

The state files hold classified paths, their hashes and spooled events: only the agent's user
may read them. The folder is made 0700 and every database file (with its -wal and -shm) 0600
when it is opened, also when an older version left them readable.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from loguru import logger

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_INT64 = range(-(2**63), 2**63)
_BIG = "int:"  # the text of an integer past SQLite's 64 bits: not a number SQLite would take for one


def stored_int(value: int | None) -> int | str | None:
    """A file's time in ns or inode number as a column can keep it. SQLite's integers are signed
    64-bit; a time past 2262 (ext4 keeps times to 2446, and `touch -d 2400-01-01` sets one) or an
    inode number with its top bit set (a FUSE file system may use every bit) is not, and binding
    it raised OverflowError: a report's mark, and with it the copy's event, was dropped, and an
    index refresh failed whole, blind to every classified file. Such a value is kept as its text
    after "int:" (in a column of INTEGER affinity, text that is no number stays text), exactly;
    loaded_int gives it back."""
    if value is None or value in _INT64:
        return value
    return f"{_BIG}{value}"


def loaded_int(value: int | str | None) -> int | None:
    """What stored_int was given (any other value as it is)."""
    if type(value) is str and value.startswith(_BIG):
        return int(value[len(_BIG) :])
    return value


class StateDB:
    """A SQLite file in state_dir shared by the agent's threads, each with its own connection."""

    def __init__(self, path: str, schema: str, migrations: tuple[str, ...] = ()):
        """`migrations`: `table.column TYPE` entries added to tables an older version created."""
        self.path = path
        _make_private(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        conn = self.conn()
        conn.executescript(schema)
        for migration in migrations:
            _add_column(conn, migration)

    def transaction(self) -> _Tx:
        """`with db.transaction() as conn:` runs the block in one transaction."""
        return _Tx(self.conn())

    def conn(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode (for reads and single statements)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a committed event survives power loss
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class _Tx:
    """One write transaction (BEGIN IMMEDIATE), rolled back when the block raises."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _make_private(path: str) -> None:
    """Folder 0700, database files 0600, before SQLite opens them (its -wal and -shm files take
    the database file's mode)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=FOLDER_MODE, exist_ok=True)
    _chmod(folder, FOLDER_MODE)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE))
    for name in (path, path + "-wal", path + "-shm", path + "-journal"):
        if os.path.exists(name):
            _chmod(name, FILE_MODE)


def _chmod(path: str, mode: int) -> None:
    try:
        if os.stat(path).st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except OSError as exc:  # not ours (another user running `status`): say so, do not fail
        logger.warning("cannot make state private path={!r} mode={:o} error={!r}", path, mode, exc.strerror)


def _add_column(conn: sqlite3.Connection, migration: str) -> None:
    """Add `table.column TYPE` when the table lacks the column (a state file of an older version)."""
    target, _, column_type = migration.partition(" ")
    table, _, column = target.partition(".")
    if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {column_type}")
