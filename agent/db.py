"""SQLite connections for the agent's state files: WAL, fsync on commit, one per thread."""

from __future__ import annotations

import os
import sqlite3
import threading


class StateDB:
    """A SQLite file in state_dir shared by the agent's threads, each with its own connection."""

    def __init__(self, path: str, schema: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.conn().executescript(schema)

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
