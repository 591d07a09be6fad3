"""The fast path of an index build (hashing helpers, heads filtered in them, batches written into
one transaction) stores exactly what the reference path stores (every file hashed on the
refresh's own thread, agent/index.py with hash_workers=1): every column of every row, document
and fingerprint, the history, and the counts, over a tree with symlinks, hostile names, files
that are not regular, files that vanish, grow or are swapped while the build runs, and a second
refresh over edits, removals and additions."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import agent.index
from agent.config import ClassifiedFolder
from agent.hashing import Hasher
from agent.index import FingerprintIndex

ROOT_FILES = 12  # the first folder walked: listed before anything is hashed, then changed
WORDS = "pump impeller 第一段 客户名单 tolerance assembly coating budget supplier formula".split()


def _write(path: Path, data: bytes) -> None:
    os.makedirs(os.path.dirname(os.fsencode(path)), exist_ok=True)
    with open(os.fsencode(path), "wb") as f:
        f.write(data)


def _text(rng: random.Random, words: int) -> bytes:
    return " ".join(rng.choice(WORDS) for _ in range(words)).encode()


def _tree(root: Path, rng: random.Random) -> None:
    raw = os.fsencode(root)
    for i in range(ROOT_FILES):
        _write(root / f"top-{i:02d}.bin", rng.randbytes(rng.choice([0, 1, 5000, 70_000])))
    hostile = [b"new\nline.dwg", b"\xff\xfe not utf-8.dwg", b"-rf.dwg", b"back\\slash.dwg", b" .dwg", b"x" * 250]
    for i, name in enumerate(hostile):
        _write(Path(os.fsdecode(raw + b"/hostile/" + name)), rng.randbytes(100 + i))
    for d in range(6):
        for i in range(15):
            data = rng.randbytes(rng.choice([10, 3000, 40_000, 300_000])) if i % 3 else _text(rng, 300 + 40 * i)
            _write(
                root / f"d{d}" / ("doc" if i % 3 == 0 else "bin") / f"f{i}-研发.{'txt' if i % 3 == 0 else 'dwg'}", data
            )
    _write(root / "docs" / "same-1.txt", _text(random.Random(5), 800))
    _write(root / "docs" / "same-2.txt", _text(random.Random(5), 800))  # the same content twice
    (root / "links").mkdir()
    (root / "links" / "to-file").symlink_to(root / "d0" / "bin" / "f1-研发.dwg")
    (root / "links" / "to-dir").symlink_to(root / "d1")
    (root / "links" / "dangling").symlink_to(root / "nowhere")
    os.mkfifo(root / "links" / "fifo")


def _during_build(root: Path) -> None:
    """Files the walk listed in the first folder, changed before they are hashed."""
    (root / "top-00.bin").unlink()  # vanished: cannot be read
    (root / "top-01.bin").unlink()
    os.mkfifo(root / "top-01.bin")  # swapped for a FIFO: not a regular file any more
    with open(root / "top-02.bin", "ab") as f:
        f.write(b"grown")  # its row holds what was read
    (root / "top-03.bin").unlink()
    (root / "top-03.bin").symlink_to(root / "top-04.bin")  # swapped for a symlink: never followed
    (root / "d5" / "bin" / "f1-研发.dwg").unlink()  # not listed yet: never seen


def _after_build(root: Path, rng: random.Random) -> None:
    (root / "d0" / "doc" / "f0-研发.txt").write_bytes(_text(rng, 500))  # edited: the old content is history
    (root / "d1" / "bin" / "f2-研发.dwg").unlink()  # removed: history
    _write(root / "d9" / "new.txt", _text(rng, 700))  # added
    (root / "top-01.bin").unlink()
    (root / "top-01.bin").write_bytes(b"readable again")


def _state(index: FingerprintIndex) -> tuple:
    """Every stored column; a row's (mtime_ns, inode, ctime_ns), which differ between two trees,
    as whether they are the file's own (each build has a tree of its own)."""
    conn = index.db.conn()
    rows = []
    for path, size, mtime_ns, inode, sha256, level, entry, ctime_ns in conn.execute(
        "SELECT path, size, mtime_ns, inode, sha256, level, entry, ctime_ns FROM files"
    ):
        st = os.lstat(path)
        rows.append(
            (
                path,
                size,
                sha256,
                level,
                entry,
                (mtime_ns, inode, ctime_ns) == (st.st_mtime_ns, st.st_ino, st.st_ctime_ns),
            )
        )
    return (
        sorted(rows),
        sorted(conn.execute("SELECT sha256, path, level, entry, size, state FROM history")),
        sorted(conn.execute("SELECT id, sha256, fingerprints, scheme, anchors FROM documents")),
        sorted(conn.execute("SELECT doc, hash FROM fingerprints")),
        sorted(conn.execute("SELECT sha256, chunks, hashes FROM sketches")),
    )


def _stats(stats) -> tuple:
    return (stats.files, stats.hashed, stats.removed, stats.errors, stats.bytes_hashed, stats.unwalkable)


def _build(tmp_path: Path, name: str, workers: int, monkeypatch) -> tuple:
    monkeypatch.setattr(agent.index, "COMMIT_EVERY", 40)  # several batches, the first after the root is listed
    monkeypatch.setattr(agent.index, "POOL_MIN_FILES", 20)
    monkeypatch.setattr(agent.index, "BULK_ROWS", 50)  # several bulk transactions, each over batches
    rng = random.Random(21)
    root = tmp_path / name / "classified"
    _tree(root, rng)
    folders = (ClassifiedFolder(str(root), "core", "研发"), ClassifiedFolder(str(root / "d2"), "important", "Pumps"))
    index = FingerprintIndex(str(tmp_path / name / "state" / "index.db"), folders, Hasher(), hash_workers=workers)
    changed = []

    def progress(done: int, total: int) -> None:
        if not changed:
            changed.append(True)
            _during_build(root)

    first = index.refresh(progress)
    built = _state(index)
    _after_build(root, rng)
    second = index.refresh()
    state = (_stats(first), built, _stats(second), _state(index))
    index.close()
    return _relative(state, os.fsencode(root))


def _relative(value, root: bytes):
    """The state with the tree's root taken out of its paths (each build has its own tree)."""
    if isinstance(value, bytes):
        return value.replace(root, b"<root>")
    if isinstance(value, str):
        return value.replace(os.fsdecode(root), "<root>")
    if isinstance(value, tuple | list):
        return type(value)(_relative(v, root) for v in value)
    if hasattr(value, "path") and hasattr(value, "errno"):  # Unwalkable
        return (_relative(value.path, root), value.errno, value.reason)
    return value


@pytest.mark.parametrize("workers", [2, 3])
def test_the_fast_build_stores_what_the_reference_stores(tmp_path, monkeypatch, workers):
    reference = _build(tmp_path, "reference", 1, monkeypatch)
    fast = _build(tmp_path, f"fast{workers}", workers, monkeypatch)
    assert fast[0] == reference[0], "the counts of the build"
    assert fast[1] == reference[1], "the rows, documents and fingerprints of the build"
    assert fast[2:] == reference[2:], "the second refresh and what it left"
    first, (rows, history, docs, prints, sketches), second, (_, history_after, _, _, _) = reference
    assert first[3] == 3, "the vanished, swapped-for-a-FIFO and swapped-for-a-symlink files were not read"
    assert any(b"\xff\xfe" in r[0] for r in rows) and any(b"\n" in r[0] for r in rows)
    assert not any(b"links" in r[0] for r in rows), "no symlink, FIFO or what a link points to"
    assert any(d[2] > 0 for d in docs) and prints, "texts were fingerprinted and compared"
    assert any(s[1] > 0 for s in sketches), "drawings were sketched and compared"
    assert all(r[5] for r in rows), "each row holds its file's times and inode"
    assert {h[5] for h in history_after} == {"deleted", "previous-version"}
    # gone since the build: the vanished file, the symlink, the removed one; one added; hashed: the
    # edited, the added and the one readable again
    assert second[:3] == (first[0] - 3 + 1, 3, 1)
