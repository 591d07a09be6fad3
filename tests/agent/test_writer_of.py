"""Who wrote an egress file: the kernel's word (fanotify), a process caught writing, else the
file's owner from the fstat the pipeline already has; never the login session's guess."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from agent.attribution import CLOSE_WRITE, FILE_OWNER, OPEN_FILE, UNKNOWN, Writer, WriterTracker, user_name
from agent.fanotify import METADATA, Closer, WriteWatch, process_of


def test_the_owner_from_the_fstat_is_the_user_when_nothing_better_is_known(tmp_path: Path) -> None:
    target = tmp_path / "copy.bin"
    target.write_bytes(b"x")
    daemon = pwd.getpwuid(1)
    os.chown(target, daemon.pw_uid, daemon.pw_gid)
    st = os.stat(target)
    assert WriterTracker().writer_of(str(target), st) == (daemon.pw_name, FILE_OWNER)
    assert WriterTracker().writer_of(str(target), 1) == (daemon.pw_name, FILE_OWNER)  # or just the uid
    assert WriterTracker().writer_of(str(target), None) == ("", UNKNOWN)
    assert user_name(4_000_123) == "4000123"  # a uid without a name is still a user


def test_a_process_caught_writing_outranks_the_owner(tmp_path: Path) -> None:
    path = str(tmp_path / "big.iso")
    found = {path: Writer(4242, "cp", "/usr/bin/cp", "alice")}
    tracker = WriterTracker(find=lambda paths, roots: (found, {}))
    tracker.seen(path, str(tmp_path))
    tracker.walk_once()
    assert tracker.writer_of(path, os.stat(tmp_path)) == ("alice", OPEN_FILE)


def test_the_kernels_word_outranks_everything(tmp_path: Path) -> None:
    path = str(tmp_path / "report.pdf")
    writes = WriteWatch()
    writes._by_path[path] = Closer(4242, 1, "cp")
    found = {path: Writer(4242, "cp", "/usr/bin/cp", "alice")}
    tracker = WriterTracker(find=lambda paths, roots: (found, {}), writes=writes)
    tracker.seen(path, str(tmp_path))
    tracker.walk_once()
    assert tracker.writer_of(path, 0) == (pwd.getpwuid(1).pw_name, CLOSE_WRITE)
    assert tracker.details(path) == {
        "attribution": CLOSE_WRITE, "process": {"pid": 4242, "name": "cp", "exe": "", "user": pwd.getpwuid(1).pw_name}
    }
    writes.stop()


def test_events_are_read_and_their_descriptors_closed(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("x")
    writes = WriteWatch()
    gone = 2**22 + 7  # above any pid_max default: never a live process
    writes._by_pid[gone] = Closer(gone, 1, "cp")  # seen writing earlier, gone from /proc by its close
    fd_live, fd_gone = os.open(target, os.O_RDONLY), os.open(target, os.O_RDONLY)
    buf = (
        METADATA.pack(METADATA.size, 3, 0, METADATA.size, 0x4000, -1, 0)  # overflow: no descriptor
        + METADATA.pack(METADATA.size, 3, 0, METADATA.size, 0x8, fd_live, os.getpid())
        + METADATA.pack(METADATA.size, 3, 0, METADATA.size, 0x8, fd_gone, gone)
    )
    writes.handle(buf)
    assert writes.closer(str(target)) == Closer(gone, 1, "cp")  # the later event wins
    for fd in (fd_live, fd_gone):
        with pytest.raises(OSError):
            os.fstat(fd)
    assert process_of(os.getpid()) == Closer(os.getpid(), os.geteuid(), process_of(os.getpid()).name)
    assert process_of(gone) is None
    writes.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0, reason="fanotify needs Linux and root")
def test_the_kernel_names_the_writing_process_and_its_user() -> None:
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is missing (Debian package util-linux)")
    writes = WriteWatch()
    if not writes.available:
        pytest.skip("fanotify is not available here (no CAP_SYS_ADMIN?)")
    folder = Path(tempfile.mkdtemp(prefix="mw-fan-"))
    folder.chmod(0o777)
    nobody = pwd.getpwnam("nobody")
    try:
        writes.start()
        assert writes.watch(str(folder))
        target = folder / "out.bin"
        write = "import sys, time; f = open(sys.argv[1], 'wb'); f.write(b'x' * 4096); f.flush(); time.sleep(0.2); f.close()"
        subprocess.run(
            ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", sys.executable, "-c", write, str(target)],
            check=True,
        )
        deadline = time.monotonic() + 5
        while writes.closer(str(target)) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        closer = writes.closer(str(target))
        assert closer is not None and closer.uid == nobody.pw_uid
        assert WriterTracker(writes=writes).writer_of(str(target), 0) == ("nobody", CLOSE_WRITE)
    finally:
        writes.stop()
        shutil.rmtree(folder, ignore_errors=True)
