"""Hashing and inspection off the pipeline thread, in two bounded lanes: small files and large.

A 4 GB decoy written first must not hold back the small copy written after it: files of
`large_bytes` or more go to the large lane, the rest to the small one. Each lane is one thread
with its own inspection worker (agent/inspector.py), which a file no parser can read anything
from (agent/opaque.py) never reaches, and holds at most `slots` open files, so the
pipeline never opens more descriptors than the lanes can take; a file that finds its lane full
waits in the pipeline for the next step. Results come back on a queue that only the pipeline
thread drains (it alone touches the outbox).

A lane takes the files waiting for it together (at most BATCH_FILES, and BATCH_BYTES by their
sizes after the first) and, where the C extension agent/_lane.c is built, hashes and looks at them
in one call that holds no GIL: in a burst, one file at a time through Hasher.digest_fd cost each
file some 100 Python calls and a dozen hand-overs of the GIL to the pipeline thread and back.
That call gives what digest_fd, opaque.Looker, the chunker and opaque.zip_at_end give (FAST_LANE =
False, or a Hasher whose digest_fd is another's, takes them one at a time: the reference,
tests/agent/test_lane_digest.py holds the two equal).
"""

from __future__ import annotations

import collections
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from loguru import logger

from agent.content.chunks import Chunker, Prefilter
from agent.content.inspect import Inspection
from agent.content.textruns import MIN_GB_BYTES, MIN_UTF8_BYTES, PAIRS
from agent.content.zipread import END_SIGNATURE, LOCAL_SIGNATURE, TAIL_BYTES
from agent.hashing import FileDigest, Hasher
from agent.inspector import IDLE_S
from agent.opaque import (
    EMBEDDED_7Z_WITHIN,
    HEAD_BYTES,
    LOCAL_WITHIN,
    SEVEN_ZIP_SIGNATURE,
    Looker,
    is_opaque,
    name_only,
    zip_at_end,
)

try:  # the lane's digest of a batch, in C (agent/_lane.c)
    from agent import _lane
except ImportError:  # built without it (no compiler, or no OpenSSL headers): one file at a time in Python
    _lane = None
else:
    _lane.configure(
        pairs=PAIRS, utf8_bytes=MIN_UTF8_BYTES, gb_bytes=MIN_GB_BYTES, head_bytes=HEAD_BYTES, seven_zip=SEVEN_ZIP_SIGNATURE,
        look_within=EMBEDDED_7Z_WITHIN, local=LOCAL_SIGNATURE, local_within=LOCAL_WITHIN, end=END_SIGNATURE,
        tail_bytes=TAIL_BYTES,
    )  # fmt: skip

LARGE_BYTES = 64 * 1024 * 1024
SMALL_SLOTS = 64
LARGE_SLOTS = 4
WAKE_AT = 16  # files waiting without a wake that wake the lane anyway (a step handing many starts it early)
BATCH_FILES = 64  # a lane's files taken together, at most
BATCH_BYTES = 8 * 1024 * 1024  # and no more files once this many bytes (by their sizes when opened) are taken
FAST_LANE = True  # False: each file through Hasher.digest_fd and the looks in Python (the reference)


class Inspector(Protocol):
    def inspect(self, fd: int, name: str) -> Inspection: ...

    def close(self) -> None: ...

    def close_if_idle(self, idle_s: float) -> None: ...


@dataclass
class Job:
    path: str
    fd: int  # the one descriptor of the file: hashed, then inspected; the lane closes it
    st: Any  # os.stat_result of fd when it was opened
    context: Any = None  # what the pipeline needs back with the result
    inspect: bool = True
    prefilter: Prefilter | None = None  # the index's sketches: the file's chunks are looked up in it (byte lineage)


@dataclass
class Done:
    job: Job
    digest: FileDigest | OSError
    inspection: Inspection | None = field(default=None)
    chunk_hits: tuple[int, ...] = ()  # the file's chunk fingerprints found in the job's prefilter


class _Jobs:
    """A lane's files waiting or taken and not yet done, at most `maxsize` (put_nowait raises
    queue.Full beyond; the stop's None always goes in): each holds an open descriptor, and a lane
    takes a batch of them at once. The pipeline hands a step's files without waking the lane for each
    (wake=False) and wakes it once when the step has handed them all (Lanes.wake): in a burst a
    wake-up a file cost a context switch and a hand-over of the GIL between the two threads for
    every file. A put that wakes (another thread's, the stop's) wakes at once."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._waiting: collections.deque[Job | None] = collections.deque()
        self._ready = threading.Event()  # set: something was put since the lane last found none
        # files the lane took and has not finished (finished() when their descriptor is closed);
        # written by the lane's thread only
        self.taken = 0

    def qsize(self) -> int:
        return len(self._waiting)

    def put_nowait(self, item: Job | None, wake: bool = True) -> None:
        if item is not None and len(self._waiting) + self.taken >= self.maxsize:
            raise queue.Full
        self._waiting.append(item)
        if wake or len(self._waiting) >= WAKE_AT:
            self._ready.set()

    def wake(self) -> None:
        if self._waiting:
            self._ready.set()

    def get_nowait(self) -> Job | None:
        self.taken += 1  # counted before it leaves the queue: a put meanwhile sees one too many, never too few
        try:
            job = self._waiting.popleft()
        except IndexError:
            self.taken -= 1
            raise queue.Empty from None
        if job is None:
            self.taken -= 1
        return job

    def finished(self) -> None:
        """A file taken is done with (its descriptor closed)."""
        self.taken -= 1

    def get(self, timeout: float) -> Job | None:
        """The next file, waiting until a put wakes the lane; queue.Empty after timeout with
        none woken for (a file put without a wake is still taken then: at worst it waits that long)."""
        while True:
            if self._waiting:
                return self.get_nowait()
            self._ready.clear()
            if self._waiting:  # put (and woken for) between the look and the clear
                continue
            if not self._ready.wait(timeout):
                raise queue.Empty


class _Lane:
    def __init__(
        self, name: str, slots: int, hasher: Hasher, inspector: Inspector, results: queue.SimpleQueue, idle_s: float
    ) -> None:
        self.name, self.idle_s = name, idle_s
        self.jobs: _Jobs = _Jobs(slots)
        self.hasher, self.inspector, self.results = hasher, inspector, results
        self.moved_at: float | None = None  # wall time of the busy lane's last sign of progress (None: idle)
        # the bytes the C digest has read (it adds to them without the GIL), and what last_moved saw of them
        self._read = bytearray(8)
        self._read_count = memoryview(self._read).cast("q")
        self._read_seen, self._read_at = 0, 0.0
        self._thread = threading.Thread(target=self._run, name=f"lane-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        if self._thread.ident is None:
            return
        self.jobs.put_nowait(None)  # the stop: never refused, wakes the lane at once
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.error("lane did not stop in time lane={}", self.name)
            return
        self.inspector.close()
        self._close_waiting()

    def last_moved(self) -> float | None:
        """moved_at, or later when the C digest has read bytes since (None: idle). Called by the
        pipeline thread only (it alone writes _read_seen and _read_at)."""
        moved_at = self.moved_at
        if moved_at is None:
            return None
        read = self._read_count[0]
        if read != self._read_seen:
            self._read_seen, self._read_at = read, time.time()
        return max(moved_at, self._read_at)

    def _close_waiting(self) -> None:
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                os.close(job.fd)
                self.jobs.finished()

    def _run(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=self.idle_s)
            except queue.Empty:
                self.inspector.close_if_idle(self.idle_s)  # an idle agent holds no worker
                continue
            if job is None:
                return
            batch, stopping = self._batch(job) if self._native() else ([job], False)
            self.moved_at = time.time()
            try:
                digests = self._digests(batch)
            except Exception as exc:  # contain: every file of the batch is reported, as failed
                logger.exception("lane digest failed lane={} error={!r}", self.name, type(exc).__name__)
                digests = [OSError(f"internal error: {type(exc).__name__}")] * len(batch)
            for job, digested in zip(batch, digests, strict=True):
                self.moved_at = time.time()
                try:
                    self.results.put(self._work(job, digested))
                except Exception as exc:  # contain: a lane that dies would leave its files unreported
                    logger.exception("lane job failed lane={} error={!r}", self.name, type(exc).__name__)
                    self.results.put(Done(job, OSError(f"internal error: {type(exc).__name__}")))
                finally:
                    os.close(job.fd)
                    self.jobs.finished()
            self.moved_at = None
            if stopping:
                return

    def _native(self) -> bool:
        """Whether this lane's files are hashed by the C digest: built, and the Hasher's digest_fd
        the one it gives the answers of (a subclass's, a test's, is called file by file)."""
        return FAST_LANE and _lane is not None and type(self.hasher).digest_fd is Hasher.digest_fd

    def _batch(self, first: Job) -> tuple[list[Job], bool]:
        """The first job and those waiting behind it, within BATCH_FILES and BATCH_BYTES; True
        when the stop was taken (the lane ends once these are done)."""
        batch, size = [first], first.st.st_size
        while len(batch) < BATCH_FILES and size < BATCH_BYTES:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
            size += job.st.st_size
        return batch, False

    def _digests(self, batch: list[Job]) -> list[_Digested | OSError | None]:
        """Each job's digest and looks from the C digest, or None for each (_work hashes it)."""
        if not self._native():
            return [None] * len(batch)
        asked = [
            (job.fd, job.inspect, job.prefilter.values if job.inspect and job.prefilter else None, _known(job.st))
            for job in batch
        ]
        out: list[_Digested | OSError | None] = []
        for answer in _lane.digest_batch(asked, self._read):
            if isinstance(answer, OSError):
                out.append(answer)
                continue
            sha256, size, mtime_ns, inode, ctime_ns, head, seen, looked, end_in_tail, _made, hits = answer
            self.hasher.count(size)
            digest = FileDigest(sha256, size, mtime_ns, inode, ctime_ns, head, seen)
            out.append(_Digested(digest, looked, (lambda end=end_in_tail: end), hits))
        return out

    def _work(self, job: Job, digested: _Digested | OSError | None = None) -> Done:
        """The job's result: from its C digest when given, else hashed and looked at here."""
        if isinstance(digested, OSError):
            return Done(job, digested)
        if digested is None:
            try:
                digested = self._digest(job)
            except OSError as exc:
                return Done(job, exc)
        digest = digested.digest
        changed = (digest.size, digest.mtime_ns) != (job.st.st_size, job.st.st_mtime_ns)
        if changed or not job.inspect:
            return Done(job, digest)
        self._moved()
        name = os.path.basename(job.path)
        # no parser reads anything from it, no zip or 7z hides behind its start, and it holds no run of
        # text: no worker round-trip (agent/opaque.py)
        if is_opaque(digest.head) and not digest.seen and not digested.looked and not digested.end_in_tail():
            return Done(job, digest, name_only(name), digested.hits)
        return Done(job, digest, self.inspector.inspect(job.fd, name), digested.hits)

    def _digest(self, job: Job) -> _Digested:
        """The job's file hashed by Hasher.digest_fd, looked at as it is read (the reference)."""
        head_bytes, look_within = (HEAD_BYTES, EMBEDDED_7Z_WITHIN) if job.inspect else (0, 0)
        looker = Looker() if job.inspect else None  # text or a zip's local header a worker would read
        look = looker
        chunker = Chunker(job.prefilter.values) if job.inspect and job.prefilter else None
        if chunker is not None:  # the same bytes, chunked as they are hashed (agent/content/chunks.py)

            def look(view: memoryview) -> None:
                looker(view)
                chunker.feed(view)

        digest = self.hasher.digest_fd(
            job.fd, head_bytes, progress=self._moved, known=job.st, look_for=SEVEN_ZIP_SIGNATURE, look_within=look_within,
            look=look,
        )
        hits = tuple(chunker.finish()[1]) if chunker is not None else ()
        return _Digested(digest, looker is not None and looker.found, lambda: zip_at_end(job.fd, digest.size), hits)

    def _moved(self) -> None:
        self.moved_at = time.time()


class _Digested(NamedTuple):
    """A file's digest and what was looked for in its bytes as they were read."""

    digest: FileDigest
    looked: bool  # a run of text or a zip's local header may be there (opaque.Looker)
    end_in_tail: Callable[[], bool]  # whether a zip's end record is in the file's tail (opaque.zip_at_end)
    hits: tuple[int, ...]  # its chunks' fingerprints found in the job's prefilter


def _known(st: Any) -> tuple[int, int, int, int, int]:
    return st.st_mode, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_size


class Lanes:
    def __init__(
        self,
        hasher: Hasher,
        make_inspector: Callable[[], Inspector],
        large_bytes: int = LARGE_BYTES,
        small_slots: int = SMALL_SLOTS,
        large_slots: int = LARGE_SLOTS,
        idle_s: float = IDLE_S,
    ) -> None:
        self.large_bytes = large_bytes
        self.results: queue.SimpleQueue[Done] = queue.SimpleQueue()
        self._small = _Lane("small", small_slots, hasher, make_inspector(), self.results, idle_s)
        self._large = _Lane("large", large_slots, hasher, make_inspector(), self.results, idle_s)
        self.in_flight: set[str] = set()  # paths submitted and not yet taken back by done()

    def start(self) -> None:
        self._small.start()
        self._large.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._small.stop(timeout_s)
        self._large.stop(timeout_s)

    def submit(self, job: Job, wake: bool = True) -> bool:
        """Hand a file to its lane; False when the lane is full (the caller keeps its descriptor
        and tries again later). wake=False: the lane may wait for wake() before it starts on it
        (the pipeline's step hands all its files, then wakes the lanes once)."""
        lane = self._large if job.st.st_size >= self.large_bytes else self._small
        try:
            lane.jobs.put_nowait(job, wake)
        except queue.Full:
            return False
        self.in_flight.add(job.path)
        return True

    def wake(self) -> None:
        """Start the lanes on the files handed to them with wake=False."""
        self._small.jobs.wake()
        self._large.jobs.wake()

    def done(self) -> list[Done]:
        """The results ready now (called by the pipeline thread only)."""
        out: list[Done] = []
        while True:
            try:
                result = self.results.get_nowait()
            except queue.Empty:
                return out
            self.in_flight.discard(result.job.path)
            out.append(result)

    def queued(self) -> int:
        return self._small.jobs.qsize() + self._large.jobs.qsize()

    def stuck_since(self) -> float | None:
        """Wall time since which a busy lane has shown no progress (a read that never returns,
        on a hung network or FUSE file system), or None when none is busy. Inspection cannot be
        stuck: its worker has a deadline."""
        busy = [t for t in (self._small.last_moved(), self._large.last_moved()) if t is not None]
        return min(busy) if busy else None
