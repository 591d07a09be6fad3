"""One SQLite writer at a time across the collector's worker processes, queued in the kernel.

Several workers (server/workers.py) on one SQLite file take turns at its single write lock: every
`writing()` transaction (server/database.py) starts with BEGIN IMMEDIATE. A process that finds the
lock taken waits in SQLite's busy handler, which polls with sleeps growing to 100 ms, while the
holder, which never sleeps, starts its next transaction the moment it commits: measured with two
workers and eight agents, the pair stored half the events one process stored alone. Here an
exclusive flock on a file beside the database is taken before BEGIN IMMEDIATE and given back when
the transaction ends, so a waiting worker sleeps in the kernel and is woken when the lock is free.

Installed on an engine only when several workers share a SQLite file. SQLAlchemy's commit and
rollback events come before the driver's call, so the transaction is ended there and the lock
handed over after it: the next writer never meets SQLite's lock held by a commit in progress. An
error, even in BEGIN IMMEDIATE itself, ends in a rollback, which hands the lock over too.
"""

from __future__ import annotations

import fcntl
import os
import threading

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from server import database
from server.database import WRITE_OPTION

HELD = "miwei_writer_held"


class WriterLock:
    def __init__(self, path: str):
        self.path = path
        self._threads = threading.Lock()  # flock is per open file: the threads of one process queue here
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        self._threads.acquire()
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked worker opens its own
            self._fd, self._pid = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600), os.getpid()
        return self._fd


def install(engine: Engine, path: str) -> WriterLock:
    """Take `WriterLock(path)` around each writing() transaction of `engine`."""
    writer = WriterLock(path)

    def begin(conn: Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION, False) and not conn.info.get(HELD):
            writer.acquire()
            conn.info[HELD] = True

    def end(conn: Connection, finish: str | None = None) -> None:
        if conn.info.pop(HELD, False):
            try:  # SQLAlchemy's event comes before the driver's call: end the transaction here, then
                # hand the lock over (the driver's own commit or rollback after this finds none open)
                if finish is not None:
                    getattr(conn.connection.dbapi_connection, finish)()
            finally:
                writer.release()

    # before the BEGIN IMMEDIATE of server/database.py (listen's insert=True does not order an
    # engine's own listeners): the flock first, then SQLite's lock, in every process
    event.remove(engine, "begin", database._sqlite_begin)
    event.listen(engine, "begin", begin)
    event.listen(engine, "begin", database._sqlite_begin)
    event.listen(engine, "commit", lambda conn: end(conn, "commit"))
    event.listen(engine, "rollback", lambda conn: end(conn, "rollback"))  # also after a failed BEGIN IMMEDIATE
    return writer
