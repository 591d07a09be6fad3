"""A closed write lstat'ed by the step that handles its changes is opened on that lstat
(pipeline.FAST_RESTAT) instead of being lstat'ed again at the hand-over; the reference lstats
twice. Both must spool the same events and marks, in the same order, whatever happens to the file
between the two: nothing, removed, replaced by another file, a FIFO, a link or a folder, written
again, its place removed; with the lanes full or not; and the changes a report covered must stay
covered. And the lstat kept must be this step's: an older one, or a file replaced since, is
lstat'ed again before it is opened."""

from __future__ import annotations

import json
import os
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import pipeline as module
from agent.index import FingerprintIndex
from agent.pipeline import Pipeline
from agent.places import EgressPlace, EgressPlaces
from agent.spool import Spool
from agent.watcher import FsChange
from rules.events import Event

AFTER = ["none", "none", "none", "removed", "replaced", "fifo", "symlink", "folder", "rewritten", "place-gone"]
FILES = st.lists(st.tuples(st.sampled_from(AFTER), st.integers(0, 30_000), st.booleans()), min_size=1, max_size=10)
T0 = 1_700_000_000_000_000_000


def _rig(root, slots: int | None = None) -> tuple[Pipeline, Spool, str]:
    """A pipeline over one egress folder (root/usb) with no lanes started; `slots`: its small
    lane holds at most that many files (None: the default)."""
    usb = root / "usb"
    usb.mkdir()
    index = FingerprintIndex(str(root / "index.db"), ())
    spool = Spool(str(root / "spool.db"))
    places = EgressPlaces()
    places.add(EgressPlace(str(usb), "folder"))
    pipeline = Pipeline(index, spool, places, lambda t, **f: Event(type=t, **f), lambda e: e)
    if slots is not None:
        pipeline.lanes._small.jobs.maxsize = slots  # a full lane: the rest of a step waits for the next
    return pipeline, spool, str(usb)


def _write(path: str, data: bytes, i: int) -> None:
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, ns=(T0 + i, T0 + i))  # the same in both runs


def _after(pipeline: Pipeline, path: str, kind: str, i: int, root) -> None:
    """What happens to the file between the step's lstat of it and its hand-over."""
    if kind == "removed":
        os.unlink(path)
    elif kind == "replaced":  # another file renamed over it: a new inode
        _write(f"{path}.tmp", b"replacement %d" % i, i)
        os.rename(f"{path}.tmp", path)
    elif kind == "fifo":
        os.unlink(path)
        os.mkfifo(path)
    elif kind == "symlink":
        os.unlink(path)
        os.symlink(str(root / "elsewhere"), path)
    elif kind == "folder":
        os.unlink(path)
        os.mkdir(path)
    elif kind == "rewritten":  # the same inode, more bytes
        with open(path, "ab") as f:
            f.write(b"more")
        os.utime(path, ns=(T0 + 7 * i, T0 + 7 * i))
    elif kind == "place-gone":
        for place in pipeline.places.all():
            pipeline.places.remove(place.root)


def _run(root, specs, slots: int, fast: bool) -> tuple[list[dict], list[tuple]]:
    """The closed writes of `specs` handled in one step, the files changed as each says, then
    handed over and reported step by step; then each file's changes delivered again (all older
    than its report). The events spooled (without id, time and chain) and the marks."""
    module.FAST_RESTAT = fast
    root.mkdir()
    (root / "elsewhere").write_bytes(b"not copied")
    pipeline, spool, usb = _rig(root, slots)
    pipeline.lanes.start()
    try:
        paths = []
        at = time.monotonic()
        for i, (_, size, closed) in enumerate(specs):
            path = os.path.join(usb, f"file-{i:03d}.bin")
            _write(path, random.Random(i).randbytes(size), i)
            paths.append(path)
            kinds = ("modified", "closed") if closed else ("modified",)
            pipeline._held.extend(FsChange(kind, path, False, None, at) for kind in kinds)
        pipeline.stable_s = 0.0  # a write never closed is due at the next step
        pipeline._steps += 1
        pipeline._handle_held()
        for i, (kind, _, _) in enumerate(specs):
            _after(pipeline, paths[i], kind, i, root)
        deadline = time.monotonic() + 20
        while pipeline._egress or pipeline.lanes.in_flight or pipeline._results:
            assert time.monotonic() < deadline, "the files were not reported"
            pipeline._check_egress()
            while pipeline.lanes.results.qsize() < len(pipeline.lanes.in_flight):
                assert time.monotonic() < deadline, "the lanes did not finish"
                time.sleep(0.002)
            pipeline._take_results()
            pipeline._steps += 1
        for path in paths:  # delivered late: older than the report, so covered by it
            pipeline._held.extend(FsChange(kind, path, False, None, at) for kind in ("modified", "closed"))
        pipeline._handle_held()
        pipeline._check_egress()
        assert not pipeline.lanes.in_flight, "a change the report covered was handed again"
        pipeline._outbox.flush()
        events = []
        for spooled in spool.peek(100_000, max_bytes=1 << 40):
            event = json.loads(spooled.body)
            for key in ("id", "ts", "seq", "prev_hash"):
                event.pop(key)
            event["path"] = event["path"].replace(str(root), "ROOT")
            event.pop("path_b64", None)
            events.append(event)
        marks = [
            (os.fsdecode(row[0]).replace(str(root), "ROOT"), *row[1:])
            for row in spool.db.conn().execute("SELECT path, size, mtime_ns, sha256 FROM reported ORDER BY path")
        ]
        return events, marks
    finally:
        pipeline.lanes.stop()
        pipeline.inspector.close()
        spool.close()
        pipeline.index.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=FILES, slots=st.sampled_from([1, 3, 64]))
def test_one_lstat_gives_the_events_and_marks_of_two(tmp_path_factory, specs, slots):
    kept = module.FAST_RESTAT
    try:
        root = tmp_path_factory.mktemp("restat")
        reference = _run(root / "reference", specs, slots, fast=False)
        fast = _run(root / "fast", specs, slots, fast=True)
    finally:
        module.FAST_RESTAT = kept
    assert fast == reference
    if all(kind != "place-gone" for kind, _, _ in specs) and any(kind == "none" for kind, _, _ in specs):
        assert reference[0]  # a file left in place is reported


def _counting_lstat(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = module._lstat

    def counted(path: str) -> os.stat_result:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(module, "_lstat", counted)
    return calls


def _handed(pipeline: Pipeline) -> None:
    pipeline._check_egress()
    deadline = time.monotonic() + 10
    while pipeline.lanes.in_flight or pipeline._results:
        assert time.monotonic() < deadline
        pipeline._take_results()
        time.sleep(0.002)


@pytest.mark.parametrize("fast", [True, False])
def test_a_closed_write_is_lstat_ed_once_in_the_step_that_saw_it(tmp_path, monkeypatch, fast):
    monkeypatch.setattr(module, "FAST_RESTAT", fast)
    pipeline, _, usb = _rig(tmp_path, 64)
    pipeline.lanes.start()
    try:
        paths = [os.path.join(usb, f"f{i}") for i in range(5)]
        for i, path in enumerate(paths):
            _write(path, b"\0" * (100 + i), i)
        calls = _counting_lstat(monkeypatch)
        pipeline.changes.put(FsChange("closed", paths[0], False, None, time.monotonic()))
        pipeline._step()  # a whole step: its lstat serves its hand-over
        for path in paths[1:]:
            pipeline._held.append(FsChange("closed", path, False, None, time.monotonic()))
        pipeline._steps += 1
        pipeline._handle_held()
        _handed(pipeline)
        assert sorted(calls) == sorted(paths * (1 if fast else 2))
    finally:
        pipeline.lanes.stop()
        pipeline.inspector.close()


@pytest.mark.parametrize("case", ["older-step", "replaced", "not-closed"])
def test_the_hand_over_lstats_again_what_this_step_did_not_see_as_it_is(tmp_path, monkeypatch, case):
    """An lstat of an earlier step, a file replaced since the lstat (another inode), and a write
    not closed (its size must hold still) are lstat'ed again before they are opened."""
    monkeypatch.setattr(module, "FAST_RESTAT", True)
    pipeline, _, usb = _rig(tmp_path, 64)
    pipeline.stable_s = 0.0
    pipeline.lanes.start()
    try:
        path = os.path.join(usb, "f")
        _write(path, b"\0first", 1)
        calls = _counting_lstat(monkeypatch)
        kind = "modified" if case == "not-closed" else "closed"
        pipeline._held.append(FsChange(kind, path, False, None, time.monotonic()))
        pipeline._steps += 1
        pipeline._handle_held()
        if case == "older-step":
            pipeline._steps += 1
        elif case == "replaced":
            _write(f"{path}.tmp", b"\0second", 2)
            os.rename(f"{path}.tmp", path)
        pipeline._check_egress()
        assert len(calls) == 2
    finally:
        pipeline.lanes.stop()
        pipeline.inspector.close()


def test_a_step_s_lstat_serves_no_later_step(tmp_path, monkeypatch):
    """A closed write that finds the lanes full waits for the next step, which lstats it again;
    the step stops handing at the first file the lanes refuse (the files after it are not opened)."""
    monkeypatch.setattr(module, "FAST_RESTAT", True)
    pipeline, spool, usb = _rig(tmp_path, 1)  # the lane is not started: the first file fills it
    try:
        paths = [os.path.join(usb, name) for name in ("a", "b", "c")]
        for i, path in enumerate(paths):
            _write(path, b"\0" * (10 + i), i)
        calls = _counting_lstat(monkeypatch)
        opened: list[str] = []
        real = module._open_regular
        monkeypatch.setattr(module, "_open_regular", lambda p: opened.append(p) or real(p))
        for path in paths:
            pipeline.changes.put(FsChange("closed", path, False, None, time.monotonic()))
        pipeline._step()
        assert pipeline.lanes.in_flight == {paths[0]} and calls == paths and opened == paths[:2]
        pipeline._step()
        assert calls == [*paths, paths[1]]
    finally:
        pipeline.lanes._small._close_waiting()  # never started: its descriptors closed here
        pipeline.lanes.stop()
        pipeline.inspector.close()


@pytest.mark.parametrize("made", ["fifo", "folder"])
def test_what_the_step_s_lstat_found_not_a_file_is_never_opened(tmp_path, monkeypatch, made):
    """A FIFO (opening one may block a writer) or a folder closed in the place: the lstat says so,
    and neither the fast path nor the reference's opens it."""
    monkeypatch.setattr(module, "FAST_RESTAT", True)
    pipeline, spool, usb = _rig(tmp_path, 64)
    try:
        path = os.path.join(usb, "odd")
        os.mkfifo(path) if made == "fifo" else os.mkdir(path)
        opened: list[str] = []
        real = module._open_regular
        monkeypatch.setattr(module, "_open_regular", lambda p: opened.append(p) or real(p))
        pipeline._held.append(FsChange("closed", path, False, None, time.monotonic()))
        pipeline._steps += 1
        pipeline._handle_held()
        pipeline._check_egress()
        assert opened == [] and not pipeline.lanes.in_flight
    finally:
        pipeline.lanes.stop()
        pipeline.inspector.close()
