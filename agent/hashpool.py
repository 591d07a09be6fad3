"""Index builds hash on every core: helper processes that open, read and hash the files named.

A build of many small files spends as much interpreter time per file (open, stat, read, a digest
object, its row) as hashing them takes, and that time holds the GIL: a second hashing thread was
measured slower than one. So a large refresh hands its files to helper processes, one per core,
`CHUNK_FILES` at a time, while the refresh's own thread walks, compares and writes rows. Each
helper hashes with the same agent.hashing.Hasher as the agent itself (the same open flags: no
symlink followed, no FIFO read, any path length), so the digests, sizes, times and first bytes
are the ones an in-process build gets; a file that cannot be read comes back as the same OSError.

Hashing is not parsing: helpers run with the agent's rights (they read classified files, as the
build does), import nothing but the hasher and the file type test (about 20 MB each), and end with
the refresh.

The first bytes of a file (its head) tell the index whether it may hold text. A helper given the
types that have a text reader (`text_kinds`) sends a head back only when the file may hold text
(`may_hold_text`, agent.content.extract.may_have_text without importing the readers): sending
every head was 8 KiB a file through the pipes, 800 MB for a build of 100,000 files.

A helper given `text_kinds` (lineage is on) also sketches each file whose head shows no text, in
the same read as its hash (agent/content/chunks.py SketchLook: byte lineage of drawings), so a
build reads each file once and chunks on every core; the sketch (at most 1 KiB) comes back with
the digest.

Wire format (pipes): a request is `>I` head bytes, `>I` count, then each path as `>I` length and
its raw bytes; the answer is `>I` its length, then per path in order `>B` 1, the hex digest (64
bytes), `>QqQqI` size, mtime_ns, inode, ctime_ns and head length, then the head, then `>i` the
sketch's length (-1: none) and the sketch; or `>B` 0, `>i` errno, `>H` length and the UTF-8
strerror. An answer is read in one call and parsed from one buffer.
"""

from __future__ import annotations

import io
import os
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Collection, Iterator
from typing import BinaryIO

from agent.content.chunks import SketchLook
from agent.hashing import FileDigest, Hasher

CHUNK_FILES = 32  # files per request: the round-trip is paid once for them
# The wire format's version, the helper's first argument: a helper of another version (an agent
# upgraded while a refresh starts its helpers) ends at once, and the refresh fails instead of
# misreading its answers (or waiting forever for bytes that never come).
PROTOCOL = "4"
# size, mtime_ns, inode, ctime_ns, the head's length: the times in 16 bytes each (signed), as a
# time past 2262 (`touch -d 2400-01-01`, which ext4 keeps) is past 64 bits; in 8, a helper died
# on one, and the refresh with it, leaving every classified file unindexed (protocol 3)
_U32, _ERR, _FIELDS, _SKETCH = struct.Struct(">I"), struct.Struct(">iH"), struct.Struct(">Q16sQ16sI"), struct.Struct(">i")
_TIME_BYTES = 16


def default_workers() -> int:
    """One helper per core the agent may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class HashPool:
    """Helper processes hashing files in order; one thread per helper feeds it and reads it (the
    pipes' reads and writes release the GIL). Not shared between threads; close() ends them."""

    def __init__(self, workers: int, hasher: Hasher, text_kinds: Collection[str] | None = None) -> None:
        """`text_kinds`: the file types with a text reader (agent.content.extract.READERS); given,
        a head comes back only for a file that may hold text (`may_hold_text`), else empty, so
        neither the pipes nor a batch the helpers finished early carry 8 KiB per binary file (the
        digest is the same: FileDigest.head is not compared)."""
        self.hasher = hasher  # counts the bytes and files the helpers read, as if it had read them
        argv = [sys.executable, "-m", "agent.hashpool", PROTOCOL]
        if text_kinds is not None:
            argv.append(",".join(sorted(text_kinds)) or ",")
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._procs = [
            subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd="/") for _ in range(workers)
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
            digests = [r for r in results if isinstance(r, FileDigest)]
            with self.hasher._lock:  # the same counters Hasher.digest_fd keeps
                self.hasher.bytes_read += sum(d.size for d in digests)
                self.hasher.files_hashed += len(digests)
            yield from results

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
                (length,) = _U32.unpack(_exactly(proc.stdout, _U32.size))
                answer.put(_parse(_exactly(proc.stdout, length), paths))
            except Exception as exc:  # a helper that died: the refresh fails (and is run again), never hangs
                answer.put(OSError(f"index hashing helper failed: {type(exc).__name__}: {exc}"))


def _parse(data: bytes, paths: list[str]) -> list[FileDigest | OSError]:
    """One answer: each path's digest or error, in order."""
    results: list[FileDigest | OSError] = []
    at = 0
    for path in paths:
        if data[at] == 1:
            sha256 = data[at + 1 : at + 65].decode("ascii")
            size, mtime, inode, ctime, head_len = _FIELDS.unpack_from(data, at + 65)
            mtime_ns, ctime_ns = int.from_bytes(mtime, "big", signed=True), int.from_bytes(ctime, "big", signed=True)
            at += 65 + _FIELDS.size
            head = data[at : at + head_len]
            at += head_len
            (sketch_len,) = _SKETCH.unpack_from(data, at)
            at += _SKETCH.size
            sketch = None if sketch_len < 0 else data[at : at + sketch_len]
            at += max(0, sketch_len)
            results.append(FileDigest(sha256, size, mtime_ns, inode, ctime_ns, head, sketch=sketch))
        else:
            code, length = _ERR.unpack_from(data, at + 1)
            at += 1 + _ERR.size
            results.append(OSError(code or None, data[at : at + length].decode("utf-8", "replace"), path))
            at += length
    if at != len(data):
        raise EOFError("the hashing helper's answer does not match its request")
    return results


def may_hold_text(head: bytes, text_kinds: Collection[str]) -> bool:
    """agent.content.extract.may_have_text(head) with its readers' types given (importing the
    readers would cost each helper about 33 MB): False only when the head proves a type without
    a reader. tests/agent/test_hashpool_heads.py holds the two equal; when in doubt, True (the
    head is sent and the index asks may_have_text itself)."""
    from agent.content import filetype, ole

    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", ole.SIGNATURE)):
        return True
    try:
        return filetype.detect_file(io.BytesIO(head)) in text_kinds
    except Exception:  # may_have_text lets extract() say what is wrong: so does the index
        return True


def _exactly(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError("the hashing helper ended")
    return data


def _serve(inp: BinaryIO, out: BinaryIO, text_kinds: frozenset[str] | None = None) -> None:
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
            look = SketchLook(lambda head: may_hold_text(head, text_kinds)) if text_kinds is not None else None
            try:
                d = hasher.digest(path, head_bytes, look=look)
            except OSError as exc:
                why = (exc.strerror or type(exc).__name__).encode("utf-8", "replace")[:1000]
                answers += [b"\x00", _ERR.pack(exc.errno or 0, len(why)), why]
                continue
            text = look.text if look is not None else None  # what the sketch asked of the same head
            if text is None:
                text = bool(d.head) and (text_kinds is None or may_hold_text(d.head, text_kinds))
            head = d.head if text_kinds is None or text else b""
            sketch = look.packed() if look is not None else None
            answers += [
                b"\x01",
                d.sha256.encode("ascii"),
                _FIELDS.pack(
                    d.size,
                    d.mtime_ns.to_bytes(_TIME_BYTES, "big", signed=True),
                    d.inode,
                    d.ctime_ns.to_bytes(_TIME_BYTES, "big", signed=True),
                    len(head),
                ),
                head,
                _SKETCH.pack(-1 if sketch is None else len(sketch)),
                sketch or b"",
            ]
        answer = b"".join(answers)
        out.write(_U32.pack(len(answer)) + answer)
        out.flush()


def main(argv: list[str]) -> int:
    if argv[:1] != [PROTOCOL]:
        print(f"agent.hashpool: protocol {argv[:1]} asked, {PROTOCOL} spoken", file=sys.stderr)
        return 2
    _serve(sys.stdin.buffer, sys.stdout.buffer, frozenset(argv[1].split(",")) - {""} if len(argv) > 1 else None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
