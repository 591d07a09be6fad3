"""Index builds hash on every core (agent/hashpool.py): the helper processes give the same rows,
documents and fingerprints as hashing on the refresh's own thread, the same errors for files that
cannot be read, and a helper that dies fails the refresh instead of hanging it."""

from __future__ import annotations

import errno
import os
import random

import pytest

from agent.config import ClassifiedFolder
from agent.hashing import Hasher
from agent.hashpool import HashPool
from agent.index import FingerprintIndex
from tests.agent.test_index_bulk import _state, _tree


def _build(tmp_path, name: str, workers: int, monkeypatch) -> tuple:
    import agent.index

    monkeypatch.setattr(agent.index, "COMMIT_EVERY", 100)  # several batches in flight one after another
    monkeypatch.setattr(agent.index, "POOL_MIN_FILES", 50)
    root = tmp_path / "classified"
    folders = (ClassifiedFolder(str(root), "core", "Drawings"), ClassifiedFolder(str(root / "docs"), "important", "Docs"))
    hasher = Hasher()
    index = FingerprintIndex(str(tmp_path / name / "index.db"), folders, hasher, hash_workers=workers)
    stats = index.refresh()
    state = _state(index)
    index.close()
    return state, (stats.files, stats.hashed, stats.errors, stats.bytes_hashed, hasher.files_hashed)


def test_helpers_build_the_same_index_as_one_thread(tmp_path, monkeypatch):
    files = _tree(tmp_path / "classified", random.Random(2))
    alone, alone_counts = _build(tmp_path, "alone", 1, monkeypatch)
    pooled, pooled_counts = _build(tmp_path, "pooled", 2, monkeypatch)
    assert pooled_counts == alone_counts == (len(files), len(files), 0, sum(map(len, files.values())), len(files))
    assert pooled == alone
    assert alone[2], "the tree has text: fingerprints were compared too"
    assert any(chunks > 0 for _, chunks, _ in alone[3]), "and drawings: their sketches (taken by the helpers) too"


def test_a_helper_gives_the_same_errors_as_the_hasher(tmp_path):
    fifo, link, ok = tmp_path / "fifo", tmp_path / "link", tmp_path / "ok.bin"
    os.mkfifo(fifo)
    ok.write_bytes(b"x" * 70_000)
    link.symlink_to(ok)
    paths = [str(tmp_path / "missing"), str(fifo), str(link), str(ok)]
    hasher = Hasher()
    pool = HashPool(2, hasher)
    try:
        got = list(pool.digests(paths, head_bytes=100))
    finally:
        pool.close()
    for path, result in zip(paths, got, strict=True):
        try:
            expected = Hasher().digest(path, 100)
        except OSError as exc:
            assert isinstance(result, OSError) and (result.errno, result.strerror) == (exc.errno, exc.strerror)
        else:
            assert result == expected and result.head == expected.head
    assert got[0].errno == errno.ENOENT
    assert (hasher.files_hashed, hasher.bytes_read) == (1, 70_000)


def test_a_helper_that_dies_fails_the_refresh_and_leaves_nothing_running(tmp_path):
    (tmp_path / "a").write_bytes(b"a")
    pool = HashPool(1, Hasher())
    proc = pool._procs[0]
    proc.kill()
    proc.wait()
    with pytest.raises(OSError, match="helper failed"):
        list(pool.digests([str(tmp_path / "a")] * 40))
    pool.close()
    assert all(not t.is_alive() for t in pool._threads)


def test_heads_not_wanted_are_dropped_as_they_arrive(tmp_path):
    """Neither the pipes nor a batch the helpers finished while the walk goes on carry 8 KiB per
    binary file (the index's peak memory), and the heads of files that may hold text come back."""
    from agent.content.extract import READERS

    (tmp_path / "a.bin").write_bytes(b"\0\x01\x02" * 5000)
    (tmp_path / "b.txt").write_bytes(b"plain text " * 2000)
    pool = HashPool(1, Hasher(), text_kinds=frozenset(READERS))
    try:
        binary, text = pool.digests([str(tmp_path / "a.bin"), str(tmp_path / "b.txt")], head_bytes=8192)
    finally:
        pool.close()
    assert binary.head == b"" and binary == Hasher().digest(str(tmp_path / "a.bin"))
    assert text.head == (b"plain text " * 2000)[:8192]


def test_a_helper_of_another_protocol_ends_and_fails_the_refresh(tmp_path, monkeypatch):
    """An agent upgraded while a refresh starts its helpers: the helper refuses to speak, the
    refresh fails (and runs again later) instead of misreading answers or waiting forever."""
    import agent.hashpool

    (tmp_path / "a").write_bytes(b"a")
    monkeypatch.setattr(agent.hashpool, "PROTOCOL", "1")  # the helper, run from disk, speaks "2"
    pool = HashPool(1, Hasher())
    try:
        with pytest.raises(OSError, match="helper failed"):
            list(pool.digests([str(tmp_path / "a")]))
    finally:
        pool.close()
