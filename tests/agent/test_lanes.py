"""The hashing lanes: a big file does not hold up small ones, the lanes hold a bounded number of
open files, and a lane stuck in a read that never returns shows in the pipeline's progress."""

from __future__ import annotations

import os
import threading
import time

from agent.hashing import Hasher
from agent.index import FingerprintIndex
from agent.inspector import InProcessInspector, open_regular
from agent.lanes import Job, Lanes
from agent.pipeline import Pipeline
from agent.places import EgressPlaces
from agent.spool import Spool
from rules.events import Event


class _BlockingHasher(Hasher):
    """Hangs on files of `blocking_size` bytes or more (a read from a hung file system)."""

    def __init__(self, blocking_size: int) -> None:
        super().__init__()
        self.blocking_size = blocking_size
        self.release = threading.Event()

    def digest_fd(self, fd, head_bytes=0, progress=None, known=None, **looking):
        if os.fstat(fd).st_size >= self.blocking_size:
            self.release.wait(30)
        return super().digest_fd(fd, head_bytes, progress, **looking)


def _job(path) -> Job:
    fd, st = open_regular(str(path))
    return Job(str(path), fd, st)


def _wait_done(lanes: Lanes, n: int, timeout_s: float = 10.0) -> list:
    found, deadline = [], time.monotonic() + timeout_s
    while len(found) < n and time.monotonic() < deadline:
        found += lanes.done()
        time.sleep(0.01)
    return found


def test_a_small_file_is_not_queued_behind_a_big_one(tmp_path):
    big, small = tmp_path / "decoy.iso", tmp_path / "copy.dwg"
    with open(big, "wb") as f:
        f.truncate(10 << 20)
    small.write_bytes(b"drawing")
    hasher = _BlockingHasher(blocking_size=10 << 20)
    lanes = Lanes(hasher, InProcessInspector, large_bytes=1 << 20)
    lanes.start()
    try:
        assert lanes.submit(_job(big)) and lanes.submit(_job(small))
        [done] = _wait_done(lanes, 1)
        assert done.job.path == str(small) and done.digest.size == 7  # while the decoy still hangs
        assert lanes.in_flight == {str(big)}
        assert lanes.stuck_since() is not None
        hasher.release.set()
        [later] = _wait_done(lanes, 1)
        assert later.job.path == str(big) and lanes.stuck_since() is None
    finally:
        hasher.release.set()
        lanes.stop()


def test_a_full_lane_refuses_more_open_files(tmp_path):
    hasher = _BlockingHasher(blocking_size=1)
    lanes = Lanes(hasher, InProcessInspector, small_slots=2)
    lanes.start()
    jobs, accepted = [], []
    try:
        for i in range(4):
            (tmp_path / f"{i}.txt").write_bytes(b"x")
            jobs.append(_job(tmp_path / f"{i}.txt"))
        accepted = [lanes.submit(job) for job in jobs]
        # one taken by the lane thread (blocked), two waiting in its queue: the fourth is refused
        assert accepted.count(True) in (2, 3) and accepted[-1] is False
    finally:
        for job, taken in zip(jobs, accepted, strict=False):  # a job not offered (or refused) is ours to close
            if not taken:
                os.close(job.fd)
        for job in jobs[len(accepted) :]:
            os.close(job.fd)
        hasher.release.set()
        lanes.stop()


def test_a_stuck_lane_stalls_the_pipelines_progress(tmp_path):
    (tmp_path / "decoy.iso").write_bytes(b"x" * 100)
    hasher = _BlockingHasher(blocking_size=100)
    index = FingerprintIndex(str(tmp_path / "index.db"), ())
    spool = Spool(str(tmp_path / "spool.db"))
    pipeline = Pipeline(index, spool, EgressPlaces(), lambda t, **f: Event(type=t, **f), lambda e: e, hasher=hasher)
    pipeline.start()
    try:
        time.sleep(0.3)
        moving = pipeline.progress()["stepped_at"]
        assert time.time() - moving < 1  # idle: the worker steps every tick
        assert pipeline.lanes.submit(_job(tmp_path / "decoy.iso"))
        time.sleep(1.5)
        stuck = pipeline.progress()
        assert time.time() - stuck["stepped_at"] > 1.2 and stuck["queued"] >= 1
    finally:
        hasher.release.set()
        pipeline.stop()
        index.close()
        spool.close()


def test_idle_lanes_end_their_inspection_workers(tmp_path):
    from agent.inspector import InspectorProcess

    made = []

    def make():
        made.append(InspectorProcess())
        return made[-1]

    (tmp_path / "a.txt").write_bytes(b"text")
    lanes = Lanes(Hasher(), make, idle_s=0.3)
    lanes.start()
    try:
        assert lanes.submit(_job(tmp_path / "a.txt"))
        [done] = _wait_done(lanes, 1)
        assert done.inspection.file_type == "text" and made[0].pid() is not None
        deadline = time.monotonic() + 5
        while made[0].pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert made[0].pid() is None
    finally:
        lanes.stop()


class _CountingHasher(Hasher):
    def __init__(self) -> None:
        super().__init__()
        self.hashed: list[int] = []

    def digest_fd(self, fd, head_bytes=0, progress=None, known=None, **looking):
        self.hashed.append(fd)
        return super().digest_fd(fd, head_bytes, progress, **looking)


def test_files_handed_without_a_wake_wait_for_one_wake(tmp_path):
    """The pipeline hands a step's files with wake=False and wakes the lanes once after them:
    the lane starts on none before that wake (a wake a file cost a context switch a file in a
    burst), and on all of them after it; WAKE_AT files waiting wake it anyway."""
    from agent import lanes as lanes_module

    hasher = _CountingHasher()
    lanes = Lanes(hasher, InProcessInspector)
    lanes.start()
    try:
        for i in range(3):
            (tmp_path / f"{i}.txt").write_bytes(b"x" * i)
            assert lanes.submit(_job(tmp_path / f"{i}.txt"), wake=False)
        time.sleep(0.3)
        assert hasher.hashed == [] and lanes.done() == [] and lanes.queued() == 3
        lanes.wake()
        assert sorted(d.digest.size for d in _wait_done(lanes, 3)) == [0, 1, 2]
        for i in range(lanes_module.WAKE_AT):
            (tmp_path / f"w{i}.txt").write_bytes(b"y")
            assert lanes.submit(_job(tmp_path / f"w{i}.txt"), wake=False)
        assert len(_wait_done(lanes, lanes_module.WAKE_AT)) == lanes_module.WAKE_AT  # no wake() asked
        (tmp_path / "late.txt").write_bytes(b"z")
        assert lanes.submit(_job(tmp_path / "late.txt"))  # another thread's put wakes at once
        [late] = _wait_done(lanes, 1)
        assert late.job.path == str(tmp_path / "late.txt")
    finally:
        lanes.stop()


def test_a_pipeline_step_wakes_the_lanes_for_the_files_it_handed(tmp_path, monkeypatch):
    """A burst copied to an egress place is hashed without any other wake than the step's."""
    import json

    from agent import lanes as lanes_module
    from agent.places import EgressPlace

    monkeypatch.setattr(lanes_module, "WAKE_AT", 10**6)  # only the step's wake
    place = tmp_path / "stick"
    place.mkdir()
    index = FingerprintIndex(str(tmp_path / "index.db"), ())
    spool = Spool(str(tmp_path / "spool.db"))
    places = EgressPlaces()
    places.add(EgressPlace(str(place), "folder"))
    pipeline = Pipeline(index, spool, places, lambda t, **f: Event(type=t, **f), lambda e: e)
    pipeline.stable_s = 0.0
    pipeline.start()
    try:
        for i in range(5):
            (place / f"{i}.bin").write_bytes(os.urandom(100 + i))
            pipeline.scan(str(place))

        def reported() -> list[int]:
            bodies = [json.loads(e.body) for e in spool.peek(100)]
            return sorted(b["size"] for b in bodies if b["type"] == "egress.file")

        deadline = time.monotonic() + 10  # the lanes' own timeout is IDLE_S, 120 s
        while len(reported()) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reported() == [100, 101, 102, 103, 104]
    finally:
        pipeline.stop()
        index.close()
        spool.close()


def test_an_archive_behind_an_opaque_start_goes_to_a_worker(tmp_path):
    """64 NULs before a zip or a 7z: the start alone says opaque, but unzip and 7-Zip read the
    archive whole, so the lane hands the file to the worker, which walks its members."""
    import io
    import zipfile

    import py7zr

    drawing = b"AC1032 impeller" + bytes(range(256)) * 300
    zipped, sevened = io.BytesIO(), io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("impeller.dwg", drawing)
    with py7zr.SevenZipFile(sevened, "w") as z:
        z.writestr(drawing, "impeller.dwg")
    files = {
        "zip.bin": b"\0" * 64 + zipped.getvalue(),
        "7z.bin": b"\0" * 64 + sevened.getvalue(),
        "7z-far.bin": b"\0" * 70_000 + sevened.getvalue(),  # its signature past the first chunk the lane hashes
        "plain.bin": b"\0" + bytes(range(256)) * 300,
    }
    lanes = Lanes(Hasher(), InProcessInspector)
    lanes.start()
    try:
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
            assert lanes.submit(_job(tmp_path / name))
        done = {os.path.basename(d.job.path): d for d in _wait_done(lanes, len(files))}
    finally:
        lanes.stop()
    for name in ("zip.bin", "7z.bin", "7z-far.bin"):
        assert [m.name for m in done[name].inspection.members] == ["impeller.dwg"], name
    assert done["plain.bin"].inspection.members == ()
