"""The closed writes of one pipeline step, read and hashed in one call (issue 21).

A flat burst to a stick is thousands of small files, each closed once. For each, the pipeline
used to lstat it, open it, fstat it, hand the descriptor to a lane thread that fstat'ed and hashed
it and sent the result back: a dozen Python functions and two thread hand-overs a file.
`read_files` does the system calls and the SHA-256 of all of a step's closed writes in one call
to the C extension agent._egress, with the GIL released over them, and gives back plain tuples.

It only answers for plain files: a path that is a link, FIFO or device, a file swapped between
lstat and open, gone, unreadable, larger than INLINE_BYTES, anything at all out of the ordinary,
is refused (None) and the pipeline's own path handles it as before, reporting what it always
reported. `read_reference` is the same contract in Python: the tests hold the two equal.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from typing import NamedTuple

try:
    from agent import _egress
except ImportError:  # built without a compiler or OpenSSL's headers: every file takes the Python path
    _egress = None

# True: a step's closed writes are read by agent._egress (when built); False: each file goes
# through the pipeline's lstat, open and a lane's hashing (the reference; test_readbatch and
# test_pipeline_batch compare them). Off: on the flat burst it saved no CPU that could be told
# from noise (round 9: the lane's cost was the hash and the kernel's work, which stay, not its
# Python), and it reads files in the pipeline's own thread, where a read that hangs (a FUSE or
# network mount) stalls every other change instead of one lane.
FAST_READ = False

INLINE_BYTES = 4 * 1024 * 1024  # larger files are hashed in a lane, off the pipeline thread
CALL_BUDGET_BYTES = (
    64 * 1024 * 1024
)  # bytes one call reads at most (some 40 ms of hashing without the GIL); the rest go to the lanes
PATH_LIMIT = 4096  # PATH_MAX: a longer path is opened a folder at a time by the Python path
FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK_BYTES = 64 * 1024


class Read(NamedTuple):
    fd: int  # open, the caller's to close or hand on
    st: os.stat_result  # fstat of fd when it was opened: the regular file the lstat saw
    looked_at: float  # time.monotonic() just before its lstat (the clock of FsChange.at)
    sha256: str
    size: int  # bytes read
    mtime_ns: int  # fstat of fd once read: a write while it was read shows here
    inode: int
    ctime_ns: int
    head: bytes  # the first head_bytes


def available() -> bool:
    return FAST_READ and _egress is not None


def read_files(paths: list[str], head_bytes: int) -> list[Read | None]:
    """Each path read and hashed, or None where refused."""
    raw = [os.fsencode(p) for p in paths]
    return [
        None if r is None else Read._make(r)
        for r in _egress.read_files(raw, head_bytes, INLINE_BYTES, CALL_BUDGET_BYTES)
    ]


def read_reference(paths: list[str], head_bytes: int) -> list[Read | None]:
    """read_files in Python, one file at a time: what the C must equal (and what it does, said
    in the order it does it)."""
    budget = CALL_BUDGET_BYTES
    out: list[Read | None] = []
    for path in paths:
        got = _read_one(os.fsencode(path), head_bytes, budget) if budget > 0 else None
        if got is not None:
            budget -= max(got.size, 1)
        out.append(got)
    return out


def _read_one(raw: bytes, head_bytes: int, budget: int) -> Read | None:
    looked_at = time.monotonic()
    if not 0 < len(raw) < PATH_LIMIT or b"\0" in raw:
        return None
    try:
        lst = os.lstat(raw)
    except OSError:
        return None
    if not stat.S_ISREG(lst.st_mode) or lst.st_size > INLINE_BYTES:
        return None
    try:
        fd = os.open(raw, FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (
            not stat.S_ISREG(st.st_mode)
            or (st.st_dev, st.st_ino) != (lst.st_dev, lst.st_ino)
            or st.st_size > INLINE_BYTES
        ):
            raise OSError(errno.EINVAL, "not the file its lstat saw")
        h, size, head = hashlib.sha256(), 0, b""
        while chunk := os.pread(fd, CHUNK_BYTES, size):
            h.update(chunk)
            if len(head) < head_bytes:
                head += chunk[: head_bytes - len(head)]
            size += len(chunk)
            if size > INLINE_BYTES:
                raise OSError(errno.EFBIG, "grew past what is read inline")
        after = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    return Read(fd, st, looked_at, h.hexdigest(), size, after.st_mtime_ns, after.st_ino, after.st_ctime_ns, head)
