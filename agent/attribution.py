"""Which process wrote a file into an egress place: best effort, and said to be.

inotify (and watchdog) say what changed, never who changed it. What the OS does let psutil see is
which processes hold a file open right now, so a write seen in an egress place asks: who has this
file open for writing? For a large file that is the copying program, caught in the act; a small
file is usually closed before anyone can look. A bulk copy is one program writing many files, so
a writer caught on one file of a place is credited, as `same-burst`, with the other files written
there while it ran: those waiting for the same walk, and those seen within a few seconds after it
while the process is still alive (one that has exited wrote nothing later). Events say which of
the two it was (details.attribution), or `not-seen` when neither applies.

Looking costs a walk over every process's open files (a few ms to tens of ms), so it runs on its
own thread, a bounded number of times per second; the pipeline never waits for it. Requests made
while the walk is busy are answered together by the next walk.

On removable media the kernel itself tells (agent.fanotify: the pid of every write, hence its
uid), which outranks the walk. The user an egress.file event names is the writer's, by the best
source at hand (`writer_of`, said in details.user_from): close-write (fanotify), open-file,
same-burst, else file-owner (the owner of the file as fstat saw it: on ext4 or NTFS the user whose
process created it; on FAT and exFAT, which keep no owner, the uid= of the mount, i.e. who mounted
it). The login session the agent guesses (agent.identity.UserTracker) is kept beside it, marked,
in details.session_user.

A same-burst credit is a guess, and the file's owner can refute it: where the file system keeps
owners (`owners_kept`), a file owned by another user than the copy's was not written by that copy
(a process makes its files its own user's), but by someone writing beside it. Such a file is
said as not seen, its user the owner's; else a colleague's long copy running in a place would
take the blame for what anyone else wrote there meanwhile. The owner refutes nothing for a copy
running as root (it may keep the owners of what it copies), on a file system whose files do not
show who made them, or for a file made before the copy began (an overwritten file keeps its owner).
"""

from __future__ import annotations

import ctypes
import functools
import os
import select
import struct
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil
from loguru import logger

from agent.fanotify import WriteWatch

# File systems whose files all show one owner (the uid= of the mount, or the share's user), not the
# user whose process made each: an owner there refutes no writer
OWNERLESS_FSTYPES = frozenset({
    "vfat", "msdos", "exfat", "fuseblk", "ntfs", "ntfs3", "iso9660", "udf", "hfsplus",
    "cifs", "smb3", "smbfs", "9p", "fuse.gvfsd-fuse", "fuse.jmtpfs", "fuse.simple-mtpfs", "fuse.sshfs",
})  # fmt: skip
OPEN_FILE, SAME_BURST, NOT_SEEN = "open-file", "same-burst", "not-seen"
CLOSE_WRITE, FILE_OWNER, UNKNOWN = "close-write", "file-owner", "unknown"  # details.user_from, beside the two above
NAME_TTL_S = 60.0  # how long a uid's account name is kept
WRITE_MODES = frozenset({"w", "a", "r+", "w+", "a+"})  # psutil's popenfile.mode (Linux)


@dataclass(frozen=True)
class Writer:
    pid: int
    name: str
    exe: str
    user: str
    method: str = OPEN_FILE  # OPEN_FILE | SAME_BURST

    def details(self) -> dict:
        return {
            "attribution": self.method,
            "process": {"pid": self.pid, "name": self.name, "exe": self.exe, "user": self.user},
        }


def open_writers(paths: set[str], roots: set[str], processes: Callable[..., Iterable] = psutil.process_iter) -> tuple[
    dict[str, Writer], dict[str, Writer]
]:
    """One walk over the processes: (writer of each path in `paths` that is open for writing,
    a writer of any file under each root). Processes we may not look at are skipped.

    Each process's name, user and executable are read only when it holds such a file: reading
    them for every process was two thirds of a walk (some 8 of 12 ms for 90 processes, the
    user a lookup in the account database each), and a walk runs every few seconds of a burst.
    open_writers_reference reads them first, as psutil.process_iter(attrs) does (FAST_WALK). Only
    a race tells them apart: a writer that ends between its files and its name is skipped here,
    where the reference skips one that ends between its name and its files."""
    if not FAST_WALK:
        return open_writers_reference(paths, roots, processes)
    found: dict[str, Writer] = {}
    by_root: dict[str, Writer] = {}
    me = os.getpid()
    for proc in processes(["pid"]):
        pid = proc.info.get("pid")
        if pid == me:
            continue
        try:
            files = proc.open_files()
        except (psutil.Error, OSError):
            continue  # gone, a zombie, or not ours to see
        writer = None
        for f in files:
            mode = getattr(f, "mode", None)
            if mode is not None and mode not in WRITE_MODES:
                continue  # only Linux reports the mode; elsewhere any open file counts
            root = next((r for r in roots if f.path == r or f.path.startswith(r.rstrip(os.sep) + os.sep)), None)
            if f.path not in paths and root is None:
                continue
            if writer is None:
                try:  # what process_iter(attrs) reads: None where access is denied
                    info = proc.as_dict(["name", "username", "exe"], ad_value=None)
                except (psutil.Error, OSError):
                    break  # gone meanwhile: skipped, as the reference's iteration skips it
                writer = Writer(pid, info.get("name") or "", info.get("exe") or "", info.get("username") or "")
            if f.path in paths:
                found[f.path] = writer
            if root is not None:
                by_root[root] = writer
    return found, by_root


FAST_WALK = True  # False: every process's name, user and executable are read before its files


def open_writers_reference(
    paths: set[str], roots: set[str], processes: Callable[..., Iterable] = psutil.process_iter
) -> tuple[dict[str, Writer], dict[str, Writer]]:
    """open_writers as psutil.process_iter(attrs) walks: each process's name, user and executable
    read before its open files."""
    found: dict[str, Writer] = {}
    by_root: dict[str, Writer] = {}
    me = os.getpid()
    for proc in processes(["pid", "name", "username", "exe"]):
        if proc.info.get("pid") == me:
            continue
        try:
            files = proc.open_files()
        except (psutil.Error, OSError):
            continue  # gone, a zombie, or not ours to see
        for f in files:
            mode = getattr(f, "mode", None)
            if mode is not None and mode not in WRITE_MODES:
                continue  # only Linux reports the mode; elsewhere any open file counts
            root = next((r for r in roots if f.path == r or f.path.startswith(r.rstrip(os.sep) + os.sep)), None)
            if f.path not in paths and root is None:
                continue
            writer = Writer(
                proc.info["pid"], proc.info.get("name") or "", proc.info.get("exe") or "", proc.info.get("username") or ""
            )
            if f.path in paths:
                found[f.path] = writer
            if root is not None:
                by_root[root] = writer
    return found, by_root


class Liveness:
    """Whether a process still runs: asked at every write seen while a copy caught writing goes
    on, so once per file of a burst. A pidfd kept for each such process (Linux 5.3 and later)
    answers with one poll, and exactly (a pid reused since is another process, and its pidfd
    still says the writer ended); elsewhere psutil.pid_exists (a kill and a read of /proc: 20 µs)."""

    def __init__(self, keep: int = 16) -> None:
        self.keep = keep
        self._fds: OrderedDict[int, int] = OrderedDict()  # pid -> its pidfd, oldest first
        self._lock = threading.Lock()

    def __call__(self, pid: int) -> bool:
        with self._lock:
            fd = self._fds.get(pid)
            if fd is None:
                try:
                    fd = os.pidfd_open(pid)
                except ProcessLookupError:
                    return False
                except (AttributeError, OSError):  # not Linux, an older kernel, or no descriptors left
                    return psutil.pid_exists(pid)
                self._fds[pid] = fd
                while len(self._fds) > self.keep:
                    os.close(self._fds.popitem(last=False)[1])
            if select.select([fd], [], [], 0)[0]:  # readable once the process has ended
                os.close(self._fds.pop(pid))
                return False
            return True

    def close(self) -> None:
        with self._lock:
            while self._fds:
                os.close(self._fds.popitem()[1])


class WriterTracker:
    """Finds the writers of egress files in the background; `writer()` answers at once."""

    def __init__(
        self,
        walks_per_s: float = 2.0,  # a walk costs about 10 ms per 65 processes (measured): at most 2 a second
        same_burst_s: float = 5.0,
        keep: int = 10_000,
        find: Callable[[set[str], set[str]], tuple[dict[str, Writer], dict[str, Writer]]] = open_writers,
        clock: Callable[[], float] = time.monotonic,
        alive: Callable[[int], bool] | None = None,
        writes: WriteWatch | None = None,
    ) -> None:
        """`writes`: the kernel's word on who wrote (fanotify) for the media marked with watch();
        without one, none is asked (tests, and `scan`)."""
        self.min_gap_s = 1.0 / walks_per_s
        self.same_burst_s = same_burst_s
        self.keep = keep
        self.find = find
        self.clock = clock
        self.alive = alive or Liveness()
        self._wanted: dict[str, str] = {}  # path -> its egress root, waiting for the next walk
        self._found: OrderedDict[str, Writer] = OrderedDict()
        self._burst: OrderedDict[str, Writer] = OrderedDict()  # path -> writer credited as SAME_BURST
        self._recent: dict[str, tuple[float, Writer]] = {}  # root -> (when, who) last caught writing
        self._lock = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="attribution", daemon=True)
        self.walks = 0
        self.writes = writes
        self._names: dict[int, tuple[float, str]] = {}  # uid -> (when looked up, its account name)

    def start(self) -> None:
        if self.writes is not None:
            self.writes.start()
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        if self._thread.ident is not None:
            self._thread.join(5)
        if self.writes is not None:
            self.writes.stop()
        if isinstance(self.alive, Liveness):
            self.alive.close()

    def watch(self, mountpoint: str) -> bool:
        """Have the kernel say who writes on this removable medium (before it is scanned)."""
        return self.writes is not None and self.writes.watch(mountpoint)

    def writer_of(self, path: str, st: os.stat_result | int | None, owners_kept: bool = True) -> tuple[str, str]:
        """(user name, how it is known) of whoever wrote path: CLOSE_WRITE, OPEN_FILE, SAME_BURST,
        else FILE_OWNER from `st` (the fstat of the descriptor the pipeline read, or its st_uid),
        else ("", UNKNOWN). Never stats the path again. `owners_kept`: the file system keeps each
        file's owner, so an owner that is not a same-burst writer's user refutes it."""
        closer = self.writes.closer(path) if self.writes is not None else None
        if closer is not None:
            return self._user_name(closer.uid), CLOSE_WRITE
        seen = self._credited(path, st, owners_kept)
        if seen is not None and seen.user:
            return seen.user, seen.method
        uid = st if isinstance(st, int) else getattr(st, "st_uid", None)
        if uid is None or sys.platform == "win32":  # Windows' st_uid is always 0
            return "", UNKNOWN
        return self._user_name(uid), FILE_OWNER

    def _user_name(self, uid: int) -> str:
        """user_name(uid), looked up again after NAME_TTL_S (a lookup reads the account database:
        10 µs, once per file of a burst otherwise)."""
        now = self.clock()
        known = self._names.get(uid)
        if known is None or now - known[0] > NAME_TTL_S:
            if len(self._names) > 1000:
                self._names.clear()
            known = self._names[uid] = (now, user_name(uid))
        return known[1]

    def seen(self, path: str, root: str) -> None:
        """A write to path (in the egress place at root) was seen: look for its writer soon.
        While the writer caught on this place less than half the same-burst window ago still
        runs, the file is credited to it and no walk is asked for: a burst's thousands of files
        then cost a walk every few seconds (one catches the copy again, or a second writer)
        instead of two a second, each reading every process's open files."""
        recent = self._recent.get(root)
        if recent is not None:
            age_s = self.clock() - recent[0]
            if age_s <= self.same_burst_s and self.alive(recent[1].pid):
                self._credit(path, recent[1])  # the copy caught a moment ago is still running
                if age_s < self.same_burst_s / 2:
                    return
        with self._lock:
            if len(self._wanted) < self.keep:
                asleep = not self._wanted  # the walker waits for requests only while there are none
                self._wanted[path] = root
                if asleep:  # a notify per file woke it in its pause between walks, once per file of a burst
                    self._lock.notify()

    def attribution(self, path: str, st: os.stat_result | None, owners_kept: bool = True) -> tuple[dict, str, str]:
        """(details(path), *writer_of(path, st)) from one look at what is known: the kernel's
        closer and the walk's writer are each looked up once, not twice (the pipeline asks for
        both for every file of a burst). The same answers as the two calls made one after the
        other (test_attribution compares them)."""
        closer = self.writes.closer(path) if self.writes is not None else None
        if closer is not None:
            process = {"pid": closer.pid, "name": closer.name, "exe": "", "user": user_name(closer.uid)}
            return {"attribution": CLOSE_WRITE, "process": process}, self._user_name(closer.uid), CLOSE_WRITE
        seen = self._credited(path, st, owners_kept)
        if seen is None:
            details = {"attribution": NOT_SEEN}
        else:
            details = seen.details()
            if seen.user:
                return details, seen.user, seen.method
        uid = getattr(st, "st_uid", None)
        if uid is None or sys.platform == "win32":  # Windows' st_uid is always 0
            return details, "", UNKNOWN
        return details, self._user_name(uid), FILE_OWNER

    def writer(self, path: str) -> Writer | None:
        """Who wrote path, as far as we could tell by now."""
        with self._lock:
            return self._found.get(path) or self._burst.get(path)

    def _credited(self, path: str, st: os.stat_result | int | None, owners_kept: bool) -> Writer | None:
        """writer(path), unless it is a same-burst credit the file's owner refutes (module doc).
        Root's copies are not refuted (they may keep the owners of what they copy: sudo cp -a,
        rsync -a), nor is a credit on a file system whose files do not show who made them (the
        place's medium, or the file's own device: a FUSE view, NTFS or FAT with uid=), nor one of
        a file made before the copy began (its birth time: a file opened and overwritten keeps
        its owner, so a team's writable file overwritten by one's own copy is not the team's)."""
        seen = self.writer(path)
        if seen is None or seen.method != SAME_BURST or not owners_kept or not seen.user or sys.platform == "win32":
            return seen
        uid = st if isinstance(st, int) else getattr(st, "st_uid", None)
        if uid is None or seen.user == "root" or self._user_name(uid) == seen.user:
            return seen
        device = getattr(st, "st_dev", None)
        if device is not None and ownerless_device(device):
            return seen
        born, started = birth_time(path), _started(seen.pid)
        if born is not None and started is not None and born < started - BORN_BEFORE_S:
            return seen  # there before the copy began: opened and overwritten, an old file keeps its owner
        return None

    def _credit(self, path: str, writer: Writer) -> None:
        with self._lock:
            self._burst[path] = Writer(writer.pid, writer.name, writer.exe, writer.user, SAME_BURST)
            self._burst.move_to_end(path)
            while len(self._burst) > self.keep:
                self._burst.popitem(last=False)

    def details(self, path: str, st: os.stat_result | int | None = None, owners_kept: bool = True) -> dict:
        closer = self.writes.closer(path) if self.writes is not None else None
        if closer is not None:
            process = {"pid": closer.pid, "name": closer.name, "exe": "", "user": user_name(closer.uid)}
            return {"attribution": CLOSE_WRITE, "process": process}
        w = self._credited(path, st, owners_kept)
        return w.details() if w is not None else {"attribution": NOT_SEEN}

    def walk_once(self) -> None:
        """Answer every request waiting now with one walk over the processes."""
        with self._lock:
            wanted, self._wanted = self._wanted, {}
        if not wanted:
            return
        try:
            found, by_root = self.find(set(wanted), set(wanted.values()))
        except Exception as exc:  # noqa: BLE001 - attribution is best effort; monitoring goes on
            logger.warning("cannot look for writing processes error={!r}", type(exc).__name__)
            return
        self.walks += 1
        now = self.clock()
        with self._lock:
            for path, writer in found.items():
                self._found[path] = writer
                self._found.move_to_end(path)
            while len(self._found) > self.keep:
                self._found.popitem(last=False)
            for root, writer in by_root.items():
                self._recent[root] = (now, writer)
        for path, root in wanted.items():  # written just before the walk, by the copy it caught
            if path not in found and root in by_root:
                self._credit(path, by_root[root])

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._wanted and not self._stop:
                    self._lock.wait()
                if self._stop:
                    return
            started = time.monotonic()
            self.walk_once()
            pause = self.min_gap_s - (time.monotonic() - started)
            if pause > 0:
                with self._lock:  # requests pile up meanwhile and share the next walk
                    self._lock.wait_for(lambda: self._stop, pause)


_STATX_BTIME, _AT_SYMLINK_NOFOLLOW, _AT_FDCWD = 0x800, 0x100, -100
BORN_BEFORE_S = 0.05  # a file made this much before a process began was not made by it (clock ticks)


def birth_time(path: str) -> float | None:
    """When the file at path was made (statx's btime, seconds since the epoch), or None where the
    file system or the C library does not say. Python 3.11's os has no statx."""
    statx = getattr(_libc(), "statx", None)
    if statx is None:
        return None
    buf = ctypes.create_string_buffer(256)  # struct statx is 256 bytes
    if statx(_AT_FDCWD, os.fsencode(path), _AT_SYMLINK_NOFOLLOW, _STATX_BTIME, buf) != 0:
        return None
    mask, = struct.unpack_from("<I", buf, 0)
    if not mask & _STATX_BTIME:
        return None
    seconds, nanoseconds = struct.unpack_from("<qI", buf, 80)  # stx_btime
    return seconds + nanoseconds / 1e9


@functools.cache
def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _started(pid: int) -> float | None:
    """When process pid began (seconds since the epoch, to a clock tick), or None when it is gone.
    From /proc/PID/stat's start time after boot and the boot's moment now (psutil's create_time
    rests on /proc/stat's boot time in whole seconds: a file made half a second before a process
    could seem made after it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        ticks = int(stat[stat.rindex(b")") + 2 :].split()[19])  # field 22, starttime
        booted = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        return booted + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        try:
            return psutil.Process(pid).create_time()
        except (psutil.Error, OSError):
            return None


def ownerless_device(device: int, mountinfo: str = "/proc/self/mountinfo") -> bool:
    """Whether the file system of a file's st_dev shows one owner for every file, or owners its
    daemon makes up (any FUSE file system), rather than the user whose process made each; an
    unknown device counts as ownerless (a credit is then not refuted). Asked only where a
    same-burst credit and the owner disagree, so the mount table is read each time (some 50 µs):
    an unmounted file system's device number is soon another's."""
    wanted = f"{os.major(device)}:{os.minor(device)}"
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split(" ", 3)
                if len(fields) > 3 and fields[2] == wanted and " - " in line:
                    return not owners_kept(line.split(" - ", 1)[1].split(" ", 1)[0], "")
    except OSError:
        pass
    return True


def owners_kept(fstype: str | None, kind: str) -> bool:
    """Whether a place's files show the user whose process made each: not on FAT, exFAT, NTFS
    mounted by the kernel or ntfs-3g, discs, phones, or network shares (OWNERLESS_FSTYPES).
    `fstype`: the medium's, None for a folder on the computer's own disk."""
    if kind in ("share", "phone"):
        return False
    return fstype is None or not (fstype.lower() in OWNERLESS_FSTYPES or fstype.lower().startswith("fuse"))


def user_name(uid: int) -> str:
    """The account name of a uid, or the uid as text where the system has no name for it."""
    try:
        import pwd
    except ImportError:  # Windows
        return str(uid)
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
