"""The agent's own inotify reader (agent/inotify.py) against an employee who wants a file out
unseen: ways around the watches that send the watch no event at all."""

from __future__ import annotations

import os
import pwd
import queue
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from agent import inotify
from agent.inotify import InotifyWatchers
from agent.watcher import TOO_DEEP
from tests.agent.test_pipeline import Rig

pytestmark = pytest.mark.skipif(not inotify.available(), reason="inotify is Linux only")


@pytest.fixture
def rig(tmp_path, monkeypatch):
    monkeypatch.delenv("MIWEI_TEST_WATCHER", raising=False)
    r = Rig(tmp_path)
    assert isinstance(r.watchers, InotifyWatchers)
    yield r
    r.close()


def _mount_tmpfs(folder) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")


def _unmount(folder) -> None:
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def mounted(rig):
    """Unmounts, at the end, whatever the test mounted on the stick's folder."""
    yield rig.usb
    _unmount_all(rig.usb)


def _unmount_all(folder) -> None:
    """Everything mounted on folder (root may not even stat a user's FUSE mount: no mountpoint)."""
    for _ in range(5):
        if subprocess.run(["umount", "-l", str(folder)], capture_output=True).returncode != 0:
            return


@pytest.mark.reliability(
    area="fault",
    fault="A file system mounted over a watched egress folder",
    how="a tmpfs mounted on the watched folder after its watch (as a FUSE mount by the folder's owner would be), then a file written there",
    outcome="within REWATCH_S the folder is watched anew and scanned; the file is reported (the watch on the covered folder saw nothing before)",
)
def test_a_file_system_mounted_over_the_watched_folder_is_watched(rig, mounted):
    _mount_tmpfs(mounted)
    (mounted / "drawing.dwg").write_bytes(b"the drawing" * 100)
    [event] = rig.wait_events("egress.file", 1, timeout_s=inotify.REWATCH_S * 4)
    assert event["path"] == str(mounted / "drawing.dwg")
    time.sleep(inotify.REWATCH_S + 0.3)
    (mounted / "later.dwg").write_bytes(b"written once the new watch exists")
    events = rig.wait_events("egress.file", 2, timeout_s=5)
    assert sorted(e["path"] for e in events) == sorted(str(mounted / n) for n in ("drawing.dwg", "later.dwg"))


@pytest.mark.reliability(
    area="fault",
    fault="A watched egress folder unmounted and mounted again",
    how="the file system on the watched folder unmounted (IN_UNMOUNT, IN_IGNORED), a file written to the bare folder, then mounted again and a file written",
    outcome="the folder is reported gone and watched again (the bare folder, then the new mount); both files are reported",
)
def test_a_watched_folder_unmounted_and_mounted_again_is_watched_again(rig, mounted):
    _mount_tmpfs(mounted)
    time.sleep(inotify.REWATCH_S * 2.5)  # watched on the mount now
    (mounted / "one.bin").write_bytes(b"on the first mount")
    rig.wait_events("egress.file", 1, timeout_s=5)
    _unmount(mounted)
    time.sleep(inotify.REWATCH_S * 2.5)
    (mounted / "bare.bin").write_bytes(b"in the folder under the mount")
    rig.wait_events("egress.file", 2, timeout_s=5)
    _mount_tmpfs(mounted)
    time.sleep(inotify.REWATCH_S * 2.5)
    (mounted / "two.bin").write_bytes(b"on the second mount")
    events = rig.wait_events("egress.file", 3, timeout_s=5)
    assert sorted(e["path"] for e in events) == sorted(str(mounted / n) for n in ("one.bin", "bare.bin", "two.bin"))
    _unmount(mounted)


@pytest.mark.reliability(
    area="fault",
    fault="The inotify reader fails on an unexpected error",
    how="handling a new folder's creation raises once in the reader thread; files are then written into that folder",
    outcome="the failure is logged, every watched folder is walked again (the lost folder watched) and the pipeline rescans; later writes there are reported",
)
def test_a_failure_in_the_reader_does_not_leave_a_new_folder_unwatched(rig, monkeypatch):
    real = rig.watchers._arrived
    failed: list[bytes] = []

    def arrived_once(parent_wd, path, at):
        if not failed:
            failed.append(path)
            raise RuntimeError("an unexpected bug")
        real(parent_wd, path, at)

    monkeypatch.setattr(rig.watchers, "_arrived", arrived_once)
    (rig.usb / "new").mkdir()
    time.sleep(1.5)  # the failure, its pause and the recovery
    assert failed == [os.fsencode(rig.usb / "new")]
    (rig.usb / "new" / "after.dwg").write_bytes(b"written after the failure" * 50)
    [event] = rig.wait_events("egress.file", 1, timeout_s=5)
    assert event["path"] == str(rig.usb / "new" / "after.dwg")


@pytest.fixture
def employee_rig(monkeypatch):
    """A Rig whose stick folder belongs to an unprivileged user made for the test (removed after
    it), in a folder that user may reach."""
    if os.geteuid() != 0:
        pytest.skip("creating a user needs root")
    for tool in ("useradd", "userdel", "setpriv", "bindfs", "fusermount"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is missing (Debian packages passwd, util-linux, bindfs, fuse3)")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse")
    monkeypatch.delenv("MIWEI_TEST_WATCHER", raising=False)
    name = "mw" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name], check=True)
    top = Path(tempfile.mkdtemp(prefix="mwinotify", dir="/tmp"))
    top.chmod(0o755)
    r = None
    try:
        user = pwd.getpwnam(name)
        r = Rig(top)
        top.chmod(0o755)  # the agent's state beside it made it private
        r.watchers._on_blind = r.pipeline.on_blind  # as agent/app.py wires it
        os.chown(r.usb, user.pw_uid, user.pw_gid)
        yield r, user
    finally:
        if r is not None:
            _unmount_all(r.usb)
            r.close()
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        subprocess.run(["userdel", name], check=False)
        shutil.rmtree(top, ignore_errors=True)


def _as(user: pwd.struct_passwd, *argv: str) -> list[str]:
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--", *argv]


@pytest.mark.reliability(
    area="fault",
    fault="An employee mounts a FUSE file system over their own egress folder",
    how="an unprivileged user who owns the watched folder mounts bindfs over it (root may not enter the mount) and writes a file there",
    outcome="the folder is reported as a blind spot (agent.error naming it) within a few REWATCH_S, not watched in silence",
)
def test_a_fuse_mount_over_the_egress_folder_by_its_owner_is_reported_blind(employee_rig):
    rig, user = employee_rig
    stash = Path(tempfile.mkdtemp(prefix="mwstash", dir="/tmp"))
    try:
        os.chown(stash, user.pw_uid, user.pw_gid)
        done = subprocess.run(_as(user, "bindfs", "--no-allow-other", str(stash), str(rig.usb)), capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"bindfs cannot mount here: {done.stderr.decode(errors='replace').strip()}")
        subprocess.run(_as(user, "sh", "-c", f"echo drawing > {rig.usb}/out.dwg"), check=True)
        errors = rig.wait_events("agent.error", 1, timeout_s=inotify.REWATCH_S * 5)
        assert any(e.get("path") == str(rig.usb) for e in errors), errors
    finally:
        _unmount_all(rig.usb)
        shutil.rmtree(stash, ignore_errors=True)


@pytest.mark.reliability(
    area="fault",
    fault="A file system mounted on a folder inside a watched egress folder",
    how="a tmpfs mounted on a subfolder after the watch (no event says so), then a file written into it",
    outcome="within REWATCH_S the mount is watched as part of the place; the file is reported",
)
def test_a_file_system_mounted_inside_the_watched_folder_is_watched(rig):
    inner = rig.usb / "inner"
    inner.mkdir()
    time.sleep(0.3)
    _mount_tmpfs(inner)
    try:
        time.sleep(inotify.REWATCH_S * 2.5)
        (inner / "drawing.dwg").write_bytes(b"the drawing" * 100)
        [event] = rig.wait_events("egress.file", 1, timeout_s=5)
        assert event["path"] == str(inner / "drawing.dwg")
    finally:
        _unmount_all(inner)


@pytest.mark.reliability(
    area="fault",
    fault="An employee mounts a FUSE file system inside their own egress folder",
    how="an unprivileged user mounts bindfs on a subfolder of the watched folder they own (root may not enter it) and writes a file there",
    outcome="the subfolder is reported as a blind spot (agent.error naming it) within a few REWATCH_S",
)
def test_a_fuse_mount_inside_the_egress_folder_is_reported_blind(employee_rig):
    rig, user = employee_rig
    inner, stash = rig.usb / "inner", Path(tempfile.mkdtemp(prefix="mwstash", dir="/tmp"))
    inner.mkdir()
    try:
        os.chown(inner, user.pw_uid, user.pw_gid)
        os.chown(stash, user.pw_uid, user.pw_gid)
        time.sleep(0.3)
        done = subprocess.run(_as(user, "bindfs", "--no-allow-other", str(stash), str(inner)), capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"bindfs cannot mount here: {done.stderr.decode(errors='replace').strip()}")
        subprocess.run(_as(user, "sh", "-c", f"echo drawing > {inner}/out.dwg"), check=True)
        errors = rig.wait_events("agent.error", 1, timeout_s=inotify.REWATCH_S * 5)
        assert any(e.get("path") == str(inner) for e in errors), errors
    finally:
        _unmount_all(inner)
        shutil.rmtree(stash, ignore_errors=True)


@pytest.mark.reliability(
    area="fault",
    fault="A folder chain deeper than PATH_MAX moved into a watched egress folder",
    how="24 folders of 250-byte names made outside (by descriptor), then moved in with one rename; a file written at the bottom",
    outcome="the folder past PATH_MAX is reported as a blind spot (so the pipeline walks it by descriptor), not skipped in silence",
)
def test_a_chain_past_path_max_moved_in_is_reported_blind(tmp_path):
    root, outside = tmp_path / "usb", tmp_path / "prepared"
    root.mkdir()
    outside.mkdir()
    name = "d" * 250
    fd = os.open(outside, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(24):  # 24 x 251 bytes: past PATH_MAX (4096)
            os.mkdir(name, dir_fd=fd)
            deeper = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = deeper
        out = os.open("copy.dwg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, b"the drawing")
        os.close(out)
    finally:
        os.close(fd)
    changes: queue.Queue = queue.Queue()
    blind: list = []
    w = InotifyWatchers(changes, lambda reason: None, blind.append)
    try:
        w.start()
        assert w.watch(str(root))
        os.rename(outside / name, root / name)
        deadline = time.monotonic() + 5
        while not blind and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [len(os.fsencode(s.path)) >= 4096 and s.reason == TOO_DEEP for s in blind] == [True]
    finally:
        w.stop()
        subprocess.run(["rm", "-rf", str(root), str(outside)], check=False)
