"""The durable spool: events are committed here (fsync) before anything tries to send them.

The same file records which egress files have been reported, in the same transaction as their
events, so a crash can neither lose an event nor make a rescan report a file twice.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from agent.db import StateDB
from rules.events import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dead (      -- events the server refused as invalid; kept, never dropped
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reported (  -- egress files already reported, by path and identity
    path BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class FileMark:
    """A reported egress file: reporting it again is pointless while these stay the same."""

    path: str
    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True)
class SpooledEvent:
    seq: int
    id: str
    body: str  # the event as JSON, ready to send


class Spool:
    def __init__(self, path: str):
        self.db = StateDB(path, SCHEMA)
        self._arrived = threading.Condition()

    def close(self) -> None:
        self.db.close()

    def put(self, events: Iterable[Event], marks: Iterable[FileMark] = ()) -> None:
        """Commit events (and the files they report) durably; returns after fsync."""
        rows = [(e.id, json.dumps(e.to_dict(), ensure_ascii=False, separators=(",", ":")), time.time()) for e in events]
        marks = list(marks)
        if not rows and not marks:
            return
        with self.db.transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO spool (id, body, created_at) VALUES (?, ?, ?)", rows)
            conn.executemany(
                "INSERT OR REPLACE INTO reported (path, size, mtime_ns, inode) VALUES (?, ?, ?, ?)",
                [(os.fsencode(m.path), m.size, m.mtime_ns, m.inode) for m in marks],
            )
        self.wake()

    def wake(self) -> None:
        """Wake whoever waits for events (used to stop the reporter promptly)."""
        with self._arrived:
            self._arrived.notify_all()

    def wait(self, timeout_s: float) -> None:
        """Sleep until events arrive or the timeout passes."""
        with self._arrived:
            self._arrived.wait(timeout_s)

    def peek(self, limit: int, max_bytes: int = 4 * 1024 * 1024) -> list[SpooledEvent]:
        """The oldest events, at most `limit` of them and about `max_bytes` in all."""
        batch, total = [], 0
        for seq, event_id, body in self.db.conn().execute(
            "SELECT seq, id, body FROM spool ORDER BY seq LIMIT ?", (limit,)
        ):
            if batch and total + len(body) > max_bytes:
                break
            batch.append(SpooledEvent(seq, event_id, body))
            total += len(body)
        return batch

    def ack(self, batch: list[SpooledEvent]) -> None:
        """Forget events the server has stored."""
        with self.db.transaction() as conn:
            conn.executemany("DELETE FROM spool WHERE seq = ?", [(e.seq,) for e in batch])

    def quarantine(self, batch: list[SpooledEvent], reason: str) -> None:
        """Move events the server refuses as invalid out of the way, keeping them for inspection."""
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO dead (id, body, reason, at) VALUES (?, ?, ?, ?)",
                [(e.id, e.body, reason[:2000], time.time()) for e in batch],
            )
            conn.executemany("DELETE FROM spool WHERE seq = ?", [(e.seq,) for e in batch])

    def depth(self) -> int:
        return self.db.conn().execute("SELECT count(*) FROM spool").fetchone()[0]

    def dead_count(self) -> int:
        return self.db.conn().execute("SELECT count(*) FROM dead").fetchone()[0]

    def is_reported(self, path: str, size: int, mtime_ns: int, inode: int) -> bool:
        row = self.db.conn().execute(
            "SELECT size, mtime_ns, inode FROM reported WHERE path = ?", (os.fsencode(path),)
        ).fetchone()
        return row == (size, mtime_ns, inode)

    def forget_reported(self, folder: str) -> None:
        """Forget reported files under a folder (media unmounted: a new mount is a new occasion)."""
        raw = os.fsencode(folder.rstrip("/")) + b"/"
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM reported WHERE substr(path, 1, ?) = ?", (len(raw), raw))

    def get_state(self, key: str) -> str | None:
        row = self.db.conn().execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))
