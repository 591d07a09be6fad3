"""A pipeline step's closed writes read and hashed in one call (agent/readbatch.py, FAST_READ)
report what the reference reports (each file stat'ed, opened and handed to a lane to hash): the
same events, with the same fields, in the same order, and the same refusals for links, FIFOs and
files gone or swapped before they were read. Real files on a real file system."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import readbatch
from agent.config import ClassifiedFolder
from agent.hashing import Hasher
from agent.index import FingerprintIndex
from agent.pipeline import Pipeline
from agent.places import EgressPlace, EgressPlaces
from agent.spool import Spool
from rules.events import Event

pytestmark = pytest.mark.skipif(readbatch._egress is None, reason="agent._egress not built")

CLASSIFIED = b"AC1032 pump drawing" + bytes(range(256)) * 40  # a copy of it is matched to its source

# what a file written to the stick may be (hostile ones last): the bytes, or what to make instead
_CONTENTS = {
    "opaque": lambda rng: b"\0\x01" + rng.randbytes(rng.randint(0, 40_000)),
    "text": lambda rng: b"plain text, id 11010519491231002X in it\n" * rng.randint(1, 50),
    "zip": lambda rng: b"PK\x03\x04" + rng.randbytes(200),
    "empty": lambda rng: b"",
    "classified": lambda rng: CLASSIFIED,
    "large": lambda rng: b"\0" + rng.randbytes(70_000),  # past INLINE_BYTES as the tests set it
}
_HOSTILE = ("gone", "symlink", "fifo", "dir")


def _rig(root, usb: str, classified: str):
    index = FingerprintIndex(str(root / "index.db"), (ClassifiedFolder(classified, "core", "Drawings"),))
    index.refresh()
    spool = Spool(str(root / "spool.db"))
    places = EgressPlaces()
    places.add(EgressPlace(usb, "removable"))
    pipeline = Pipeline(index, spool, places, lambda t, **f: Event(type=t, **f), lambda e: e)
    pipeline.writers.seen = lambda path, root: None  # no attribution thread
    return index, spool, pipeline


def _write(usb, plan: list[tuple[str, int]], seed: int) -> list[str]:
    rng = random.Random(seed)
    paths = []
    for i, (kind, _) in enumerate(plan):
        path = os.path.join(usb, f"{i:03d}-{kind}.bin")
        data = _CONTENTS.get(kind, _CONTENTS["opaque"])(rng)
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return paths


def _spoil(paths: list[str], plan: list[tuple[str, int]], outside: str) -> None:
    """What happens between the close and the read: the file removed, or replaced."""
    for path, (kind, _) in zip(paths, plan, strict=True):
        if kind in _HOSTILE:
            os.unlink(path)
        if kind == "symlink":
            os.symlink(outside, path)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            os.mkdir(path)


def _report(pipeline: Pipeline, paths: list[str], plan, outside: str) -> None:
    """What the pipeline thread does for these closed writes, until every one is reported."""
    pipeline.lanes.start()
    try:
        for path in paths:
            pipeline._pend_egress(path, pipeline.places.find(path), closed=True, wrote=True)
        _spoil(paths, plan, outside)
        pipeline._check_egress()
        deadline = time.monotonic() + 30
        while pipeline._egress or pipeline.lanes.in_flight or pipeline._results:
            assert time.monotonic() < deadline, "not every file was reported"
            while pipeline.lanes.results.qsize() < len(pipeline.lanes.in_flight):
                assert time.monotonic() < deadline, "the lanes did not finish"
                time.sleep(0.005)
            pipeline._take_results()
            pipeline._check_egress()
        pipeline._outbox.flush()
    finally:
        pipeline.lanes.stop()


def _events(spool: Spool) -> list[dict]:
    out = []
    for spooled in spool.peek(100_000, max_bytes=1 << 40):
        event = json.loads(spooled.body)
        for key in ("id", "ts", "seq", "prev_hash"):
            event.pop(key)
        out.append(event)
    return out


def _run(tmp_path, name: str, plan, fast: bool, monkeypatch, c_read: bool = True) -> tuple[list[dict], Hasher]:
    root = tmp_path / name
    usb, classified = root / "usb", root / "classified"
    usb.mkdir(parents=True)
    classified.mkdir()
    (classified / "pump.dwg").write_bytes(CLASSIFIED)
    (root / "secret").write_bytes(b"SECRET" * 100)
    monkeypatch.setattr(readbatch, "FAST_READ", fast)
    monkeypatch.setattr(readbatch, "INLINE_BYTES", 64_000)
    read_calls = []
    real = readbatch._egress.read_files
    monkeypatch.setattr(readbatch._egress, "read_files", lambda *a: read_calls.append(len(a[0])) or real(*a))
    paths = _write(str(usb), plan, seed=len(plan))
    index, spool, pipeline = _rig(root, str(usb), str(classified))
    try:
        _report(pipeline, paths, plan, str(root / "secret"))
        events = _events(spool)
    finally:
        pipeline.inspector.close()
        index.close()
        spool.close()
    assert bool(read_calls) == (fast and c_read), "the batch was used when on, and only then"
    for event in events:  # the same names under both roots
        event["path"] = os.path.basename(event["path"])
        event.pop("path_b64", None)
        (event.get("details") or {}).pop("mtime", None)  # each run wrote its files at its own time
        if event.get("source_path"):
            event["source_path"] = os.path.basename(event["source_path"])
    return events, pipeline.hasher


_PLAN = st.lists(st.tuples(st.sampled_from([*_CONTENTS, *_HOSTILE]), st.integers(0, 3)), min_size=1, max_size=14)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=_PLAN)
def test_a_burst_reports_the_same_events_read_in_one_call_and_one_by_one(tmp_path_factory, monkeypatch, plan):
    tmp_path = tmp_path_factory.mktemp("burst")
    fast, fast_hasher = _run(tmp_path, "fast", plan, True, monkeypatch)
    ref, ref_hasher = _run(tmp_path, "ref", plan, False, monkeypatch)
    assert fast == ref  # the same events in the same order
    assert len(fast) == len(plan)  # every file written is reported, read or not
    assert (fast_hasher.bytes_read, fast_hasher.files_hashed) == (ref_hasher.bytes_read, ref_hasher.files_hashed)


def test_hostile_files_are_refused_by_the_batch_and_reported_as_before(tmp_path, monkeypatch):
    plan = [
        ("opaque", 0),
        ("symlink", 0),
        ("opaque", 0),
        ("fifo", 0),
        ("gone", 0),
        ("dir", 0),
        ("classified", 0),
        ("large", 0),
        ("text", 0),
    ]
    fast, _ = _run(tmp_path, "fast", plan, True, monkeypatch)
    by_name = {e["path"]: e for e in fast}
    assert len(fast) == len(plan)
    why = {
        name: [d["sample"] for d in e.get("detections", []) if d["detector"] == "vanished"]
        for name, e in by_name.items()
    }
    assert why["001-symlink.bin"] == ["replaced by a symbolic link before it could be read"]
    assert why["003-fifo.bin"] == ["replaced by a FIFO before it could be read"]
    assert why["004-gone.bin"] == ["removed before it could be read"]
    assert why["005-dir.bin"] == ["replaced by a special file before it could be read"]
    assert by_name["006-classified.bin"]["match"]["method"] == "exact"
    assert by_name["007-large.bin"]["size"] == 70_001  # past INLINE_BYTES: hashed by the lane
    assert [d["detector"] for d in by_name["008-text.bin"]["detections"]] == ["cn_resident_id"]
    assert "SECRET" not in json.dumps(fast)


def test_opaque_files_read_in_the_batch_never_reach_a_lane(tmp_path, monkeypatch):
    plan = [("opaque", 0)] * 6 + [("text", 0)]
    submitted = []
    real_submit = Pipeline.__init__

    def counting_init(self, *a, **k):
        real_submit(self, *a, **k)
        submit = self.lanes.submit
        self.lanes.submit = lambda job, wake=True: (
            submitted.append((os.path.basename(job.path), job.digest is not None)) or submit(job, wake)
        )

    monkeypatch.setattr(Pipeline, "__init__", counting_init)
    _run(tmp_path, "fast", plan, True, monkeypatch)
    assert submitted == [("006-text.bin", True)]  # hashed already: the lane has it inspected only


def test_a_file_written_to_while_the_batch_read_it_is_read_again(tmp_path, monkeypatch):
    """The batch read a file that grew while it was read (the size read is not its size at the
    open): like a lane's result, it is pended again and reported with what it holds in the end."""
    plan = [("opaque", 0), ("opaque", 0)]
    grown = []
    real_pread = os.pread

    def growing_pread(fd, n, offset):  # each file is written to just after its first read
        data = real_pread(fd, n, offset)
        if offset == 0 and fd not in grown:
            grown.append(fd)
            more = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_APPEND)
            os.write(more, b"\0late")
            os.close(more)
        return data

    def read_growing(paths, head_bytes):
        monkeypatch.setattr(os, "pread", growing_pread)
        try:
            return readbatch.read_reference(paths, head_bytes)
        finally:
            monkeypatch.setattr(os, "pread", real_pread)

    monkeypatch.setattr(readbatch, "read_files", read_growing)
    events, _ = _run(tmp_path, "fast", plan, True, monkeypatch, c_read=False)
    usb = tmp_path / "fast" / "usb"
    assert len(grown) >= 2
    assert [(e["path"], e["size"]) for e in events] == [
        (n, (usb / n).stat().st_size) for n in ("000-opaque.bin", "001-opaque.bin")
    ]
    assert all(e["sha256"] == hashlib.sha256((usb / e["path"]).read_bytes()).hexdigest() for e in events)


def test_a_file_not_closed_is_read_only_once_its_size_held_still(tmp_path, monkeypatch):
    """Files seen written but never closed wait for their size to hold still, read in the batch
    or not: the first look only notes their size."""
    reported = {}
    for fast in (True, False):
        monkeypatch.setattr(readbatch, "FAST_READ", fast)
        root = tmp_path / str(fast)
        (root / "usb").mkdir(parents=True)
        names = [f"{i}.bin" for i in range(3)]
        for name in names:
            (root / "usb" / name).write_bytes(b"\0" + os.urandom(1000))
        index, spool, pipeline = _rig(root, str(root / "usb"), str(root / "usb-classified-none"))
        now = [100.0]
        pipeline.clock = lambda now=now: now[0]
        try:
            for name in names:
                pipeline._pend_egress(
                    str(root / "usb" / name), pipeline.places.find(str(root / "usb" / name)), wrote=True
                )
            now[0] += pipeline.stable_s + 0.1
            pipeline._check_egress()  # the first look: sizes noted, nothing read
            assert set(pipeline._egress) == {str(root / "usb" / n) for n in names}
            assert not pipeline._results and not pipeline.lanes.in_flight
            now[0] += pipeline.stable_s + 0.1
            pipeline.lanes.start()
            deadline = time.monotonic() + 20
            while pipeline._egress or pipeline.lanes.in_flight or pipeline._results:
                assert time.monotonic() < deadline
                pipeline._check_egress()
                time.sleep(0.01)
                pipeline._take_results()
            pipeline._outbox.flush()
            reported[fast] = sorted(os.path.basename(e["path"]) for e in _events(spool))
        finally:
            pipeline.lanes.stop()
            pipeline.inspector.close()
            index.close()
            spool.close()
    assert reported[True] == reported[False] == names


def test_files_of_a_place_gone_meanwhile_are_not_read_in_the_batch(tmp_path, monkeypatch):
    """The place was removed (its medium unmounted) after the files were seen: each is reported as
    gone with that reason, not read, as the reference does."""
    monkeypatch.setattr(readbatch, "FAST_READ", True)
    root = tmp_path / "r"
    (root / "usb").mkdir(parents=True)
    paths = [str(root / "usb" / f"{i}.bin") for i in range(2)]
    for path in paths:
        with open(path, "wb") as f:
            f.write(b"\0" + os.urandom(500))
    index, spool, pipeline = _rig(root, str(root / "usb"), str(root / "none"))
    try:
        for path in paths:
            pipeline._pend_egress(path, pipeline.places.find(path), closed=True, wrote=True)
        pipeline.places.remove(str(root / "usb"))
        pipeline._check_egress()
        assert not pipeline._egress and not pipeline._results and not pipeline.lanes.in_flight
        pipeline._outbox.flush()
        why = [[d["sample"] for d in e["detections"]] for e in _events(spool)]
        assert why == [["its medium was removed before it could be read"]] * 2
    finally:
        pipeline.lanes.stop()
        pipeline.inspector.close()
        index.close()
        spool.close()
