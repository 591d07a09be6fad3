"""Files reported from an egress place are stat'ed again for a while (pipeline.RECHECK_S): a write
through a mapping kept open, or through a hard link from outside the place, sends the place no
inotify event but changes the file's times (end to end: tests/agent/test_burst_attacks.py)."""

from __future__ import annotations

import os

import pytest

from agent import pipeline as module
from agent.index import FingerprintIndex
from agent.pipeline import Pipeline
from agent.places import EgressPlace, EgressPlaces
from agent.spool import Spool
from agent.walk import lstat as walk_lstat
from rules.events import Event


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pipeline(root, clock) -> tuple[Pipeline, str]:
    usb = root / "usb"
    usb.mkdir()
    places = EgressPlaces()
    places.add(EgressPlace(str(usb), "folder"))
    index = FingerprintIndex(str(root / "index.db"), ())
    spool = Spool(str(root / "spool.db"))
    return Pipeline(index, spool, places, lambda t, **f: Event(type=t, **f), lambda e: e, clock=clock), str(usb)


def _reported(pipeline: Pipeline, path: str) -> None:
    pipeline._watch_reported(path, os.lstat(path))


def test_a_reported_file_changed_without_an_event_is_pending_again(tmp_path):
    clock = _Clock()
    pipeline, usb = _pipeline(tmp_path, clock)
    changed, untouched = os.path.join(usb, "a.bin"), os.path.join(usb, "b.bin")
    for path in (changed, untouched):
        with open(path, "wb") as f:
            f.write(b"opaque")
        _reported(pipeline, path)
    os.utime(changed, ns=(1, 1))  # what a write through a mapping or another link does to the times
    pipeline._recheck_reported()
    assert changed not in pipeline._egress  # not due yet: RECHECK_S has not passed
    clock.now += module.RECHECK_S
    pipeline._recheck_reported()
    pending = pipeline._egress[changed]
    assert set(pipeline._egress) == {changed} and pending.wrote and not pending.closed  # hashed once it stays the same
    assert changed not in pipeline._recheck and untouched in pipeline._recheck  # reported again, it is watched again


def test_reported_files_are_looked_at_for_a_while_and_at_most_so_many(tmp_path, monkeypatch):
    clock = _Clock()
    pipeline, usb = _pipeline(tmp_path, clock)
    monkeypatch.setattr(module, "MAX_RECHECKED", 2)
    paths = [os.path.join(usb, f"{i}.bin") for i in range(3)]
    for path in paths:
        with open(path, "wb") as f:
            f.write(b"x")
        _reported(pipeline, path)
        clock.now += 1
    assert list(pipeline._recheck) == paths[1:]  # the oldest report dropped first
    os.unlink(paths[1])
    clock.now += module.RECHECK_S
    pipeline._recheck_reported()
    assert list(pipeline._recheck) == paths[2:]  # a removed file is no longer looked at
    clock.now += module.RECHECK_FOR_S
    pipeline._recheck_reported()
    assert pipeline._recheck == {} and pipeline._egress == {}  # past RECHECK_FOR_S: not looked at


def _one_reported(tmp_path) -> tuple[Pipeline, _Clock, str]:
    """A pipeline whose clock the test moves, and a file it has just reported."""
    clock = _Clock()
    pipeline, usb = _pipeline(tmp_path, clock)
    path = os.path.join(usb, "a.bin")
    with open(path, "wb") as f:
        f.write(b"opaque")
    _reported(pipeline, path)
    return pipeline, clock, path


def _looks(pipeline: Pipeline, clock: _Clock, seconds: int, monkeypatch) -> list[float]:
    """The ages at which the reported files were lstat'ed (by the pipeline's _lstat, or by
    agent._restat for many at once), a pass a second for `seconds`."""
    looked, lstat, restat, start = [], module._lstat, module._restat, clock.now

    class Counted:
        @staticmethod
        def changed(paths, entries):
            looked.extend(clock.now - start for _ in paths)
            return restat.changed(paths, entries)

    monkeypatch.setattr(module, "_lstat", lambda path: (looked.append(clock.now - start), lstat(path))[1])
    if restat is not None:
        monkeypatch.setattr(module, "_restat", Counted)
    for _ in range(seconds):
        clock.now += 1
        pipeline._recheck_reported()
    monkeypatch.setattr(module, "_lstat", lstat)
    monkeypatch.setattr(module, "_restat", restat)
    return list(dict.fromkeys(looked))  # a file the C call names is looked at again in Python: one look


def test_a_reported_file_is_looked_at_less_often_as_it_ages(tmp_path, monkeypatch):
    """Every second at first, then after an eighth of its age, at most RECHECK_MAX_GAP_S apart:
    some 150 lstats in the hour it is watched, not one a second."""
    pipeline, clock, path = _one_reported(tmp_path)
    looked = _looks(pipeline, clock, int(module.RECHECK_FOR_S) + 60, monkeypatch)
    assert looked[:8] == [1, 2, 3, 4, 5, 6, 7, 8]  # every second while it is new
    gaps = [b - a for a, b in zip(looked, looked[1:], strict=False)]
    assert max(gaps) <= module.RECHECK_MAX_GAP_S + module.RECHECK_S
    assert all(g <= max(module.RECHECK_S, age * module.RECHECK_BACKOFF) + 1 for age, g in zip(looked, gaps, strict=False))
    assert 100 <= len(looked) <= 200, len(looked)
    assert looked[-1] <= module.RECHECK_FOR_S and path not in pipeline._recheck  # then no longer watched


def test_a_change_to_an_old_report_is_found_within_the_longest_gap(tmp_path, monkeypatch):
    pipeline, clock, path = _one_reported(tmp_path)
    _looks(pipeline, clock, 300, monkeypatch)
    assert path not in pipeline._egress
    os.utime(path, ns=(1, 1))  # a write through a mapping kept open, five minutes on
    waited = 0
    while path not in pipeline._egress and waited <= module.RECHECK_MAX_GAP_S + module.RECHECK_S:
        clock.now += 1
        waited += 1
        pipeline._recheck_reported()
    assert path in pipeline._egress, "the change was never found within the longest gap"


def test_a_file_reported_again_is_looked_at_as_a_new_report(tmp_path, monkeypatch):
    pipeline, clock, path = _one_reported(tmp_path)
    _looks(pipeline, clock, 600, monkeypatch)
    _reported(pipeline, path)  # written and reported again: its own due time, not the old one's
    looked = _looks(pipeline, clock, 5, monkeypatch)
    assert looked == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("fast", [True, False])
def test_a_file_whose_path_is_past_path_max_stays_looked_at(tmp_path, monkeypatch, fast):
    """Its folder's path under PATH_MAX, the folder and a long name over it: reported (the
    pipeline's lstat reaches any length), then dropped at the first look, whose os.lstat's
    ENAMETOOLONG was taken for "gone" (and no file watch takes such a path either): a write
    through a kept mapping went unseen until the reconcile, or never if the stick left first."""
    monkeypatch.setattr(module, "FAST_LOOKS", fast)
    clock = _Clock()
    pipeline, usb = _pipeline(tmp_path, clock)
    folder, fd = usb, os.open(usb, os.O_RDONLY)
    try:
        while len(os.fsencode(folder)) < 3800:
            os.mkdir("d" * 200, dir_fd=fd)
            deeper = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, folder = deeper, folder + "/" + "d" * 200
        os.close(os.open("f" * 250, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
        path = folder + "/" + "f" * 250
        assert len(os.fsencode(path)) >= 4096
        pipeline._watch_reported(path, walk_lstat(path))
        clock.now += module.RECHECK_S
        pipeline._recheck_reported()
        assert path in pipeline._recheck and path not in pipeline._egress
        os.utime("f" * 250, ns=(5, 5), dir_fd=fd)  # what a write through a kept mapping does to the times
        for _ in range(int(module.RECHECK_S) + 1):
            clock.now += 1
            pipeline._recheck_reported()
        assert path in pipeline._egress  # found at its next look
    finally:
        os.close(fd)


def test_a_look_refused_is_tried_again_not_dropped(tmp_path, monkeypatch):
    """Only a file gone (or a path that no longer leads to one) ends its looks; an lstat refused
    (a user's FUSE mount may refuse root) or failing otherwise is tried at the next look."""
    import errno

    monkeypatch.setattr(module, "FAST_LOOKS", False)
    pipeline, clock, path = _one_reported(tmp_path)
    real = module._lstat

    def refused(p):
        raise PermissionError(errno.EACCES, "Permission denied", p)

    monkeypatch.setattr(module, "_lstat", refused)
    clock.now += module.RECHECK_S
    pipeline._recheck_reported()
    assert path in pipeline._recheck
    monkeypatch.setattr(module, "_lstat", real)
    os.utime(path, ns=(1, 1))
    clock.now += module.RECHECK_S
    pipeline._recheck_reported()
    assert path in pipeline._egress


def test_a_pass_that_fails_leaves_its_files_to_the_next(tmp_path, monkeypatch):
    """The files due together are taken off the heap for the pass: one that raised (a bug, no
    memory) must put them back, or their looks, and a write through a mapping, were lost for good."""
    pipeline, clock, path = _one_reported(tmp_path)

    class Broken:
        @staticmethod
        def changed(paths, entries):
            raise MemoryError

    monkeypatch.setattr(module, "FAST_LOOKS", True)
    monkeypatch.setattr(module, "_restat", Broken)
    clock.now += module.RECHECK_S
    with pytest.raises(MemoryError):
        pipeline._recheck_reported()
    monkeypatch.setattr(module, "FAST_LOOKS", False)
    os.utime(path, ns=(1, 1))
    pipeline._recheck_reported()
    assert path in pipeline._egress  # looked at in the next step, the change found
