"""A refresh over a tree large enough to use the hashing threads: the same rows, documents and
counts as one thread gives, whatever the thread each file was hashed on."""

from __future__ import annotations

import hashlib
import os
import random

from agent.config import ClassifiedFolder
from agent.content.inspect import file_fingerprints
from agent.hashing import Hasher
from agent.index import BIG_BYTES, WORK_CHUNK, FingerprintIndex


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
    return rows, docs, prints


def test_threads_give_the_rows_one_thread_gives(tmp_path):
    root = tmp_path / "classified"
    files = _tree(root, random.Random(1))
    folders = (ClassifiedFolder(str(root), "core", "Drawings"), ClassifiedFolder(str(root / "docs"), "important", "Docs"))
    states, counts = [], []
    for workers in (1, 2, 3):
        hasher = Hasher()
        index = FingerprintIndex(str(tmp_path / f"state{workers}" / "index.db"), folders, hasher, workers=workers)
        stats = index.refresh()
        counts.append((stats.files, stats.hashed, stats.errors, stats.bytes_hashed, hasher.files_hashed))
        states.append(_state(index))
        again = index.refresh()
        assert (again.hashed, again.removed) == (0, 0)
        index.close()
    assert states[0] == states[1] == states[2]
    assert counts[0] == counts[1] == counts[2] == (len(files), len(files), 0, sum(map(len, files.values())), len(files))
    rows, docs, prints = states[1]
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

    def digest(self, path: str, head_bytes: int = 0):
        if path in self.refused:
            raise PermissionError(13, "Permission denied", path)
        return super().digest(path, head_bytes)


def test_unreadable_files_are_counted_on_every_thread(tmp_path):
    root = tmp_path / "classified"
    files = _tree(root, random.Random(2))
    refused = {str(p) for p in files if p.suffix == ".dwg"}
    refused = set(sorted(refused)[::9])
    hasher = _Refusing(refused)
    index = FingerprintIndex(str(tmp_path / "state" / "index.db"), (ClassifiedFolder(str(root), "core"),), hasher, workers=2)
    stats = index.refresh()
    assert (stats.files, stats.errors, stats.hashed) == (len(files), len(refused), len(files) - len(refused))
    assert not refused & {os.fsdecode(r[0]) for r in index.db.conn().execute("SELECT path FROM files")}
    hasher.refused = set()
    assert index.refresh().hashed == len(refused), "refused files are hashed once readable"
    index.close()
