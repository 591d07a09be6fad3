"""index.known_sha256's array of known digests (index.FAST_KNOWN): the same answers as asking
SQLite of every digest (the reference), also for a digest sharing only its first 64 bits with a
row, and never a stale one: a row written since the array was read, by this thread's connection or
by another (another process), is found at once."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import index as index_module
from agent.index import FingerprintIndex

DIGESTS = [hashlib.sha256(bytes([i])).hexdigest() for i in range(10)]
TWIN = DIGESTS[0][:16] + "f" * 48  # the first 64 bits of DIGESTS[0], the rest another's
ODD = ["", "0" * 64, DIGESTS[1].upper(), "-" + DIGESTS[2][1:], "0x" + DIGESTS[3][2:], DIGESTS[4][:40], TWIN]


def _insert(conn, table: str, sha256: str, n: int) -> None:
    name = f"/c/{table}/{n}".encode()
    if table == "files":
        conn.execute(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, sha256, level, entry, indexed_at, ctime_ns)"
            " VALUES (?, 1, 1, 1, ?, 'core', '', 1, 1)",
            (name, sha256),
        )
    else:
        conn.execute(
            "INSERT OR REPLACE INTO history (sha256, path, level, entry, size, removed_at, state)"
            " VALUES (?, ?, 'core', '', 1, 1, 'deleted')",
            (sha256, name),
        )


def _reference(index: FingerprintIndex, asked) -> set[str]:
    kept = index_module.FAST_KNOWN
    index_module.FAST_KNOWN = False
    try:
        return index.known_sha256(asked)
    finally:
        index_module.FAST_KNOWN = kept


def _queries(index: FingerprintIndex) -> list[str]:
    """The statements this thread's connection runs from now on."""
    seen: list[str] = []
    index.db.conn().set_trace_callback(seen.append)
    return seen


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(st.tuples(st.sampled_from(["files", "history"]), st.sampled_from(DIGESTS + ODD)), max_size=12),
    asked=st.lists(st.sampled_from(DIGESTS + ODD), max_size=20),
    later=st.lists(st.tuples(st.sampled_from(["files", "history"]), st.sampled_from(DIGESTS + ODD)), max_size=3),
    other=st.booleans(),
)
def test_the_array_answers_as_sqlite_does_also_after_writes(tmp_path_factory, rows, asked, later, other):
    path = str(tmp_path_factory.mktemp("ix") / "index.db")
    index = FingerprintIndex(path, (), fingerprint=None)
    try:
        with index.db.transaction() as conn:
            for n, (table, sha256) in enumerate(rows):
                _insert(conn, table, sha256, n)
        assert index.known_sha256(asked) == _reference(index, asked)
        if other:  # another connection: another process writing the index
            writer = sqlite3.connect(path, isolation_level=None)
            for n, (table, sha256) in enumerate(later, 100):
                _insert(writer, table, sha256, n)
            writer.close()
        else:
            with index.db.transaction() as conn:
                for n, (table, sha256) in enumerate(later, 100):
                    _insert(conn, table, sha256, n)
        assert index.known_sha256(asked) == _reference(index, asked)
    finally:
        index.close()


@pytest.mark.parametrize("other", [True, False])
def test_a_row_written_after_the_array_was_read_is_found_at_once(tmp_path, other):
    path = str(tmp_path / "index.db")
    index = FingerprintIndex(path, (), fingerprint=None)
    try:
        with index.db.transaction() as conn:
            _insert(conn, "files", DIGESTS[0], 1)
        assert index.known_sha256([DIGESTS[0], DIGESTS[5]]) == {DIGESTS[0]}  # the array is read
        if other:
            writer = sqlite3.connect(path, isolation_level=None)
            _insert(writer, "history", DIGESTS[5], 2)
            writer.close()
        else:
            with index.db.transaction() as conn:
                _insert(conn, "history", DIGESTS[5], 2)
        assert index.known_sha256([DIGESTS[0], DIGESTS[5]]) == {DIGESTS[0], DIGESTS[5]}
    finally:
        index.close()


def test_digests_the_array_rules_out_ask_sqlite_nothing(tmp_path, monkeypatch):
    index = FingerprintIndex(str(tmp_path / "index.db"), (), fingerprint=None)
    try:
        with index.db.transaction() as conn:
            _insert(conn, "files", DIGESTS[0], 1)
        index.known_sha256(DIGESTS[:2])  # the array is read
        queries = _queries(index)
        assert index.known_sha256(DIGESTS[1:]) == set()
        assert not [q for q in queries if "WHERE sha256 IN" in q]  # a burst of unknown files: no look-up
        assert index.known_sha256([TWIN, DIGESTS[3]]) == set()  # TWIN shares DIGESTS[0]'s start: asked
        assert len([q for q in queries if "WHERE sha256 IN" in q]) == 1
        # changed since: SQLite answers until KNOWN_REBUILD_S have passed, then the array is read again
        with index.db.transaction() as conn:
            _insert(conn, "files", DIGESTS[2], 2)
        queries.clear()
        assert index.known_sha256(DIGESTS[1:4]) == {DIGESTS[2]}
        assert [q for q in queries if "WHERE sha256 IN" in q] and not [q for q in queries if "UNION ALL" in q]
        monkeypatch.setattr(index_module, "KNOWN_REBUILD_S", 0.0)
        queries.clear()
        assert index.known_sha256(DIGESTS[1:4]) == {DIGESTS[2]}
        assert [q for q in queries if "UNION ALL" in q]  # read again
        queries.clear()
        assert index.known_sha256([DIGESTS[1], DIGESTS[3]]) == set()
        assert not [q for q in queries if "WHERE sha256 IN" in q]
    finally:
        index.close()
