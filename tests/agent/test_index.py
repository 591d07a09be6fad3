"""The fingerprint index: hashes once, re-hashes only what changed, survives restarts."""

from __future__ import annotations

import hashlib
import os

import pytest

from agent.config import ClassifiedFolder
from agent.hashing import Hasher
from agent.index import FingerprintIndex


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "drawings"
    (root / "sub").mkdir(parents=True)
    files = {
        root / "a.dwg": os.urandom(100_000),
        root / "b.dwg": os.urandom(50_000),
        root / "sub" / "c.txt": b"formula",
    }
    for path, data in files.items():
        path.write_bytes(data)
    return root, files


def _index(tmp_path, folders, hasher=None) -> FingerprintIndex:
    return FingerprintIndex(str(tmp_path / "state" / "index.db"), tuple(folders), hasher or Hasher())


def test_first_refresh_hashes_every_file(tmp_path, tree):
    root, files = tree
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Drawings")])
    stats = index.refresh()
    assert (stats.files, stats.hashed, stats.removed, stats.errors) == (3, 3, 0, 0)
    assert stats.bytes_hashed == sum(len(d) for d in files.values())
    row = index.lookup_sha256(hashlib.sha256(files[root / "a.dwg"]).hexdigest())
    assert row.path == str(root / "a.dwg") and row.level == "core" and row.entry == "Drawings"
    assert row.size == 100_000 and row.inode == os.stat(root / "a.dwg").st_ino
    index.close()


def test_restart_rehashes_only_what_changed(tmp_path, tree):
    root, files = tree
    folders = [ClassifiedFolder(str(root), "core", "Drawings")]
    index = _index(tmp_path, folders)
    index.refresh()
    index.close()

    hasher = Hasher()  # a new process: counts only its own reads
    index = _index(tmp_path, folders, hasher)
    stats = index.refresh()
    assert (stats.hashed, hasher.bytes_read) == (0, 0), "an unchanged tree must not be read again"

    (root / "b.dwg").write_bytes(b"edited drawing")
    (root / "sub" / "c.txt").unlink()
    (root / "new.dwg").write_bytes(b"brand new")
    stats = index.refresh()
    assert stats.hashed == 2 and stats.removed == 1
    assert hasher.bytes_read == len(b"edited drawing") + len(b"brand new")
    assert index.count() == 3
    assert index.lookup_sha256(hashlib.sha256(b"formula").hexdigest()) is None
    index.close()


def test_level_change_in_config_relabels_without_rehashing(tmp_path, tree):
    root, _ = tree
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Drawings")])
    index.refresh()
    index.close()
    hasher = Hasher()
    index = _index(tmp_path, [ClassifiedFolder(str(root), "important", "Drawings v2")], hasher)
    index.refresh()
    assert hasher.bytes_read == 0
    assert {index.get(str(p)).level for p in tree[1]} == {"important"}
    assert index.get(str(root / "a.dwg")).entry == "Drawings v2"
    index.close()


def test_nested_folder_entry_wins(tmp_path, tree):
    root, _ = tree
    index = _index(
        tmp_path,
        [ClassifiedFolder(str(root), "general", "All drawings"), ClassifiedFolder(str(root / "sub"), "core", "Formulas")],
    )
    index.refresh()
    assert index.get(str(root / "sub" / "c.txt")).level == "core"
    assert index.get(str(root / "a.dwg")).level == "general"
    index.close()


def test_non_utf8_names_and_moves_keep_their_rows(tmp_path, tree):
    root, files = tree
    raw_name = os.path.join(os.fsencode(root), b"\xb1\xa8\xb8\xe6.dwg")
    with open(raw_name, "wb") as f:
        f.write(b"gbk named drawing")
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "")])
    index.refresh()
    name = os.fsdecode(raw_name)
    assert index.get(name).sha256 == hashlib.sha256(b"gbk named drawing").hexdigest()

    os.rename(root / "sub", root / "moved")
    index.move(str(root / "sub"), str(root / "moved"))
    assert index.get(str(root / "moved" / "c.txt")) is not None
    assert index.get(str(root / "sub" / "c.txt")) is None
    gone = index.remove_tree(str(root / "moved"))
    assert [r.path for r in gone] == [str(root / "moved" / "c.txt")]
    index.close()


def test_symlinks_and_fifos_are_not_indexed(tmp_path, tree):
    root, _ = tree
    os.symlink("/etc/passwd", root / "link.dwg")
    os.mkfifo(root / "pipe.dwg")
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "")])
    stats = index.refresh()
    assert stats.files == 3
    assert index.get(str(root / "link.dwg")) is None and index.get(str(root / "pipe.dwg")) is None
    index.close()
