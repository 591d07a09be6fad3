"""A file closed after a write is opened without an lstat first (pipeline.FAST_CLOSED_WRITES):
what the pipeline then hands to its lanes and reports is what the reference (lstat, then open)
gives, for a file as written, removed, swapped for a link, a FIFO or a folder, on a place that is
gone, and with lanes that are full."""

from __future__ import annotations

import os

import pytest

from agent import pipeline as module
from agent.config import ClassifiedFolder
from agent.index import FingerprintIndex
from agent.pipeline import Pipeline
from agent.places import EgressPlace, EgressPlaces
from agent.spool import Spool
from rules.events import Event


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _setup_written(usb, name: str) -> None:
    (usb / name).write_bytes(b"written " * 100)


def _swap(usb, name: str, how: str) -> None:
    path = usb / name
    if how == "kept":
        return
    path.unlink()
    if how == "link":
        path.symlink_to(usb / "other")
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "folder":
        path.mkdir()


def _outcome(tmp_path, fast: bool, how: str, monkeypatch, slots: int = 64, unplace: bool = False, closed: bool = True):
    """What one _check_egress leaves: the jobs in the lanes, the events in the outbox, the files
    still pending, and the lstat calls made."""
    monkeypatch.setattr(module, "FAST_CLOSED_WRITES", fast)
    root = tmp_path / f"{how}-{fast}-{closed}"
    (root / "classified").mkdir(parents=True)
    usb = root / "usb"
    usb.mkdir()
    (usb / "other").write_bytes(b"x")
    index = FingerprintIndex(str(root / "index.db"), (ClassifiedFolder(str(root / "classified"), "core", "D"),))
    spool = Spool(str(root / "spool.db"))
    places = EgressPlaces()
    places.add(EgressPlace(str(usb), "folder"))
    p = Pipeline(index, spool, places, lambda t, **f: Event(type=t, **f), lambda e: e, stable_s=0.5, clock=_Clock())
    p.lanes._small.jobs.maxsize = slots
    try:
        names = [f"f{i}.bin" for i in range(3)]
        for name in names:
            _setup_written(usb, name)
            p._pend_egress(str(usb / name), places.find(str(usb / name)), closed=closed, wrote=True)
            p._egress[str(usb / name)].due_at = p.clock()  # due now, closed or not
        for name in names:
            _swap(usb, name, how)
        if unplace:
            p.places = EgressPlaces()
        lstats = []
        real = module.lstat
        monkeypatch.setattr(module, "lstat", lambda path: lstats.append(path) or real(path))
        p._check_egress()
        jobs = []
        while not p.lanes._small.jobs.empty():
            job = p.lanes._small.jobs.get_nowait()
            jobs.append(
                (
                    os.path.basename(job.path),
                    job.st.st_ino == os.lstat(job.path).st_ino,
                    job.st.st_size,
                    job.context[0].origin,
                )
            )
            os.close(job.fd)
        events = [
            {k: v for k, v in e.to_dict().items() if k not in ("id", "ts")}
            for e, _ in p._outbox._entries
            if e is not None
        ]
        for e in events:  # the two runs' files differ in path and times only
            e["path"] = os.path.basename(e["path"])
            e["details"].pop("mtime", None)
        pending = sorted(os.path.basename(path) for path in p._egress)
        reported = sorted(os.path.basename(path) for path in p._reported_at)
        return jobs, events, pending, reported, len(lstats)
    finally:
        p.lanes.stop()
        p.inspector.close()
        index.close()
        spool.close()


@pytest.mark.parametrize("how", ["kept", "removed", "link", "fifo", "folder"])
def test_a_closed_write_is_handed_over_or_reported_as_the_reference_does(tmp_path, monkeypatch, how):
    fast = _outcome(tmp_path, True, how, monkeypatch)
    reference = _outcome(tmp_path, False, how, monkeypatch)
    assert fast[:4] == reference[:4]
    if how == "kept":
        assert len(fast[0]) == 3 and fast[4] == 0 and reference[4] == 3  # three lstats fewer
    else:
        assert not fast[0] and len(fast[1]) == 3  # each reported as not read, by the reference's steps


def test_lanes_that_are_full_leave_the_rest_pending_as_the_reference_does(tmp_path, monkeypatch):
    fast = _outcome(tmp_path, True, "kept", monkeypatch, slots=2)
    reference = _outcome(tmp_path, False, "kept", monkeypatch, slots=2)
    assert fast[:4] == reference[:4]
    assert len(fast[0]) == 2 and fast[2] == ["f2.bin"]


def test_a_place_gone_meanwhile_is_reported_as_the_reference_does(tmp_path, monkeypatch):
    fast = _outcome(tmp_path, True, "kept", monkeypatch, unplace=True)
    reference = _outcome(tmp_path, False, "kept", monkeypatch, unplace=True)
    assert fast[:4] == reference[:4]
    assert (
        not fast[0]
        and [e["detections"][0]["sample"] for e in fast[1]] == ["its medium was removed before it could be read"] * 3
    )


def test_a_write_not_closed_is_still_waited_on_as_the_reference_does(tmp_path, monkeypatch):
    fast = _outcome(tmp_path, True, "kept", monkeypatch, closed=False)
    reference = _outcome(tmp_path, False, "kept", monkeypatch, closed=False)
    assert fast == reference
    assert not fast[0] and fast[2] == ["f0.bin", "f1.bin", "f2.bin"]  # its size held still once: looked at again later
