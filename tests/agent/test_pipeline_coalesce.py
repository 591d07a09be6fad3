"""A file's run of watcher changes (created, modified, closed) is handled as one within a
pipeline step (issue 21 item 4): one lstat and one look for its writer per file instead of one per
change, leaving the pending file exactly as handling the changes one by one did."""

from __future__ import annotations

import os

import pytest

from agent import pipeline as module
from agent.config import ClassifiedFolder
from agent.index import FingerprintIndex
from agent.pipeline import Pipeline
from agent.places import EgressPlace, EgressPlaces
from agent.spool import Spool
from agent.watcher import FsChange
from rules.events import Event


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make(tmp_path):
    made = []

    def build(name: str) -> Pipeline:
        root = tmp_path / name
        (root / "classified").mkdir(parents=True)
        (root / "usb").mkdir()
        index = FingerprintIndex(
            str(root / "index.db"), (ClassifiedFolder(str(root / "classified"), "core", "Drawings"),)
        )
        spool = Spool(str(root / "spool.db"))
        places = EgressPlaces()
        places.add(EgressPlace(str(tmp_path / "usb"), "folder"))  # both pipelines watch the same files
        p = Pipeline(index, spool, places, lambda t, **f: Event(type=t, **f), lambda e: e, stable_s=0.5, clock=_Clock())
        p.seen_calls = []
        p.writers.seen = lambda path, root: p.seen_calls.append(path)
        p._check_egress = lambda: None  # not started: only what the changes leave pending is looked at
        made.append((p, index, spool))
        return p

    (tmp_path / "usb").mkdir()
    yield build
    for p, index, spool in made:
        p.lanes.stop()
        p.inspector.close()
        index.close()
        spool.close()


def _counting_lstat(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = module._lstat  # the pipeline's lstat (walk.lstat, or os.stat for a short path: FAST_STAT)

    def counted(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(module, "_lstat", counted)
    return calls


def test_a_copied_files_three_changes_cost_one_stat_and_one_writer_look(make, tmp_path, monkeypatch):
    """Fails on the code before the coalescing: 3 lstats and 2 writer looks per file."""
    p = make("one")
    paths = [str(tmp_path / "usb" / f"{i}.bin") for i in range(5)]
    for path in paths:
        with open(path, "wb") as f:
            f.write(os.urandom(100))
        for kind in ("created", "modified", "closed"):
            p.changes.put(FsChange(kind, path))
    stats = _counting_lstat(monkeypatch)
    p._step()
    assert sorted(stats) == sorted(paths)
    assert sorted(p.seen_calls) == sorted(paths)
    assert all(p._egress[path].closed and p._egress[path].wrote for path in paths)


SEQUENCES = [
    ("created", "modified", "closed"),
    ("closed", "modified"),  # written again after its close: still written, its writer still looked for
    ("closed",),
    ("created", "closed"),  # created and closed with nothing written
    ("modified", "modified"),
    ("created", "modified", "closed", "modified", "closed"),
]


@pytest.mark.parametrize("kinds", SEQUENCES, ids="-".join)
@pytest.mark.parametrize("reported", [False, True], ids=["new", "reported-between"])
def test_coalesced_changes_leave_what_one_by_one_handling_left(make, tmp_path, kinds, reported):
    path = str(tmp_path / "usb" / "f.bin")
    with open(path, "wb") as f:
        f.write(b"\0" * 64)
    alone, batched = make("alone"), make("batched")
    changes = [FsChange(kind, path) for kind in kinds]
    for p in (alone, batched):
        if reported:  # the first change came before the file was looked at: it reports nothing new
            p._reported_at[path] = (
                changes[0].at + (changes[1].at - changes[0].at) / 2 if len(changes) > 1 else changes[0].at
            )
    for change in changes:
        alone._handle(change)
        batched.changes.put(change)
    batched._step()
    assert set(alone.seen_calls) == set(batched.seen_calls)  # a second look for the same writer added nothing
    a, b = alone._egress.get(path), batched._egress.get(path)
    assert (a is None) == (b is None)
    if a is not None:
        assert (a.closed, a.wrote, a.origin, a.due_at, a.unseen_write) == (
            b.closed,
            b.wrote,
            b.origin,
            b.due_at,
            b.unseen_write,
        )
        assert (a.seen.st_ino, a.seen.st_size) == (b.seen.st_ino, b.seen.st_size)


def test_changes_of_other_files_between_keep_their_order(make, tmp_path):
    """Only consecutive changes of one file coalesce: a delete between its writes still ends them."""
    usb = tmp_path / "usb"
    keep, gone = str(usb / "keep.bin"), str(usb / "gone.bin")
    with open(keep, "wb") as f:
        f.write(b"kept")
    p = make("order")
    for change in (
        FsChange("created", gone),
        FsChange("modified", keep),
        FsChange("deleted", gone),
        FsChange("closed", keep),
    ):
        p.changes.put(change)
    p._step()
    assert gone not in p._egress
    assert p._egress[keep].closed and p._egress[keep].wrote
