"""A stick unmounted while the agent's inotify reader is behind: the copy made to it just before
is in the kernel's queue, ahead of the unmount's IN_UNMOUNT and IN_IGNORED, when the agent takes
the unmount in (unwatch, the place removed). It is still said, as a file that vanished with its
medium, not dropped (inotify's draining of unwatched folders, then places.find_gone)."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from agent.places import EgressPlace
from rules.events import Media

from .test_pipeline import Rig


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_copy_in_the_kernels_queue_when_its_stick_is_unmounted_is_reported(rig):
    rig.watchers.unwatch(str(rig.usb))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "queued-stick", str(rig.usb)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    entered, release = threading.Event(), threading.Event()
    process = rig.watchers.process

    def behind(data: bytes) -> None:  # the reader thread, a flood's read in hand
        if not release.is_set():
            entered.set()
            release.wait(10)
        process(data)

    try:
        rig.places.add(EgressPlace(str(rig.usb), "removable", Media(str(rig.usb), label="QUEUED")))
        assert rig.watchers.watch(str(rig.usb))
        rig.watchers.process = behind
        (rig.usb / "first.bin").write_bytes(b"first")
        assert entered.wait(5)
        (rig.usb / "drawing.dwg").write_bytes((rig.classified / "impeller.dwg").read_bytes())
    finally:
        subprocess.run(["umount", "-l", str(rig.usb)], check=True)
    try:
        rig.watchers.unwatch(str(rig.usb))  # what agent.app does when the media monitor sees it go
        rig.places.remove(str(rig.usb))
        rig.spool.forget_reported(str(rig.usb))
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while not (found := [e for e in rig.events("egress.file") if e["path"] == str(rig.usb / "drawing.dwg")]):
        assert time.monotonic() < deadline, "the drawing copied to the stick was never reported, not even vanished"
        time.sleep(0.05)
    [event] = found
    assert event["egress"] == "removable" and event["media"]["label"] == "QUEUED"
    assert [d["detector"] for d in event["detections"]] == ["vanished"]
