"""The collector's own files are for its user alone: its SQLite database (channel secrets, password
hashes, every event), the database's WAL and SHM files, and its logs.

`miwei-server run` works under umask 077, and the database file is made 0600 before SQLite opens
it (SQLite gives the WAL and SHM files the database file's mode). Files that exist already keep
their mode, which an operator may have chosen: at start the collector warns about every one that
other users can read, about the database's folder when it is not 0700, and about the log's folder
when other users can change it (a shared folder such as /var/log may be readable; not writable).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from loguru import logger

PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
FOLDER_MODE = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class OpenFile:
    """A collector file or folder that users other than its owner may reach."""

    path: str
    what: str  # database | database folder | log | log folder
    mode: int


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    if not url.startswith("sqlite:"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0]
    return None if path in ("", ":memory:") or path.startswith("file:") else path


def create_private_file(path: str) -> None:
    """Create `path` 0600 when it is missing (whatever the umask); an existing file is left as is."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=FOLDER_MODE, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask of a process that calls this (migrate, create-user)
    finally:
        os.close(fd)


def open_files(database_url: str, log_file: str | None) -> list[OpenFile]:
    """The collector's files that other users can read, and their folders they can enter or change."""
    found: list[OpenFile] = []
    db = sqlite_path(database_url)
    if db:
        found += _check(db, "database", [db + suffix for suffix in ("", *SQLITE_SIDE_FILES)], 0o077)
    if log_file:
        folder = os.path.dirname(os.path.abspath(log_file))
        stem = os.path.splitext(os.path.basename(log_file))[0]
        try:  # loguru's rotated files sit beside it: <stem>.<date>... .log
            rotated = [os.path.join(folder, n) for n in os.listdir(folder) if n.startswith(stem)]
        except OSError:
            rotated = []
        found += _check(log_file, "log", sorted(set([log_file, *rotated])), 0o022)
    return found


def _check(path: str, what: str, files: list[str], folder_bits: int) -> list[OpenFile]:
    """`files` that others can reach; their folder when it has any of `folder_bits` (a sticky
    folder's writers cannot replace another user's files, so sticky write bits do not count)."""
    found = []
    for name in files:
        mode = _mode(name)
        if mode is not None and stat.S_ISREG(mode) and mode & 0o077:
            found.append(OpenFile(name, what, stat.S_IMODE(mode)))
    folder = os.path.dirname(os.path.abspath(path))
    mode = _mode(folder)
    bits = folder_bits & ~0o022 if mode is not None and mode & stat.S_ISVTX else folder_bits
    if mode is not None and mode & bits:
        found.append(OpenFile(folder, f"{what} folder", stat.S_IMODE(mode)))
    return found


def _mode(path: str) -> int | None:
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


def warn_open_files(database_url: str, log_file: str | None) -> list[OpenFile]:
    """Log a warning for each file or folder `open_files` finds; returns them."""
    found = open_files(database_url, log_file)
    for item in found:
        fix = f"chmod {'700' if item.what.endswith('folder') else '600'} {item.path}"
        logger.warning(
            "collector file open to other users what={!r} path={!r} mode={:04o} fix={!r}", item.what, item.path, item.mode, fix
        )
    return found
