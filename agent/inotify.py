"""The agent's own inotify reader (Linux): one thread, one descriptor, changes straight onto the
pipeline's queue.

watchdog (agent/watcher.py) hands each inotify event through five threads and as many queues
before the pipeline sees it: about 50 CPU µs per file of a burst, more than a shell pipeline
spends on the whole file. Here one thread reads the descriptor in large batches (up to
READ_BYTES a read), turns each record into an FsChange and puts it on the pipeline's queue, the
same changes watchdog gives (created, modified, closed, moved, deleted; a folder's modify and
close are left out).

Watches are recursive the way `inotifywait -r` cannot be: a folder created or moved in gets its
watch before it is listed, and what the listing finds in it is reported as created (the files a
copy wrote there before the watch existed; a file written after it is reported by its own
events too, which the pipeline merges). A folder moved within the watches keeps them, renamed;
one moved out loses them. A queue overflow (IN_Q_OVERFLOW: the kernel dropped events) is never
silent: every watched folder is walked again, watches added where folders appeared and dropped
where they went, and only then is `on_overflow` called, so the pipeline's rescan comes after the
watches. A watched folder that is removed, moved away or unmounted is reported deleted and looked for
every REWATCH_S: recreated, it is watched again and reported created (the pipeline scans it).
Every REWATCH_S each watched folder is also checked to be the one watched (device and inode): a
file system mounted over it (a FUSE mount its owner may make) or unmounted from it sends the watch
no event, and writes there would go unseen; it is watched anew and reported created.
A file system mounted on a folder below a watched one (found in /proc/self/mountinfo on the same
round) is watched as part of it, or reported blind when root may not enter it.

A reported file may also be watched on its own (watch_file, for the pipeline's re-check): a write
to it by any name, a hard link from outside every watched folder included, comes as a "touched"
change of its path.

Folders that cannot be watched are reported to `on_blind` as with watchdog: past PATH_MAX
(inotify takes paths), out of inotify watches, or not readable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import queue
import re
import select
import stat
import struct
import sys
import threading
import time
from collections.abc import Callable

from loguru import logger

from agent.walk import PATH_MAX
from agent.watcher import DRAIN_END, TOO_DEEP, BlindSpot, Folders, FsChange, _ignore, _reason, blind_spots

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x8, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_MASK_CREATE, IN_ISDIR = 0x01000000, 0x02000000, 0x10000000, 0x40000000
MASK = (
    (IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF)
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
)
# A reported file's own watch (watch_file): a write to its inode by any name, a hard link made to it
# (IN_ATTRIB: its link count) and a close after writing. Never a change to a watch already there
# (IN_MASK_CREATE, Linux 4.18: the path may have become a watched folder since it was looked at)
FILE_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DONT_FOLLOW | IN_MASK_CREATE
HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)
READ_BYTES = 256 * 1024  # one read: about 8,000 events of short names
MOVE_WAIT_S = 0.02  # how long a move's first half waits for its second before it counts as a move out
REWATCH_S = 1.0  # how often a watched folder that was removed is looked for
# after a read, let events gather this long: a burst is then read in a few large batches instead of
# a wake-up per event (each costing the reader, and the pipeline it wakes, more than the event)
GATHER_S = 0.01
# A folder unwatched (a stick unmounted, a place removed) may still have changes in the kernel's
# queue, read after the unwatch: they are taken until its IN_IGNORED, or for this long
DRAIN_S = 86400.0
WATCH_LIMIT = "inotify watch limit reached"
# True: a file's create read just before its first modify (a copy's open and first write) is left
# out, the modify saying all the pipeline takes from it (a write is seen: its writer looked for,
# the file pending); a change fewer for every file of a burst. False: every create is put (the
# reference; test_inotify_creates compares what the pipeline makes of both)
FAST_CREATES = True


def available() -> bool:
    return sys.platform.startswith("linux") and _libc() is not None


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1, libc.inotify_add_watch, libc.inotify_rm_watch  # noqa: B018 - present
    except (OSError, AttributeError):
        return None
    return libc


class InotifyWatchers(Folders):
    """Recursive inotify watches on one descriptor, read by one thread (see the module)."""

    def __init__(
        self,
        changes: queue.Queue,
        on_overflow: Callable[[str], None],
        on_blind: Callable[[BlindSpot], None] = _ignore,
    ):
        super().__init__(on_blind)
        self._changes, self._on_overflow = changes, on_overflow
        self._libc = _libc()
        if self._libc is None:
            raise OSError(errno.ENOSYS, "inotify is not available")
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._maps = threading.RLock()  # the maps below: the reader and watch()/unwatch()
        self._dirs: dict[int, bytes] = {}  # wd -> the folder's path
        self._owner: dict[int, str] = {}  # wd -> the watched folder (a key of _watches) it belongs to
        self._roots: dict[int, str] = {}  # wd of a watched folder itself -> that folder
        self._gone: dict[str, float] = {}  # watched folder removed -> when to look for it next
        # watched folder -> (st_dev, st_ino) of what its watch is on: a file system unmounted from
        # it or mounted over it (a FUSE mount by its owner) sends no event the watch can see
        self._ids: dict[str, tuple[int, int]] = {}
        self._checked_at = time.monotonic()
        self._unreachable: set[str] = set()  # gone folders reported blind (there, but not watchable)
        self._mounts: dict[bytes, str] = {}  # file systems mounted below a watched folder -> that folder
        # cookie -> (path, is_dir, deadline, the watched folder it left)
        self._moved_from: dict[int, tuple[bytes, bool, float, str | None]] = {}
        # wd unwatched -> (its folder's path, until when, the watched folder it was unwatched with)
        self._draining: dict[int, tuple[bytes, float, str]] = {}
        self._drains: dict[str, int] = {}  # watched folder unwatched -> its wds still draining
        self._drain_ends: list[str] = []  # folders whose DRAIN_END the full queue refused: put again
        self._drains_checked_at = time.monotonic()
        self._drained_from: dict[int, str] = {}  # cookie -> the path a file left in a folder unwatched
        # reported files watched on their own (watch_file): wd -> their paths (hard links share
        # one inode, so one wd), path -> wd, (st_dev, st_ino) -> wd and wd -> (st_dev, st_ino)
        self._files: dict[int, set[bytes]] = {}
        self._file_wds: dict[bytes, int] = {}
        self._file_ids: dict[tuple[int, int], int] = {}
        self._file_id_of: dict[int, tuple[int, int]] = {}
        # path of a file watched on its own -> the change of it queued and not yet taken by the
        # pipeline (touch_taken): a flood of its events (opens for writing that write nothing,
        # alternated between files so the kernel merges none) is one queued change, not one each
        self._touch_queued: dict[bytes, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inotify", daemon=True)

    # --- Folders --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread.ident is not None:
            self._thread.join(timeout_s)
        if not self._thread.is_alive():
            for fd in (self.fd, self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _schedule(self, folder: str) -> bool:
        raw = os.fsencode(folder)
        with self._maps:
            wd = self._add(raw, folder)
            if wd < 0:
                code = -wd
                reason = WATCH_LIMIT if code == errno.ENOSPC else os.strerror(code)
                logger.error("cannot watch folder path={!r} error={!r}", folder, reason)
                self._on_blind(BlindSpot(folder, reason))
                return False
            self._roots[wd] = folder
            self._watches[folder] = wd
            self._gone.pop(folder, None)
            self._ids[folder] = _identity(raw)
            self._add_below(raw, folder, _device(raw), report_walk=False)
            self._watch_mounts(folder, time.monotonic(), report=False)
        logger.info("watching path={!r}", folder)
        for spot in blind_spots(folder):
            logger.warning("cannot watch folder path={!r} error={!r}", spot.path, spot.reason)
            self._on_blind(spot)
        return True

    def _unschedule(self, folder: str) -> None:
        with self._maps:
            self._watches.pop(folder, None)
            self._gone.pop(folder, None)
            self._ids.pop(folder, None)
            self._unreachable.discard(folder)
            for wd in [wd for wd, root in self._roots.items() if root == folder]:
                del self._roots[wd]
            now = time.monotonic()
            self._expire_drains(now)
            if not self._drains.get(folder):
                self.on_drain(folder)  # the pipeline keeps the place it was until the DRAIN_END below
            for wd in [wd for wd, owner in self._owner.items() if owner == folder]:
                self._draining[wd] = (self._dirs[wd], now + DRAIN_S, folder)  # until its IN_IGNORED: see _drained
                self._drains[folder] = self._drains.get(folder, 0) + 1
                self._drop(wd)
                self._libc.inotify_rm_watch(self.fd, wd)  # fails harmlessly when the kernel dropped it
            if not self._drains.get(folder):  # nothing left in the kernel: after what was put already
                self._end_drain(folder)

    def _expire_drains(self, now: float) -> None:
        """Stop waiting for the IN_IGNORED of watches unwatched DRAIN_S ago (lost in an overflow)."""
        for wd in [wd for wd, kept in self._draining.items() if kept[1] <= now]:
            self._drained_watch(wd)

    def _drained_watch(self, wd: int) -> None:
        """An unwatched watch's last change was read: its folder's drain ends with its last watch."""
        folder = self._draining.pop(wd)[2]
        left = self._drains.pop(folder, 0) - 1
        if left > 0:
            self._drains[folder] = left
        else:
            self._end_drain(folder)
        if not self._draining:
            self._drained_from.clear()

    def _end_drain(self, folder: str) -> None:
        try:
            self._changes.put_nowait(FsChange(DRAIN_END, folder, True))
        except queue.Full:  # (the changes refused are an overflow already): put by a later round
            self._drain_ends.append(folder)

    def _later_drain_work(self) -> None:
        """The DRAIN_ENDs a full queue refused, and the watches unwatched a DRAIN_S ago."""
        now = time.monotonic()
        with self._maps:
            waiting, self._drain_ends = self._drain_ends, []
            for folder in waiting:
                self._end_drain(folder)
            if self._draining and now >= self._drains_checked_at + REWATCH_S:
                self._drains_checked_at = now
                self._expire_drains(now)

    # --- watches --------------------------------------------------------------------------

    def watch_file(self, path: str) -> os.stat_result | None:
        """Watch the regular file at path on its own, whatever name writes it: a write through
        a hard link from outside every watched folder sends those folders no event, but it does
        send the file's inode one. Its changes come as FsChange "touched" (a write or a link count
        or times changed) and "touched-closed" (closed after a write). Returns the file's lstat
        taken once the watch is on it (what the caller compares with what it reported: a change
        before the watch is seen there, one after it by the watch), or None when it is not watched
        (gone, not a regular file, out of watches, a kernel before 4.18)."""
        raw = os.fsencode(path)
        if len(raw) >= PATH_MAX:
            return None
        try:  # the system calls outside the maps' lock: a hung file system (FUSE) must not stall the reader
            before = os.lstat(raw)
        except OSError:
            return None
        with self._maps:
            watched = raw in self._file_wds
        if not watched:
            if not stat.S_ISREG(before.st_mode):
                return None
            ident = (before.st_dev, before.st_ino)
            wd = self._libc.inotify_add_watch(self.fd, raw, FILE_MASK)
            code = ctypes.get_errno() if wd < 0 else 0
            with self._maps:
                if wd < 0:
                    wd = self._file_ids.get(ident, -1) if code == errno.EEXIST else -1
                    if wd < 0:  # out of watches, or an inode watched as something else: polled only
                        return None
                self._files.setdefault(wd, set()).add(raw)
                self._file_wds[raw] = wd
                self._file_ids[ident] = wd
                self._file_id_of[wd] = ident
        try:  # taken once the watch is on (a change after it says itself; one before, this shows)
            after = os.lstat(raw)
        except OSError:
            after = None
        if after is None or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            self.unwatch_file(path)  # replaced meanwhile: not the file meant
            return None
        return after

    def unwatch_file(self, path: str) -> None:
        """Stop watching a file watch_file watched (nothing when it is not)."""
        raw = os.fsencode(path)
        with self._maps:
            wd = self._file_wds.pop(raw, None)
            self._touch_queued.pop(raw, None)
            if wd is None:
                return
            paths = self._files.get(wd)
            if paths is not None:
                paths.discard(raw)
                if paths:
                    return
            self._forget_file_wd(wd)
            self._libc.inotify_rm_watch(self.fd, wd)

    def touch_taken(self, path: str) -> None:
        """The pipeline took a change of a file watched on its own and looks at it now: a change
        after this one is queued again."""
        with self._maps:
            self._touch_queued.pop(os.fsencode(path), None)

    def files_watched(self) -> int:
        with self._maps:
            return len(self._file_wds)

    def _forget_file_wd(self, wd: int) -> None:
        for raw in self._files.pop(wd, ()):
            if self._file_wds.get(raw) == wd:
                del self._file_wds[raw]
                self._touch_queued.pop(raw, None)
        ident = self._file_id_of.pop(wd, None)
        if ident is not None and self._file_ids.get(ident) == wd:  # (an inode number reused since has its own)
            del self._file_ids[ident]

    def _file_event(self, wd: int, mask: int, at: float) -> None:
        """An event of a file watched on its own: said for each of its paths watched."""
        if mask & IN_IGNORED:  # its last link removed, its file system unmounted, or unwatched
            self._forget_file_wd(wd)
            return
        kind = "touched-closed" if mask & IN_CLOSE_WRITE else "touched"
        for raw in self._files[wd]:
            queued = self._touch_queued.get(raw)
            if queued == kind or queued == "touched-closed":  # the look it waits for sees this change too
                continue
            if self._put(FsChange(kind, os.fsdecode(raw), False, None, at)):  # (else the rescan looks at it)
                self._touch_queued[raw] = kind

    def _add(self, path: bytes, owner: str) -> int:
        """Watch one folder for `owner`; its wd, or -errno."""
        if len(path) >= PATH_MAX:
            return -errno.ENAMETOOLONG
        wd = self._libc.inotify_add_watch(self.fd, path, MASK)
        if wd < 0:
            return -ctypes.get_errno()
        self._dirs[wd] = path  # a folder watched again (same inode) keeps its wd: the path is refreshed
        self._owner[wd] = owner
        return wd

    def _add_below(
        self,
        top: bytes,
        owner: str,
        device: int | None,
        report_walk: bool = True,
        found: list | None = None,
        added: set[int] | None = None,
    ) -> None:
        """Watch every folder below `top` (already watched) on its file system, each before it is
        listed, so nothing made in it is missed; `found` collects (path, is_dir) of every entry
        seen, for the created changes of a folder that arrived with content, `added` the wds.
        A folder that cannot be watched is reported; one that cannot be listed, or too deep,
        only with `report_walk` (a new watch's blind_spots() walk reports those)."""
        stack = [top]
        while stack:
            here = stack.pop()
            try:
                entries = list(os.scandir(here))
            except OSError as exc:
                if report_walk and exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                    self._on_blind(BlindSpot(os.fsdecode(here), _reason(exc)))
                continue
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if found is not None:
                    found.append((entry.path, is_dir))
                if not is_dir:
                    continue
                if len(entry.path) >= PATH_MAX:  # its lstat below would fail too: said, not skipped
                    if report_walk:
                        self._on_blind(BlindSpot(os.fsdecode(entry.path), TOO_DEEP))
                    continue
                try:
                    if device is not None and entry.stat(follow_symlinks=False).st_dev != device:
                        continue  # another file system mounted here: watched on its own, if at all
                except OSError:
                    continue
                wd = self._add(entry.path, owner)
                if wd >= 0:
                    stack.append(entry.path)
                    if added is not None:
                        added.add(wd)
                elif -wd == errno.ENAMETOOLONG:  # the topmost folder too deep: nothing below is watched
                    if report_walk:
                        self._on_blind(BlindSpot(os.fsdecode(entry.path), TOO_DEEP))
                elif -wd not in (errno.ENOENT, errno.ENOTDIR):
                    reason = WATCH_LIMIT if -wd == errno.ENOSPC else os.strerror(-wd)
                    self._on_blind(BlindSpot(os.fsdecode(entry.path), reason))

    def _drop(self, wd: int) -> None:
        self._dirs.pop(wd, None)
        self._owner.pop(wd, None)
        self._roots.pop(wd, None)

    def _below(self, path: bytes) -> list[int]:
        """The wds of path and the folders under it."""
        prefix = path + b"/"
        return [wd for wd, p in self._dirs.items() if p == path or p.startswith(prefix)]

    # --- the reader -----------------------------------------------------------------------

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stop.is_set():
            wait_s = MOVE_WAIT_S if self._moved_from else REWATCH_S
            try:
                ready = poller.poll(int(wait_s * 1000) + 1)
                if any(fd == self.fd for fd, _ in ready):
                    data = os.read(self.fd, READ_BYTES)
                    self.process(data)
                    if len(data) < READ_BYTES // 2:
                        self._stop.wait(GATHER_S)
                self._expire_moves()
                if self._drain_ends or self._draining:
                    self._later_drain_work()
                self._look_for_gone()
                self._check_roots()
            except BlockingIOError:
                continue
            except Exception as exc:  # contain: a reader that dies would watch nothing
                logger.exception("inotify reader failed error={!r}", type(exc).__name__)
                self._stop.wait(0.5)
                try:
                    self._recover()
                except Exception as again:  # noqa: BLE001 - the next round tries again; the thread must live
                    logger.exception("inotify reader could not recover error={!r}", type(again).__name__)

    def process(self, data: bytes) -> None:
        """Turn one read's records into changes (the reader thread; tests feed records here)."""
        at = time.monotonic()  # after the read: every change in it happened before this
        put, unpack, size = self._put, HEADER.unpack_from, HEADER.size
        offset, end = 0, len(data)
        created = None  # (wd, name, path) of a file's create not put yet (FAST_CREATES)
        with self._maps:
            dirs = self._dirs
            while offset < end:
                wd, mask, cookie, length = unpack(data, offset)
                name = data[offset + size : offset + size + length].rstrip(b"\0")
                offset += size + length
                if created is not None:
                    same_file = created[0] == wd and created[1] == name
                    if same_file and mask & IN_MODIFY and not mask & (IN_CLOSE_WRITE | IN_ISDIR):
                        created = None  # written at once: its modify says all its create would
                    else:
                        put(FsChange("created", os.fsdecode(created[2]), False, None, at))
                        created = None
                parent = dirs.get(wd)
                if parent is None:
                    if mask & IN_Q_OVERFLOW:
                        self._overflowed()
                    elif wd in self._draining:
                        self._drained(wd, mask, cookie, name, at)
                    elif wd in self._files:
                        self._file_event(wd, mask, at)
                    continue  # a watch already dropped
                if mask & IN_IGNORED:
                    root = self._roots.get(wd)
                    if root is not None and self._watches.get(root) == wd:
                        self._lost_root(root, wd, at)  # unmounted (IN_UNMOUNT) or dropped by the kernel
                    self._drop(wd)
                    continue
                if not name:
                    self._self_event(wd, mask, parent, at)
                    continue
                path = parent + b"/" + name
                is_dir = bool(mask & IN_ISDIR)
                if mask & IN_CLOSE_WRITE:
                    if not is_dir:
                        put(FsChange("closed", os.fsdecode(path), False, None, at))
                elif mask & IN_MODIFY:
                    if not is_dir:
                        put(FsChange("modified", os.fsdecode(path), False, None, at))
                elif mask & IN_CREATE:
                    if is_dir:
                        self._arrived(wd, path, at)
                    elif FAST_CREATES:
                        created = (wd, name, path)  # put with the next record, unless that is its modify
                    else:
                        put(FsChange("created", os.fsdecode(path), False, None, at))
                elif mask & IN_DELETE:
                    put(FsChange("deleted", os.fsdecode(path), is_dir, None, at))
                elif mask & IN_MOVED_FROM:
                    self._moved_from[cookie] = (path, is_dir, at + MOVE_WAIT_S, self._owner.get(wd))
                elif mask & IN_MOVED_TO:
                    self._moved_to(wd, cookie, path, is_dir, at)
            if created is not None:
                put(FsChange("created", os.fsdecode(created[2]), False, None, at))

    def _drained(self, wd: int, mask: int, cookie: int, name: bytes, at: float) -> None:
        """A change of a folder unwatched, read after the unwatch: it was made before, while the
        folder was watched (the kernel keeps a watch's changes queued ahead of its IN_IGNORED; a
        stick unmounted behind a flood has its IN_UNMOUNT and IN_IGNORED queued after them). Its
        files' writes, removals and moves are put, marked drained; the pipeline takes them with the
        place that went (places.find_gone). A folder made there is put as made, not watched: what
        went into it was not seen, which the pipeline says."""
        parent = self._draining[wd][0]
        if mask & IN_IGNORED:
            self._drained_watch(wd)
            return
        if not name:
            return
        path = os.fsdecode(parent + b"/" + name)
        if mask & IN_ISDIR:  # a folder made or moved there: what went into it was not watched
            if mask & (IN_CREATE | IN_MOVED_TO):
                self._put(FsChange("created", path, True, None, at, True))
            return
        if mask & IN_CLOSE_WRITE:
            self._put(FsChange("closed", path, False, None, at, True))
        elif mask & IN_MODIFY:
            self._put(FsChange("modified", path, False, None, at, True))
        elif mask & IN_CREATE:
            self._put(FsChange("created", path, False, None, at, True))
        elif mask & IN_DELETE:
            self._put(FsChange("deleted", path, False, None, at, True))
        elif mask & IN_MOVED_FROM:
            self._drained_from[cookie] = path
        elif mask & IN_MOVED_TO:
            src = self._drained_from.pop(cookie, None)
            if src is not None:
                self._put(FsChange("moved", src, False, path, at, True))
            else:  # moved in from outside: written there as far as the place is concerned
                self._put(FsChange("modified", path, False, None, at, True))
                self._put(FsChange("closed", path, False, None, at, True))

    def _put(self, change: FsChange) -> bool:
        try:
            self._changes.put_nowait(change)
        except queue.Full:
            self._on_overflow("agent queue full")
            return False
        return True

    def _self_event(self, wd: int, mask: int, path: bytes, at: float) -> None:
        """An event of a watched folder itself: only a watched folder's removal or move matters
        (a folder below one is reported by its parent's watch). Either way its watches go (one
        moved away would report wrong paths) and it is looked for until it is back."""
        root = self._roots.get(wd)
        if root is None or self._watches.get(root) != wd or not mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT):
            return
        self._lost_root(root, wd, at)

    def _lost_root(self, root: str, wd: int, at: float) -> None:
        """A watched folder removed, moved away or unmounted: its watches go and it is looked for
        every REWATCH_S until it is back."""
        for below in [w for w, owner in self._owner.items() if owner == root] + [wd]:
            self._drop(below)
            self._libc.inotify_rm_watch(self.fd, below)
        logger.warning("watched folder gone path={!r}", root)
        self._gone[root] = time.monotonic() + REWATCH_S
        self._put(FsChange("deleted", root, True, None, at))

    def _arrived(self, parent_wd: int, path: bytes, at: float) -> None:
        """A folder created or moved in: watched, then listed; it and what it holds are reported
        created (what a copy wrote there before the watch existed)."""
        text = os.fsdecode(path)
        owner = self._owner.get(parent_wd)
        if owner is None:
            return
        if len(path) >= PATH_MAX:  # inotify cannot watch it
            self._on_blind(BlindSpot(text, TOO_DEEP))
            self._put(FsChange("created", text, True, None, at))
            return
        found: list[tuple[bytes, bool]] = []
        wd = self._add(path, owner)
        if wd >= 0:
            self._add_below(path, owner, _device(path), found=found)
        elif -wd not in (errno.ENOENT, errno.ENOTDIR):
            reason = WATCH_LIMIT if -wd == errno.ENOSPC else os.strerror(-wd)
            self._on_blind(BlindSpot(text, reason))
        self._put(FsChange("created", text, True, None, at))
        for sub, is_dir in found:
            self._put(FsChange("created", os.fsdecode(sub), is_dir, None, at))

    def _moved_to(self, wd: int, cookie: int, path: bytes, is_dir: bool, at: float) -> None:
        source = self._moved_from.pop(cookie, None)
        if source is not None and source[3] != self._owner.get(wd):
            # from one watched folder to another: a delete and a create, as watchdog's watches
            # (one per folder) report it, so the events stay the same (a classified file moved
            # to an egress place is file.deleted there and egress.file here)
            self._moved_out(source[0], source[1], at)
            source = None
        if source is None:  # from outside every watch: it arrived
            if is_dir:
                self._arrived(wd, path, at)
            else:
                self._put(FsChange("created", os.fsdecode(path), False, None, at))
            return
        src = source[0]
        self._put(FsChange("moved", os.fsdecode(src), is_dir, os.fsdecode(path), at))
        if not is_dir:
            return
        owner = self._owner.get(wd)
        moved = self._below(src)
        for below in moved:  # the watches went with the folder: their paths follow
            self._dirs[below] = path + self._dirs[below][len(src) :]
            if owner is not None:
                self._owner[below] = owner
        if not moved and owner is not None and self._add(path, owner) >= 0:
            self._add_below(path, owner, _device(path))
        found: list[tuple[bytes, bool]] = []
        _list_tree(path, found)
        for sub, sub_is_dir in found:  # what moved with it, as watchdog reports it
            self._put(FsChange("moved", os.fsdecode(src + sub[len(path) :]), sub_is_dir, os.fsdecode(sub), at))

    def _expire_moves(self) -> None:
        """A move's first half whose second never came: moved out of every watch (deleted)."""
        if not self._moved_from:
            return
        now = time.monotonic()
        if all(deadline > now for _p, _d, deadline, _o in self._moved_from.values()):
            return
        try:  # the second half may be queued since the last read (a busy machine): read it first
            self.process(os.read(self.fd, READ_BYTES))
        except (BlockingIOError, OSError):
            pass
        with self._maps:
            for cookie, (path, is_dir, deadline, _owner) in list(self._moved_from.items()):
                if deadline <= now:
                    del self._moved_from[cookie]
                    self._moved_out(path, is_dir, now)

    def _moved_out(self, path: bytes, is_dir: bool, at: float) -> None:
        """Deleted, with the watches below it (and each watched folder below reported deleted)."""
        self._put(FsChange("deleted", os.fsdecode(path), is_dir, None, at))
        if is_dir:
            for below in self._below(path):
                if self._dirs[below] != path:
                    self._put(FsChange("deleted", os.fsdecode(self._dirs[below]), True, None, at))
                self._drop(below)
                self._libc.inotify_rm_watch(self.fd, below)

    def _look_for_gone(self) -> None:
        """A watched folder removed: watched again (and reported created) once it is back."""
        if not self._gone:
            return
        now = time.monotonic()
        with self._maps:
            for folder, due in list(self._gone.items()):
                if due > now:
                    continue
                raw = os.fsencode(folder)
                wd = self._add(raw, folder)
                if wd < 0:
                    self._gone[folder] = now + REWATCH_S
                    if -wd not in (errno.ENOENT, errno.ENOTDIR) and folder not in self._unreachable:
                        # there but not watchable: a FUSE mount over it that root may not enter
                        self._unreachable.add(folder)
                        reason = WATCH_LIMIT if -wd == errno.ENOSPC else os.strerror(-wd)
                        logger.error("cannot watch folder path={!r} error={!r}", folder, reason)
                        self._on_blind(BlindSpot(folder, reason))
                    continue
                del self._gone[folder]
                self._unreachable.discard(folder)
                self._roots[wd] = folder
                self._watches[folder] = wd
                self._ids[folder] = _identity(raw)
                logger.info("watched folder back path={!r}", folder)
                self._add_below(raw, folder, _device(raw))
                self._put(FsChange("created", folder, True, None, now))

    def _check_roots(self) -> None:
        """Every REWATCH_S: a watched folder that is now another folder (a file system mounted
        over it or unmounted from it, no event says so) is watched anew and reported created (the
        pipeline scans it); one that is gone is handled as its removal."""
        now = time.monotonic()
        if now - self._checked_at < REWATCH_S:
            return
        self._checked_at = now
        with self._maps:
            for folder, wd in list(self._watches.items()):
                if folder in self._gone or not isinstance(wd, int):
                    continue
                raw = os.fsencode(folder)
                ident = _identity(raw)
                if ident == self._ids.get(folder):
                    continue
                if ident is None:
                    self._lost_root(folder, wd, now)
                    continue
                logger.warning("watched folder replaced (mounted over or unmounted) path={!r}", folder)
                self._lost_root(folder, wd, now)
                self._gone[folder] = now  # watched again at once
                self._look_for_gone()
            mountpoints = _mountpoints()  # one read a round, whatever the number of folders
            for folder in list(self._watches):
                if folder not in self._gone:
                    self._watch_mounts(folder, now, mountpoints=mountpoints)

    def _watch_mounts(
        self, folder: str, at: float, report: bool = True, mountpoints: list[bytes] | None = None
    ) -> None:
        """File systems mounted below a watched folder: the folder's watches do not see into them
        and a mount sends no event, so each new one is watched (and, `report`, what it holds is
        reported created), or reported blind when it cannot be (a user's FUSE mount root may not
        enter). One unmounted is forgotten, so a mount there again is seen again."""
        prefix = os.fsencode(folder).rstrip(b"/") + b"/"
        below = {mp for mp in (_mountpoints() if mountpoints is None else mountpoints) if mp.startswith(prefix)}
        for gone in [mp for mp, owner in self._mounts.items() if owner == folder and mp not in below]:
            del self._mounts[gone]
        for mp in sorted(below - self._mounts.keys(), key=len):
            self._mounts[mp] = folder
            if os.fsdecode(mp) in self._watches:
                continue  # watched on its own
            wd = self._add(mp, folder)
            if wd < 0:
                if -wd not in (errno.ENOENT, errno.ENOTDIR):
                    reason = WATCH_LIMIT if -wd == errno.ENOSPC else os.strerror(-wd)
                    logger.error("cannot watch folder path={!r} error={!r}", os.fsdecode(mp), reason)
                    self._on_blind(BlindSpot(os.fsdecode(mp), reason))
                continue
            logger.info("watching mount path={!r} within path={!r}", os.fsdecode(mp), folder)
            found: list[tuple[bytes, bool]] = []
            self._add_below(mp, folder, _device(mp), found=found)
            if report:
                self._put(FsChange("created", os.fsdecode(mp), True, None, at))
                for sub, is_dir in found:
                    self._put(FsChange("created", os.fsdecode(sub), is_dir, None, at))

    def _recover(self) -> None:
        """After a failure in the reader: the rest of that read is lost (a folder made there would
        never be watched), so as after an overflow every watched folder is walked again before the
        pipeline rescans."""
        try:
            with self._maps:
                self._overflowed("inotify reader failed")
        except Exception as exc:
            logger.exception("inotify reader's recovery failed error={!r}", type(exc).__name__)
            self._on_overflow("inotify reader failed")

    def _overflowed(self, reason: str = "inotify queue overflow") -> None:
        """The kernel dropped events: watch again what appeared, drop what went, then have the
        pipeline rescan (after the watches, so nothing made meanwhile is missed)."""
        logger.warning("watching every folder again reason={!r}", reason)
        for folder in list(self._watches):
            raw = os.fsencode(folder)
            stale = {wd for wd, owner in self._owner.items() if owner == folder}
            wd = self._add(raw, folder)
            if wd < 0:
                continue  # gone: its IN_IGNORED or the next look says so
            self._roots[wd] = folder
            self._watches[folder] = wd
            seen = {wd}
            self._add_below(raw, folder, _device(raw), added=seen)
            for old in stale - seen:  # moved out or removed while events were lost
                self._drop(old)
                self._libc.inotify_rm_watch(self.fd, old)
        self._moved_from.clear()  # their other halves may be lost: the rescan finds what moved
        self._on_overflow(reason)


def _mountpoints() -> list[bytes]:
    """Every mount point in this process's mount table (mountinfo's fifth field, unescaped)."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split(b" ")
        if len(fields) > 4:
            out.append(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), fields[4]))
    return out


def _identity(path: bytes) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _device(path: bytes) -> int | None:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


def _list_tree(top: bytes, found: list[tuple[bytes, bool]]) -> None:
    """Every entry under top, folders before their content, no link followed."""
    stack = [top]
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            found.append((entry.path, is_dir))
            if is_dir:
                stack.append(entry.path)


def make_watchers(
    changes: queue.Queue,
    on_overflow: Callable[[str], None],
    on_blind: Callable[[BlindSpot], None] = _ignore,
    backend: str = "auto",
) -> Folders:
    """The agent's own reader where inotify is ("auto", "inotify"), watchdog elsewhere or when
    asked ("watchdog"), or when the reader cannot start (no inotify instances left)."""
    if backend != "watchdog" and available():
        try:
            return InotifyWatchers(changes, on_overflow, on_blind)
        except OSError as exc:
            logger.warning("own inotify reader unavailable, using watchdog error={!r}", str(exc))
    from agent.watcher import Watchers

    return Watchers(changes, on_overflow, on_blind)
