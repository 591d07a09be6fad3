"""Index builds hash on every core: helper processes that open, read and hash the files named.

A build of many small files spends as much interpreter time per file (open, stat, read, a digest
object, its row) as hashing them takes, and that time holds the GIL: a second hashing thread was
measured slower than one. So a large refresh hands its files to helper processes, one per core,
`CHUNK_FILES` at a time, while the refresh's own thread walks, compares and writes rows. Each
helper hashes with the same agent.hashing.Hasher as the agent itself (the same open flags: no
symlink followed, no FIFO read, any path length), so the digests, sizes, times and first bytes
are the ones an in-process build gets; a file that cannot be read comes back as the same OSError.

Hashing is not parsing: helpers run with the agent's rights (they read classified files, as the
build does), import nothing but the hasher (about 17 MB each), and end with the refresh.

Wire format (pipes): a request is `>I` head bytes, `>I` count, then each path as `>I` length and
its raw bytes; the answer, per path in order, is `>B` 1 then the hex digest (64 bytes), `>QqQqI`
size, mtime_ns, inode, ctime_ns and head length, then the head; or `>B` 0, `>i` errno, `>H`
length and the UTF-8 strerror.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

from agent.hashing import FileDigest, Hasher

CHUNK_FILES = 32  # files per request: the round-trip is paid once for them
_U32, _ERR, _FIELDS = struct.Struct(">I"), struct.Struct(">iH"), struct.Struct(">QqQqI")


def default_workers() -> int:
    """One helper per core the agent may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class HashPool:
    """Helper processes hashing files in order; one thread per helper feeds it and reads it (the
    pipes' reads and writes release the GIL). Not shared between threads; close() ends them."""

    def __init__(self, workers: int, hasher: Hasher, keep_head: Callable[[bytes], bool] | None = None) -> None:
        """`keep_head(head)`: whether a file's first bytes are wanted (the index: whether it may hold
        text); the others are dropped as they arrive, so a batch the helpers finished early holds
        no 8 KiB per file while the refresh walks on (the digest is the same: FileDigest.head is not compared)."""
        self.hasher = hasher  # counts the bytes and files the helpers read, as if it had read them
        self.keep_head = keep_head
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._procs = [
            subprocess.Popen(
                [sys.executable, "-m", "agent.hashpool"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd="/"
            )
            for _ in range(workers)
        ]
        self._threads = [
            threading.Thread(target=self._feed, args=(p,), name="index-hash", daemon=True) for p in self._procs
        ]
        for thread in self._threads:
            thread.start()

    def digests(self, paths: list[str], head_bytes: int = 0) -> Iterator[FileDigest | OSError]:
        """Each path's digest (or the OSError reading it raised), in the order given. The helpers
        start on them at once; the answers are read as the iterator is."""
        slots: list[queue.SimpleQueue] = []
        for start in range(0, len(paths), CHUNK_FILES):
            answer: queue.SimpleQueue = queue.SimpleQueue()
            self._jobs.put((paths[start : start + CHUNK_FILES], head_bytes, answer))
            slots.append(answer)
        return self._answers(slots)

    def _answers(self, slots: list[queue.SimpleQueue]) -> Iterator[FileDigest | OSError]:
        for answer in slots:
            results = answer.get()
            if isinstance(results, BaseException):
                raise results
            for result in results:
                if isinstance(result, FileDigest):
                    with self.hasher._lock:  # the same counters Hasher.digest_fd keeps
                        self.hasher.bytes_read += result.size
                        self.hasher.files_hashed += 1
                yield result

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(30)
        for proc in self._procs:
            try:
                proc.stdin.close()  # the helper ends at the end of its input
            except OSError:  # it had died: what was left unwritten cannot be
                pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def _feed(self, proc: subprocess.Popen) -> None:
        while (job := self._jobs.get()) is not None:
            paths, head_bytes, answer = job
            try:
                request = [_U32.pack(head_bytes), _U32.pack(len(paths))]
                for path in paths:
                    raw = os.fsencode(path)
                    request += [_U32.pack(len(raw)), raw]
                proc.stdin.write(b"".join(request))
                proc.stdin.flush()
                answer.put([self._kept(_read_result(proc.stdout, path)) for path in paths])
            except Exception as exc:  # a helper that died: the refresh fails (and is run again), never hangs
                answer.put(OSError(f"index hashing helper failed: {type(exc).__name__}: {exc}"))

    def _kept(self, result: FileDigest | OSError) -> FileDigest | OSError:
        if isinstance(result, OSError) or not result.head or self.keep_head is None or self.keep_head(result.head):
            return result
        return dataclasses.replace(result, head=b"")


def _read_result(out: BinaryIO, path: str) -> FileDigest | OSError:
    if _exactly(out, 1) == b"\x01":
        sha256 = _exactly(out, 64).decode("ascii")
        size, mtime_ns, inode, ctime_ns, head_len = _FIELDS.unpack(_exactly(out, _FIELDS.size))
        return FileDigest(sha256, size, mtime_ns, inode, ctime_ns, _exactly(out, head_len))
    code, length = _ERR.unpack(_exactly(out, _ERR.size))
    return OSError(code or None, _exactly(out, length).decode("utf-8", "replace"), path)


def _exactly(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError("the hashing helper ended")
    return data


def _serve(inp: BinaryIO, out: BinaryIO) -> None:
    hasher = Hasher()
    while head := inp.read(_U32.size):
        if len(head) != _U32.size:
            return
        (head_bytes,) = _U32.unpack(head)
        (count,) = _U32.unpack(_exactly(inp, _U32.size))
        answers = []
        for _ in range(count):
            (length,) = _U32.unpack(_exactly(inp, _U32.size))
            path = os.fsdecode(_exactly(inp, length))
            try:
                d = hasher.digest(path, head_bytes)
            except OSError as exc:
                why = (exc.strerror or type(exc).__name__).encode("utf-8", "replace")[:1000]
                answers += [b"\x00", _ERR.pack(exc.errno or 0, len(why)), why]
                continue
            answers += [
                b"\x01",
                d.sha256.encode("ascii"),
                _FIELDS.pack(d.size, d.mtime_ns, d.inode, d.ctime_ns, len(d.head)),
                d.head,
            ]
        out.write(b"".join(answers))
        out.flush()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
