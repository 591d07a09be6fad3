"""SHA-256 of files, read in 64 KiB chunks (measured fastest here), counting the bytes read."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from dataclasses import dataclass

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size: int  # bytes actually read
    mtime_ns: int
    inode: int
    ctime_ns: int  # changes with every write and every utime(): restoring mtime cannot hide an edit


class Hasher:
    """Hashes files and keeps a running count of bytes read (the index's tests use it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_read = 0
        self.files_hashed = 0

    def digest(self, path: str) -> FileDigest:
        """Hash one file; raises OSError when it cannot be read."""
        h = hashlib.sha256()
        size = 0
        buf = bytearray(CHUNK_BYTES)
        view = memoryview(buf)
        # O_NONBLOCK: a FIFO swapped in for the file must not hang us; O_NOFOLLOW: no symlinks
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb", buffering=0) as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file", path)
            while n := f.readinto(buf):
                h.update(view[:n])
                size += n
        with self._lock:
            self.bytes_read += size
            self.files_hashed += 1
        return FileDigest(h.hexdigest(), size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
