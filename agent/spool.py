"""The durable spool: events are committed here (fsync) before anything tries to send them.

The same file records which egress files have been reported, in the same transaction as their
events, so a crash can neither lose an event nor make a rescan report a file twice.

Each event joins the agent's event chain as it is stored, in the same transaction: it gets the
next `seq` (1, 2, 3, ...; the last one is kept in the state table, so a restart continues) and
`prev_hash`, the chain digest (rules.events.chain_digest) of the event before it. The collector
checks the chain, so an event deleted or rewritten here before it was sent shows as a gap or a
break. The reporter sends in seq order.

The spool is bounded (`max_bytes`, agent.limits.spool_mb): an agent cut off from its collector
for weeks must not fill the PC's disk. Over the bound, events are dropped by value, the oldest
first within a class: first routine events (an unclassified file copied, a classified file saved,
with no rule hit), then events a rule matched at low severity; never classified egress, anything
high or critical, or the agent's own chain and life-cycle events (VALUE_KEEP). Every drop is
reported by an `agent.gap` event naming the seqs dropped and their types, so the collector knows
the hole is announced loss, not tampering. When only events that are never dropped remain, the
spool grows past its bound and says so in the log: losing them would be worse than the disk space.

A damaged spool must neither stop the agent nor lose events silently. When the agent opens it
(recover=True), these checks run before anything is written:

- a torn write-ahead log (spool.db-wal not a whole number of frames: the disk or a crash cut it):
  SQLite then silently drops the commits after the tear, and the chain head goes back. After the
  recovery the log is checkpointed and truncated (SQLite writes over a torn tail but never
  shortens the file, so every later unclean stop would read as torn again);
- a damaged file (`PRAGMA quick_check` fails, on a read-only connection, or SQLite reports
  SQLITE_CORRUPT or SQLITE_NOTADB): what can still be read (waiting events, state) is copied,
  through a read-only connection, into spool.db.recovering; the chain head and the announcement
  are written there, and only then is the damaged file (with its -wal and -shm) moved aside to
  spool.db.corrupt-<time>, as it was found, and the new file renamed into its place. A crash
  before the new file is whole leaves a spool.db.recovering without its mark, which the next
  start deletes, redoing the recovery from the damaged file, still in place; a crash after it is
  whole, the next start finishes the swap. The marks of reported egress files are left behind,
  so the next scan reports those files again rather than trusting a mark whose event may be gone;
- a file behind its head file (spool.db.head has reserved seqs but the database has no chain
  head, or one below the head file's first unsent seq: the file was deleted, replaced by an older
  copy, or lost its state) is treated as damage: unsent_from..reserved is announced.

Other errors (a full or failing disk, a file that cannot be opened) are not damage: they
propagate, the agent exits with the reason in its log and the service manager restarts it.

Either way some seqs may have been given out and lost. The chain head is also kept outside the
database, in spool.db.head (RESERVE seqs at a time, so it is written once per RESERVE events, before
the commit that goes past it, with the first seq not yet delivered). After damage the chain
continues above everything that file says may have been given out, and one agent.gap (reason
"spool damaged" or "spool journal torn") announces the range that may be lost; the collector
then knows the hole is announced loss, and MW-AGENT-TAMPER tells the operator. The announcement
is kept in the state table until it is spooled, so a crash right after the recovery does not lose
it, and a second recovery before it is spooled widens it rather than replacing it.

`miwei-agent status` (recover=False) opens the spool read-only: closing a read-write connection
would checkpoint a torn log and delete it, and with it the evidence the agent looks for.

Not detected: a log cut exactly at a frame boundary, or a frame overwritten in place, which
SQLite cannot tell from a log that was never longer; a database replaced or damaged together
with its head file (spool.db.head deleted, or both from the same older copy), or by an older copy
whose chain head is not below the head file's first unsent seq (seqs above it may then be given
out twice: the collector reports them as a break); damage while the agent runs (checked only at
start). A log cut inside a transaction that was never committed (a kill between two writes) reads
as torn: the announcement is then a precaution. So does a kill during the very first commit, after
spool.db.head was written (the file has reserved seqs and the database no chain head yet).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loguru import logger

from agent.db import StateDB, loaded_int, stored_int
from agent.files import sync_folder, write_atomically
from agent.paths import without_surrogates
from agent.spool_template import encoded_run, encodes_as_utf8
from rules.events import (
    _FIELDS,
    CHAIN_EXCLUDED,
    LATER_MEDIA_FIELDS,
    Event,
    _flat,
    _integral,
    canonical_json,
    canonical_text,
    normal_ts,
)

T = TypeVar("T")  # a name: str or raw bytes
M = TypeVar("M")  # a mark: a FileMark, a row, a re-check entry

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    chain_seq INTEGER,                 -- the event's seq in the chain (NULL: spooled by an older agent)
    gap_from INTEGER,                  -- agent.gap: the first seq it explains
    value INTEGER                      -- what dropping it would lose: VALUE_* (NULL: an older agent's, kept)
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
    sha256 TEXT,                       -- NULL when the file could not be read
    reported_at REAL                   -- wall time of the report; NULL in marks written before it was kept
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
    "spool.value INTEGER",
    "reported.reported_at REAL",
)
# the value of a spooled event: the lowest is dropped first when the spool is full
VALUE_ROUTINE, VALUE_MATCHED, VALUE_KEEP = 0, 1, 2
_NEVER_DROPPED = frozenset({"agent.gap", "agent.tamper", "agent.started", "agent.stopped", "agent.clock_skew"})
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
CHAIN_SEQ, CHAIN_HASH = "chain_seq", "chain_hash"  # state keys: the last event of the chain
RECOVERY_GAP = "recovery_gap"  # state key: the agent.gap of a recovery, until it is spooled
HEAD_SUFFIX = ".head"  # spool.db.head: {"reserved": seq, "unsent_from": seq}, outside the database
RESERVE = 1000  # seqs reserved in spool.db.head at a time
_WAL_MAGIC = (0x377F0682, 0x377F0683)
RECOVERING_SUFFIX = ".recovering"  # spool.db.recovering: a damaged spool's replacement, being built
RECOVERY_ASIDE = "recovery_aside"  # state key in spool.db.recovering: it is whole; where the damaged file goes
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26


@dataclass(frozen=True)
class FileMark:
    """A reported egress file: reporting it again is pointless while these stay the same."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int | None = None  # None only in marks an older agent wrote
    sha256: str | None = None  # what was reported; None when the file could not be read
    # wall time it was stored (a mark read back; None before it was kept): not part of what the mark says of the file
    reported_at: float | None = field(default=None, compare=False)

    @classmethod
    def of(cls, path: str, st: os.stat_result, sha256: str | None = None) -> FileMark:
        return cls(path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, sha256)

    def matches(self, st: os.stat_result) -> bool:
        """The file looks untouched since it was reported (a write or a utime() changes ctime)."""
        same = (self.size, self.mtime_ns, self.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)
        return same and self.ctime_ns in (None, st.st_ctime_ns)


def placed_by_inode(
    src: T, dest: T, at_src: M | None, at_dest: M | None, src_inode: int | None, dest_inode: int | None, inode: Callable[[M], int]
) -> dict[T, M]:
    """Where the marks (or re-checks) of the two names of a file's rename go, given the inodes the
    names hold now (None: nothing there): each to the name that holds its inode. One whose inode
    neither holds goes as a plain rename takes it: src's to dest (the file was replaced since), and
    dest's is dropped (the rename replaced that file). Idempotent, so both moves that
    renameat2(RENAME_EXCHANGE) sends leave each file its own; the same inode under both names (hard
    links) moves nothing."""
    if src_inode is not None and src_inode == dest_inode:
        return {k: v for k, v in ((src, at_src), (dest, at_dest)) if v is not None}
    placed: dict[T, M] = {}
    for origin, mark in ((src, at_src), (dest, at_dest)):
        if mark is None:
            continue
        if inode(mark) == dest_inode:
            placed[dest] = mark
        elif inode(mark) == src_inode:
            placed[src] = mark
        elif origin == src and dest not in placed:
            placed[dest] = mark  # (dest's own mark, if it holds the inode there, is placed after and wins)
    return placed


@dataclass(frozen=True)
class SpooledEvent:
    seq: int
    id: str
    body: str  # the event as JSON, ready to send


class Batch(list):
    """Events as Spool.peek gives them: every row from the first one's seq to the last one's,
    and `drops`, the spool's count of events dropped for its bound when it was read. A part of
    one (a slice) is a plain list."""

    drops: int = 0


class _ReadOnlyDB:
    """The spool as `miwei-agent status` reads it: one read-only connection (see _connect_ro)."""

    def __init__(self, path: str):
        self.path = path
        self._conn = _connect_ro(path)
        self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fails here if it cannot be read

    def conn(self) -> sqlite3.Connection:
        return self._conn

    def transaction(self):
        raise sqlite3.OperationalError("the spool is open read-only")

    def close(self) -> None:
        self._conn.close()


class Spool:
    def __init__(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES, recover: bool = True):
        """`recover`: check the file and recover from damage (see the module's docstring). Only
        the agent itself may: `miwei-agent status` reads a spool the running agent is writing,
        or one a crash left torn, so recover=False opens it read-only (it must exist): nothing is
        created, migrated or checkpointed, and a torn log is still there when the agent starts."""
        self.path = path
        self._head_path = path + HEAD_SUFFIX
        self.db: StateDB | _ReadOnlyDB = self._open_checked(path) if recover else _ReadOnlyDB(path)
        self._reserved = int(self._read_head_file().get("reserved", 0))
        raw_gap = self.get_state(RECOVERY_GAP)
        self._recovery_gap: dict | None = json.loads(raw_gap) if raw_gap else None
        self._arrived = threading.Condition()
        self.max_bytes = max_bytes
        self.dropped = 0  # events dropped to keep the bound, since this spool was opened
        self._warned_full = False
        self._size_lock = threading.Lock()
        self._size: int | None = None  # UTF-8 bytes of the spooled bodies, counted once, then kept
        self.on_stored: Callable[[list[Event]], None] | None = None  # told of events once committed (agent/notice.py)

    def close(self) -> None:
        self.db.close()

    def put(
        self, events: Iterable[Event], marks: Iterable[FileMark] = (), state: dict[str, str | None] | None = None
    ) -> None:
        """Commit events (and the files they report, and state keys: None deletes) durably; returns after fsync."""
        events = list(events)
        marks = list(marks)
        if not events and not marks and not state:
            return
        before = self.size() if events else 0  # counted outside the transaction, once
        delta = 0
        recovery_gap = self._recovery_gap if events else None
        if recovery_gap is not None:  # the loss a recovery found is announced before anything else
            events = [self._recovery_event(recovery_gap), *events]
        with self.db.transaction() as conn:
            if recovery_gap is not None:
                conn.execute("DELETE FROM state WHERE key = ?", (RECOVERY_GAP,))
            if events:
                delta = self._keep_bound(conn, before, self._chain(conn, events))
            for key, value in (state or {}).items():
                if value is None:
                    conn.execute("DELETE FROM state WHERE key = ?", (key,))
                else:
                    conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))
            at = time.time()
            conn.executemany(
                "INSERT OR REPLACE INTO reported (path, size, mtime_ns, inode, ctime_ns, sha256, reported_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (os.fsencode(m.path), m.size, stored_int(m.mtime_ns), stored_int(m.inode), stored_int(m.ctime_ns), m.sha256, at)
                    for m in marks
                ],
            )
        if recovery_gap is not None:
            self._recovery_gap = None
        if events:
            self._resize(delta)  # committed: the count follows
            self.wake()
            if self.on_stored is not None:
                try:
                    self.on_stored(events)
                except Exception:  # stored is stored: a listener's failure must not read as the spool's
                    logger.exception("spool listener failed")

    def _chain(self, conn, events: list[Event]) -> int:
        """Insert the events, each with the next seq and the previous event's digest; returns
        the bytes added."""
        if not events:
            return 0
        seq, prev_hash = self._chain_head(conn)
        now = time.time()
        if FAST_BATCH and len(events) > 1:
            run = _chained_run(conn, events, seq, prev_hash, now)
            if run is not None:
                return self._chained(conn, *run)
        added = 0
        for event in events:
            body, size, digest = _encoded(event, seq + 1, prev_hash)
            inserted = conn.execute(
                "INSERT OR IGNORE INTO spool (id, body, created_at, chain_seq, gap_from, value) VALUES (?, ?, ?, ?, ?, ?)",
                (event.id, body, now, seq + 1, _gap_from(event), value_of(event)),
            ).rowcount
            if not inserted:
                continue  # already spooled: it has its place in the chain
            seq, prev_hash = seq + 1, digest
            added += size
        return self._chained(conn, seq, prev_hash, added)

    def _chained(self, conn, seq: int, prev_hash: str | None, added: int) -> int:
        """The chain's new head kept (in the state table, and reserved in the head file)."""
        conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (CHAIN_SEQ, str(seq)))
        if prev_hash is not None:
            conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (CHAIN_HASH, prev_hash))
        if seq > self._reserved:  # durable before the commit that gives these seqs out
            try:
                self._reserve(seq + RESERVE, _unsent_from(conn, seq))
            except OSError as exc:  # a full disk: the spool itself fails, so the outbox keeps everything
                raise sqlite3.OperationalError(f"cannot write the spool's head file: {exc.strerror}") from exc
        return added

    # --- damage and recovery -------------------------------------------------------------------

    def _read_head_file(self) -> dict:
        try:
            with open(self._head_path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("spool head file unreadable; ignored path={!r} error={!r}", self._head_path, str(exc))
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if k in ("reserved", "unsent_from") and isinstance(v, int) and v >= 0}

    def _reserve(self, reserved: int, unsent_from: int) -> None:
        """Write spool.db.head (fsync'd, then renamed into place)."""
        write_atomically(self._head_path, json.dumps({"reserved": reserved, "unsent_from": unsent_from}), 0o600)
        self._reserved = reserved

    def _open_checked(self, path: str) -> StateDB:
        """Open the spool, recovering from a torn log or a damaged file (the module's docstring)."""
        _finish_recovering(path)  # a recovery a crash interrupted: completed, or dropped and redone below
        torn = _wal_torn(path + "-wal")  # read before SQLite opens it: it would quietly cut the log
        damage = _damage(path)  # read-only: nothing checkpointed into the file before it is kept
        db = None
        if damage is None:
            try:
                db = StateDB(path, SCHEMA, MIGRATIONS)
                known = self._chain_head(db.conn())[0]
                _drop_aside_mark(db)
            except sqlite3.DatabaseError as exc:
                if not _corrupt(exc):
                    raise  # a full or failing disk is no reason to move a spool aside: the agent stops, says why
                if db is not None:
                    db.close()
                damage = str(exc)
        head_file = self._read_head_file()
        reserved, unsent_from = head_file.get("reserved", 0), head_file.get("unsent_from") or 1
        if damage is not None:
            return self._rebuild(path, damage, head_file)
        if torn is not None:
            low, salvaged = known + 1, 0
            reason, text = (
                "spool journal torn",
                f"the spool's journal was torn ({torn}); commits after the tear are lost",
            )
            logger.error("spool journal torn; recovering path={!r} detail={!r} head={}", path, torn, known)
        elif reserved > 0 and (
            db.conn().execute("SELECT 1 FROM state WHERE key = ?", (CHAIN_SEQ,)).fetchone() is None
            or known < unsent_from - 1
        ):
            # the file is readable but older than its head file: replaced, or its state page lost
            low, salvaged = unsent_from, 0
            reason = "spool damaged"
            text = f"the spool file is behind its head file (chain at {known}, {reserved} reserved); it was replaced or lost its state"
            logger.error("spool behind its head file; recovering path={!r} head={} reserved={}", path, known, reserved)
        else:
            return db
        gap = self._gap(db.conn(), low, max(reserved, known) + 1, reason, salvaged, text)
        with db.transaction() as conn:
            _write_recovery(conn, gap)
        # the torn tail stays in the log until it is cut: an unclean stop later would read as torn again
        busy = db.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            logger.warning("spool log not truncated after the recovery (a reader holds it) path={!r}", path)
        self._reserve(gap["seq_to"], gap["seq_from"])
        logger.error(
            "spool recovered; seqs {}..{} announced as possibly lost path={!r}", gap["seq_from"], gap["seq_to"], path
        )
        return db

    def _rebuild(self, path: str, damage: str, head_file: dict) -> StateDB:
        """A damaged file: what can be read goes into spool.db.recovering, which then takes its
        place; the damaged file (and its -wal, -shm) is kept as spool.db.corrupt-<time>.

        Until the swap the damaged file stays where it was, untouched: a crash before the new file
        is whole leaves a spool.db.recovering that the next start deletes, redoing the recovery."""
        new = path + RECOVERING_SUFFIX
        _remove_db_files(new)
        aside = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        logger.error("spool damaged; rebuilding path={!r} aside={!r} error={!r}", path, aside, damage)
        db = StateDB(new, SCHEMA, MIGRATIONS)
        try:
            salvaged, known = _salvage(path, db)
            text = (
                f"the spool file was damaged ({damage}) and moved aside to {os.path.basename(aside)};"
                f" {salvaged} waiting events were read back"
            )
            head = max(head_file.get("reserved", 0), known) + 1
            gap = self._gap(db.conn(), head_file.get("unsent_from") or 1, head, "spool damaged", salvaged, text)
            with db.transaction() as conn:  # the last write: with it the new file is whole
                _write_recovery(conn, gap)
                conn.execute(
                    "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (RECOVERY_ASIDE, os.path.basename(aside))
                )
            db.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()  # the last connection: the log is checkpointed into the file and deleted
        self._reserve(gap["seq_to"], gap["seq_from"])
        _finish_recovering(path)
        db = StateDB(path, SCHEMA, MIGRATIONS)
        _drop_aside_mark(db)
        logger.error(
            "spool recovered; seqs {}..{} announced as possibly lost path={!r}", gap["seq_from"], gap["seq_to"], path
        )
        return db

    @staticmethod
    def _gap(conn, low: int, head: int, reason: str, salvaged: int, text: str) -> dict:
        """The recovery's agent.gap (`head`, above anything given out, stays unused); an earlier
        recovery's announcement not spooled yet is folded in."""
        row = conn.execute("SELECT value FROM state WHERE key = ?", (RECOVERY_GAP,)).fetchone()
        try:
            pending = json.loads(row[0]) if row else None
            low = min(low, int(pending["seq_from"])) if pending else low
        except (ValueError, TypeError, KeyError):
            pass
        return {"seq_from": min(low, head), "seq_to": head, "reason": reason, "salvaged": salvaged, "text": text}

    def _recovery_event(self, gap: dict) -> Event:
        details = {k: gap[k] for k in ("seq_from", "seq_to", "reason", "salvaged")}
        return self.make_gap(
            error=f"events {gap['seq_from']}..{gap['seq_to']} may be lost: {gap['text']}"[:1900], details=details
        )

    def size(self) -> int:
        """UTF-8 bytes of the events waiting (counted once per opening, then kept up to date)."""
        with self._size_lock:
            if self._size is None:
                self._size = (
                    self.db.conn()
                    .execute("SELECT coalesce(sum(length(CAST(body AS BLOB))), 0) FROM spool")
                    .fetchone()[0]
                )
            return self._size

    def _resize(self, delta: int) -> None:
        with self._size_lock:
            if self._size is not None:
                self._size = max(self._size + delta, 0)

    def _keep_bound(self, conn, before: int, added: int) -> int:
        """Over max_bytes: drop the least valuable events, oldest first, and announce the drop
        with one agent.gap (chained in the same transaction). Returns the change in size."""
        total = before + added
        if total <= self.max_bytes:
            self._warned_full = False
            return added
        target = self.max_bytes * 9 // 10  # some room, so the next events do not each drop one
        dropped: list[tuple[int, int, str]] = []  # (rowid, chain seq, type)
        for value in (VALUE_ROUTINE, VALUE_MATCHED):
            rows = conn.execute(
                "SELECT seq, chain_seq, length(CAST(body AS BLOB)), json_extract(body, '$.type') FROM spool"
                " WHERE value = ? ORDER BY seq",
                (value,),
            )
            for rowid, chain_seq, size, type_ in rows:
                if total <= target:
                    break
                dropped.append((rowid, chain_seq, type_))
                total -= size
            if total <= target:
                break
        if dropped:
            conn.executemany("DELETE FROM spool WHERE seq = ?", [(rowid,) for rowid, _, _ in dropped])
            self.dropped += len(dropped)
            total += self._chain(conn, [self._gap_event(dropped)])
            logger.warning("spool full: events dropped count={} max_bytes={}", len(dropped), self.max_bytes)
        if total > self.max_bytes and not self._warned_full:
            self._warned_full = True
            logger.error(
                "spool over its bound with events that are never dropped bytes={} max_bytes={}", total, self.max_bytes
            )
        return total - before

    def _gap_event(self, dropped: list[tuple[int, int, str]]) -> Event:
        seqs = [seq for _, seq, _ in dropped if seq is not None]
        types: dict[str, int] = {}
        for _, _, type_ in dropped:
            types[type_ or "?"] = types.get(type_ or "?", 0) + 1
        details = {"reason": "spool full", "dropped": len(dropped), "types": types}
        if seqs:  # the collector takes the range as announced loss (delivered seqs in it are stored)
            details.update(seq_from=min(seqs), seq_to=max(seqs))
        return self.make_gap(
            error=f"{len(dropped)} events dropped: the spool reached its bound of {self.max_bytes} bytes",
            details=details,
        )

    def make_gap(self, **fields) -> Event:
        """The agent.gap event announcing a drop; the app replaces this with its stamped events
        (agent id, host, user, rules) — this default is for a spool used on its own."""
        return Event(type="agent.gap", **fields)

    @staticmethod
    def _chain_head(conn) -> tuple[int, str | None]:
        state = dict(
            conn.execute("SELECT key, value FROM state WHERE key IN (?, ?)", (CHAIN_SEQ, CHAIN_HASH)).fetchall()
        )
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
        if self._recovery_gap is not None:  # announced, not spooled yet
            waiting.append(self._recovery_gap["seq_from"])
        return {"seq": self.chain_head()[0], "unsent_from": min(waiting) if waiting else None}

    def wake(self) -> None:
        """Wake whoever waits for events (used to stop the reporter promptly)."""
        with self._arrived:
            self._arrived.notify_all()

    def wait(self, timeout_s: float) -> None:
        """Sleep until events arrive or the timeout passes."""
        with self._arrived:
            self._arrived.wait(timeout_s)

    def peek(self, limit: int, max_bytes: int = 4 * 1024 * 1024, after: Batch | None = None) -> Batch:
        """The oldest events, at most `limit` of them and about `max_bytes` in all; with `after`,
        a batch peeked before, that batch followed by the oldest events after it (its events
        not read again), up to `limit` and `max_bytes` in all.

        The batch is every row from its first seq to its last: rows are read in seq order from
        the oldest (or the one after `after`'s last), and a seq is never given to a later row
        (AUTOINCREMENT). So `ack` may delete it as the range it is (Batch.drops).

        `after` read with the `limit` and `max_bytes` it was read with gives what reading the
        oldest again would: its events are still the oldest, unless the bound dropped events
        since (Batch.drops), and then the oldest are read again."""
        if after is not None and after.drops != self.dropped:
            after = None
        batch = Batch() if after is None else Batch(after)
        batch.drops = self.dropped if after is None else after.drops
        total = sum(len(e.body) for e in batch)
        if len(batch) >= limit:
            return batch
        last = batch[-1].seq if batch else -1
        for seq, event_id, body in self.db.conn().execute(
            "SELECT seq, id, body FROM spool WHERE seq > ? ORDER BY seq LIMIT ?", (last, limit - len(batch))
        ):
            if batch and total + len(body) > max_bytes:
                break
            batch.append(SpooledEvent(seq, event_id, body))
            total += len(body)
        return batch

    def ack(self, batch: list[SpooledEvent], state: dict[str, str] | None = None) -> None:
        """Forget events the server has stored; `state` keys are written in the same transaction
        (the reporter's last delivery: one commit per batch delivered, not two).

        A whole batch as peek gave it is deleted as the range of seqs it is (FAST_ACK), when
        nothing was dropped for the bound since it was peeked and the range holds as many rows
        as the batch: then they are its rows. Otherwise (a part of a batch, an event dropped
        meanwhile) each of its seqs is deleted (the reference)."""
        with self.db.transaction() as conn:
            gone = _range_deleted(conn, batch, self.dropped) if FAST_ACK else None
            if gone is None:
                gone = _present_bytes(conn, batch)  # a row the bound dropped meanwhile is counted out already
                conn.executemany("DELETE FROM spool WHERE seq = ?", [(e.seq,) for e in batch])
            for key, value in (state or {}).items():
                conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))
        self._resize(-gone)

    def quarantine(self, batch: list[SpooledEvent], reason: str) -> None:
        """Move events the server refuses as invalid out of the way, keeping them for inspection."""
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO dead (id, body, reason, at) VALUES (?, ?, ?, ?)",
                [(e.id, e.body, reason[:2000], time.time()) for e in batch],
            )
            gone = _present_bytes(conn, batch)
            conn.executemany("DELETE FROM spool WHERE seq = ?", [(e.seq,) for e in batch])
        self._resize(-gone)

    def depth(self) -> int:
        return self.db.conn().execute("SELECT count(*) FROM spool").fetchone()[0]

    def dead_count(self) -> int:
        return self.db.conn().execute("SELECT count(*) FROM dead").fetchone()[0]

    def reported(self, path: str) -> FileMark | None:
        """How the file at path was when it was last reported, or None."""
        row = (
            self.db.conn()
            .execute(
                "SELECT size, mtime_ns, inode, ctime_ns, sha256, reported_at FROM reported WHERE path = ?",
                (os.fsencode(path),),
            )
            .fetchone()
        )
        if row is None:
            return None
        size, mtime_ns, inode, ctime_ns, sha256, reported_at = row
        return FileMark(path, size, loaded_int(mtime_ns), loaded_int(inode), loaded_int(ctime_ns), sha256, reported_at)

    def move_reported(self, src: str, dest: str, held: tuple[int | None, int | None] | None = None, folder: bool = False) -> int:
        """A file or folder was renamed within an egress place: its marks follow it. `held`, for a
        file: the inodes the two names hold now (None: nothing); the two marks then go where
        `placed_by_inode` says, so each of renameat2(RENAME_EXCHANGE)'s two moves leaves each file
        its own mark. `folder`: the marks under it move, not one at its own name (a file's, which
        an exchange of a file and a folder put there)."""
        src_raw, dest_raw = os.fsencode(src.rstrip("/")), os.fsencode(dest.rstrip("/"))
        columns = "path, size, mtime_ns, inode, ctime_ns, sha256, reported_at"
        with self.db.transaction() as conn:
            if held is not None:
                rows = {bytes(r[0]): r for r in conn.execute(f"SELECT {columns} FROM reported WHERE path IN (?, ?)", (src_raw, dest_raw))}
                if not rows:
                    return 0
                placed = placed_by_inode(src_raw, dest_raw, rows.get(src_raw), rows.get(dest_raw), *held, inode=lambda r: loaded_int(r[3]))
                conn.execute("DELETE FROM reported WHERE path IN (?, ?)", (src_raw, dest_raw))
                conn.executemany(
                    f"INSERT INTO reported ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(path, *row[1:]) for path, row in placed.items()],
                )
                return len(placed)
            rows = conn.execute(
                f"SELECT {columns} FROM reported WHERE (path = ? AND NOT ?) OR substr(path, 1, ?) = ?",
                (src_raw, folder, len(src_raw) + 1, src_raw + b"/"),
            ).fetchall()
            for path, *rest in rows:
                conn.execute("DELETE FROM reported WHERE path = ?", (path,))
                conn.execute(
                    f"INSERT OR REPLACE INTO reported ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)",
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


def _encoded(event: Event, seq: int, prev_hash: str | None) -> tuple[str, int, str]:
    """_encoded_reference's answer; built directly from the event where it can be (FAST_ENCODING)."""
    if FAST_ENCODING:
        fast = _encoded_fast(event, seq, prev_hash)
        if fast is not None:
            return fast
    return _encoded_reference(event, seq, prev_hash)


FAST_ENCODING = True  # False: every event is encoded by _encoded_reference
# False: a write's events are encoded and inserted one by one (the reference); True: from a
# template (agent/spool_template.py) and in one executemany
FAST_BATCH = True
FAST_ACK = True  # False: an acknowledged batch is deleted seq by seq (the reference)


def _chained_run(conn, events: list[Event], seq: int, prev_hash: str | None, now: float) -> tuple[int, str, int] | None:
    """The events inserted with the seqs after `seq`, encoded from a template and in one
    statement; returns (the last seq, its digest, bytes added), or None, with nothing inserted,
    when one of them was not (already spooled, or no id): the reference loop then gives each its
    place, leaving out the ones it skips, as it always did."""
    rows, added, last = [], 0, prev_hash
    encoded = encoded_run(events, seq, prev_hash, _encoded, _sentinel_text, _details_text)
    for i, (event, (body, size, digest)) in enumerate(zip(events, encoded, strict=True), 1):
        last = digest
        event_id, gap_from = event.id, _gap_from(event)
        if type(event_id) is not str or not (event_id.isascii() or encodes_as_utf8(event_id)) or not _bindable(gap_from):
            return None  # SQLite would refuse it where the reference's loop inserts it, after the ones before it
        rows.append((event_id, body, now, seq + i, gap_from, value_of(event)))  # in the reference's order
        added += size
    conn.execute("SAVEPOINT chained_run")  # an error raised here: the transaction rolls back whole
    inserted = conn.executemany(
        "INSERT OR IGNORE INTO spool (id, body, created_at, chain_seq, gap_from, value) VALUES (?, ?, ?, ?, ?, ?)", rows
    ).rowcount
    if inserted != len(rows):
        conn.execute("ROLLBACK TO chained_run")
    conn.execute("RELEASE chained_run")
    if inserted != len(rows):
        return None
    return seq + len(rows), last, added


def _bindable(value: int | None) -> bool:
    return value is None or -(2**63) <= value < 2**63


def _gap_from(event: Event) -> int | None:
    gap_from = (event.details or {}).get("seq_from") if event.type == "agent.gap" else None
    return gap_from if isinstance(gap_from, int) else None


def _sentinel_text(event: Event, sentinels: dict[str, str]) -> str | None:
    """The canonical text of the event's dict as _encoded_fast builds it, the sentinels in place of
    their fields' values (agent/spool_template.py cuts the text there); None when the fast
    encoder would not take the event."""
    state = event.__dict__
    if tuple(state) != _EVENT_FIELDS:
        return None
    try:
        data = dict(state)
        del data["agent_id"]
        for key in _TRAVELLING:
            if key != "details":
                data[key] = _travelling(key, data[key])
        data.update(sentinels)
        return canonical_text(data)
    except Exception:  # noqa: BLE001 - the event is the reference's to encode
        return None


def _details_text(details: Any) -> str:
    return canonical_text(_travelling("details", details))


_EVENT_FIELDS = _FIELDS[Event]  # in the order an Event's __dict__ holds them
_PLAIN = frozenset({str, int, bool, type(None)})  # values canonical_json writes as json does
# the fields to_dict turns into lists and dicts; every other field should hold a plain value
_TRAVELLING = ("match", "media", "detections", "rule_ids", "details")
_SCALARS = tuple(k for k in _EVENT_FIELDS if k not in _TRAVELLING and k not in CHAIN_EXCLUDED)


def _encoded_fast(event: Event, seq: int, prev_hash: str | None) -> tuple[str, int, str] | None:
    """What _encoded_reference gives, from the event's own dict: the dict to_dict builds is made
    once, with its integral floats as integers (canonical_json's work) where it holds floats at
    all, and encoded by json's C encoder made as json.dumps makes it; the agent_id is appended as
    json writes a string. The reference built the dict three times (to_dict, canonical_json's
    copy, the body's extra keys) and set up a JSON encoder twice. None when the event is not one
    it can take (a field that is not a plain value where one is expected, text that is not UTF-8,
    a value JSON refuses): then the reference answers, with its escapes and errors."""
    state = event.__dict__
    agent_id = state.get("agent_id")
    if tuple(state) != _EVENT_FIELDS or type(agent_id) is not str:
        return None
    if not _PLAIN.issuperset(map(type, map(state.__getitem__, _SCALARS))):
        return None  # a float (or anything else) where a plain value belongs: rare, the reference's
    try:
        data = dict(state)
        del data["agent_id"]
        data["seq"], data["prev_hash"], data["ts"] = seq, prev_hash, normal_ts(event.ts)
        for key in _TRAVELLING:
            data[key] = _travelling(key, data[key])
        hashed = canonical_text(data).encode("utf-8")
        raw = hashed[:-1] + (',"agent_id":' + json.encoder.encode_basestring(agent_id) + "}").encode("utf-8")
    except Exception:  # noqa: BLE001 - the reference decides: it escapes or raises as it always did
        return None
    return raw.decode("utf-8"), len(raw), hashlib.sha256(hashed).hexdigest()


def _travelling(key: str, value: Any) -> Any:
    """A field's value as Event.to_dict writes it, with canonical_json's integral floats as
    integers; left as it is when it holds only plain values (the encoder does not change it)."""
    if value is None and key in ("match", "media", "details"):  # to_dict leaves them out as None
        return None
    if key == "details":
        return value if type(value) is dict and _PLAIN.issuperset(map(type, value.values())) else _integral(value)
    if key == "rule_ids":
        ids = list(value)  # one pass, as to_dict's list(): an iterator is read once
        return ids if _PLAIN.issuperset(map(type, ids)) else _integral(ids)
    if key == "detections":
        return [_integral(_flat(d)) for d in value]
    flat = _flat(value)  # match, media
    if key == "media":
        for name in LATER_MEDIA_FIELDS:
            if flat[name] in ("", None):
                del flat[name]
    return _integral(flat)


def _encoded_reference(event: Event, seq: int, prev_hash: str | None) -> tuple[str, int, str]:
    """The event's body (JSON text), its UTF-8 size and its chain digest, from one JSON encoding.

    The chain hashes canonical_json of the event's dict (rules.events: sorted keys, integral
    floats as integers, CHAIN_EXCLUDED left out); the body is those very bytes with the excluded
    keys appended, so the collector reads the same values (a JSON object's key order means
    nothing, and 1.0 and 1 are one JSON number) and the same digest comes out of what it stores.
    Before, the body was a second encoding of the same dict (and a third pass encoded it to count
    its bytes): a tenth of the pipeline thread's time per file in a burst (issue 21 item 4).

    Paths are made readable at the source; a lone surrogate that got through anyway (psutil, an
    exception message) is written out as \\xNN, so the event is stored instead of failing the
    whole transaction.
    """
    data = event.to_dict()
    data.update(seq=seq, prev_hash=prev_hash, ts=normal_ts(event.ts))
    try:
        hashed, raw = _canonical_and_body(data)
    except UnicodeEncodeError:
        logger.warning("event text not encodable; lone surrogates escaped type={!r} id={!r}", event.type, event.id)
        hashed, raw = _canonical_and_body(_escaped(data))
    return raw.decode("utf-8"), len(raw), hashlib.sha256(hashed).hexdigest()


def _canonical_and_body(data: dict[str, Any]) -> tuple[bytes, bytes]:
    """canonical_json(data), and the same bytes with the keys the chain leaves out appended."""
    hashed = canonical_json(data)
    extra = {k: data[k] for k in CHAIN_EXCLUDED if k in data}
    if not extra:
        return hashed, hashed
    return hashed, hashed[:-1] + b"," + json.dumps(extra, ensure_ascii=False, separators=(",", ":")).encode("utf-8")[1:]


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escaped(v) for v in value]
    return value


def _unsent_from(conn, head: int) -> int:
    """The first seq not known to be delivered: the oldest waiting event, or the lowest seq an
    unsent agent.gap explains; head + 1 when nothing waits."""
    first = conn.execute("SELECT chain_seq FROM spool WHERE chain_seq IS NOT NULL ORDER BY seq LIMIT 1").fetchone()
    gap = conn.execute("SELECT min(gap_from) FROM spool").fetchone()
    return min(v for v in (first and first[0], gap[0], head + 1) if v is not None)


def _wal_torn(wal: str) -> str | None:
    """Why the write-ahead log is torn (not a header and whole frames), or None."""
    try:
        size = os.path.getsize(wal)
        with open(wal, "rb") as f:
            header = f.read(32)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if size == 0:
        return None
    if len(header) < 32:
        return f"{size} bytes, shorter than its header"
    magic, _version, page_size = struct.unpack(">III", header[:12])
    if magic not in _WAL_MAGIC or page_size < 512 or page_size & (page_size - 1):
        return "its header is not a SQLite log header"
    frames, rest = divmod(size - 32, 24 + page_size)
    return f"{rest} bytes after its last whole frame ({frames})" if rest else None


def _connect_ro(path: str) -> sqlite3.Connection:
    """A read-only connection: it never checkpoints the log into the file nor deletes it, so a
    torn log or a damaged file stays as it was found. (`immutable=1` would not do: it ignores the
    log, where a killed agent's last commits are.) SQLite may create the -shm beside it."""
    return sqlite3.connect(
        f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=30, isolation_level=None
    )


def _corrupt(exc: sqlite3.Error) -> bool:
    """The error says the file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB), not that the disk
    failed, filled up or the file could not be opened."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)


def _damage(path: str) -> str | None:
    """What `PRAGMA quick_check` finds wrong with the file (read-only), or None. Errors other than
    damage propagate."""
    if not os.path.exists(path):
        return None
    try:
        with closing(_connect_ro(path)) as conn:
            result = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if _corrupt(exc):
            return str(exc)
        raise
    return None if result == [("ok",)] else "; ".join(str(r[0]) for r in result[:3])


def _write_recovery(conn, gap: dict) -> None:
    conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (CHAIN_SEQ, str(gap["seq_to"])))
    conn.execute("DELETE FROM state WHERE key = ?", (CHAIN_HASH,))  # the next event links to nothing known
    conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (RECOVERY_GAP, json.dumps(gap)))


def _finish_recovering(path: str) -> None:
    """Put a whole spool.db.recovering in the damaged file's place (moving that aside, with its
    -wal and -shm, to the name the new file records); delete one a crash left unfinished.

    Each step can be repeated: a crash at any point leaves either the damaged file in place with
    its log (and no whole new file), or a whole new file that the next start puts in place."""
    new = path + RECOVERING_SUFFIX
    if not os.path.exists(new):
        return
    aside = None
    try:
        with closing(_connect_ro(new)) as conn:
            row = conn.execute("SELECT value FROM state WHERE key = ?", (RECOVERY_ASIDE,)).fetchone()
        aside = row and os.path.join(os.path.dirname(path), os.path.basename(row[0]))
    except sqlite3.Error as exc:
        logger.warning("unfinished spool recovery unreadable path={!r} error={!r}", new, str(exc))
    if not aside:
        logger.warning("unfinished spool recovery deleted; it is redone path={!r}", new)
        _remove_db_files(new)
        sync_folder(os.path.dirname(os.path.abspath(path)))
        return
    if os.path.exists(new + "-wal"):  # one file before it moves: its log belongs to its name
        with closing(sqlite3.connect(new, timeout=30, isolation_level=None)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm", "-journal"):
        if os.path.exists(new + suffix):
            os.unlink(new + suffix)
    for suffix in ("-wal", "-shm", "-journal"):  # the damaged file's log must not meet the new file
        if os.path.exists(path + suffix):
            os.replace(path + suffix, aside + suffix)
    if os.path.exists(path) and not os.path.exists(aside):
        try:
            os.link(path, aside)  # kept under both names until the new file replaces it
        except OSError:
            os.replace(path, aside)
    os.replace(new, path)
    sync_folder(os.path.dirname(os.path.abspath(path)))
    logger.info("spool replaced by its recovered copy path={!r} aside={!r}", path, aside)


def _drop_aside_mark(db: StateDB) -> None:
    """The recovered file is in place: its mark of being whole has done its work."""
    if db.conn().execute("SELECT 1 FROM state WHERE key = ?", (RECOVERY_ASIDE,)).fetchone():
        db.conn().execute("DELETE FROM state WHERE key = ?", (RECOVERY_ASIDE,))


def _remove_db_files(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def _salvage(path: str, db: StateDB) -> tuple[int, int]:
    """Copy what can still be read from a damaged spool into a fresh one, a chunk at a time;
    returns (waiting events copied, the highest seq the damaged file shows as given out).

    Each table is read from both ends: a bad page ends a scan, and the rows beyond it may still
    be reached from the other side. Waiting events keep their place (their rowid) and are copied
    only when the body is the event the row claims to be. The marks of reported egress files are
    not copied: a mark may have survived while the event it went with did not, and that file
    would never be reported again. Without them the next scan reports every file in an egress
    place once more: duplicates by path, but nothing lost."""
    padded = _padded_copy(path)
    try:
        source = _connect_ro(padded or path)  # read-only: closing it checkpoints nothing into the damaged file
    except sqlite3.Error as exc:
        logger.error("damaged spool cannot be opened to read it back path={!r} error={!r}", path, str(exc))
        return 0, 0
    copied, known = 0, 0
    tables = (
        (
            "SELECT seq, id, body, created_at, chain_seq, gap_from, value FROM spool ORDER BY seq",
            "INSERT OR IGNORE INTO spool (seq, id, body, created_at, chain_seq, gap_from, value) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ),
        (
            "SELECT id, body, reason, at FROM dead ORDER BY id",
            "INSERT OR IGNORE INTO dead (id, body, reason, at) VALUES (?, ?, ?, ?)",
        ),
        ("SELECT key, value FROM state ORDER BY key", "INSERT OR IGNORE INTO state (key, value) VALUES (?, ?)"),
    )
    try:
        for query, insert in tables:
            for order in ("", " DESC"):
                try:
                    cursor = source.execute(query + order)
                except sqlite3.Error:
                    continue  # the first page it needs is bad
                rows, more = [], True
                while more:
                    try:
                        row = cursor.fetchone()  # one at a time: a bad page loses no row read before it
                    except sqlite3.Error:
                        row = None  # what lies beyond it is tried from the other end
                    more = row is not None
                    if more:
                        rows.append(row)
                    if len(rows) >= 500 or (rows and not more):
                        copied_now, known = _copy_rows(db, insert, rows, known)
                        copied += copied_now
                        rows = []
    except sqlite3.Error as exc:  # a table that cannot be read at all
        logger.warning("damaged spool partly unreadable path={!r} error={!r}", path, str(exc))
    finally:
        source.close()
        if padded:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(padded + suffix):
                    os.unlink(padded + suffix)
    return copied, known


def _copy_rows(db: StateDB, insert: str, rows: list[tuple], known: int) -> tuple[int, int]:
    """Insert salvaged rows; returns (waiting events inserted, the highest seq seen given out)."""
    if insert.startswith("INSERT OR IGNORE INTO spool"):
        known = max([known] + [r[4] for r in rows if isinstance(r[4], int)])
        rows = [r for r in rows if _intact(r)]
    elif insert.startswith("INSERT OR IGNORE INTO state"):
        known = max([known] + [int(v) for k, v in rows if k == CHAIN_SEQ and str(v).isdigit()])
        rows = [
            (k, v) for k, v in rows if k not in (CHAIN_SEQ, CHAIN_HASH, RECOVERY_ASIDE)
        ]  # the mark: only the last write
    if not rows:
        return 0, known
    with db.transaction() as conn:
        inserted = conn.executemany(insert, rows).rowcount
    return (inserted if insert.startswith("INSERT OR IGNORE INTO spool") else 0), known


def _padded_copy(path: str) -> str | None:
    """A file cut short is refused by SQLite as a whole: a copy padded back to the size its
    header states (the missing pages read as damaged, the rest as they were), or None."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
        size = os.path.getsize(path)
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return None
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    stated = page_size * struct.unpack(">I", header[28:32])[0]
    if size >= stated or (os.path.exists(path + "-wal") and os.path.getsize(path + "-wal") > 0):
        return None  # whole, or the missing pages may be in the log
    copy = path + ".salvage"
    with open(path, "rb") as src, open(copy, "wb") as dest:
        while chunk := src.read(1 << 20):
            dest.write(chunk)
        dest.truncate(stated)
    return copy


def _intact(row: tuple) -> bool:
    """A salvaged spool row is kept when its body is the event it claims to be."""
    _rowid, event_id, body, _at, chain_seq, _gap, _value = row
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return False
    return isinstance(data, dict) and data.get("id") == event_id and data.get("seq") == chain_seq


def _range_deleted(conn, batch: list[SpooledEvent], dropped: int) -> int | None:
    """Delete a whole peeked batch as its range of seqs; returns the bytes it held, or None
    (nothing deleted) when the range may hold anything but its rows: not a Batch, events dropped
    for the bound since it was read (`dropped` moved on), or a row of it gone (fewer rows)."""
    if type(batch) is not Batch or not batch or batch.drops != dropped:
        return None
    first, last = batch[0].seq, batch[-1].seq
    count, gone = conn.execute(
        "SELECT count(*), coalesce(sum(length(CAST(body AS BLOB))), 0) FROM spool WHERE seq BETWEEN ? AND ?",
        (first, last),
    ).fetchone()
    if count != len(batch):
        return None
    conn.execute("DELETE FROM spool WHERE seq BETWEEN ? AND ?", (first, last))
    return gone


def _present_bytes(conn, batch: list[SpooledEvent]) -> int:
    """UTF-8 bytes of the batch's events still in the spool."""
    total = 0
    seqs = [e.seq for e in batch]
    for i in range(0, len(seqs), 500):
        chunk = seqs[i : i + 500]
        total += conn.execute(
            f"SELECT coalesce(sum(length(CAST(body AS BLOB))), 0) FROM spool WHERE seq IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchone()[0]
    return total


def value_of(event: Event) -> int:
    """What dropping the event would lose (VALUE_*): classified egress, anything high or critical
    and the agent's own chain and life-cycle events are never dropped."""
    if event.type in _NEVER_DROPPED or event.severity in ("high", "critical"):
        return VALUE_KEEP
    if event.type == "egress.file" and (event.level is not None or event.match is not None):
        return VALUE_KEEP
    if event.rule_ids or event.type in ("file.deleted", "file.moved", "media.mounted", "agent.error"):
        return VALUE_MATCHED
    return VALUE_ROUTINE
