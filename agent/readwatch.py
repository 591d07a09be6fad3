"""Which network application read a classified file, as the Linux kernel tells (fanotify).

An upload to a web disk, a webmail attachment or an IM file transfer starts with the sending
program reading the file. inotify never says who read; fanotify does: each event carries the
reader's pid, turned at once into its executable (/proc/PID/exe, resolved while the process
runs) and matched against the network-application list (agent/netapps.py). A match is reported
as `classified.read` with the app's name, the executable, the reader's user and the file's level
and register entry.

Marks: one inode mark per directory of the classified trees (FAN_EVENT_ON_CHILD), for FAN_ACCESS
(a read(2), pread, readv, sendfile) and FAN_CLOSE_NOWRITE (a read-only open closed: also a
reader that mapped the file). Not a mount or file-system mark: on the system disk that would
deliver every open of the PC, each with a descriptor the kernel opens for us and we must
readlink and close, to be thrown away by path; directory marks cost nothing outside the
classified folders. The price: a directory made later is marked at the next walk (every
`rescan_s`, 60 s), and a file reached through a hard link outside the classified folders is not
seen. Write-only opens are not reads and are not reported (inotify reports the change).

Bounded: the agent's own reads and its children's (the inspection workers) are dropped by pid;
an executable on the list's `ignore` part never reports; one event per (file, executable) per
FOLD_S, later reads are only counted; the events waiting to be spooled are at most QUEUE_MAX, and
what is dropped beyond, or lost by the kernel's own queue, is reported as agent.overflow. Where
fanotify is unavailable (another OS, no CAP_SYS_ADMIN) the agent says so once and goes on.
"""

from __future__ import annotations

import errno as errno_module
import os
import pwd
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from agent.config import ClassifiedFolder
from agent.fanotify import (
    FAN_ACCESS,
    FAN_CLOSE_NOWRITE,
    FAN_EVENT_ON_CHILD,
    FAN_MARK_ADD,
    FAN_MARK_DONT_FOLLOW,
    FAN_MARK_ONLYDIR,
    FAN_Q_OVERFLOW,
    init_notify,
    mark,
    read_loop,
    records,
)
from agent.netapps import AppList
from agent.paths import is_under, readable

FOLD_S = 600.0  # one classified.read per (file, executable) per 10 minutes
QUEUE_MAX = 1000  # reads matched and waiting to be spooled
FOLD_KEEP = 10_000  # (file, executable) pairs remembered for folding
PID_TTL_S = 2.0  # a pid's executable is trusted this long (a pid is reused only after it died)
RESCAN_S = 60.0  # directories made since are marked this often
MAX_MARKS = 200_000  # directories marked at most (the kernel's fs.fanotify.max_user_marks may be lower)
OVERFLOW_REPORT_S = 60.0  # lost reads are reported at most this often
READ_MASK = FAN_ACCESS | FAN_CLOSE_NOWRITE | FAN_EVENT_ON_CHILD


@dataclass(frozen=True)
class Reader:
    pid: int
    ppid: int
    uid: int
    exe: str  # the resolved executable: what the list matched
    name: str  # the comm, as the process calls itself (shown, never matched)


@dataclass(frozen=True)
class Read:
    path: str
    size: int
    folder: ClassifiedFolder
    reader: Reader
    app: str
    app_kind: str


class ReadWatch:
    """Marks the classified trees and reports reads by network applications (Linux, root)."""

    def __init__(
        self,
        folders: tuple[ClassifiedFolder, ...],
        apps: AppList,
        emit: Callable[..., None],
        fold_s: float = FOLD_S,
        queue_max: int = QUEUE_MAX,
        rescan_s: float = RESCAN_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`emit(type, **fields)` spools an event (agent.app.AgentApp._emit)."""
        self.folders, self.apps, self.emit = folders, apps, emit
        self.fold_s, self.rescan_s, self.clock = fold_s, rescan_s, clock
        self.own_pid = os.getpid()
        self.marked = 0  # directories marked by the last walk
        self._failed = 0  # directories the last walk could not mark
        self.reported = self.folded = self.dropped = self.kernel_overflows = 0
        self._queue: queue.Queue[Read] = queue.Queue(maxsize=queue_max)
        self._folds: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._pids: dict[int, tuple[float, Reader | None]] = {}
        self._lost_lock = threading.Lock()
        self._stop = threading.Event()
        self._fd, self.unavailable_errno = init_notify()
        self._threads = [
            threading.Thread(target=self._read_loop, name="readwatch", daemon=True),
            threading.Thread(target=self._emit_loop, name="readwatch-emit", daemon=True),
        ]

    @property
    def available(self) -> bool:
        return self._fd >= 0

    def unavailable_reason(self) -> str:
        """Why reads are not watched, for agent.started's details ('' when they are)."""
        if self.available or not self.folders:
            return ""
        code = self.unavailable_errno
        why = "not Linux, or no fanotify" if code == errno_module.ENOSYS else os.strerror(code)
        if code == errno_module.EPERM:
            why += " (fanotify needs CAP_SYS_ADMIN)"
        return f"reads of classified files are not watched: {why}"

    def start(self) -> None:
        if not self.available or not self.folders:
            return
        self.mark_all()
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(timeout_s)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # --- marks ----------------------------------------------------------------------------------

    def mark_all(self) -> None:
        """Mark every directory of the classified trees (again: marking twice changes nothing)."""
        count, failed = 0, []
        for folder in self.folders:
            for directory in _directories(os.fsencode(folder.path)):
                if count >= MAX_MARKS:
                    failed.append((directory, errno_module.ENOSPC))
                    break
                code = mark(self._fd, FAN_MARK_ADD | FAN_MARK_ONLYDIR | FAN_MARK_DONT_FOLLOW, READ_MASK, directory)
                if code:
                    failed.append((directory, code))
                    if code == errno_module.ENOSPC:  # out of marks: every further one fails too
                        break
                else:
                    count += 1
        if failed and len(failed) != self._failed:  # said once, again only when it changes
            path, code = failed[0]
            logger.warning("cannot watch reads folders={} first={!r} errno={}", len(failed), os.fsdecode(path), code)
            self.emit(
                "agent.error",
                path=readable(os.fsdecode(path))[0],
                error=f"reads not watched in {len(failed)} folder(s) of the classified trees: {os.strerror(code)}",
                details={"watch": "classified reads", "folders": len(failed)},
            )
        self.marked, self._failed = count, len(failed)
        logger.info("watching reads folders={} failed={}", count, len(failed))

    # --- the reader thread: resolve at once, filter, fold -----------------------------------------

    def _read_loop(self) -> None:
        next_walk = [self.clock() + self.rescan_s]

        def walk_when_due() -> None:  # folders made since are marked at the next walk
            if self.clock() >= next_walk[0]:
                self.mark_all()
                next_walk[0] = self.clock() + self.rescan_s

        read_loop(self._fd, self._stop, self.handle, walk_when_due)

    def handle(self, buf: bytes) -> None:
        """Take in one read's worth of events (every event's descriptor is closed here)."""
        for mask, fd, pid in records(buf):
            if fd < 0:
                if mask & FAN_Q_OVERFLOW:
                    with self._lost_lock:
                        self.kernel_overflows += 1
                continue
            try:
                self._take(fd, pid)
            finally:
                os.close(fd)

    def _take(self, fd: int, pid: int) -> None:
        if pid == self.own_pid:
            return  # the agent's own reads: indexing, hashing
        reader = self._reader(pid)
        if reader is None or reader.ppid == self.own_pid:
            return  # gone before we could see it, or an inspection worker
        app = self.apps.app_for(reader.exe)
        if app is None:
            return
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
            size = os.fstat(fd).st_size
        except OSError:
            return
        folder = next((f for f in self.folders if is_under(path, f.path)), None)
        if folder is None:
            return
        now = self.clock()
        key = (path, reader.exe)
        last = self._folds.get(key)
        if last is not None and now - last < self.fold_s:
            self.folded += 1
            return
        self._folds[key] = now
        self._folds.move_to_end(key)
        while len(self._folds) > FOLD_KEEP:
            self._folds.popitem(last=False)
        try:
            self._queue.put_nowait(Read(path, size, folder, reader, app.name, app.kind))
        except queue.Full:
            with self._lost_lock:
                self.dropped += 1

    def _reader(self, pid: int) -> Reader | None:
        now = self.clock()
        cached = self._pids.get(pid)
        if cached is not None and now - cached[0] < PID_TTL_S:
            return cached[1]
        found = reader_of(pid)
        if found is None and cached is not None:
            found = cached[1]  # a close at exit: the process's memory is gone, what we knew stays
        if len(self._pids) > 4096:
            self._pids = {p: v for p, v in self._pids.items() if now - v[0] < PID_TTL_S}
        self._pids[pid] = (now, found)
        return found

    # --- the emitting thread: spool, report losses --------------------------------------------

    def _emit_loop(self) -> None:
        next_report = 0.0
        while not self._stop.is_set():
            try:
                read = self._queue.get(timeout=0.5)
            except queue.Empty:
                read = None
            try:
                if read is not None:
                    self.emit("classified.read", **self.event_fields(read))
                    self.reported += 1
                if self.clock() >= next_report and self._report_losses():
                    next_report = self.clock() + OVERFLOW_REPORT_S
            except Exception as exc:  # noqa: BLE001 - one failure must not end the watch
                logger.exception("cannot report a classified read error={!r}", exc)
        while not self._queue.empty():  # stopping: what was matched is still reported
            self.emit("classified.read", **self.event_fields(self._queue.get_nowait()))
            self.reported += 1

    def _report_losses(self) -> bool:
        with self._lost_lock:
            dropped, overflows = self.dropped, self.kernel_overflows
            self.dropped = self.kernel_overflows = 0
        if not dropped and not overflows:
            return False
        logger.warning("classified reads lost dropped={} kernel_overflows={}", dropped, overflows)
        self.emit(
            "agent.overflow",
            error=f"reads of classified files lost: {dropped} dropped (queue full), {overflows} kernel queue overflow(s)",
            details={"watch": "classified reads", "dropped": dropped, "kernel_overflows": overflows},
        )
        return True

    def event_fields(self, read: Read) -> dict:
        path, path_b64 = readable(read.path)
        exe, _ = readable(read.reader.exe)
        return dict(
            path=path,
            path_b64=path_b64,
            size=read.size,
            level=read.folder.level,
            register_entry=read.folder.name or None,
            user=_user_name(read.reader.uid),
            details={
                "app": read.app,
                "app_kind": read.app_kind,
                "process": {"pid": read.reader.pid, "exe": exe, "name": read.reader.name, "uid": read.reader.uid},
                "folded_s": self.fold_s,
            },
        )


def reader_of(pid: int, proc: str = "/proc") -> Reader | None:
    """The executable, parent, effective uid and name of a running process, from /proc."""
    try:
        exe = os.readlink(f"{proc}/{pid}/exe")
        with open(f"{proc}/{pid}/status", encoding="utf-8", errors="replace") as f:
            status = f.read()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    try:
        uid = int(fields["Uid"].split()[1])
        ppid = int(fields["PPid"].strip())
    except (KeyError, IndexError, ValueError):
        return None
    exe = exe.removesuffix(" (deleted)")  # replaced since it started (an upgrade): still that program
    return Reader(pid, ppid, uid, exe, fields.get("Name", "").strip())


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _directories(root: bytes):
    """Every directory under root, root first, symbolic links not followed; unreadable ones skipped
    (the index reports what it cannot walk)."""
    stack = [root]
    while stack:
        directory = stack.pop()
        yield directory
        try:
            with os.scandir(directory) as entries:
                stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
