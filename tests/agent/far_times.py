"""A file dated past 2262, as `touch -d 2400-01-01` makes one (ext4 keeps times to 2446): its
st_mtime_ns is past 2**63, what SQLite's integers and a signed 64-bit parse hold."""

from __future__ import annotations

import os

import pytest

YEAR_2400_NS = 13_569_465_600 * 10**9  # 2400-01-01T00:00:00Z


def dated(path, mtime_ns: int, atime_ns: int = YEAR_2400_NS) -> None:
    """Set path's times, or skip the test where the platform or the file system keeps no such time."""
    try:
        os.utime(path, ns=(atime_ns, mtime_ns))
    except OverflowError:
        pytest.skip("this platform's utime takes no time past 2262")
    if os.stat(path).st_mtime_ns != mtime_ns:
        pytest.skip("this file system keeps no time past 2262")
