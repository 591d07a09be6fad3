"""A refresh over a tree of many chunks and transactions: rows written in batches, text told from
binaries by the first bytes, one document per content, unreadable files counted and retried."""

from __future__ import annotations

import hashlib
import os
import random

from agent.config import ClassifiedFolder
from agent.content.inspect import file_fingerprints
from agent.hashing import Hasher
from agent.index import WORK_CHUNK, FingerprintIndex

BIG_BYTES = 256 * 1024


def _tree(root, rng: random.Random) -> dict:
    """Small and big binaries, text files (some sharing content), an empty file, nested folders."""
    files = {}
    for i in range(3 * WORK_CHUNK):
        size = rng.choice([0, 10, 3000, 40_000, BIG_BYTES, BIG_BYTES + 12345])
        files[root / f"d{i % 7}" / f"bin-{i}.dwg"] = rng.randbytes(size)
    words = ["pump", "impeller", "coating", "tolerance", "assembly", "budget", "supplier", "formula"]
    for i in range(20):
        text = " ".join(rng.choice(words) for _ in range(400 + 50 * i))
        files[root / "docs" / f"doc-{i}.txt"] = text.encode()
        files[root / "docs" / "copies" / f"copy-{i}.txt"] = text.encode()  # same content twice
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def _state(index: FingerprintIndex) -> tuple:
    conn = index.db.conn()
    rows = sorted(conn.execute("SELECT path, size, sha256, level, entry FROM files"))
    docs = sorted(conn.execute("SELECT sha256, fingerprints FROM documents"))
    prints = sorted(conn.execute("SELECT d.sha256, f.hash FROM fingerprints f JOIN documents d ON d.id = f.doc"))
    sketches = sorted(conn.execute("SELECT sha256, chunks, hashes FROM sketches"))
    return rows, docs, prints, sketches


def test_a_tree_of_many_chunks_gets_every_row_and_document(tmp_path, monkeypatch):
    import agent.index

    monkeypatch.setattr(agent.index, "COMMIT_EVERY", 50)  # several transactions
    root = tmp_path / "classified"
    files = _tree(root, random.Random(1))
    folders = (ClassifiedFolder(str(root), "core", "Drawings"), ClassifiedFolder(str(root / "docs"), "important", "Docs"))
    hasher = Hasher()
    index = FingerprintIndex(str(tmp_path / "state" / "index.db"), folders, hasher)
    stats = index.refresh()
    counted = (stats.files, stats.hashed, stats.errors, stats.bytes_hashed, hasher.files_hashed)
    assert counted == (len(files), len(files), 0, sum(map(len, files.values())), len(files))
    rows, docs, prints, sketches = _state(index)
    again = index.refresh()
    assert (again.hashed, again.removed) == (0, 0)
    assert _state(index) == (rows, docs, prints, sketches), "an unchanged tree changes nothing"
    drawings = {hashlib.sha256(d).hexdigest() for p, d in files.items() if p.suffix == ".dwg"}
    assert {s[0] for s in sketches} == drawings, "every drawing sketched once, no text"
    index.close()
    by_path = {os.fsdecode(r[0]): r for r in rows}
    for path, data in files.items():
        row = by_path[str(path)]
        assert row[2] == hashlib.sha256(data).hexdigest()
        assert row[3:] == (("important", "Docs") if "docs" in path.parts else ("core", "Drawings"))
    texts = {hashlib.sha256(d).hexdigest(): p for p, d in files.items() if p.suffix == ".txt"}
    with_prints = {sha for sha, n in docs if n}
    assert with_prints == set(texts), "every text is fingerprinted, no binary is"
    for sha, path in texts.items():
        assert {h for s, h in prints if s == sha} == set(file_fingerprints(str(path)))


class _Refusing(Hasher):
    """A hasher for which some files cannot be read (as a file of mode 000 is, but also as root)."""

    def __init__(self, refused: set[str]) -> None:
        super().__init__()
        self.refused = refused

    def digest(self, path: str, head_bytes: int = 0, look=None):
        if path in self.refused:
            raise PermissionError(13, "Permission denied", path)
        return super().digest(path, head_bytes, look)


def test_unreadable_files_are_counted_and_hashed_once_readable(tmp_path):
    root = tmp_path / "classified"
    files = _tree(root, random.Random(2))
    refused = {str(p) for p in files if p.suffix == ".dwg"}
    refused = set(sorted(refused)[::9])
    hasher = _Refusing(refused)
    index = FingerprintIndex(str(tmp_path / "state" / "index.db"), (ClassifiedFolder(str(root), "core"),), hasher)
    stats = index.refresh()
    assert (stats.files, stats.errors, stats.hashed) == (len(files), len(refused), len(files) - len(refused))
    assert not refused & {os.fsdecode(r[0]) for r in index.db.conn().execute("SELECT path FROM files")}
    hasher.refused = set()
    assert index.refresh().hashed == len(refused), "refused files are hashed once readable"
    index.close()
