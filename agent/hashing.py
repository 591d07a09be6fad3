"""SHA-256 of files, read in 64 KiB chunks (measured fastest here), counting the bytes read.

Safe to call from several threads at once (the index hashes on two): hashlib and read() release
the GIL, so two threads hash on two cores."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.content.zipread import holds
from agent.walk import open_file

CHUNK_BYTES = 64 * 1024
PROGRESS_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size: int  # bytes actually read
    mtime_ns: int
    inode: int
    ctime_ns: int  # changes with every write and every utime(): restoring mtime cannot hide an edit
    head: bytes = field(default=b"", repr=False, compare=False)  # the first head_bytes, when asked for
    seen: bool = field(default=False, repr=False, compare=False)  # look_for was in the first look_within bytes
    # the index's sketch of a file without text, packed (agent/content/chunks.py SketchLook), when asked
    sketch: bytes | None = field(default=None, repr=False, compare=False)


class Hasher:
    """Hashes files and keeps a running count of bytes read (the index's tests use it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffers = threading.local()  # one read buffer per thread, not one per file
        self.bytes_read = 0
        self.files_hashed = 0

    def count(self, size: int) -> None:
        """Count a file of `size` bytes hashed (here, or by the lanes' C digest: agent/lanes.py)."""
        with self._lock:
            self.bytes_read += size
            self.files_hashed += 1

    def digest(
        self, path: str, head_bytes: int = 0, look: Callable[[memoryview], None] | None = None
    ) -> FileDigest:
        """Hash one file; raises OSError when it cannot be read.

        `head_bytes`: keep that many first bytes (the index tells a drawing from a document by
        them without opening the file again). `look`: as digest_fd's."""
        # O_NONBLOCK: a FIFO swapped in for the file must not hang us; O_NOFOLLOW: no symlinks;
        # open_file: a path longer than PATH_MAX is opened a directory at a time
        fd = open_file(path)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", path)
            return self.digest_fd(fd, head_bytes, look=look)
        finally:
            os.close(fd)

    def digest_fd(
        self, fd: int, head_bytes: int = 0, progress: Callable[[], None] | None = None, known: os.stat_result | None = None,
        look_for: bytes = b"", look_within: int = 0,
        look: Callable[[memoryview], None] | None = None,
    ) -> FileDigest:
        """Hash the regular file open at fd from its start (pread: the descriptor's offset is left
        alone, so a worker given the same descriptor reads it too). The caller closes fd.
        `progress` is called every PROGRESS_BYTES read (a lane's sign of life on a huge file).
        `look_for`: whether those bytes are in the first `look_within` bytes is told (`seen`),
        searched in each chunk as it is hashed (a 7z behind a prefix: agent/opaque.py).
        `look` is called with each chunk hashed, in order (agent.opaque.Looker)."""
        h = hashlib.sha256()
        size = 0
        buf = getattr(self._buffers, "buf", None)
        if buf is None:
            buf = self._buffers.buf = bytearray(CHUNK_BYTES)
        view = memoryview(buf)
        head = b""
        try:
            st = os.fstat(fd)
        except PermissionError:  # a user's FUSE mount refuses root even this (agent/userwalk.py): its opener's stat
            if known is None:
                raise
            st = known
        if not stat.S_ISREG(st.st_mode):  # e.g. /dev/zero passed by a walker its user took over: it never ends
            raise OSError(errno.EINVAL, "not a regular file")
        seen, carry = False, b""  # carry: the last bytes of the chunk before, a match may straddle two
        while n := os.preadv(fd, [buf], size):
            h.update(view[:n])
            if look is not None:
                look(view[:n])
            if len(head) < head_bytes:
                head += view[: min(n, head_bytes - len(head))]
            if look_for and not seen and size < look_within:
                reach = min(n, look_within - size)
                seen = holds(carry + bytes(view[: min(len(look_for) - 1, reach)]), look_for) or holds(view[:reach], look_for)
                carry = bytes(view[max(reach - len(look_for) + 1, 0) : reach])
            size += n
            if progress is not None and size % PROGRESS_BYTES < n:
                progress()
        self.count(size)
        return FileDigest(h.hexdigest(), size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, head, seen)
