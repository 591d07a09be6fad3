"""A bulk copy through the lanes: every file once, in order, with its own hash, spooled every
FLUSH_EVERY events; a file gone before it is hashed is reported as vanished with what was known of
it; a spool that fails half way leaves the files not yet reported for the next step, and none is
reported twice."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from agent.index import FingerprintIndex
from agent.outbox import FLUSH_EVERY
from agent.pipeline import Pipeline
from agent.places import EgressPlace, EgressPlaces
from agent.spool import Spool
from rules.events import Event

AHEAD = 16  # a few more files than a round number


class _FailingSpool(Spool):
    """Fails the n-th write of events (a full disk for a moment)."""

    fail_at: int | None = None

    def put(self, events, marks=(), state=None):
        events = list(events)
        if events and self.fail_at is not None:
            self.fail_at -= 1
            if self.fail_at < 0:
                self.fail_at = None
                raise OSError(28, "No space left on device")
        super().put(events, marks, state)


@pytest.fixture
def rig(tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    index = FingerprintIndex(str(tmp_path / "index.db"), ())
    spool = _FailingSpool(str(tmp_path / "spool.db"))
    places = EgressPlaces()
    places.add(EgressPlace(str(usb), "folder"))
    pipeline = Pipeline(index, spool, places, lambda t, **f: Event(type=t, **f), lambda e: e)
    pipeline.lanes.start()  # the lanes hash; this test plays the pipeline thread itself
    yield usb, pipeline, spool
    pipeline.lanes.stop()
    index.close()
    spool.close()


def _copy(usb, count: int) -> dict[str, bytes]:
    files = {}
    for i in range(count):
        data = os.urandom(1 + (i * 7919) % 300_000)
        path = usb / f"{i:04d}.bin"
        path.write_bytes(data)
        files[str(path)] = data
    return files


def _reported(spool) -> list[dict]:
    return [json.loads(e.body) for e in spool.peek(100_000, max_bytes=1 << 40) if json.loads(e.body)["type"] == "egress.file"]


def _steps(pipeline, timeout_s: float = 20.0) -> None:
    """What the pipeline thread does, until every pending file is reported."""
    deadline = time.monotonic() + timeout_s
    while pipeline._egress or pipeline.lanes.in_flight or pipeline._results:
        assert time.monotonic() < deadline, "the lanes did not finish"
        pipeline._take_results()
        pipeline._check_egress()
        time.sleep(0.005)
    pipeline._outbox.flush()


def test_a_bulk_copy_is_hashed_ahead_and_reported_once_in_order(rig):
    usb, pipeline, spool = rig
    files = _copy(usb, FLUSH_EVERY + 3 * AHEAD)
    gone = sorted(files)[AHEAD + 5]
    for path in files:
        pipeline._pend_egress(path, pipeline.places.find(path), closed=True)
    os.unlink(gone)  # deleted after it was seen, before it was hashed
    _steps(pipeline)
    events = _reported(spool)
    assert [e["path"] for e in events] == [gone] + [p for p in files if p != gone]  # the lost one at once, then seen order
    [vanished] = [e for e in events if e["path"] == gone]
    assert vanished["size"] == len(files[gone]) and vanished.get("sha256") is None
    assert vanished["detections"] == [{"detector": "vanished", "count": 1, "sample": "removed before it could be read"}]
    for e in events[1:]:
        assert (e["sha256"], e["size"]) == (hashlib.sha256(files[e["path"]]).hexdigest(), len(files[e["path"]]))
    assert not pipeline._egress


def test_a_spool_failing_half_way_loses_and_repeats_nothing(rig):
    usb, pipeline, spool = rig
    files = _copy(usb, 2 * FLUSH_EVERY + AHEAD)
    for path in files:
        pipeline._pend_egress(path, pipeline.places.find(path), closed=True)
    spool.fail_at = 1  # the second spool write fails
    with pytest.raises(OSError):
        _steps(pipeline)
    assert len(_reported(spool)) == FLUSH_EVERY, "the first chunk was spooled before the failure"
    assert pipeline._egress or pipeline._results or pipeline.lanes.in_flight, "the rest waits for the next step"
    _steps(pipeline)  # the next steps: the outbox's entries first, then the rest
    events = _reported(spool)
    assert sorted(e["path"] for e in events) == sorted(files)
    assert len(events) == len(files), "each file exactly once"
    assert not pipeline._egress


def _handle(pipeline, kind: str, path) -> None:
    from agent.watcher import FsChange

    pipeline._handle(FsChange(kind, str(path)))


def test_a_file_created_and_removed_with_nothing_written_is_not_reported(rig):
    """zip makes its output empty to see that it can, removes it, and renames a temporary file
    there: neither the probe nor its stale delete event is a file that vanished."""
    usb, pipeline, spool = rig
    out = usb / "photos.zip"
    out.write_bytes(b"")
    _handle(pipeline, "created", out)
    _handle(pipeline, "closed", out)
    out.unlink()
    _handle(pipeline, "deleted", out)
    (usb / "zi12345").write_bytes(b"PK archive")
    os.rename(usb / "zi12345", out)
    _handle(pipeline, "created", out)  # a late event: its stat sees the renamed file...
    _handle(pipeline, "deleted", out)  # ...so this older delete is not about the file now there
    pipeline._egress.pop(str(out), None)
    _steps(pipeline)
    assert _reported(spool) == []


def test_a_written_file_replaced_at_the_same_path_before_it_was_read_is_reported(rig):
    usb, pipeline, spool = rig
    path = usb / "report.docx"
    path.write_bytes(b"the classified copy")
    _handle(pipeline, "modified", path)
    path.unlink()
    path.write_bytes(b"an innocent file of the same name")  # another inode at the same path
    _handle(pipeline, "deleted", path)
    _steps(pipeline)
    [vanished] = _reported(spool)
    assert vanished["size"] == len(b"the classified copy") and vanished["detections"][0]["detector"] == "vanished"


def test_a_file_written_after_its_last_stat_and_removed_is_reported_without_a_stale_size(rig):
    """cp creates the file (a stat sees 0 bytes), writes and closes it, and it is removed before
    those writes are looked at: the size once seen is not what left, so none is reported (CI saw
    a vanished copy of a 50 KB drawing reported as 0 bytes)."""
    usb, pipeline, spool = rig
    path = usb / "holiday-2.jpg"
    path.write_bytes(b"")
    _handle(pipeline, "created", path)  # the stat sees it empty
    path.write_bytes(b"the classified drawing")
    path.unlink()
    _handle(pipeline, "modified", path)  # the writes, seen once the file is gone
    _handle(pipeline, "closed", path)
    _steps(pipeline)
    [vanished] = _reported(spool)
    assert vanished["detections"][0]["detector"] == "vanished"
    assert vanished["size"] is None and "mtime" not in (vanished["details"] or {})
