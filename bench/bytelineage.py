"""Byte lineage on real files: how often a file without text is traced to classified content it
does not come from, and how edited copies of classified files are found (docs/architecture.md,
"Byte lineage").

    python -m bench.bytelineage [--per-genre N] [--seed S]

The machine's own files of ten genres, none written here: shared libraries, programs, fonts,
PNG and JPEG images, compiled Python, message catalogues, gzip'd changelogs, wheels and PDFs.
Each genre's files (identical contents once, 20 KB to 5 MB) are shuffled; half are copied into a
classified folder and indexed by `FingerprintIndex.refresh` as a firm's drawings would be, the
other half are the negatives (another firm's files of the same genres). Edited copies of the
classified half are the positives. Every file is looked up as the agent's lane does (its chunks
in the index's prefilter, then `lookup_bytes`). A negative traced to a file of the same project
(two versions of one library, a wheel vendoring another) holds real shared bytes: the report
names every one traced so that a reader can judge.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable

from agent.config import ClassifiedFolder
from agent.content import chunks
from agent.index import FingerprintIndex

GENRES: dict[str, Callable[[str, str], bool]] = {  # (folder, name) -> of the genre
    "library": lambda d, n: d.startswith("/usr/lib/x86_64-linux-gnu") and ".so" in n,
    "program": lambda d, n: d == "/usr/bin",
    "font": lambda d, n: d.startswith("/usr/share/fonts"),
    "png": lambda d, n: n.endswith(".png"),
    "jpeg": lambda d, n: n.endswith((".jpg", ".jpeg")),
    "pyc": lambda d, n: n.endswith(".pyc"),
    "catalogue": lambda d, n: n.endswith(".mo"),
    "changelog": lambda d, n: d.startswith("/usr/share/doc") and n.endswith(".gz"),
    "wheel": lambda d, n: n.endswith(".whl"),
    "pdf": lambda d, n: n.endswith(".pdf"),
}
ROOTS = ("/usr", "/opt")
MIN_BYTES, MAX_BYTES = 20_000, 5_000_000


def _flip_every_4k(data: bytes) -> bytes:
    edited = bytearray(data)
    edited[7::4096] = bytes(b ^ 1 for b in edited[7::4096])
    return bytes(edited)


EDITS: dict[str, Callable[[bytes], bytes]] = {
    "a byte put in front": lambda d: b"x" + d,
    "4 bytes appended": lambda d: d + b"junk",
    "a byte changed": lambda d: d[: len(d) // 2] + bytes([d[len(d) // 2] ^ 1]) + d[len(d) // 2 + 1 :],
    "100 bytes inserted": lambda d: d[: len(d) // 2] + random.Random(len(d)).randbytes(100) + d[len(d) // 2 :],
    "a byte changed every 4 KiB": _flip_every_4k,
    "the last tenth cut": lambda d: d[: len(d) * 9 // 10],
    "the first half": lambda d: d[: len(d) // 2],
    "the second half": lambda d: d[len(d) // 2 :],
    "a tenth from the middle": lambda d: d[len(d) // 3 : len(d) // 3 + len(d) // 10],
}


def candidates() -> dict[str, list[str]]:
    """The machine's files of each genre, in one walk of ROOTS (symlinks not followed)."""
    found: dict[str, list[str]] = {genre: [] for genre in GENRES}
    for root in ROOTS:
        for folder, _dirs, names in os.walk(root):
            for name in names:
                for genre, holds in GENRES.items():
                    if holds(folder, name):
                        found[genre].append(os.path.join(folder, name))
                        break
    return found


def genre_files(paths: list[str], count: int, rng: random.Random) -> list[str]:
    """`count` files of 20 KB..5 MB with contents of their own, in a random order."""
    found = sorted(f for f in paths if os.path.isfile(f) and not os.path.islink(f) and MIN_BYTES < os.path.getsize(f) < MAX_BYTES)
    rng.shuffle(found)
    seen, unique = set(), []
    for f in found:
        with open(f, "rb") as fh:
            digest = hashlib.sha256(fh.read()).digest()
        if digest not in seen:
            seen.add(digest)
            unique.append(f)
            if len(unique) == count:
                break
    return unique


def traced(index: FingerprintIndex, data: bytes):
    chunker = chunks.Chunker(index.prefilter().values)
    chunker.feed(data)
    return index.lookup_bytes(chunker.finish()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-genre", type=int, default=120, help="files taken of each genre (half classified)")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="miwei-bytelineage-")
    try:
        folder = os.path.join(work, "classified")
        os.mkdir(folder)
        classified, negatives = [], []
        for genre, paths in candidates().items():
            files = genre_files(paths, args.per_genre, rng)
            for i, path in enumerate(files):
                if i % 2 == 0:
                    copy = os.path.join(folder, f"{genre}-{i:04d}-{os.path.basename(path)}")
                    shutil.copyfile(path, copy)
                    classified.append((genre, path, copy))
                else:
                    negatives.append((genre, path))
        index = FingerprintIndex(os.path.join(work, "index.db"), (ClassifiedFolder(folder, "core", "Drawings"),))
        index.refresh()
        conn = index.db.conn()
        sketches, rows = conn.execute("SELECT count(*), coalesce(sum(chunks), 0) FROM sketches").fetchone()
        print(f"{len(classified)} classified files of {len(GENRES)} genres ({sketches} sketched, {rows} fingerprints);"
              f" {len(negatives)} negatives")
        print("\nnegatives traced (another file of the same genre):")
        wrong = 0
        for genre, path in negatives:
            with open(path, "rb") as fh:
                found = traced(index, fh.read())
            if found is not None:
                wrong += 1
                source, share = found
                print(f"  {genre}: {path} -> {os.path.basename(source.path)} ({share:.2f})")
        by_genre = {g: sum(1 for n in negatives if n[0] == g) for g in GENRES}
        print(f"  {wrong} of {len(negatives)} ({100 * wrong / max(1, len(negatives)):.1f}%); per genre: {by_genre}")
        print("\nedited copies of classified files traced to their source:")
        sketched = [c for c in classified if index.has_sketch(index.get(c[2]).sha256)]
        print("| edit | traced | median share |\n|---|---:|---:|")
        for name, edit in EDITS.items():
            hits, shares = 0, []
            for _genre, path, copy in sketched:
                with open(path, "rb") as fh:
                    found = traced(index, edit(fh.read()))
                if found is not None and found[0].path == copy:
                    hits += 1
                    shares.append(found[1])
            shares.sort()
            median = shares[len(shares) // 2] if shares else 0.0
            print(f"| {name} | {hits}/{len(sketched)} ({100 * hits / max(1, len(sketched)):.1f}%) | {median:.2f} |")
        index.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
