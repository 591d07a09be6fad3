"""The durable spool: events are committed here (fsync) before anything tries to send them.

The same file records which egress files have been reported, in the same transaction as their
events, so a crash can neither lose an event nor make a rescan report a file twice.

Each event joins the agent's event chain as it is stored, in the same transaction: it gets the
next `seq` (1, 2, 3, ...; the last one is kept in the state table, so a restart continues) and
`prev_hash`, the chain digest (rules.events.chain_digest) of the event before it. The collector
checks the chain, so an event deleted or rewritten here before it was sent shows as a gap or a
break. The reporter sends in seq order.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from loguru import logger

from agent.db import StateDB
from agent.paths import without_surrogates
from rules.events import Event, chain_digest, normal_ts

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    chain_seq INTEGER,                 -- the event's seq in the chain (NULL: spooled by an older agent)
    gap_from INTEGER                   -- agent.gap: the first seq it explains
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
    inode INTEGER NOT NULL,
    ctime_ns INTEGER,                  -- NULL in marks written before it was kept
    sha256 TEXT                        -- NULL when the file could not be read
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
MIGRATIONS = (  # spool.db of an older agent
    "reported.ctime_ns INTEGER",
    "reported.sha256 TEXT",
    "spool.chain_seq INTEGER",
    "spool.gap_from INTEGER",
)
CHAIN_SEQ, CHAIN_HASH = "chain_seq", "chain_hash"  # state keys: the last event of the chain


@dataclass(frozen=True)
class FileMark:
    """A reported egress file: reporting it again is pointless while these stay the same."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int | None = None  # None only in marks an older agent wrote
    sha256: str | None = None  # what was reported; None when the file could not be read

    @classmethod
    def of(cls, path: str, st: os.stat_result, sha256: str | None = None) -> FileMark:
        return cls(path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, sha256)

    def matches(self, st: os.stat_result) -> bool:
        """The file looks untouched since it was reported (a write or a utime() changes ctime)."""
        same = (self.size, self.mtime_ns, self.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)
        return same and self.ctime_ns in (None, st.st_ctime_ns)


@dataclass(frozen=True)
class SpooledEvent:
    seq: int
    id: str
    body: str  # the event as JSON, ready to send


class Spool:
    def __init__(self, path: str):
        self.db = StateDB(path, SCHEMA, MIGRATIONS)
        self._arrived = threading.Condition()

    def close(self) -> None:
        self.db.close()

    def put(self, events: Iterable[Event], marks: Iterable[FileMark] = (), state: dict[str, str | None] | None = None) -> None:
        """Commit events (and the files they report, and state keys: None deletes) durably; returns after fsync."""
        events = list(events)
        marks = list(marks)
        if not events and not marks and not state:
            return
        with self.db.transaction() as conn:
            self._chain(conn, events)
            for key, value in (state or {}).items():
                if value is None:
                    conn.execute("DELETE FROM state WHERE key = ?", (key,))
                else:
                    conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))
            conn.executemany(
                "INSERT OR REPLACE INTO reported (path, size, mtime_ns, inode, ctime_ns, sha256) VALUES (?, ?, ?, ?, ?, ?)",
                [(os.fsencode(m.path), m.size, m.mtime_ns, m.inode, m.ctime_ns, m.sha256) for m in marks],
            )
        if events:
            self.wake()

    def _chain(self, conn, events: list[Event]) -> None:
        """Insert the events, each with the next seq and the previous event's digest."""
        if not events:
            return
        seq, prev_hash = self._chain_head(conn)
        now = time.time()
        for event in events:
            data, body = _data(event, seq + 1, prev_hash)
            gap_from = (event.details or {}).get("seq_from") if event.type == "agent.gap" else None
            inserted = conn.execute(
                "INSERT OR IGNORE INTO spool (id, body, created_at, chain_seq, gap_from) VALUES (?, ?, ?, ?, ?)",
                (event.id, body, now, seq + 1, gap_from if isinstance(gap_from, int) else None),
            ).rowcount
            if not inserted:
                continue  # already spooled: it has its place in the chain
            seq, prev_hash = seq + 1, chain_digest(data)
        conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (CHAIN_SEQ, str(seq)))
        if prev_hash is not None:
            conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (CHAIN_HASH, prev_hash))

    @staticmethod
    def _chain_head(conn) -> tuple[int, str | None]:
        state = dict(conn.execute("SELECT key, value FROM state WHERE key IN (?, ?)", (CHAIN_SEQ, CHAIN_HASH)).fetchall())
        return int(state.get(CHAIN_SEQ, 0)), state.get(CHAIN_HASH)

    def chain_head(self) -> tuple[int, str | None]:
        """(seq of the last event spooled, its digest); (0, None) before the first."""
        return self._chain_head(self.db.conn())

    def chain_status(self) -> dict:
        """For heartbeats: the last seq given out, and the first one not delivered yet.

        `unsent_from` is the lowest seq still in the spool, or the first seq an unsent agent.gap
        explains if lower: every seq below it was delivered or explained, so the collector may
        judge the chain up to there. None when nothing is waiting.
        """
        row = self.db.conn().execute("SELECT min(chain_seq), min(gap_from) FROM spool").fetchone()
        waiting = [v for v in row if v is not None]
        return {"seq": self.chain_head()[0], "unsent_from": min(waiting) if waiting else None}

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

    def reported(self, path: str) -> FileMark | None:
        """How the file at path was when it was last reported, or None."""
        row = self.db.conn().execute(
            "SELECT size, mtime_ns, inode, ctime_ns, sha256 FROM reported WHERE path = ?", (os.fsencode(path),)
        ).fetchone()
        return FileMark(path, *row) if row else None

    def move_reported(self, src: str, dest: str) -> int:
        """A file or folder was renamed within an egress place: its marks follow it."""
        src_raw, dest_raw = os.fsencode(src.rstrip("/")), os.fsencode(dest.rstrip("/"))
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT path, size, mtime_ns, inode, ctime_ns, sha256 FROM reported"
                " WHERE path = ? OR substr(path, 1, ?) = ?",
                (src_raw, len(src_raw) + 1, src_raw + b"/"),
            ).fetchall()
            for path, *rest in rows:
                conn.execute("DELETE FROM reported WHERE path = ?", (path,))
                conn.execute(
                    "INSERT OR REPLACE INTO reported (path, size, mtime_ns, inode, ctime_ns, sha256) VALUES (?, ?, ?, ?, ?, ?)",
                    (dest_raw + bytes(path)[len(src_raw) :], *rest),
                )
        return len(rows)

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


def _data(event: Event, seq: int, prev_hash: str | None) -> tuple[dict[str, Any], str]:
    """The event (dict and JSON text) as the chain hashes and the collector stores it: its place in the chain, its
    time in the collector's form, and text SQLite can store.

    Paths are made readable at the source; this is the backstop for a lone surrogate that got
    through anyway (psutil, an exception message): it is written out as \\xNN, so the event is
    stored instead of failing the whole transaction.
    """
    data = event.to_dict()
    data.update(seq=seq, prev_hash=prev_hash, ts=normal_ts(event.ts))
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:
        logger.warning("event text not encodable; lone surrogates escaped type={!r} id={!r}", event.type, event.id)
        data = _escaped(data)
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return data, body


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escaped(v) for v in value]
    return value
