"""Who closed a file after writing it, as the Linux kernel tells (fanotify), on removable media.

inotify says a file was written, never by whom. fanotify (Linux, root: the agent runs as root)
does: each FAN_MODIFY and FAN_CLOSE_WRITE event carries the pid of the process that wrote. A mark
on a removable medium's mount (FAN_MARK_MOUNT) sees every write to it, whatever copies it; the
pid is turned into the writer's uid and name from /proc at once, while the writer still runs
(the first write's event comes before the close, so a small file copied by a short-lived `cp` is
caught too, as long as this thread gets the GIL in time; measured on 2 cores with one-file `cp`
runs of a 100-byte file: 190 of 200 in a quiet process, 51-60 of 100 beside a thread busy hashing;
a writer of many files or a large one is caught, as a later event of the same pid is answered
from what was learnt). Files missed fall back to their owner. Reading the events in a process of
their own would take the GIL out of it, at the price of another interpreter's memory. Egress
folders (sync folders, shares) are not marked: a mount mark on the system disk would see every
write of the PC.

Best effort and said to be: where fanotify is missing (another OS, no CAP_SYS_ADMIN) `available`
is false and nothing is known; callers fall back (agent.attribution.writer_of).
"""

from __future__ import annotations

import ctypes
import errno as errno_module
import functools
import os
import select
import struct
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from loguru import logger

FAN_CLOEXEC, FAN_NONBLOCK, FAN_CLASS_NOTIF = 0x1, 0x2, 0x0
FAN_MODIFY, FAN_CLOSE_WRITE, FAN_Q_OVERFLOW = 0x2, 0x8, 0x4000
FAN_MARK_ADD, FAN_MARK_REMOVE, FAN_MARK_MOUNT = 0x1, 0x2, 0x10
FAN_ACCESS, FAN_CLOSE_NOWRITE, FAN_EVENT_ON_CHILD = 0x1, 0x10, 0x08000000  # reads (agent/readwatch.py)
FAN_MARK_DONT_FOLLOW, FAN_MARK_ONLYDIR = 0x4, 0x8
AT_FDCWD = -100
METADATA = struct.Struct("=IBBHQii")  # struct fanotify_event_metadata: len, vers, _, metadata_len, mask, fd, pid
READ_BYTES = 64 * 1024
WAIT_S = 1.0  # an idle watch wakes this often (two of them run: writers on media, reads of classified files)


def records(buf: bytes) -> Iterator[tuple[int, int, int]]:
    """(mask, fd, pid) of each event record in one read (fd < 0: no descriptor, e.g. an overflow);
    a record shorter than its header ends the walk. The caller closes each descriptor."""
    offset = 0
    while offset + METADATA.size <= len(buf):
        length, _, _, _, mask, fd, pid = METADATA.unpack_from(buf, offset)
        if length < METADATA.size:
            return
        offset += length
        yield mask, fd, pid


def read_loop(fd: int, stop: threading.Event, handle, tick=None) -> None:
    """Read a fanotify descriptor until `stop` is set or the descriptor fails: `handle(buf)` with
    each read's events, `tick()` after each wait of at most WAIT_S (for periodic work; also how
    long a stop may take to be seen)."""
    while not stop.is_set():
        try:
            ready, _, _ = select.select([fd], [], [], WAIT_S)
            if ready:
                handle(os.read(fd, READ_BYTES))
        except BlockingIOError:
            pass
        except OSError as exc:  # the descriptor closed under us (stop), or the kernel refused
            if not stop.is_set():
                logger.warning("fanotify read failed error={!r}", exc.strerror)
            return
        if tick is not None:
            tick()


@dataclass(frozen=True)
class Closer:
    pid: int
    uid: int
    name: str  # the process's comm, e.g. "cp"


class WriteWatch:
    """Marks mounts and remembers, per path, the last process that wrote it (bounded)."""

    def __init__(self, keep: int = 10_000):
        self.keep = keep
        self._by_path: OrderedDict[str, Closer] = OrderedDict()
        self._by_pid: OrderedDict[int, Closer] = OrderedDict()  # a pid gone from /proc by its close
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._fd = _init()
        self._thread = threading.Thread(target=self._run, name="fanotify", daemon=True)

    @property
    def available(self) -> bool:
        return self._fd >= 0

    def start(self) -> None:
        if self.available:
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout_s)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def watch(self, mountpoint: str) -> bool:
        """Mark the mount at mountpoint; False where fanotify cannot (logged)."""
        if not self.available:
            return False
        if (
            _mark()(
                self._fd, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_MODIFY | FAN_CLOSE_WRITE, AT_FDCWD, os.fsencode(mountpoint)
            )
            != 0
        ):
            logger.warning("cannot watch writers mountpoint={!r} errno={}", mountpoint, ctypes.get_errno())
            return False
        return True

    def closer(self, path: str) -> Closer | None:
        """The last process seen writing path, or None."""
        with self._lock:
            return self._by_path.get(path)

    def _run(self) -> None:
        read_loop(self._fd, self._stop, self.handle)

    def handle(self, buf: bytes) -> None:
        """Take in one read's worth of events (every event's descriptor is closed here)."""
        for mask, fd, pid in records(buf):
            if fd < 0:
                if mask & FAN_Q_OVERFLOW:
                    logger.warning("fanotify queue overflowed: some writers are unknown")
                continue
            try:
                path = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                path = ""
            finally:
                os.close(fd)
            closer = self._who(pid)
            if path and closer is not None:
                with self._lock:
                    self._by_path[path] = closer
                    self._by_path.move_to_end(path)
                    while len(self._by_path) > self.keep:
                        self._by_path.popitem(last=False)

    def _who(self, pid: int) -> Closer | None:
        found = process_of(pid)
        with self._lock:
            if found is None:
                return self._by_pid.get(pid)
            self._by_pid[pid] = found
            self._by_pid.move_to_end(pid)
            while len(self._by_pid) > 1024:
                self._by_pid.popitem(last=False)
        return found


def process_of(pid: int, proc: str = "/proc") -> Closer | None:
    """The effective uid and name of a running (or not yet reaped) process, from /proc."""
    try:
        with open(f"{proc}/{pid}/status", encoding="utf-8", errors="replace") as f:
            status = f.read()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    try:
        uid = int(fields["Uid"].split()[1])  # real, effective, saved, fs: files belong to the effective
    except (KeyError, IndexError, ValueError):
        return None
    return Closer(pid, uid, fields.get("Name", "").strip())


def _init() -> int:
    """A fanotify descriptor, or -1 where the OS or our privileges have none."""
    fd, errno = init_notify()
    if fd < 0:
        logger.info("fanotify unavailable: writers of files on media are not known errno={}", errno)
    return fd


def init_notify() -> tuple[int, int]:
    """(a non-blocking fanotify descriptor of the notification class, 0), or (-1, errno): ENOSYS
    on another OS or without the call, EPERM without CAP_SYS_ADMIN (or a filter refusing it)."""
    if not sys.platform.startswith("linux"):
        return -1, errno_module.ENOSYS
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        init = libc.fanotify_init
    except (OSError, AttributeError):
        return -1, errno_module.ENOSYS
    init.argtypes, init.restype = [ctypes.c_uint, ctypes.c_uint], ctypes.c_int
    fd = init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC)
    return (fd, 0) if fd >= 0 else (-1, ctypes.get_errno())


def mark(fd: int, flags: int, mask: int, path: bytes) -> int:
    """fanotify_mark(2) on a path: 0, or the errno."""
    return 0 if _mark()(fd, flags, mask, AT_FDCWD, path) == 0 else ctypes.get_errno()


@functools.cache
def _mark():
    func = ctypes.CDLL(None, use_errno=True).fanotify_mark
    func.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
    func.restype = ctypes.c_int
    return func
