"""Which mount a mountpoint is now: a stick unmounted and mounted again at the same place within
one poll is a new mount (a new file system; the old inotify watch died with the old one).

The device and even /proc/self/mountinfo's mount id come back the same on a quick remount (the
kernel reuses the lowest free id), so the identity is statx's unique 64-bit mount id where the
kernel has it (Linux 6.8+), else the reusable mount id with st_dev, else st_dev alone.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import sys

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800
AT_STATX_DONT_SYNC = 0x4000  # no round trip to a network or FUSE file system
STATX_MNT_ID = 0x1000
STATX_MNT_ID_UNIQUE = 0x4000
STATX_SIZE = 256  # struct statx
STATX_MNT_ID_OFFSET = 144  # __u64 stx_mnt_id


def mount_identity(mountpoint: str) -> tuple[int, ...]:
    """What tells this mount from an earlier one at the same place; () when it cannot be read."""
    try:
        st_dev = os.stat(mountpoint, follow_symlinks=False).st_dev
    except OSError:
        return ()
    statx = _statx()
    if statx is None:
        return (st_dev,)
    buf = ctypes.create_string_buffer(STATX_SIZE)
    flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC
    if statx(AT_FDCWD, os.fsencode(mountpoint), flags, STATX_MNT_ID | STATX_MNT_ID_UNIQUE, buf) != 0:
        return (st_dev,)
    mask = struct.unpack_from("=I", buf, 0)[0]
    (mnt_id,) = struct.unpack_from("=Q", buf, STATX_MNT_ID_OFFSET)
    if mask & STATX_MNT_ID_UNIQUE:
        return (mnt_id,)  # never reused while the system runs
    if mask & STATX_MNT_ID:
        return (st_dev, mnt_id)
    return (st_dev,)


@functools.cache
def _statx():
    """glibc's statx(2) (2.28+), or None (another libc, an old one, not Linux)."""
    if not sys.platform.startswith("linux"):  # ctypes.CDLL(None) is no libc on Windows
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.statx
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_char_p]
    func.restype = ctypes.c_int
    return func
