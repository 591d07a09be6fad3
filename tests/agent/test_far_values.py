"""Times and inode numbers past SQLite's 64-bit integers, in the agent's state files.

A file touched to 2400 (`touch -d 2400-01-01`: ext4 keeps times to 2446) has an st_mtime_ns past
2**63, and a FUSE file system may give inode numbers with the top bit set. Binding either raised
OverflowError: the spool could not keep a report's mark, so the event of a drawing copied to a
stick that way was dropped, and one such file in a classified folder failed the whole index
refresh, every classified file unindexed. End to end: tests/e2e/test_hiding.py
test_a_copy_dated_past_2262_still_alerts."""

from __future__ import annotations

import hashlib
import os

from hypothesis import given
from hypothesis import strategies as st

from agent.config import ClassifiedFolder
from agent.db import loaded_int, stored_int
from agent.index import FingerprintIndex
from agent.spool import FileMark, Spool
from tests.agent.far_times import YEAR_2400_NS, dated

BIG_INODE = 2**64 - 2


@given(st.one_of(st.none(), st.integers(min_value=-(2**80), max_value=2**80)))
def test_every_integer_comes_back_as_it_went(value):
    assert loaded_int(stored_int(value)) == value
    if value is not None and -(2**63) <= value < 2**63:
        assert stored_int(value) is value  # what fits is kept as it is: rows of older agents read the same


def test_the_spool_keeps_a_mark_of_a_far_time_and_inode(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    mark = FileMark(str(tmp_path / "usb" / "notes.dwg"), 20, YEAR_2400_NS + 7, BIG_INODE, -(2**63) - 1, "ab" * 32)
    spool.put([], [mark])
    kept = spool.reported(mark.path)
    assert (kept.size, kept.mtime_ns, kept.inode, kept.ctime_ns, kept.sha256) == (20, YEAR_2400_NS + 7, BIG_INODE, -(2**63) - 1, "ab" * 32)
    # a rename's marks go where the inodes say (renameat2's exchange), the big inode compared whole
    other = FileMark(str(tmp_path / "usb" / "b.bin"), 5, 1, 12, 1, "cd" * 32)
    spool.put([], [other])
    assert spool.move_reported(mark.path, other.path, held=(12, BIG_INODE)) == 2
    assert spool.reported(other.path).inode == BIG_INODE and spool.reported(mark.path).inode == 12


def test_an_index_with_a_file_dated_2400_indexes_every_file(tmp_path):
    folder = tmp_path / "rnd"
    folder.mkdir()
    (folder / "a.dwg").write_bytes(b"AC1032 drawing one")
    (folder / "b.dwg").write_bytes(b"AC1032 drawing two")
    dated(folder / "a.dwg", YEAR_2400_NS + 3)
    index = FingerprintIndex(str(tmp_path / "index.db"), (ClassifiedFolder(str(folder), "core", "Drawings"),))
    try:
        assert index.refresh().hashed == 2
        for name in ("one", "two"):
            found = index.lookup_sha256(hashlib.sha256(f"AC1032 drawing {name}".encode()).hexdigest())
            assert found is not None and found.level == "core"
        assert index.get(str(folder / "a.dwg")).mtime_ns == YEAR_2400_NS + 3
        assert index.refresh().hashed == 0  # unchanged is unchanged: compared whole, not re-hashed each time
        os.utime(folder / "a.dwg", ns=(YEAR_2400_NS, YEAR_2400_NS + 4))
        assert index.refresh().hashed == 1  # and a change past 2262 is a change
    finally:
        index.close()


def test_a_time_no_date_holds_is_said_not_raised():
    """A vanished file's last mtime goes into its event as a date; one past 9999 (a FUSE file system
    may give any) raised ValueError and failed the pipeline's step instead."""
    from agent.pipeline import _iso

    assert _iso(YEAR_2400_NS) == "2400-01-01T00:00:00Z"
    assert _iso(2**80) == f"{2**80} ns since 1970" and _iso(-(2**70)) == f"{-(2**70)} ns since 1970"


def test_the_index_helpers_carry_a_time_past_2262(tmp_path, monkeypatch):
    """A refresh of many files hashes them in helper processes (agent/hashpool.py), which sent the
    times as 64-bit numbers: a helper died on a file dated 2400, and the refresh with it (protocol 3)."""
    import agent.index

    monkeypatch.setattr(agent.index, "POOL_MIN_FILES", 10)
    folder = tmp_path / "rnd"
    folder.mkdir()
    for i in range(30):
        (folder / f"f{i:02d}.dwg").write_bytes(b"AC1032 drawing %d" % i)
    dated(folder / "f07.dwg", YEAR_2400_NS + 9)
    index = FingerprintIndex(str(tmp_path / "index.db"), (ClassifiedFolder(str(folder), "core", "Drawings"),), hash_workers=2)
    try:
        assert index.refresh().hashed == 30
        assert index.get(str(folder / "f07.dwg")).mtime_ns == YEAR_2400_NS + 9
        assert index.lookup_sha256(hashlib.sha256(b"AC1032 drawing 21").hexdigest()) is not None
        assert index.refresh().hashed == 0
    finally:
        index.close()
