"""Best-effort attribution of egress writes to processes, with real processes holding files open."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.attribution import (
    FILE_OWNER,
    NOT_SEEN,
    OPEN_FILE,
    SAME_BURST,
    Writer,
    WriterTracker,
    open_writers,
    open_writers_reference,
    owners_kept,
    user_name,
)

HOLD = "import sys, time; f = open(sys.argv[1], sys.argv[2]); f.write('x') if 'r' not in sys.argv[2] else None; f.flush(); print('open', flush=True); time.sleep(60)"


@pytest.fixture
def holder():
    procs = []

    def start(path: Path, mode: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), mode], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "open"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_process_writing_a_file_is_found_with_its_name_and_user(tmp_path: Path, holder) -> None:
    usb = tmp_path / "usb"
    usb.mkdir()
    target = usb / "big-copy.iso"
    proc = holder(target, "w")
    found, by_root = open_writers({str(target), str(usb / "nobody-writes-this")}, {str(usb)})
    assert set(found) == {str(target)}
    writer = found[str(target)]
    assert writer.pid == proc.pid and writer.name.startswith("python") and writer.exe
    assert writer.user  # the OS told us whose process it is
    assert by_root[str(usb)].pid == proc.pid


def test_a_reader_is_not_a_writer(tmp_path: Path, holder) -> None:
    target = tmp_path / "read-only.txt"
    target.write_text("x")
    holder(target, "r")
    found, by_root = open_writers({str(target)}, {str(tmp_path)})
    if sys.platform.startswith("linux"):  # only Linux tells the mode a file is open in
        assert found == {} and by_root == {}


def test_the_tracker_answers_from_its_own_thread(tmp_path: Path, holder) -> None:
    target = tmp_path / "copy.bin"
    proc = holder(target, "a")
    tracker = WriterTracker(walks_per_s=20)
    tracker.start()
    try:
        tracker.seen(str(target), str(tmp_path))
        deadline = time.monotonic() + 10
        while tracker.writer(str(target)) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        details = tracker.details(str(target))
    finally:
        tracker.stop()
    assert details["attribution"] == OPEN_FILE and details["process"]["pid"] == proc.pid


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_files_of_one_burst_are_credited_to_the_writer_caught_on_one_of_them() -> None:
    cp = Writer(4242, "cp", "/usr/bin/cp", "zhangsan")
    calls = []
    running = {4242}

    def find(paths, roots):
        calls.append((set(paths), set(roots)))
        return ({"/usb/a.dwg": cp} if "/usb/a.dwg" in paths else {}), {"/usb": cp}

    clock = FakeClock()
    tracker = WriterTracker(find=find, clock=clock, same_burst_s=5, alive=running.__contains__)
    tracker.seen("/usb/a.dwg", "/usb")
    tracker.seen("/usb/b.dwg", "/usb")
    tracker.walk_once()
    assert calls == [({"/usb/a.dwg", "/usb/b.dwg"}, {"/usb"})]  # one walk answers both
    assert tracker.writer("/usb/a.dwg") == cp
    burst = {
        "attribution": SAME_BURST,
        "process": {"pid": 4242, "name": "cp", "exe": "/usr/bin/cp", "user": "zhangsan"},
    }
    assert tracker.details("/usb/b.dwg") == burst  # waited for the same walk
    clock.now += 2
    tracker.seen("/usb/c.dwg", "/usb")  # moments later, cp still running
    assert tracker.details("/usb/c.dwg") == burst
    running.clear()
    tracker.seen("/usb/d.dwg", "/usb")  # cp has exited: it did not write this one
    clock.now += 60
    tracker.seen("/usb/later.txt", "/usb")
    assert tracker.details("/usb/d.dwg") == {"attribution": NOT_SEEN}
    assert tracker.details("/usb/later.txt") == {"attribution": NOT_SEEN}
    assert tracker.details("/other/x") == {"attribution": NOT_SEEN}


def test_a_failing_walk_is_not_fatal_and_requests_are_bounded() -> None:
    def broken(paths, roots):
        raise RuntimeError("procfs went away")

    tracker = WriterTracker(find=broken, keep=3)
    for i in range(10):
        tracker.seen(f"/usb/{i}", "/usb")
    assert len(tracker._wanted) == 3
    tracker.walk_once()  # logged, not raised
    assert tracker.writer("/usb/0") is None


def test_processes_that_vanish_or_refuse_are_skipped() -> None:
    import psutil

    procs = [
        _Proc(info={"pid": 1, "name": "gone"}, error=psutil.NoSuchProcess(1)),
        _Proc(info={"pid": 2, "name": "locked"}, error=psutil.AccessDenied(2)),
        _Proc(info={"pid": 3, "name": "cp", "username": None, "exe": None}, error=None),
    ]
    for walk in (open_writers, open_writers_reference):
        found, _ = walk({"/usb/x"}, {"/usb"}, processes=lambda attrs: procs)
        assert found == {"/usb/x": Writer(3, "cp", "", "")}


class _Proc(SimpleNamespace):
    """A psutil.Process as both walks read it: info (process_iter's attrs), open_files, as_dict."""

    files = (("/usb/x", "w"),)
    gone_after_files = False  # as_dict finds it ended

    def open_files(self):
        if self.error:
            raise self.error
        return [SimpleNamespace(path=path, mode=mode) for path, mode in self.files]

    def as_dict(self, attrs, ad_value=None):
        import psutil

        if self.gone_after_files:
            raise psutil.NoSuchProcess(self.info["pid"])
        return {name: self.info.get(name, ad_value) for name in attrs}


def test_the_lean_walk_finds_what_the_reference_finds_among_made_up_processes() -> None:
    """Processes that hold several matching files, only read ones, none, files under no root,
    with names or users withheld, and this very process: both walks answer alike."""
    import os

    import psutil

    files = [("/usb/a", "w"), ("/usb/b", "r"), ("/usb/sub/c", "a+"), ("/elsewhere/d", "r+"), ("/usb2/e", "w")]
    procs = []
    for pid in range(1, 40):
        held = tuple(files[i] for i in range(len(files)) if (pid >> i) & 1)
        info = {"pid": pid, "name": f"p{pid}", "username": None if pid % 3 == 0 else "alice", "exe": "/bin/cp"}
        error = psutil.AccessDenied(pid) if pid % 11 == 0 else None
        procs.append(_Proc(info=info, error=error, files=held, gone_after_files=False))
    procs.append(_Proc(info={"pid": os.getpid(), "name": "me"}, error=None, files=(("/usb/a", "w"),)))
    fast = open_writers({"/usb/a", "/elsewhere/d"}, {"/usb", "/usb2"}, processes=lambda attrs: procs)
    reference = open_writers_reference({"/usb/a", "/elsewhere/d"}, {"/usb", "/usb2"}, processes=lambda attrs: procs)
    assert fast == reference
    assert fast[0] and fast[1]


def test_a_process_that_ends_before_its_name_is_read_is_skipped() -> None:
    """The lean walk reads a name after the files (the reference before them): a writer that ends
    in between is skipped, as the reference skips one that ends before its files are read."""
    procs = [
        _Proc(info={"pid": 5, "name": "cp", "username": "alice", "exe": "/bin/cp"}, error=None),
        _Proc(info={"pid": 6, "name": "rsync"}, error=None, gone_after_files=True),
    ]
    assert open_writers({"/usb/x"}, {"/usb"}, processes=lambda attrs: procs) == (
        {"/usb/x": Writer(5, "cp", "/bin/cp", "alice")},
        {"/usb": Writer(5, "cp", "/bin/cp", "alice")},
    )


def test_the_lean_walk_finds_what_the_reference_finds_among_real_processes(tmp_path: Path, holder) -> None:
    usb, other = tmp_path / "usb", tmp_path / "other"
    usb.mkdir()
    other.mkdir()
    for path, mode in [(usb / "w.bin", "w"), (usb / "a.bin", "a"), (other / "rplus.bin", "r+"), (usb / "r.bin", "r")]:
        path.write_text("x")
        holder(path, mode)
    mine = open(usb / "mine.bin", "w")  # this process: never its own writer
    try:
        paths = {str(usb / "w.bin"), str(other / "rplus.bin"), str(usb / "r.bin")}
        fast, reference = open_writers(paths, {str(usb)}), open_writers_reference(paths, {str(usb)})
    finally:
        mine.close()
    assert fast == reference
    assert set(fast[0]) == {str(usb / "w.bin"), str(other / "rplus.bin")} and set(fast[1]) == {str(usb)}


def test_liveness_follows_the_process_itself() -> None:
    """The cheap check asked at every write of a burst says a process ended as soon as it has, and
    knows no process that never ran."""
    import subprocess
    import sys

    from agent.attribution import Liveness

    alive = Liveness(keep=1)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert alive(child.pid) and alive(child.pid)  # the second answer from the kept descriptor
        assert alive(other.pid)  # keep=1: the first descriptor is closed, not leaked
        child.kill()
        child.wait()
        assert not alive(child.pid)
        assert not alive(2**22 + 12345)  # above pid_max: never a process
    finally:
        for proc in (child, other):
            proc.kill()
            proc.wait()
        alive.close()
    assert alive._fds == {}


def test_a_burst_credited_to_a_running_writer_asks_for_a_walk_only_now_and_then() -> None:
    """A writer caught less than half the same-burst window ago and still running: its place's
    files are credited to it without a walk each (a walk reads every process's open files)."""
    cp = Writer(4242, "cp", "/usr/bin/cp", "zhangsan")
    clock = FakeClock()
    tracker = WriterTracker(
        find=lambda paths, roots: ({}, {"/usb": cp}), clock=clock, same_burst_s=5, alive=lambda pid: True
    )
    tracker.seen("/usb/first.bin", "/usb")
    tracker.walk_once()  # catches cp on the place
    for i in range(100):
        tracker.seen(f"/usb/f{i}.bin", "/usb")
    assert tracker._wanted == {}  # no walk asked for
    assert tracker.details("/usb/f99.bin")["attribution"] == SAME_BURST
    clock.now += 3  # the catch is older than half the window: the next file asks for a walk
    tracker.seen("/usb/later.bin", "/usb")
    assert tracker._wanted == {"/usb/later.bin": "/usb"}
    assert tracker.details("/usb/later.bin")["attribution"] == SAME_BURST


class _CountingCondition(threading.Condition):
    notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)


def _until(done, what: str) -> None:
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_a_burst_wakes_the_walker_once_between_walks_not_once_per_file() -> None:
    """The walker pauses between walks (walks_per_s); what is asked meanwhile waits for the next
    walk. A notify for every request woke it in that pause once per file of a burst, for nothing:
    only a walker waiting for requests, none being there, needs one."""
    walked: list[set[str]] = []
    tracker = WriterTracker(find=lambda paths, roots: (walked.append(set(paths)), ({}, {}))[1], walks_per_s=4)
    tracker._lock = lock = _CountingCondition()
    tracker.start()
    try:
        tracker.seen("/usb/first.bin", "/usb")
        _until(lambda: walked, "the first request was not walked")
        burst = {f"/usb/{i}.bin" for i in range(100)}
        for path in sorted(burst):  # in the walker's pause after its first walk
            tracker.seen(path, "/usb")
        _until(lambda: len(walked) > 1, "the burst was not walked")
        _until(lambda: set().union(*walked[1:]) == burst, "the burst was not walked whole")
        notified = lock.notified
    finally:
        tracker.stop()
    assert walked[0] == {"/usb/first.bin"}
    assert notified <= 3  # the first request, the burst's first (and one more if a walk came mid-burst); not 101


def test_one_look_at_a_writer_answers_as_details_and_writer_of_do() -> None:
    """The pipeline's single look-up (attribution) against the two calls it replaces, for every
    source: the kernel's closer, a walk's writer with and without a user, a burst's credit, the
    file's owner from its fstat, and nothing at all."""
    from agent.fanotify import Closer

    caught = Writer(4242, "cp", "/usr/bin/cp", user_name(os.getuid()))  # its files are its user's
    nameless = Writer(4343, "rsync", "/usr/bin/rsync", "")
    closers = {"/usb/closed.bin": Closer(77, os.getuid(), "cp")}
    writes = SimpleNamespace(closer=closers.get, start=lambda: None, stop=lambda: None)

    def find(paths, roots):
        return {"/usb/caught.bin": caught, "/usb/nameless.bin": nameless}, {"/usb": caught}

    tracker = WriterTracker(find=find, clock=FakeClock(), alive={4242}.__contains__, writes=writes)
    for name in ("caught", "nameless", "credited"):
        tracker.seen(f"/usb/{name}.bin", "/usb")
    tracker.walk_once()
    owned, others = SimpleNamespace(st_uid=os.getuid()), SimpleNamespace(st_uid=54321)  # the credit's user, another
    paths = ["/usb/closed.bin", "/usb/caught.bin", "/usb/nameless.bin", "/usb/credited.bin", "/usb/unseen.bin"]
    answers = set()
    for path in paths:
        for st in (owned, others, None):
            for kept in (True, False):
                one = tracker.attribution(path, st, kept)
                assert one == (tracker.details(path, st, kept), *tracker.writer_of(path, st, kept)), (path, st, kept)
                answers.add(one[2])
    assert answers == {"close-write", OPEN_FILE, SAME_BURST, "file-owner", "unknown"}  # every source was asked


def test_a_same_burst_credit_the_files_owner_refutes_is_not_given() -> None:
    """A copy caught writing in a place is credited with the files written there while it runs,
    but a file owned by another user was not made by it (a process makes its files its own
    user's): that file is said as not seen, its user the owner's. A writer caught with the file
    itself open is a fact and stands; on FAT and shares, where every file shows one owner, the
    owner refutes nothing."""
    import pwd

    nobody = pwd.getpwnam("nobody").pw_uid  # an account that is not root: root's credit is never refuted
    me = user_name(nobody)
    copy = Writer(4242, "cp", "/usr/bin/cp", me)

    def find(paths, roots):
        return ({"/usb/open.bin": copy} if "/usb/open.bin" in paths else {}), {"/usb": copy}

    tracker = WriterTracker(find=find, clock=FakeClock(), alive={4242}.__contains__)
    for name in ("open", "mine", "theirs"):
        tracker.seen(f"/usb/{name}.bin", "/usb")
    tracker.walk_once()
    mine, theirs = SimpleNamespace(st_uid=nobody), SimpleNamespace(st_uid=54321)
    assert tracker.writer_of("/usb/mine.bin", mine) == (me, SAME_BURST)
    assert tracker.writer_of("/usb/theirs.bin", theirs) == ("54321", FILE_OWNER)
    assert tracker.attribution("/usb/theirs.bin", theirs) == ({"attribution": NOT_SEEN}, "54321", FILE_OWNER)
    assert tracker.details("/usb/theirs.bin", 54321) == {"attribution": NOT_SEEN}
    assert tracker.writer_of("/usb/theirs.bin", theirs, owners_kept=False) == (me, SAME_BURST)
    assert tracker.writer_of("/usb/open.bin", theirs) == (me, OPEN_FILE)  # caught with it open: stands
    assert tracker.writer_of("/usb/theirs.bin", None) == (me, SAME_BURST)  # no owner known: nothing refutes


def test_owners_are_kept_on_local_disks_not_on_fat_discs_phones_or_shares() -> None:
    assert owners_kept(None, "sync") and owners_kept("ext4", "removable") and owners_kept("btrfs", "removable")
    for fstype in ("vfat", "exfat", "ntfs3", "fuseblk", "iso9660", "cifs", "fuse.gvfsd-fuse", "VFAT"):
        assert not owners_kept(fstype, "removable"), fstype
    assert not owners_kept(None, "share") and not owners_kept(None, "phone")


def test_root_and_ownerless_file_systems_are_not_refuted_by_the_owner(monkeypatch, tmp_path) -> None:
    """Root's copy may keep the owners of what it copies (sudo cp -a); a FUSE view or a FAT or NTFS
    data partition shows every file as one user's: neither owner says who wrote the file."""
    import pwd

    from agent import attribution

    def mounts(kind: str):
        path = tmp_path / "mountinfo"
        path.write_text(f"36 35 8:1 / / rw - ext4 /dev/sda1 rw\n61 36 0:77 / /folder rw,nosuid - {kind} src rw\n")
        return path

    root = Writer(4242, "cp", "/usr/bin/cp", "root")
    me = Writer(4343, "rsync", "/usr/bin/rsync", user_name(pwd.getpwnam("nobody").pw_uid))

    def find(paths, roots):
        return {}, {"/usb": root, "/folder": me}

    tracker = WriterTracker(find=find, clock=FakeClock(), alive={4242, 4343}.__contains__)
    tracker.seen("/usb/a.bin", "/usb")
    tracker.seen("/folder/b.bin", "/folder")
    tracker.walk_once()
    theirs = SimpleNamespace(st_uid=54321, st_dev=os.makedev(0, 77))
    assert tracker.writer_of("/usb/a.bin", theirs) == ("root", SAME_BURST)
    table = {}

    def fstype_is(kind: str) -> None:  # the mount table the agent reads, with the file's device as `kind`
        table["kind"] = kind

    real = attribution.ownerless_device
    monkeypatch.setattr(attribution, "ownerless_device", lambda device: real(device, str(mounts(table["kind"]))))
    fstype_is("fuse.bindfs")
    assert tracker.writer_of("/folder/b.bin", theirs) == (me.user, SAME_BURST)
    fstype_is("ext4")
    assert tracker.writer_of("/folder/b.bin", theirs) == ("54321", FILE_OWNER)
    fstype_is("ntfs3")
    assert tracker.writer_of("/folder/b.bin", theirs) == (me.user, SAME_BURST)
    unknown = SimpleNamespace(st_uid=54321, st_dev=os.makedev(0, 99))  # in no mount the table lists
    assert tracker.writer_of("/folder/b.bin", unknown) == (me.user, SAME_BURST)


def test_an_old_file_overwritten_during_the_copy_is_not_refuted_by_its_owner(tmp_path) -> None:
    """A file made before the credited copy began was opened and overwritten, not made, by whoever
    wrote it now: its owner is its maker's, so it refutes nothing (statx's birth time). One made
    after the copy began is refuted as before."""
    import pwd
    import subprocess
    import sys

    from agent.attribution import birth_time

    old = tmp_path / "minutes.txt"
    old.write_text("team minutes")
    if birth_time(str(old)) is None:
        pytest.skip("this file system or C library gives no birth time")
    time.sleep(0.3)
    copy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.3)
        new = tmp_path / "drawing.dwg"
        new.write_text("drawing")
        nobody = pwd.getpwnam("nobody").pw_uid
        writer = Writer(copy.pid, "python3", sys.executable, user_name(nobody))

        def find(paths, roots):
            return {}, {str(tmp_path): writer}

        tracker = WriterTracker(find=find, clock=FakeClock(), alive={copy.pid}.__contains__)
        for path in (old, new):
            tracker.seen(str(path), str(tmp_path))
        tracker.walk_once()
        theirs = SimpleNamespace(st_uid=54321)  # owned by a colleague, as the team's file was
        assert tracker.writer_of(str(old), theirs) == (writer.user, SAME_BURST)
        assert tracker.writer_of(str(new), theirs) == ("54321", FILE_OWNER)
    finally:
        copy.kill()
        copy.wait(10)
