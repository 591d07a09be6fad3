"""Events waiting to be spooled, in order, with the egress marks that go with them.

An entry leaves the outbox only once the spool stored it: a failed write raises and the caller
tries again later. After `attempts` failed writes the entries are tried one by one, so one event
that can never be stored cannot hold back the others: it is dropped, logged and counted in an
agent.error. A spool that cannot store anything (disk full, database locked) drops nothing.
Only the pipeline's thread uses an outbox.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable

from loguru import logger

from agent.paths import is_under
from agent.spool import FileMark, Spool, placed_by_inode
from rules.events import Event

FLUSH_EVERY = 256  # entries per spool transaction at most
FLUSH_ATTEMPTS = 3  # failed writes before the entries are tried one by one
GATHER_S = 0.2  # while more work is pending, entries wait at most this long for others to share their commit


class Outbox:
    def __init__(
        self,
        spool: Spool,
        stamp: Callable[[Event], Event],
        make_event: Callable[..., Event],
        chunk: int = FLUSH_EVERY,
        attempts: int = FLUSH_ATTEMPTS,
    ):
        self.spool = spool
        self.stamp = stamp  # the rules in force, applied just before an event is stored
        self.make_event = make_event
        self.chunk, self.attempts = chunk, attempts
        self._entries: list[tuple[Event | None, FileMark | None]] = []  # no event: only a mark to keep
        self._failures = 0  # consecutive failed writes
        self._oldest_at = 0.0  # time.monotonic() when the oldest entry waiting was added

    def __len__(self) -> int:
        return len(self._entries)

    def events_waiting(self) -> int:
        return sum(1 for event, _ in self._entries if event is not None)

    def add(self, event: Event | None, mark: FileMark | None = None) -> None:
        if not self._entries:
            self._oldest_at = time.monotonic()
        self._entries.append((event, mark))

    def flush_when_due(self, busy: bool) -> None:
        """Store the entries now, unless more work is pending (`busy`: a burst) and they are few
        and young: then they wait up to GATHER_S to share one commit (an fsync) with the next
        ones. A lone event, or the last of a burst, is stored at once."""
        if self._entries and (not busy or len(self._entries) >= self.chunk or time.monotonic() - self._oldest_at >= GATHER_S):
            self.flush()

    def rename_marks(self, src: str, dest: str, held: tuple[int | None, int | None] | None = None, folder: bool = False) -> None:
        """A file or folder was renamed: marks not stored yet follow it, like the stored ones
        (`held`, for a file: the inodes its two names hold now; `folder`: only the marks under it
        move; see Spool.move_reported)."""
        for i, (event, mark) in enumerate(self._entries):
            if mark is None or (folder and mark.path == src.rstrip("/")):
                continue
            if held is not None:
                if mark.path not in (src, dest):
                    continue
                at_src, at_dest = (mark, None) if mark.path == src else (None, mark)
                placed = placed_by_inode(src, dest, at_src, at_dest, *held, inode=lambda m: m.inode)
                path = next(iter(placed), None)
                if path != mark.path:  # nowhere: a rename replaced the file it marks; its event still goes
                    self._entries[i] = (event, None if path is None else dataclasses.replace(mark, path=path))
            elif is_under(mark.path, src):
                moved = FileMark(dest + mark.path[len(src) :], mark.size, mark.mtime_ns, mark.inode, mark.ctime_ns, mark.sha256)
                self._entries[i] = (event, moved)

    def flush(self) -> None:
        """Store everything; raises when the spool fails (the entries stay)."""
        while self._entries:
            chunk = self._entries[: self.chunk]
            try:
                self._put(chunk)
            except Exception:
                self._failures += 1
                if self._failures < self.attempts:
                    raise
                self._put_one_by_one(len(chunk))
                continue
            del self._entries[: len(chunk)]
            self._oldest_at = time.monotonic()
            self._failures = 0

    def _put(self, entries: list[tuple[Event | None, FileMark | None]]) -> None:
        self.spool.put([self.stamp(e) for e, _ in entries if e is not None], [m for _, m in entries if m is not None])

    def _put_one_by_one(self, count: int) -> None:
        dropped = 0
        try:
            for _ in range(count):
                entry = self._entries[0]
                try:
                    self._put([entry])
                except sqlite3.OperationalError:
                    raise  # the spool itself fails: keep everything and try again later
                except Exception as exc:
                    event = entry[0]
                    dropped += event is not None
                    logger.error(
                        "event cannot be stored; dropped type={!r} id={!r} error={!r}",
                        event.type if event else None, event.id if event else None, str(exc),
                    )
                del self._entries[0]
                self._failures = 0
        finally:
            if dropped:
                error = f"{dropped} events could not be stored and were dropped; see the agent log"
                self.add(self.make_event("agent.error", error=error, details={"dropped_events": dropped}))
