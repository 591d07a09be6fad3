"""While files are in the lanes or waiting for them (a burst), a step first lets changes and results
gather for pipeline.BURST_GATHER_S, so the per-step costs are paid for more files at once; a lone
change, with nothing in flight, is handled at once. The running pipeline reports a burst with the
same events, in the same order, gathering or not (BURST_GATHER_S = 0, the reference)."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from agent import pipeline as module
from agent.lanes import Job
from agent.pipeline import Pipeline
from agent.spool import Spool
from agent.watcher import FsChange
from tests.agent.test_pipeline_restat import _rig


class _CountingStop:
    """The pipeline's stop event, counting the waits a step makes on it."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return self.event.wait(timeout)

    def is_set(self) -> bool:
        return self.event.is_set()

    def set(self) -> None:
        self.event.set()


def _close(pipeline: Pipeline, spool: Spool) -> None:
    pipeline.lanes.stop()
    pipeline.inspector.close()
    spool.close()
    pipeline.index.close()


def test_a_lone_change_is_handled_without_waiting(tmp_path, monkeypatch):
    monkeypatch.setattr(module, "BURST_GATHER_S", 0.02)
    pipeline, spool, usb = _rig(tmp_path)
    stop = pipeline._stop = _CountingStop()
    try:
        path = os.path.join(usb, "one")
        with open(path, "wb") as f:
            f.write(b"\0one")
        pipeline.changes.put(FsChange("closed", path, False, None, time.monotonic()))
        pipeline._step()
        assert stop.waits == []
        assert path in pipeline.lanes.in_flight  # handled in that step: handed to its lane
    finally:
        _close(pipeline, spool)


@pytest.mark.parametrize("waiting", ["in-flight", "pending"])
def test_a_step_of_a_burst_first_lets_changes_gather(tmp_path, monkeypatch, waiting):
    monkeypatch.setattr(module, "BURST_GATHER_S", 0.02)
    pipeline, spool, usb = _rig(tmp_path)
    stop = pipeline._stop = _CountingStop()
    try:
        first = os.path.join(usb, "first")
        with open(first, "wb") as f:
            f.write(b"\0first")
        if waiting == "in-flight":  # handed to a lane that is not running: still in flight
            fd = os.open(first, os.O_RDONLY)
            assert pipeline.lanes.submit(Job(first, fd, os.fstat(fd), None))
        else:  # a write not closed, waiting for its size to hold still
            pipeline._pend_egress(first, pipeline.places.find(first), wrote=True)
        pipeline._step()
        assert stop.waits == [0.02]
        monkeypatch.setattr(module, "BURST_GATHER_S", 0)  # the reference never waits for more
        pipeline._step()
        assert stop.waits == [0.02]
    finally:
        pipeline.lanes._small._close_waiting()  # never started: its descriptors closed here
        _close(pipeline, spool)


def _burst(root, gather_s: float) -> list[dict]:
    """60 files written into the place while the pipeline runs, as a copy does: the events spooled
    (without id, time and chain), in order."""
    module.BURST_GATHER_S = gather_s
    root.mkdir()
    pipeline, spool, usb = _rig(root)
    pipeline.start()
    try:
        for i in range(60):
            path = os.path.join(usb, f"file-{i:03d}.bin")
            with open(path, "wb") as f:
                f.write(b"\0" + bytes([i]) * (100 + i))
            at = time.monotonic()
            pipeline.changes.put(FsChange("modified", path, False, None, at))
            pipeline.changes.put(FsChange("closed", path, False, None, at))
            if i % 7 == 0:
                time.sleep(0.01)  # now and then the step catches up: some steps wait, some do not
        deadline = time.monotonic() + 20
        while spool.depth() < 60:
            assert time.monotonic() < deadline, "the burst was not reported"
            time.sleep(0.01)
    finally:
        pipeline.stop()
        _close(pipeline, spool)
    events = []
    for spooled in Spool(str(root / "spool.db")).peek(1000, max_bytes=1 << 40):
        event = json.loads(spooled.body)
        events.append((event["type"], os.path.basename(event["path"]), event["size"], event["sha256"]))
    return events


def test_a_burst_gives_the_same_events_gathering_or_not(tmp_path):
    kept = module.BURST_GATHER_S
    try:
        reference = _burst(tmp_path / "reference", 0)
        gathered = _burst(tmp_path / "gathered", 0.02)
    finally:
        module.BURST_GATHER_S = kept
    assert gathered == reference
    assert [name for _, name, _, _ in reference] == [f"file-{i:03d}.bin" for i in range(60)]
