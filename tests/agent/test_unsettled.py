"""A file that never holds still (pipeline.UNSETTLED_WAITS): hashed as it is once it has been put
off long enough, said as still being written, and the wait before the next such report doubling
while it grows, so a file written for an hour is read about twice over, not once a few seconds.
tests/agent/test_round13_attacks.py holds a file rewritten in place (the wait does not grow, and the
same content is not said twice) and one changed while it is read (said as read)."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from agent import pipeline as pipeline_module

from .test_pipeline import Rig


@pytest.fixture
def rig(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline_module, "UNSETTLED_WAITS", 5)  # 1 s at the rig's stable_s of 0.2 s
    r = Rig(tmp_path)
    yield r
    r.close()


def _writing(path, stop: threading.Event, grow: bool) -> threading.Thread:
    """A writer that keeps the file changing every 50 ms, growing or rewriting one byte, never closing."""

    def run():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"x" * 1000)
            while not stop.is_set():
                if grow:
                    os.write(fd, b"y" * 100)
                else:
                    os.pwrite(fd, b"x", 999)
                stop.wait(0.05)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _reports(rig, path) -> list[dict]:
    return [e for e in rig.events("egress.file") if e["path"] == str(path)]


def test_a_file_rewritten_in_place_without_end_is_reported_as_still_written(rig):
    """The same bytes written again every 50 ms keep its mtime moving: reported after about
    UNSETTLED_WAITS waits with what it holds, said as still written. Fails with no cap on the waits."""
    path = rig.usb / "drawing.bin"
    stop = threading.Event()
    writer = _writing(path, stop, grow=False)
    try:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline and not _reports(rig, path):
            time.sleep(0.05)
        [event] = _reports(rig, path)
    finally:
        stop.set()
        writer.join()
    assert event["sha256"] == hashlib.sha256(b"x" * 1000).hexdigest()
    assert event["details"]["still_written"] is True


def test_the_wait_between_reports_of_a_file_still_written_doubles(rig):
    """A file growing for 7.5 s: reported still written at about 1, 2 and 4 s (the waits 1, 1, 2 and
    4 s: doubled once it grew since the last such report), not every second; then once more when it
    is closed and holds still, not said so. Fails when the wait does not double (some seven reports)."""
    path = rig.usb / "recording.bin"
    stop = threading.Event()
    writer = _writing(path, stop, grow=True)
    try:
        time.sleep(7.5)
    finally:
        stop.set()
        writer.join()
    time.sleep(1.5)
    reports = _reports(rig, path)
    still = [e for e in reports if e["details"].get("still_written")]
    assert 2 <= len(still) <= 3, [e["size"] for e in still]
    assert not reports[-1]["details"].get("still_written") and reports[-1]["size"] == os.path.getsize(path)
    assert rig.pipeline._unsettled_wait == {}  # it held still: the next write waits from the start
