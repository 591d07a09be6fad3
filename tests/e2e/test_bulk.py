"""Bulk copies are fully accounted for: nothing a user drops at once is lost, even when the
kernel's inotify queue overflows (the agent rescans and reports what it missed)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.e2e.conftest import DRAWING
from tests.e2e.harness import Deployment, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BULK = 20_000
QUEUE_SYSCTL = Path("/proc/sys/fs/inotify/max_queued_events")


def _make_files(folder: Path, count: int, prefix: str) -> None:
    """count small files of distinct content (1-4 KB), in subfolders of 1,000 like a real tree."""
    for i in range(count):
        sub = folder / f"batch-{i // 1000:02d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{prefix}-{i:05d}.txt").write_bytes(f"{prefix} file {i}\n".encode() * (1 + i % 50) + os.urandom(1024))


def _drop(staging: Path, dest: Path) -> float:
    """Copy a whole tree into dest in one go, as a user's file manager or `cp -r` does."""
    started = time.monotonic()
    subprocess.run(["cp", "-r", f"{staging}/.", str(dest)], check=True)
    return time.monotonic() - started


def _stored_paths(d: Deployment, event_type: str) -> set[str]:
    with closing(sqlite3.connect(d.db_path, timeout=10)) as conn:
        return {path for (path,) in conn.execute("SELECT path FROM events WHERE type = ?", (event_type,))}


@pytest.fixture
def bulk(tmp_path):
    classified = tmp_path / "classified"
    (classified / "drawings").mkdir(parents=True)
    (classified / "drawings" / "pump-impeller.dwg").write_bytes(DRAWING)
    usb = tmp_path / "usb"
    usb.mkdir()
    d = Deployment(tmp_path, [(classified, "core", "Bulk test")], egress_folders=[usb])
    d.classified, d.usb = classified, usb
    yield d
    d.close()


def test_twenty_thousand_files_dropped_on_an_egress_place_are_all_reported(bulk, tmp_path):
    d = bulk
    staging = tmp_path / "staging"
    _make_files(staging, BULK - 20, "egress")
    for i in range(20):  # classified content hidden among them, renamed
        shutil.copyfile(d.classified / "drawings" / "pump-impeller.dwg", staging / f"photo-{i:02d}.jpg")
    d.start_server()
    d.start_agent()
    copy_s = _drop(staging, d.usb)
    started = time.monotonic()
    wait_for(lambda: d.stored_count("egress.file") >= BULK, 900, 1.0, f"{BULK} egress.file events on the collector")
    print(f"\n{BULK} files: copied in {copy_s:.1f}s, all stored {time.monotonic() - started:.1f}s after the copy")
    assert d.stored_count("egress.file") == BULK  # each file once
    expected = {str(p) for p in d.usb.rglob("*") if p.is_file()}
    assert _stored_paths(d, "egress.file") == expected
    [incident] = wait_for(  # one user's copies to one place in one session: one incident (issue 19)
        lambda: (a := d.alerts(category="classified-egress", limit=100)) and a[0]["file_count"] >= 20 and a, 60,
        what="an incident of 20 classified files",
    )
    assert incident["file_count"] == 20
    assert wait_for(lambda: d.alerts(category="bulk-egress"), 60, what="a bulk-egress alert")


def test_twenty_thousand_files_dropped_into_a_classified_folder_are_all_indexed_and_reported(bulk, tmp_path):
    d = bulk
    staging = tmp_path / "staging"
    _make_files(staging, BULK, "classified")
    d.start_server()
    d.start_agent()
    dest = d.classified / "incoming"
    dest.mkdir()
    _drop(staging, dest)
    wait_for(lambda: d.stored_count("file.created") >= BULK, 900, 1.0, f"{BULK} file.created events on the collector")
    assert d.stored_count("file.created") == BULK
    assert _stored_paths(d, "file.created") == {str(p) for p in dest.rglob("*") if p.is_file()}
    with closing(sqlite3.connect(d.state_dir / "index.db")) as conn:
        indexed = conn.execute("SELECT count(*) FROM files").fetchone()[0]
    assert indexed == BULK + 1  # and the drawing that was there before


@pytest.fixture
def small_queue():
    """Shrink the kernel's inotify queue while an agent that may not raise it starts.

    The size is taken when an inotify instance is created, so it is restored at once after the
    agent is ready; other watchers started meanwhile would get the small queue too.
    """
    if os.geteuid() != 0 or not os.access(QUEUE_SYSCTL, os.W_OK):
        pytest.skip("shrinking fs.inotify.max_queued_events needs root")
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is missing: cannot start the agent as another user")
    before = QUEUE_SYSCTL.read_text()
    try:
        QUEUE_SYSCTL.write_text(before)  # a container may show the file writable and still refuse
    except OSError as exc:
        pytest.skip(f"fs.inotify.max_queued_events cannot be changed here: {exc.strerror}")

    def set_queue(size: str | None) -> None:  # None: as it was
        QUEUE_SYSCTL.write_text(size or before)

    yield set_queue
    set_queue(None)


def test_a_kernel_queue_overflow_is_reported_and_nothing_is_lost(small_queue):
    # an unprivileged agent cannot raise the limit back: run it as nobody in a folder it may use
    root = Path(tempfile.mkdtemp(prefix="miwei-overflow-"))
    try:
        os.chmod(root, 0o755)
        usb = root / "usb"
        usb.mkdir()
        classified = root / "classified"
        classified.mkdir()
        d = Deployment(root, [(classified, "core", "Overflow test")], egress_folders=[usb])
        try:
            nobody = 65534
            for path in (root, usb, d.config):
                os.chown(path, nobody, nobody)
            d.start_server()
            small_queue("64")
            try:
                d.start_agent(wrapper=("setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups", "--"))
            finally:
                small_queue(None)  # only the agent's inotify instance keeps the small queue
            assert "cannot be raised by this user" in d.log("miwei-agent")
            staging = root / "staging"
            _make_files(staging, 3000, "overflow")
            _drop(staging, usb)
            wait_for(lambda: d.stored_count("agent.overflow") >= 1, 120, 0.5, "an agent.overflow event")
            wait_for(lambda: d.stored_count("egress.file") >= 3000, 300, 0.5, "3000 egress.file events")
            assert d.stored_count("egress.file") == 3000
            assert _stored_paths(d, "egress.file") == {str(p) for p in usb.rglob("*") if p.is_file()}
        finally:
            d.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
