"""The hasher reads regular files only: a descriptor of anything else is refused before a read."""

from __future__ import annotations

import os

import pytest

from agent.hashing import Hasher


def test_a_descriptor_that_is_not_a_regular_file_is_refused_not_read_for_ever():
    """A walker run as the employee (agent/userwalk.py) passes descriptors back; one its user took
    over could pass /dev/zero, which a read loop would hash until the lane is declared stalled
    (/dev/null here: a device all the same, and the old code's read of it ends)."""
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        with pytest.raises(OSError, match="not a regular file"):
            Hasher().digest_fd(fd)
    finally:
        os.close(fd)


def test_a_regular_file_is_hashed_from_its_descriptor(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 100_000)
    fd = os.open(path, os.O_RDONLY)
    try:
        digest = Hasher().digest_fd(fd)
    finally:
        os.close(fd)
    assert digest.size == 100_000
