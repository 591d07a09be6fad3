"""The lanes' C digest of a batch (agent/_lane.c) against the reference, file by file through
Hasher.digest_fd and the looks in Python: the same digest, head and 7z sign, the same answer to
whether text or a zip's local header may be there, whether a zip's end record is in the tail, and
the same prefilter hits, for bytes put where the reads and the limits cut; the same errors."""

from __future__ import annotations

import hashlib
import os
import queue
import random
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import lanes as lanes_module
from agent.content.chunks import Chunker, Prefilter, packed
from agent.content.zipread import END_SIGNATURE, LOCAL_SIGNATURE, TAIL_BYTES
from agent.hashing import Hasher
from agent.inspector import InProcessInspector, open_regular
from agent.lanes import Job, Lanes, _Lane
from agent.opaque import EMBEDDED_7Z_WITHIN, LOCAL_WITHIN, SEVEN_ZIP_SIGNATURE

pytestmark = pytest.mark.skipif(lanes_module._lane is None, reason="agent/_lane.c not built (no compiler or no libssl-dev)")

READ = 64 * 1024  # what a read takes: bytes put across two reads
TEXT = " ".join(f"Impeller blade {i} is milled to {i * 41 % 997} microns." for i in range(3)).encode()[:70]
GB_TEXT = "商业秘密，严禁外传。".encode("gb18030") * 6


class _NoWorker:
    def inspect(self, fd, name):
        raise AssertionError("the digests are compared without a worker")

    def close(self) -> None:
        pass

    def close_if_idle(self, idle_s: float) -> None:
        pass


def _lane() -> _Lane:
    return _Lane("test", 64, Hasher(), _NoWorker(), queue.SimpleQueue(), 10.0)


def _prefilter_of(data: bytes) -> Prefilter:
    chunker = Chunker(keep=0)
    chunker.feed(data)
    return Prefilter.of([(1, packed(chunker.finish()))])


def _answers(lane: _Lane, jobs: list[Job]) -> tuple[list, list]:
    """(C's, the reference's) answers for the jobs, each as comparable values."""

    def values(d, job):
        if isinstance(d, OSError):
            return ("error", d.errno, type(d))
        g = d.digest
        at_end = d.end_in_tail() if job.inspect else None  # asked of a file inspected only (_work)
        return (g.sha256, g.size, g.mtime_ns, g.inode, g.ctime_ns, g.head, g.seen, d.looked, at_end, d.hits)

    native = [values(d, job) for d, job in zip(lane._digests(jobs), jobs, strict=True)]
    reference = []
    for job in jobs:
        try:
            reference.append(values(lane._digest(job), job))
        except OSError as exc:
            reference.append(values(exc, job))
    return native, reference


def _jobs(paths, inspect=True, prefilter=None) -> list[Job]:
    out = []
    for path in paths:
        fd, st_ = open_regular(str(path))
        out.append(Job(str(path), fd, st_, None, inspect, prefilter))
    return out


def _close(jobs) -> None:
    for job in jobs:
        os.close(job.fd)


def _placed(size: int, piece: bytes, at: int, seed: int = 1) -> bytes:
    data = bytearray(random.Random(seed).randbytes(size))
    data[at : at + len(piece)] = piece
    return bytes(data)


CASES = {
    "empty": b"",
    "one byte": b"\x07",
    "random, several reads": random.Random(2).randbytes(3 * READ + 17),
    "text across two reads": _placed(2 * READ, TEXT, READ - 30),
    "GB text across two reads": _placed(2 * READ, GB_TEXT, READ - 50),
    "text one byte short of a run": _placed(2 * READ, b"\0" + TEXT[:63] + b"\0", READ - 30),
    "7z signature across two reads": _placed(2 * READ, SEVEN_ZIP_SIGNATURE, READ - 3),
    "7z signature ending where the look ends": _placed(EMBEDDED_7Z_WITHIN + 10, SEVEN_ZIP_SIGNATURE, EMBEDDED_7Z_WITHIN - 6),
    "7z signature a byte past": _placed(EMBEDDED_7Z_WITHIN + 10, SEVEN_ZIP_SIGNATURE, EMBEDDED_7Z_WITHIN - 5),
    "local header across two reads": _placed(2 * READ, LOCAL_SIGNATURE, READ - 2),
    "local header ending where the look ends": _placed(LOCAL_WITHIN + 10, LOCAL_SIGNATURE, LOCAL_WITHIN - 4),
    "local header a byte past": _placed(LOCAL_WITHIN + 10, LOCAL_SIGNATURE, LOCAL_WITHIN - 3),
    "end record starting the tail": _placed(3 * READ, END_SIGNATURE, 3 * READ - TAIL_BYTES),
    "end record a byte before the tail": _placed(3 * READ, END_SIGNATURE, 3 * READ - TAIL_BYTES - 1),
    "end record across two reads": _placed(2 * READ, END_SIGNATURE, READ - 2),
    "end record ending the file": _placed(READ, END_SIGNATURE, READ - 4),
}


@pytest.mark.parametrize("inspect", [True, False])
def test_each_case_gets_the_references_answer(tmp_path, inspect):
    paths = []
    for i, data in enumerate(CASES.values()):
        paths.append(tmp_path / f"{i}.bin")
        paths[-1].write_bytes(data)
    jobs = _jobs(paths, inspect)
    try:
        native, reference = _answers(_lane(), jobs)
    finally:
        _close(jobs)
    for name, mine, theirs in zip(CASES, native, reference, strict=True):
        assert mine == theirs, name
    if inspect:  # the cases find what they put there, so the comparison is not of nothing
        found = dict(zip(CASES, native, strict=True))
        assert found["text across two reads"][7] and not found["text one byte short of a run"][7]
        assert found["7z signature ending where the look ends"][6] and not found["7z signature a byte past"][6]
        assert found["local header ending where the look ends"][7] and not found["local header a byte past"][7]
        assert found["end record starting the tail"][8] and not found["end record a byte before the tail"][8]


def test_chunks_found_in_the_prefilter_are_the_references(tmp_path):
    drawing = random.Random(5).randbytes(200_000)
    prefilter = _prefilter_of(drawing)
    (tmp_path / "copy.bin").write_bytes(b"prefix" + drawing[50_000:150_000] + os.urandom(70_000))
    (tmp_path / "other.bin").write_bytes(os.urandom(150_000))
    jobs = _jobs([tmp_path / "copy.bin", tmp_path / "other.bin"], prefilter=prefilter)
    try:
        native, reference = _answers(_lane(), jobs)
    finally:
        _close(jobs)
    assert native == reference
    assert len(native[0][9]) > 5 and native[1][9] == ()


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 3 * READ),
    st.lists(st.tuples(st.sampled_from([TEXT, GB_TEXT, SEVEN_ZIP_SIGNATURE, LOCAL_SIGNATURE, END_SIGNATURE]), st.integers(0, 3 * READ)), max_size=4),
    st.integers(0, 2**32),
)
def test_any_bytes_get_the_references_answer(tmp_path_factory, size, pieces, seed):
    data = bytearray(random.Random(seed).randbytes(size))
    for piece, at in pieces:
        data[min(at, size) : min(at, size) + len(piece)] = piece
    path = tmp_path_factory.mktemp("any") / "f.bin"
    path.write_bytes(bytes(data))
    jobs = _jobs([path], prefilter=_prefilter_of(bytes(data[: size // 2])) if seed % 2 else None)
    try:
        native, reference = _answers(_lane(), jobs)
    finally:
        _close(jobs)
    assert native == reference


def test_errors_are_the_references_and_do_not_stop_the_batch(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"first")
    (tmp_path / "b.bin").write_bytes(b"second")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    jobs = _jobs([tmp_path / "a.bin"])
    fifo_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    jobs.append(Job(str(fifo), fifo_fd, os.fstat(fifo_fd)))  # a FIFO swapped in: never read
    [last] = _jobs([tmp_path / "b.bin"])
    closed_fd = os.open(tmp_path / "b.bin", os.O_RDONLY)
    closed = Job(str(tmp_path / "b.bin"), closed_fd, os.fstat(closed_fd))
    os.close(closed_fd)  # nothing opened after: its number stays free
    jobs += [closed, last]
    try:
        native, reference = _answers(_lane(), jobs)
    finally:
        _close([j for j in jobs if j is not closed])
    assert native == reference
    assert [n[0] for n in native] == [native[0][0], "error", "error", native[3][0]]
    assert native[1][1] == 22 and native[2][1] == 9  # EINVAL (not a regular file), EBADF
    assert native[3][1] == 6


def test_bytes_read_count_as_the_lanes_progress(tmp_path):
    (tmp_path / "a.bin").write_bytes(os.urandom(300_000))
    lane = _lane()
    lane.moved_at = time.time() - 100  # busy since long ago
    assert lane.last_moved() == lane.moved_at
    [job] = _jobs([tmp_path / "a.bin"])
    try:
        lane._digests([job])
    finally:
        _close([job])
    assert lane._read_count[0] == 300_000
    assert time.time() - lane.last_moved() < 5  # the reads moved it, though moved_at did not
    lane.moved_at = None
    assert lane.last_moved() is None  # idle


def test_the_hasher_counts_what_the_batch_read(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    (tmp_path / "b.bin").write_bytes(b"y" * 24)
    lane = _lane()
    jobs = _jobs([tmp_path / "a.bin", tmp_path / "b.bin"])
    try:
        lane._digests(jobs)
    finally:
        _close(jobs)
    assert (lane.hasher.bytes_read, lane.hasher.files_hashed) == (1024, 2)


def _done(lanes: Lanes, n: int, found: list | None = None) -> list:
    """`found` and the lanes' results after it, until n in all (or 10 s)."""
    found, deadline = list(found or []), time.monotonic() + 10
    while len(found) < n and time.monotonic() < deadline:
        found += lanes.done()
        time.sleep(0.01)
    return found


def _woken_and_done(lanes: Lanes, n: int) -> list:
    """Start the lanes on the files handed to them, and their n results (within 10 s)."""
    lanes.start()
    try:
        lanes.wake()
        return _done(lanes, n)
    finally:
        lanes.stop()


def test_a_lane_takes_its_waiting_files_together_and_reports_each(tmp_path, monkeypatch):
    """Files handed without a wake are taken in batches of BATCH_FILES: every one is reported
    once, with its own digest, and its descriptor closed."""
    monkeypatch.setattr(lanes_module, "BATCH_FILES", 7)
    calls = []
    real = lanes_module._lane.digest_batch

    def counting(jobs, progress):
        calls.append(len(jobs))
        return real(jobs, progress)

    monkeypatch.setattr(lanes_module._lane, "digest_batch", counting)
    lanes = Lanes(Hasher(), InProcessInspector)
    datas = [os.urandom(100 + i) for i in range(30)]
    jobs = []
    for i, data in enumerate(datas):
        (tmp_path / f"{i}.bin").write_bytes(data)
        [job] = _jobs([tmp_path / f"{i}.bin"])
        jobs.append(job)
        assert lanes.submit(job, wake=False)
    found = _woken_and_done(lanes, 30)

    assert sorted(d.job.path for d in found) == sorted(j.path for j in jobs)
    for done in found:
        i = int(os.path.basename(done.job.path).split(".")[0])
        assert done.digest.sha256 == hashlib.sha256(datas[i]).hexdigest()
    assert max(calls) == 7 and sum(calls) == 30
    for job in jobs:  # closed by the lane: the number is free, or another file's
        try:
            assert os.readlink(f"/proc/self/fd/{job.fd}") != job.path
        except FileNotFoundError:
            pass


def test_a_failing_digest_reports_every_file_of_the_batch(tmp_path, monkeypatch):
    def broken(jobs, progress):
        raise MemoryError

    monkeypatch.setattr(lanes_module._lane, "digest_batch", broken)
    lanes = Lanes(Hasher(), InProcessInspector)
    for i in range(3):
        (tmp_path / f"{i}.bin").write_bytes(b"x")
        [job] = _jobs([tmp_path / f"{i}.bin"])
        assert lanes.submit(job, wake=False)
    found = _woken_and_done(lanes, 3)
    assert len(found) == 3 and all(str(d.digest) == "internal error: MemoryError" for d in found)


def test_the_stop_taken_in_a_batch_ends_the_lane_after_it(tmp_path):
    lanes = Lanes(Hasher(), InProcessInspector)
    (tmp_path / "a.bin").write_bytes(b"a")
    [job] = _jobs([tmp_path / "a.bin"])
    assert lanes.submit(job, wake=False)
    lanes._small.jobs.put_nowait(None, wake=False)  # the stop behind it, taken in its batch
    lanes.start()
    lanes._small.jobs.wake()
    lanes._small._thread.join(5)
    assert not lanes._small._thread.is_alive()
    [done] = lanes.done()
    assert done.digest.size == 1
    lanes.stop()


def test_a_64_bit_inode_number_is_taken_and_given_back_whole(tmp_path):
    """Inode numbers are unsigned 64-bit, and a FUSE file system may use every bit: the opener's
    stat saying one must not fail the batch (it did, as a signed 64-bit parse's overflow)."""
    from types import SimpleNamespace

    (tmp_path / "a.bin").write_bytes(b"data")
    [job] = _jobs([tmp_path / "a.bin"])
    real = job.st
    job.st = SimpleNamespace(
        st_mode=real.st_mode, st_mtime_ns=real.st_mtime_ns, st_ino=2**64 - 2, st_ctime_ns=real.st_ctime_ns, st_size=real.st_size
    )
    try:
        [digested] = _lane()._digests([job])
    finally:
        _close([job])
    assert digested.digest.sha256 == hashlib.sha256(b"data").hexdigest()
    assert digested.digest.inode == real.st_ino  # its own fstat's, as Hasher.digest_fd gives


def test_files_taken_into_a_batch_still_count_against_the_lanes_slots(tmp_path, monkeypatch):
    """A lane holds at most `slots` open files: those waiting and those it took into the batch it
    is hashing (taking a batch emptied the queue, and the pipeline handed as many again: twice the
    descriptors the lane is said to hold)."""
    entered, release = threading.Event(), threading.Event()
    real = lanes_module._lane.digest_batch

    def held(jobs, progress):
        entered.set()
        release.wait(10)
        return real(jobs, progress)

    monkeypatch.setattr(lanes_module._lane, "digest_batch", held)
    lanes = Lanes(Hasher(), InProcessInspector, small_slots=4)
    jobs = []
    for i in range(6):
        (tmp_path / f"{i}.bin").write_bytes(b"x" * (i + 1))
        jobs += _jobs([tmp_path / f"{i}.bin"])
    accepted = [lanes.submit(job, wake=False) for job in jobs[:4]]
    lanes.start()
    try:
        lanes.wake()
        assert entered.wait(10)  # the lane took the four into its batch
        assert lanes.queued() == 0
        assert lanes.submit(jobs[4], wake=False) is False  # refused: the lane holds its four
        release.set()
        found = _done(lanes, 4)
        assert len(found) == 4 and all(accepted)
        assert lanes.submit(jobs[4]) is True  # room again once they are done
        found = _done(lanes, 5, found)
        assert sorted(d.digest.size for d in found) == [1, 2, 3, 4, 5]
    finally:
        release.set()
        lanes.stop()
        os.close(jobs[5].fd)


def test_a_time_past_2262_fails_neither_its_file_nor_its_batch(tmp_path):
    """st_mtime_ns past 2**63 (a file touched to 2400: ext4 keeps it) was parsed as a signed 64-bit
    number, and its OverflowError failed the whole batch: every file of it, a drawing copied
    beside, reported unreadable. Each file now gets the reference's answer, times whole."""
    from tests.agent.far_times import YEAR_2400_NS as future
    from tests.agent.far_times import dated

    (tmp_path / "future.bin").write_bytes(b"touched far ahead")
    (tmp_path / "drawing.dwg").write_bytes(b"AC1032 pump impeller")
    dated(tmp_path / "future.bin", future + 7, future)
    jobs = _jobs([tmp_path / "future.bin", tmp_path / "drawing.dwg"])
    try:
        native, reference = _answers(_lane(), jobs)
    finally:
        _close(jobs)
    assert native == reference
    assert native[0][2] == future + 7 and native[1][0] == hashlib.sha256(b"AC1032 pump impeller").hexdigest()
