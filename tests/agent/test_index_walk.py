"""The index walks classified folders by descriptor: depth changes nothing, and a folder it
cannot walk is reported and keeps its rows.

Before: a file deeper than PATH_MAX was never indexed (os.scandir of its folder failed with
ENAMETOOLONG, logged only), and a folder that could not be listed had all its rows dropped as if
its files were gone, so copies of them were no longer traced."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest

from agent.config import ClassifiedFolder
from agent.hashing import Hasher
from agent.index import FingerprintIndex
from tests.agent.test_walk import deep_tree, remove_tree


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "drawings"
    root.mkdir()
    yield root
    remove_tree(tmp_path)


def test_a_file_6000_bytes_deep_is_indexed_and_found_by_its_hash(tmp_path, tree):
    bottom = deep_tree(tree, 60, content=b"deep drawing")
    index = FingerprintIndex(str(tmp_path / "index.db"), (ClassifiedFolder(str(tree), "core"),), Hasher())
    try:
        stats = index.refresh()
        assert (stats.files, stats.hashed, stats.errors, stats.unwalkable) == (1, 1, 0, ())
        source = index.lookup_sha256(hashlib.sha256(b"deep drawing").hexdigest())
        assert source is not None and os.fsencode(source.path) == bottom and source.level == "core"
    finally:
        index.close()


def _refresh_as(uid: int, index_db: str, root: str) -> tuple[int, int, list]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            index = FingerprintIndex(index_db, (ClassifiedFolder(root, "core"),), Hasher(), fingerprint=None)
            stats = index.refresh()
            index.close()
            os.write(
                write, repr((stats.removed, stats.errors, [(p.path, p.reason) for p in stats.unwalkable])).encode()
            )
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    assert os.waitpid(pid, 0)[1] == 0
    return eval(data)  # noqa: S307 - our own child's repr of ints, bytes and str


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to an unprivileged user")
def test_a_folder_that_cannot_be_walked_is_reported_and_keeps_its_rows():
    base = Path(tempfile.mkdtemp(prefix="miwei-index-"))
    try:
        base.chmod(0o777)
        root = base / "drawings"
        (root / "locked").mkdir(parents=True)
        (root / "locked" / "pump.dwg").write_bytes(b"pump drawing")
        (root / "open.dwg").write_bytes(b"open drawing")
        os.chown(root, 65534, 65534)
        index_db = str(base / "index.db")
        assert _refresh_as(65534, index_db, str(root))[1] == 0  # readable: both indexed
        (root / "locked").chmod(0o700)  # root's own now: the agent's user cannot list it

        removed, errors, unwalkable = _refresh_as(65534, index_db, str(root))

        assert (removed, errors) == (0, 1)
        assert unwalkable == [(os.fsencode(root / "locked"), "Permission denied")]
        index = FingerprintIndex(index_db, (ClassifiedFolder(str(root), "core"),), Hasher(), fingerprint=None)
        try:
            assert index.lookup_sha256(hashlib.sha256(b"pump drawing").hexdigest()) is not None
        finally:
            index.close()
    finally:
        (base / "drawings" / "locked").chmod(0o755)
        remove_tree(base)
        base.rmdir()
