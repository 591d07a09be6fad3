"""The fingerprint index of classified folders: what classified content looks like.

One row per file: size, mtime, inode, sha256, level and register entry. Refreshing compares
(size, mtime, inode) with the file system and re-hashes only what changed, so a restart costs a
directory walk, not a re-read of every drawing.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from loguru import logger

from agent.config import ClassifiedFolder
from agent.db import StateDB
from agent.hashing import Hasher
from agent.paths import is_under

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY,   -- raw file system bytes: names need not be UTF-8
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    level TEXT NOT NULL,
    entry TEXT NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_sha256 ON files (sha256);
"""
COMMIT_EVERY = 500


@dataclass(frozen=True)
class IndexedFile:
    path: str
    size: int
    mtime_ns: int
    inode: int
    sha256: str
    level: str
    entry: str


@dataclass(frozen=True)
class RefreshStats:
    files: int  # regular files found in classified folders
    hashed: int  # of which re-hashed because new or changed
    removed: int  # rows dropped because the file is gone
    errors: int  # files that could not be read
    bytes_hashed: int


class FingerprintIndex:
    def __init__(self, db_path: str, folders: tuple[ClassifiedFolder, ...], hasher: Hasher | None = None):
        # the most specific folder wins when classified folders nest
        self.folders = tuple(sorted(folders, key=lambda f: len(f.path), reverse=True))
        self.hasher = hasher or Hasher()
        self.db = StateDB(db_path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def folder_for(self, path: str) -> ClassifiedFolder | None:
        return next((f for f in self.folders if is_under(path, f.path)), None)

    def lookup_sha256(self, sha256: str) -> IndexedFile | None:
        row = self.db.conn().execute(
            "SELECT * FROM files WHERE sha256 = ? ORDER BY indexed_at LIMIT 1", (sha256,)
        ).fetchone()
        return _row_to_file(row) if row else None

    def get(self, path: str) -> IndexedFile | None:
        row = self.db.conn().execute("SELECT * FROM files WHERE path = ?", (os.fsencode(path),)).fetchone()
        return _row_to_file(row) if row else None

    def count(self) -> int:
        return self.db.conn().execute("SELECT count(*) FROM files").fetchone()[0]

    def update_file(self, path: str) -> tuple[IndexedFile | None, bool]:
        """Bring one file's row up to date: (row or None when gone/unclassified, whether it changed).

        Raises OSError when the file exists but cannot be read.
        """
        folder = self.folder_for(path)
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            self.remove_tree(path)
            return None, True
        if folder is None or not _is_regular(st.st_mode):
            return None, False
        known = self.get(path)
        if known and _unchanged(known, st) and (known.level, known.entry) == (folder.level, folder.name):
            return known, False
        if known and _unchanged(known, st):
            entry = IndexedFile(path, known.size, known.mtime_ns, known.inode, known.sha256, folder.level, folder.name)
        else:
            digest = self.hasher.digest(path)
            entry = IndexedFile(path, digest.size, digest.mtime_ns, digest.inode, digest.sha256, folder.level, folder.name)
        with self.db.transaction() as conn:
            _upsert(conn, entry)
        return entry, True

    def remove_tree(self, path: str) -> list[IndexedFile]:
        """Forget a file, or every file under a removed folder; returns the rows forgotten."""
        raw = os.fsencode(path)
        where = "path = ? OR substr(path, 1, ?) = ?"
        args = (raw, len(raw) + 1, raw + b"/")
        with self.db.transaction() as conn:
            rows = [_row_to_file(r) for r in conn.execute(f"SELECT * FROM files WHERE {where}", args)]
            conn.execute(f"DELETE FROM files WHERE {where}", args)
        return rows

    def move(self, src: str, dest: str) -> None:
        """Carry the rows of a renamed file or folder to its new path without re-hashing."""
        src_raw, dest_raw = os.fsencode(src), os.fsencode(dest)
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM files WHERE path = ? OR substr(path, 1, ?) = ?",
                (src_raw, len(src_raw) + 1, src_raw + b"/"),
            ).fetchall()
            for row in rows:
                new_path = os.fsdecode(dest_raw + bytes(row[0])[len(src_raw) :])
                conn.execute("DELETE FROM files WHERE path = ?", (row[0],))
                folder = self.folder_for(new_path)
                if folder is not None:
                    old = _row_to_file(row)
                    _upsert(conn, IndexedFile(new_path, old.size, old.mtime_ns, old.inode, old.sha256, folder.level, folder.name))

    def refresh(self, progress: Callable[[int, int], None] | None = None) -> RefreshStats:
        """Walk every classified folder; hash new and changed files, drop rows of vanished ones.

        `progress(bytes_done, bytes_total)` is called as hashing proceeds.
        """
        started = self.hasher.bytes_read
        found: dict[bytes, tuple[os.stat_result, ClassifiedFolder]] = {}
        errors = 0
        for folder in reversed(self.folders):  # most specific last, so it wins
            for path, st in _walk_files(folder.path):
                found[os.fsencode(path)] = (st, self.folder_for(path) or folder)
        conn = self.db.conn()
        known = {bytes(r[0]): _row_to_file(r) for r in conn.execute("SELECT * FROM files")}
        todo = [(p, st, f) for p, (st, f) in found.items() if p not in known or not _unchanged(known[p], st)]
        relabel = [
            (p, f) for p, (st, f) in found.items()
            if p in known and _unchanged(known[p], st) and (known[p].level, known[p].entry) != (f.level, f.name)
        ]
        gone = [p for p in known if p not in found]
        total_bytes, done_bytes = sum(st.st_size for _, st, _ in todo), 0
        if progress:
            progress(0, total_bytes)
        with self.db.transaction() as tx:
            for p in gone:
                tx.execute("DELETE FROM files WHERE path = ?", (p,))
            for p, f in relabel:
                tx.execute("UPDATE files SET level = ?, entry = ? WHERE path = ?", (f.level, f.name, p))
        for batch in _chunks(todo, COMMIT_EVERY):
            entries = []
            for raw, st, folder in batch:
                path = os.fsdecode(raw)
                try:
                    d = self.hasher.digest(path)
                except OSError as exc:
                    errors += 1
                    logger.warning("cannot index file path={!r} error={}", path, exc.strerror)
                    continue
                finally:
                    done_bytes += st.st_size
                    if progress:
                        progress(done_bytes, total_bytes)
                entries.append(IndexedFile(path, d.size, d.mtime_ns, d.inode, d.sha256, folder.level, folder.name))
            with self.db.transaction() as tx:
                for entry in entries:
                    _upsert(tx, entry)
        return RefreshStats(
            files=len(found),
            hashed=len(todo) - errors,
            removed=len(gone),
            errors=errors,
            bytes_hashed=self.hasher.bytes_read - started,
        )


def _walk_files(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every regular file under root (symlinks are not followed), with its stat."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            logger.warning("cannot list folder path={!r} error={}", folder, exc.strerror)
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    yield entry.path, entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished while we looked


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _unchanged(known: IndexedFile, st: os.stat_result) -> bool:
    return (known.size, known.mtime_ns, known.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)


def _upsert(conn, e: IndexedFile) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, sha256, level, entry, indexed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (os.fsencode(e.path), e.size, e.mtime_ns, e.inode, e.sha256, e.level, e.entry, time.time()),
    )


def _row_to_file(row) -> IndexedFile:
    return IndexedFile(os.fsdecode(bytes(row[0])), row[1], row[2], row[3], row[4], row[5], row[6])


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
