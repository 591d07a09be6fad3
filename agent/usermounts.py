"""Phones and network shares mounted in user space: egress places that inotify cannot watch.

A phone on a USB cable speaks MTP (or PTP, or Apple's AFC): it is no block device and never
shows under /media. The desktop mounts it with gvfs, under the one FUSE mount gvfsd-fuse keeps
at /run/user/UID/gvfs (fstype fuse.gvfsd-fuse), as a folder named after the device
(`mtp:host=Xiaomi_Redmi_Note_12_abc123`); network shares opened in the file manager appear there
too (`smb-share:server=fs01,share=drawings`, `sftp:host=...`). jmtpfs and simple-mtpfs mount a
phone anywhere, as fuse.jmtpfs / fuse.simple-mtpfs. Such a folder is an egress place of kind
`phone` (mtp, gphoto2, afc, the MTP FUSE tools) or `share` (smb, sftp, dav, ftp) with the device
or server in details.app.

inotify sees only writes made through this machine's kernel page cache for local file systems;
a FUSE file system gives it nothing for files the daemon changes, and root cannot even read
these mounts (no allow_other, no allow_root: agent/userwalk.py). So each place is walked, as
its owner, when it appears and every `walk_s` while mounted, each walk within `max_entries` and
`max_walk_s` (a large phone takes several walks; each goes on where the last stopped). Files
there when the place appeared are a baseline, not egress: a phone carries its owner's photos,
and what is on it was not copied from this PC now. A file new or changed after that (by size or
mtime) is opened by the walker, its descriptor handed to the pipeline's lanes like any egress
file (hashed, inspected, classified, reported as egress.file). During the first round of walks a
file whose mtime is after the place appeared is not baseline either.

Listing /proc/self/mountinfo is one read per `poll_s`; the gvfs folder is listed as its owner.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from loguru import logger

from agent.content.worker import HEADER, MAX_ANSWER_BYTES, receive_exactly, send_message
from agent.places import EgressPlace, EgressPlaces
from agent.usermounts_config import UserMountsConfig
from agent.userwalk import STAT_FIELDS, b64, unb64
from rules.events import Media

GVFS_FSTYPE = "fuse.gvfsd-fuse"
MTP_FSTYPES = ("fuse.jmtpfs", "fuse.simple-mtpfs", "fuse.go-mtpfs", "fuse.mtpfs", "fuse.aft-mtp-mount")
USER_FSTYPES = (GVFS_FSTYPE, *MTP_FSTYPES)
# gvfs's mount folders are `scheme:key=value,...` (GMountSpec); the kind each scheme is
GVFS_KINDS = {
    "mtp": "phone",
    "gphoto2": "phone",  # cameras, and phones in PTP mode
    "afc": "phone",  # iPhones and iPads
    "smb-share": "share",
    "sftp": "share",
    "dav": "share",
    "davs": "share",
    "ftp": "share",
    "ftps": "share",
    "nfs": "share",
    "afp-volume": "share",
    "google-drive": "share",
    "onedrive": "share",
}
ANSWER_TIMEOUT_S = 30.0  # a walker silent this long past its walk budget is ended (a hung phone)
TICK_S = 0.5


@dataclass(frozen=True)
class UserMount:
    """A FUSE mount a user made (mountinfo's view): who may enter it."""

    mountpoint: str
    fstype: str
    source: str
    uid: int
    gid: int


@dataclass(frozen=True)
class GvfsName:
    kind: str  # phone | share
    app: str  # the device or server, readable: "Xiaomi Redmi Note 12", "fs01/drawings"
    serial: str = ""
    scheme: str = ""


def parse_gvfs_name(name: str) -> GvfsName | None:
    """What a gvfs mount folder is, or None when it is no phone or share gvfs makes.
    `mtp:host=Xiaomi_Redmi_Note_12_abc123` -> phone "Xiaomi Redmi Note 12", serial abc123 (the
    host is udev's ID_SERIAL, vendor_model_serial); `smb-share:server=fs01,share=drawings` ->
    share "fs01/drawings"."""
    scheme, sep, rest = name.partition(":")
    kind = GVFS_KINDS.get(scheme)
    if not sep or kind is None:
        return None
    keys = {k: unquote(v) for k, _, v in (part.partition("=") for part in rest.split(","))}
    host = keys.get("host", "") or keys.get("server", "")
    if kind == "phone":
        words = [w for w in host.replace("-", " ").split("_") if w]
        serial = ""
        if len(words) > 1 and len(words[-1]) >= 6 and any(c.isdigit() for c in words[-1]):
            serial = words.pop()  # ID_SERIAL_SHORT: a model name's last word is seldom so long and numbered
        return GvfsName(kind, " ".join(words) or host, serial, scheme)
    where = host + ("/" + keys["share"] if keys.get("share") else "")
    if keys.get("user"):
        where = f"{keys['user']}@{where}"
    return GvfsName(kind, where or rest, "", scheme)


def read_user_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[UserMount]:
    """The FUSE mounts of phones and gvfs in the mount table, with their owners (user_id=,
    group_id= in the super block's options)."""
    found = []
    with open(mountinfo, "rb") as f:
        for line in f:
            fields = line.split()
            try:
                sep = fields.index(b"-")
                mountpoint, fstype, source, opts = fields[4], fields[sep + 1], fields[sep + 2], fields[sep + 3]
            except (ValueError, IndexError):
                continue
            fstype_text = fstype.decode("ascii", "replace")
            if fstype_text not in USER_FSTYPES:
                continue
            owner = dict(o.partition(b"=")[::2] for o in opts.split(b","))
            try:
                uid, gid = int(owner[b"user_id"]), int(owner[b"group_id"])
            except (KeyError, ValueError):
                continue
            found.append(
                UserMount(os.fsdecode(_unescape(mountpoint)), fstype_text, os.fsdecode(_unescape(source)), uid, gid)
            )
    return found


def _unescape(raw: bytes) -> bytes:
    """mountinfo writes space, tab, newline and backslash as \\ooo."""
    if b"\\" not in raw:
        return raw
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i] == 0x5C and i + 3 < len(raw) and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


class WalkerProcess:
    """One agent.userwalk process running as a mount's owner; started on first use."""

    def __init__(self, uid: int, gid: int) -> None:
        self.uid, self.gid = uid, gid
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None

    def ask(self, request: dict, timeout_s: float) -> tuple[dict, int | None]:
        """The walker's answer and the descriptor sent with it; raises OSError or TimeoutError
        (the walker is then ended, and the next request starts a fresh one)."""
        try:
            self._ensure_started()
            send_message(self._sock, request)
            return self._answer(time.monotonic() + timeout_s)
        except (OSError, EOFError, TimeoutError, ValueError) as exc:
            self.close()
            raise OSError(f"user-mount walker failed: {type(exc).__name__}") from exc

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)

    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.set_inheritable(False)
        argv = [sys.executable, "-m", "agent.userwalk", str(theirs.fileno()), str(self.uid), str(self.gid)]
        try:
            self._proc = subprocess.Popen(argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, cwd="/")
        finally:
            theirs.close()
        self._sock = ours

    def _answer(self, deadline: float) -> tuple[dict, int | None]:
        wait_s = deadline - time.monotonic()
        self._sock.settimeout(max(wait_s, 0.01))
        try:
            head, fds, _flags, _addr = socket.recv_fds(self._sock, HEADER.size, 1)
        except TimeoutError:
            raise TimeoutError from None
        finally:
            self._sock.settimeout(None)
        if not head:
            raise EOFError("walker closed the socket")
        if len(head) < HEADER.size:
            head += receive_exactly(self._sock, HEADER.size - len(head), deadline)
        (length,) = HEADER.unpack(head)
        if length > MAX_ANSWER_BYTES:
            for fd in fds:
                os.close(fd)
            raise ValueError("answer too large")
        answer = json.loads(receive_exactly(self._sock, length, deadline))
        return answer, fds[0] if fds else None


@dataclass
class _Place:
    """A phone or share being walked (worker-thread state, not a boundary value)."""

    place: EgressPlace
    owner: tuple[int, int]
    appeared_ns: int  # wall time it was first seen: a file changed after it is no baseline
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # relative path -> (size, mtime_ns)
    round_seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # this round of walks so far
    cursor: list | None = None  # where the next walk goes on (None: from the start)
    baseline: bool = True  # the first round of walks is under way
    walk_due: float = 0.0
    pending: dict[str, float] = field(default_factory=dict)  # relative path -> when to look again


class UserMountMonitor:
    """Finds phones and shares mounted in user space, walks them as their owner, and hands what
    is copied there to `submit(path, fd, st, place) -> bool` (the pipeline's lanes; False: full,
    the file is tried again). `on_place(place, mounted)` is told when a place comes and goes."""

    def __init__(
        self,
        config: UserMountsConfig,
        submit: Callable[[str, int, os.stat_result, EgressPlace], bool],
        on_place: Callable[[EgressPlace, bool], None],
        poll_s: float = 1.0,
        list_mounts: Callable[[], list[UserMount]] = read_user_mounts,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.submit, self.on_place = config, submit, on_place
        self.poll_s, self.list_mounts, self.clock = poll_s, list_mounts, clock
        self.places = EgressPlaces()  # what make_event asks for details.app
        self._places: dict[str, _Place] = {}
        self._walkers: dict[tuple[int, int], WalkerProcess] = {}
        self._listed_at = -1e9
        self.walks = 0  # walks done (tests and the docs' cost figures read it)
        self.entries_walked = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usermounts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        for walker in self._walkers.values():
            walker.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # one bad poll must not end the watch of phones
                logger.exception("user mount poll failed")
            self._stop.wait(TICK_S)

    def step(self) -> None:
        now = self.clock()
        if now - self._listed_at >= self.poll_s:
            self._listed_at = now
            self._update_places()
        for state in list(self._places.values()):
            if self._stop.is_set():
                return
            if state.walk_due <= now:
                state.walk_due = now + self.config.walk_s
                self._walk(state)
            self._look_again(state, self.clock())

    # --- which places there are -----------------------------------------------------------

    def _update_places(self) -> None:
        current: dict[str, tuple[EgressPlace, tuple[int, int]]] = {}
        for mount in self.list_mounts():
            if mount.fstype == GVFS_FSTYPE:
                current.update(self._gvfs_places(mount))
            else:
                media = Media(mount.mountpoint, device=mount.source, fstype=mount.fstype, bus="usb")
                current[mount.mountpoint] = (EgressPlace(mount.mountpoint, "phone", media), (mount.uid, mount.gid))
        for root in [r for r in self._places if r not in current]:
            state = self._places.pop(root)
            self.places.remove(root)
            logger.info("user mount gone path={!r} kind={}", root, state.place.kind)
            self.on_place(state.place, False)
        for root, (place, owner) in current.items():
            if root in self._places:
                continue
            logger.info("user mount found path={!r} kind={} app={!r}", root, place.kind, place.app)
            self.on_place(place, True)
            self.places.add(place)
            self._places[root] = _Place(place, owner, time.time_ns())

    def _gvfs_places(self, mount: UserMount) -> dict[str, tuple[EgressPlace, tuple[int, int]]]:
        """gvfsd-fuse's folders that are phones or shares (listed as the owner)."""
        owner = (mount.uid, mount.gid)
        try:
            answer, _ = self._walker(owner).ask(
                {"op": "list", "path": b64(os.fsencode(mount.mountpoint))}, ANSWER_TIMEOUT_S
            )
        except OSError as exc:
            logger.warning("cannot list gvfs mounts path={!r} error={!r}", mount.mountpoint, str(exc))
            return {}
        if "error" in answer:
            logger.warning("cannot list gvfs mounts path={!r} error={!r}", mount.mountpoint, answer["error"])
            return {}
        found = {}
        for raw in (unb64(n) for n in answer.get("names", [])):
            name = os.fsdecode(raw)
            what = parse_gvfs_name(name)
            if what is None:
                continue
            root = os.path.join(mount.mountpoint, name)
            bus = "usb" if what.kind == "phone" else ""
            media = Media(
                root, device=name, fstype=GVFS_FSTYPE, label=what.app, model=what.app, serial=what.serial, bus=bus
            )
            found[root] = (EgressPlace(root, what.kind, media, app=what.app), owner)
        return found

    def _walker(self, owner: tuple[int, int]) -> WalkerProcess:
        if owner not in self._walkers:
            self._walkers[owner] = WalkerProcess(*owner)
        return self._walkers[owner]

    # --- walking ----------------------------------------------------------------------------

    def _walk(self, state: _Place) -> None:
        root = state.place.root
        request = {
            "op": "walk",
            "root": b64(os.fsencode(root)),
            "after": state.cursor,
            "max_entries": self.config.max_entries,
            "max_s": self.config.max_walk_s,
        }
        try:
            answer, _ = self._walker(state.owner).ask(request, self.config.max_walk_s + ANSWER_TIMEOUT_S)
        except OSError as exc:
            logger.warning("cannot walk user mount path={!r} error={!r}", root, str(exc))
            return
        if "error" in answer:
            logger.warning("cannot walk user mount path={!r} error={!r}", root, answer["error"])
            return
        self.walks += 1
        self.entries_walked += int(answer.get("entries", 0))
        for rel_b64, size, mtime_ns in answer.get("files", []):
            rel = os.fsdecode(unb64(rel_b64))
            now_is = (int(size), int(mtime_ns))
            state.round_seen[rel] = now_is
            if state.seen.get(rel) == now_is:
                continue
            known = rel in state.seen
            state.seen[rel] = now_is
            if state.baseline and not known and now_is[1] < state.appeared_ns:
                continue  # there before the place appeared: baseline
            state.pending.setdefault(rel, 0.0)
        state.cursor = answer.get("cursor")
        if state.cursor is None:  # a round of walks is complete: what it did not see is gone
            state.seen, state.round_seen = state.round_seen, {}
            if state.baseline:
                logger.info("user mount baseline path={!r} files={}", root, len(state.seen))
            state.baseline = False

    def _look_again(self, state: _Place, now: float) -> None:
        """Open the files found new or changed once they have settled, and hand them over."""
        for rel, due in sorted(state.pending.items(), key=lambda kv: kv[1]):
            if due > now:
                continue
            path = os.path.join(state.place.root, rel)
            try:
                answer, fd = self._walker(state.owner).ask(
                    {"op": "open", "path": b64(os.fsencode(path))}, ANSWER_TIMEOUT_S
                )
            except OSError as exc:
                logger.warning("cannot open user mount file path={!r} error={!r}", path, str(exc))
                return
            if fd is None:
                state.pending.pop(rel)  # gone meanwhile, or not a file: the next walk says
                continue
            st = _stat_result(answer["st"])
            settled = time.time_ns() - st.st_mtime_ns >= self.config.settle_s * 1e9
            if not settled and (st.st_size, st.st_mtime_ns) != state.seen.get(rel):
                state.seen[rel] = (st.st_size, st.st_mtime_ns)
                state.pending[rel] = now + self.config.settle_s  # still being copied
                os.close(fd)
                continue
            if not settled and due == 0.0:
                state.pending[rel] = now + self.config.settle_s  # first sight of a fresh file: once more
                os.close(fd)
                continue
            state.seen[rel] = (st.st_size, st.st_mtime_ns)
            if not self.submit(path, fd, st, state.place):
                os.close(fd)
                return  # the lanes are full: next tick
            del state.pending[rel]


def _stat_result(values: list) -> os.stat_result:
    if len(values) != STAT_FIELDS:
        raise ValueError("bad stat from walker")
    st = os.stat_result(values)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("not a regular file")
    return st
