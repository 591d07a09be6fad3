"""The hasher reads regular files only: a descriptor of anything else is refused before a read."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


SIGNATURE = b"7z\xbc\xaf\x27\x1c"


def _seen(tmp_path, data: bytes, within: int) -> bool:
    from agent.hashing import Hasher

    path = tmp_path / "f.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        return Hasher().digest_fd(fd, look_for=SIGNATURE, look_within=within).seen
    finally:
        os.close(fd)


def test_bytes_looked_for_are_seen_in_any_chunk_and_across_two(tmp_path):
    from agent.hashing import CHUNK_BYTES

    filler = bytes(range(256)) * (3 * CHUNK_BYTES // 256)
    for at in (0, 100, CHUNK_BYTES - 3, CHUNK_BYTES - 6, CHUNK_BYTES, 2 * CHUNK_BYTES + 7):  # -3: it straddles two chunks
        data = filler[:at] + SIGNATURE + filler[at:]
        assert _seen(tmp_path, data, 4 << 20), at
        assert not _seen(tmp_path, data, at + len(SIGNATURE) - 1), at  # only looked for so far in
    assert not _seen(tmp_path, filler, 4 << 20)
    assert not _seen(tmp_path, filler[:10] + SIGNATURE, 0)  # not asked


@given(st.lists(st.sampled_from([b"7z", b"\xbc\xaf", b"\x27\x1c", SIGNATURE, b"\0"]), max_size=30))
@settings(max_examples=200, deadline=None)
def test_the_search_answers_as_in(parts):
    from agent.content import zipread

    data = b"".join(parts)
    for fast in (True, False):
        zipread.FAST_SEARCH = fast
        try:
            assert zipread.holds(data, SIGNATURE) is (SIGNATURE in data)
            assert zipread.holds(memoryview(bytearray(data)), b"\x27\x1c") is (b"\x27\x1c" in data)
        finally:
            zipread.FAST_SEARCH = True
