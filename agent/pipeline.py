"""The pipeline worker: turns file system changes into events.

One thread drains the watchers' queue. Classified-folder changes keep the fingerprint index
current and become file.* events. Files in egress places are reported once they are complete
(a close-after-write, or size and mtime holding still for `stable_s`: close events alone are
not delivered for every file of a bulk copy), hashed and looked up in the index. Every event is
stamped by the rules in force (rule ids, severity, policy version) just before it is spooled.
"""

from __future__ import annotations

import errno
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from agent.hashing import Hasher
from agent.index import FingerprintIndex, IndexedFile
from agent.paths import readable
from agent.places import EgressPlace, EgressPlaces
from agent.spool import FileMark, Spool
from agent.watcher import FsChange
from rules.events import Event, Match

QUEUE_MAX = 200_000
TICK_S = 0.05
FLUSH_EVERY = 256  # events per spool transaction at most
REMOVED_TTL_S = 300.0  # how long content deleted or moved out of classified folders stays traceable


@dataclass
class _Pending:
    place: EgressPlace
    due_at: float
    size: int = -1
    mtime_ns: int = -1
    closed: bool = False


class Pipeline:
    def __init__(
        self,
        index: FingerprintIndex,
        spool: Spool,
        places: EgressPlaces,
        make_event: Callable[..., Event],
        stamp: Callable[[Event], Event],
        stable_s: float = 0.5,
        hasher: Hasher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.index, self.spool, self.places = index, spool, places
        self.make_event = make_event
        self.stamp = stamp  # the rules in force (agent.policy.PolicyStore.stamp): swapped by reference
        self.stable_s = stable_s
        self.hasher = hasher or index.hasher
        self.clock = clock
        self.changes: queue.Queue[FsChange] = queue.Queue(maxsize=QUEUE_MAX)
        self._egress: dict[str, _Pending] = {}
        self._classified: dict[str, float] = {}  # path -> when to re-index it
        self._removed: dict[str, tuple[IndexedFile, float]] = {}  # sha256 -> (row, when)
        self._scans: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._overflows: dict[str, int] = {}  # reason -> how many times
        self._overflow_lock = threading.Lock()
        self._outbox: list[tuple[Event, FileMark | None]] = []  # spooled together, atomically
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline", daemon=True)

    # --- called from other threads -------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._flush()

    def on_overflow(self, reason: str) -> None:
        """Events were lost (our queue or the kernel's): report it and rescan everything."""
        with self._overflow_lock:
            self._overflows[reason] = self._overflows.get(reason, 0) + 1

    def scan(self, root: str) -> None:
        """Look at every file under an egress root (new mount, start, after an overflow)."""
        self._scans.put(root)

    # --- the worker thread --------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # contain: one bad file or a full disk must not stop watching
                logger.exception("pipeline step failed")
                self._emit("agent.error", error="pipeline step failed; see the agent log")
                self._stop.wait(1.0)

    def _step(self) -> None:
        try:
            change = self.changes.get(timeout=TICK_S)
            self._handle(change)
            for _ in range(1000):  # drain what is already queued before the slower checks
                self._handle(self.changes.get_nowait())
        except queue.Empty:
            pass
        self._handle_overflows()
        self._run_scans()
        self._check_classified()
        self._check_egress()
        self._flush()

    def _handle(self, change: FsChange) -> None:
        if change.kind == "moved":
            self._handle_move(change)
            return
        if self.index.folder_for(change.path):
            if change.kind == "deleted":
                self._classified_deleted(change.path)
            elif change.is_dir:
                self._queue_classified_tree(change.path)
            else:
                self._classified[change.path] = self.clock() + self.stable_s
            return
        place = self.places.find(change.path)
        if place is None:
            return
        if change.kind == "deleted":
            self._egress.pop(change.path, None)
        elif change.is_dir:
            self.scan(change.path)
        else:
            self._pend_egress(change.path, place, closed=change.kind == "closed")

    def _handle_move(self, change: FsChange) -> None:
        src, dest = change.path, change.dest or ""
        src_folder, dest_folder = self.index.folder_for(src), self.index.folder_for(dest)
        if src_folder and dest_folder:
            self.index.move(src, dest)
            moved = self.index.get(dest)
            self._emit_file("file.moved", src, moved, dest=dest, level=dest_folder.level)
            return
        if src_folder:  # moved out of the classified folder: note it and keep the content traceable
            gone = self._forget_classified(src)
            self._emit_file("file.moved", src, gone[0] if len(gone) == 1 else None, dest=dest, level=src_folder.level)
        elif self.places.find(src):
            self._egress.pop(src, None)
        if dest_folder:
            if change.is_dir:
                self._queue_classified_tree(dest)
            else:
                self._classified[dest] = self.clock() + self.stable_s
        elif place := self.places.find(dest):
            if change.is_dir:
                self.scan(dest)
            else:
                self._pend_egress(dest, place, closed=True)

    # --- classified folders ---------------------------------------------------------------

    def _queue_classified_tree(self, folder: str) -> None:
        due = self.clock() + self.stable_s
        for root, _dirs, files in os.walk(folder):
            for name in files:
                self._classified[os.path.join(root, name)] = due

    def _classified_deleted(self, path: str) -> None:
        self._classified.pop(path, None)
        gone = self._forget_classified(path)
        folder = self.index.folder_for(path)
        if len(gone) <= 1:
            self._emit_file("file.deleted", path, gone[0] if gone else None, level=folder.level if folder else None)
        else:  # a folder: one event per file it held
            for row in gone:
                self._emit_file("file.deleted", row.path, row, level=row.level)

    def _forget_classified(self, path: str) -> list[IndexedFile]:
        rows = self.index.remove_tree(path)
        now = self.clock()
        for row in rows:
            self._removed[row.sha256] = (row, now)
        return rows

    def _check_classified(self) -> None:
        now = self.clock()
        for path in [p for p, due in self._classified.items() if due <= now]:
            del self._classified[path]
            known = self.index.get(path)
            try:
                row, changed = self.index.update_file(path)
            except OSError as exc:
                self._emit_unreadable("file.modified", path, exc)
                continue
            if row is None or not changed:
                continue
            self._emit_file("file.modified" if known else "file.created", path, row, level=row.level)

    # --- egress places --------------------------------------------------------------------

    def _pend_egress(self, path: str, place: EgressPlace, closed: bool = False) -> None:
        pending = self._egress.get(path)
        now = self.clock()
        if pending is None:
            self._egress[path] = _Pending(place, now if closed else now + self.stable_s, closed=closed)
        else:
            pending.closed = pending.closed or closed
            pending.due_at = now if pending.closed else now + self.stable_s

    def _run_scans(self) -> None:
        while True:
            try:
                root = self._scans.get_nowait()
            except queue.Empty:
                return
            count = 0
            for folder, _dirs, files in os.walk(root):
                for name in files:
                    path = os.path.join(folder, name)
                    place = self.places.find(path)
                    if place is not None and path not in self._egress:
                        self._egress[path] = _Pending(place, self.clock())
                        count += 1
            logger.debug("scanned egress root={!r} files={}", root, count)

    def _check_egress(self) -> None:
        now = self.clock()
        for path in [p for p, pend in self._egress.items() if pend.due_at <= now]:
            pending = self._egress[path]
            try:
                st = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                del self._egress[path]
                continue
            except OSError as exc:
                del self._egress[path]
                self._emit_unreadable("egress.file", path, exc, pending.place)
                continue
            if not stat.S_ISREG(st.st_mode):
                del self._egress[path]
                continue
            if (st.st_size, st.st_mtime_ns) != (pending.size, pending.mtime_ns) and not pending.closed:
                pending.size, pending.mtime_ns = st.st_size, st.st_mtime_ns  # still being written
                pending.due_at = now + self.stable_s
                continue
            del self._egress[path]
            if self.places.find(path) is None:
                continue  # unmounted meanwhile
            if self.spool.is_reported(path, st.st_size, st.st_mtime_ns, st.st_ino):
                continue
            self._report_egress(path, st, pending.place)

    def _report_egress(self, path: str, st: os.stat_result, place: EgressPlace) -> None:
        try:
            digest = self.hasher.digest(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            self._emit_unreadable("egress.file", path, exc, place, FileMark(path, st.st_size, st.st_mtime_ns, st.st_ino))
            return
        if (digest.size, digest.mtime_ns) != (st.st_size, st.st_mtime_ns):
            self._pend_egress(path, place)  # changed while we read it
            return
        source = self._lookup(digest.sha256) if digest.size > 0 else None
        text, raw = readable(path)
        fields = dict(path=text, path_b64=raw, size=digest.size, sha256=digest.sha256, media=place.media, egress=place.kind)
        if source is not None:
            src_text, src_raw = readable(source.path)
            fields.update(
                level=source.level,
                source_path=src_text,
                source_path_b64=src_raw,
                register_entry=source.entry or None,
                match=Match("exact", 1.0),
            )
        self._outbox.append((self.make_event("egress.file", **fields), FileMark(path, st.st_size, st.st_mtime_ns, st.st_ino)))

    def _lookup(self, sha256: str) -> IndexedFile | None:
        row = self.index.lookup_sha256(sha256)
        if row is not None:
            return row
        now = self.clock()
        for key in [k for k, (_, at) in self._removed.items() if now - at > REMOVED_TTL_S]:
            del self._removed[key]
        hit = self._removed.get(sha256)
        return hit[0] if hit else None

    # --- events ---------------------------------------------------------------------------

    def _emit_file(self, type_: str, path: str, row: IndexedFile | None, dest: str | None = None, level=None) -> None:
        text, raw = readable(path)
        fields = dict(path=text, path_b64=raw, level=level)
        if dest is not None:
            fields["dest_path"], fields["dest_path_b64"] = readable(dest)
        if row is not None:
            fields.update(size=row.size, sha256=row.sha256, register_entry=row.entry or None)
        self._outbox.append((self.make_event(type_, **fields), None))

    def _emit_unreadable(
        self, type_: str, path: str, exc: OSError, place: EgressPlace | None = None, mark: FileMark | None = None
    ) -> None:
        text, raw = readable(path)
        logger.warning("cannot read file path={!r} error={}", text, exc.strerror or exc)
        extra = dict(media=place.media, egress=place.kind) if place else {}
        if mark is not None:
            extra["size"] = mark.size
        event = self.make_event(type_, path=text, path_b64=raw, error=f"cannot read: {exc.strerror or exc}", **extra)
        self._outbox.append((event, mark))

    def _emit(self, type_: str, **fields) -> None:
        self._outbox.append((self.make_event(type_, **fields), None))

    def _handle_overflows(self) -> None:
        with self._overflow_lock:
            reasons, self._overflows = self._overflows, {}
        if not reasons:
            return
        logger.warning("file events lost reasons={} rescanning", reasons)
        self._emit("agent.overflow", details={"reasons": reasons})
        for place in self.places.all():
            self.scan(place.root)
        for folder in self.index.folders:
            self._queue_classified_tree(folder.path)

    def _flush(self) -> None:
        while self._outbox:
            chunk, self._outbox = self._outbox[:FLUSH_EVERY], self._outbox[FLUSH_EVERY:]
            self.spool.put([self.stamp(event) for event, _ in chunk], [mark for _, mark in chunk if mark])
