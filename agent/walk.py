"""Walk a tree relative to directory descriptors, so its depth and its names change nothing.

A path-based walk (os.walk, os.scandir(path)) stops where the path grows past PATH_MAX (4,096
bytes on Linux) and os.fwalk holds one descriptor per level, so it runs out of descriptors in a
tree a few thousand levels deep; both say nothing of what they could not read. Here each directory
is opened relative to its parent's descriptor (O_NOFOLLOW: symlinks are never followed below the
root), a parent's descriptor is closed as soon as its last subdirectory is opened, and every
directory that cannot be opened or listed is reported as an Unwalkable with its path and reason,
never skipped in silence. Paths are raw bytes, as the file system holds them.

open_file() opens one regular file by a path of any length, the way the pipeline and the index
open what the walk found.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
PATH_MAX = 4096  # Linux; a longer path makes open(2) fail with ENAMETOOLONG
MAX_OPEN_DIRS = 64  # descriptors of directories whose subdirectories are still to be opened
FILE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
BY_DESCRIPTOR = os.open in os.supports_dir_fd and os.scandir in os.supports_fd  # not on Windows


@dataclass(frozen=True)
class Unwalkable:
    """A directory the walk could not open or list: what lies below it was not seen."""

    path: bytes
    errno: int
    reason: str  # e.g. "Permission denied"

    @property
    def display(self) -> str:
        return os.fsdecode(self.path)


@dataclass(frozen=True)
class WalkedFile:
    path: bytes  # the whole path, which may be longer than PATH_MAX: open it with open_file()
    name: bytes
    stat: os.stat_result = field(repr=False)  # lstat, from the walk


@dataclass(frozen=True)
class Folder:
    path: bytes
    fd: int | None  # the open directory, valid only until the walk moves on (None on Windows)
    files: tuple[WalkedFile, ...]  # its regular files (symlinks, devices and FIFOs are left out)

    def open(self, name: bytes) -> int:
        """Open one of its files relative to the directory, as open_file() would."""
        if self.fd is None:
            return open_file(os.path.join(self.path, name))
        return _checked(os.open(name, FILE_FLAGS, dir_fd=self.fd), _join(self.path, name))


class _Dir:
    """An open directory and how many of its subdirectories are still to be opened from it."""

    __slots__ = ("fd", "pending", "path")

    def __init__(self, fd: int | None, path: bytes) -> None:
        self.fd, self.pending, self.path = fd, 0, path

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def walk(root: str | bytes, problems: list[Unwalkable], with_files: bool = True) -> Iterator[Folder]:
    """Every directory under root, root first, depth first in name order, with its regular files
    (none when not with_files: then no file is stat'ed).

    Directories that cannot be opened or listed are appended to `problems` (root included) and
    their subtrees are not walked. A root that is a symlink to a directory is followed (as a
    configured folder may be); nothing below it is."""
    top = os.fsencode(root).rstrip(b"/") or b"/"
    if not BY_DESCRIPTOR:
        yield from _walk_by_path(top, problems, with_files)
        return
    try:
        fd = _open_dir(top, follow=True)
    except OSError as exc:
        problems.append(_unwalkable(top, exc))
        return
    open_dirs: list[_Dir] = []
    stack: list[tuple[_Dir | None, bytes]] = [(None, top)]
    first_fd: int | None = fd
    while stack:
        parent, path = stack.pop()
        if first_fd is not None:
            fd, first_fd = first_fd, None
        else:
            try:
                fd = _open_child(parent, path)
            except OSError as exc:
                problems.append(_unwalkable(path, exc))
                continue
            finally:
                _release(parent, open_dirs)
        here = _Dir(fd, path)
        try:
            files, subdirs = _list(here, problems, with_files)
        except OSError as exc:
            problems.append(_unwalkable(path, exc))
            here.close()
            continue
        try:
            yield Folder(path, here.fd, files)
        except BaseException:  # the consumer stopped early (GeneratorExit) or threw in
            here.close()
            for d in open_dirs:
                d.close()
            raise
        here.pending = len(subdirs)
        if not subdirs:
            here.close()
            continue
        open_dirs.append(here)
        _limit(open_dirs)
        stack.extend((here, _join(path, name)) for name in reversed(subdirs))
    for d in open_dirs:  # none left when the walk ends: each was closed with its last subdirectory
        d.close()


def walk_files(root: str | bytes, problems: list[Unwalkable]) -> Iterator[WalkedFile]:
    """Every regular file under root (see walk)."""
    for folder in walk(root, problems):
        yield from folder.files


def open_file(path: str | bytes) -> int:
    """A descriptor of the regular file at path (O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC).

    Raises OSError when it cannot be opened or is not a regular file (a symlink, FIFO, device or
    directory). A path longer than PATH_MAX is opened one directory at a time, each relative to
    the last and with O_NOFOLLOW, so no symlink is followed anywhere in it; a shorter one is
    opened in one call, as open(2) does (only its last component is not followed)."""
    raw = os.fsencode(path)
    return _checked(_at_any_length(raw, lambda where, dir_fd: os.open(where, FILE_FLAGS, dir_fd=dir_fd)), raw)


def lstat(path: str | bytes) -> os.stat_result:
    """os.stat(path, follow_symlinks=False) for a path of any length (past PATH_MAX, from a
    descriptor of its folder, opened without following links)."""
    return _at_any_length(os.fsencode(path), lambda where, dir_fd: os.stat(where, dir_fd=dir_fd, follow_symlinks=False))


def _at_any_length(raw: bytes, call: Callable[[bytes, int | None], T]) -> T:
    """call(raw, None) for a path open(2) takes; past PATH_MAX, call(last part, its folder's fd)."""
    if len(raw) < PATH_MAX or not BY_DESCRIPTOR:
        try:
            return call(raw, None)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG or not BY_DESCRIPTOR:
                raise
    head, name = _split(raw)
    parent = _open_dir(head, follow=False)
    try:
        return call(name, parent)
    finally:
        os.close(parent)


def open_dir(path: str | bytes) -> int:
    """A descriptor of the directory at path, of any length (symlinks followed only as open(2)
    does for a path shorter than PATH_MAX; never in a longer one)."""
    return _open_dir(os.fsencode(path), follow=True)


def _open_dir(path: bytes, follow: bool) -> int:
    if len(path) < PATH_MAX or not BY_DESCRIPTOR:
        try:
            return os.open(path, DIR_FLAGS if follow else DIR_FLAGS | NOFOLLOW)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG or not BY_DESCRIPTOR:
                raise
    fd = os.open(b"/" if path.startswith(b"/") else b".", DIR_FLAGS)
    try:
        for part in path.split(b"/"):
            if part in (b"", b"."):
                continue
            child = os.open(part, DIR_FLAGS | NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _join(path: bytes, name: bytes) -> bytes:
    return path + name if path.endswith(b"/") else path + b"/" + name


def _split(raw: bytes) -> tuple[bytes, bytes]:
    head, _, name = raw.rstrip(b"/").rpartition(b"/")
    return (head or (b"/" if raw.startswith(b"/") else b".")), name


def _checked(fd: int, path: bytes) -> int:
    """fd, if it is a regular file; else closed, and OSError."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fsdecode(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_child(parent: _Dir | None, path: bytes) -> int:
    if parent is None or parent.fd is None:  # its descriptor was given back (_limit)
        return _open_dir(path, follow=False)
    return os.open(path.rpartition(b"/")[2], DIR_FLAGS | NOFOLLOW, dir_fd=parent.fd)


def _release(parent: _Dir | None, open_dirs: list[_Dir]) -> None:
    if parent is None:
        return
    parent.pending -= 1
    if parent.pending == 0:
        parent.close()
        open_dirs.remove(parent)


def _limit(open_dirs: list[_Dir]) -> None:
    """Close the shallowest directories' descriptors past MAX_OPEN_DIRS; their remaining
    subdirectories are then opened by path (one directory at a time when it is long)."""
    while len(open_dirs) > MAX_OPEN_DIRS:
        open_dirs.pop(0).close()


def _list(here: _Dir, problems: list[Unwalkable], with_files: bool) -> tuple[tuple[WalkedFile, ...], list[bytes]]:
    files, subdirs = [], []
    with os.scandir(here.fd) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        name = os.fsencode(entry.name)
        try:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(name)
            elif with_files and entry.is_file(follow_symlinks=False):
                files.append(WalkedFile(_join(here.path, name), name, entry.stat(follow_symlinks=False)))
        except FileNotFoundError:
            continue  # gone while we looked: nothing left to see
        except OSError as exc:
            problems.append(_unwalkable(_join(here.path, name), exc))
    return tuple(files), subdirs


def _walk_by_path(top: bytes, problems: list[Unwalkable], with_files: bool) -> Iterator[Folder]:
    """Where directories cannot be opened relative to a descriptor (Windows)."""
    stack = [top]
    while stack:
        path = stack.pop()
        files, subdirs = [], []
        try:
            with os.scandir(path) as listing:
                entries = sorted(listing, key=lambda e: e.name)
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(os.fsencode(entry.path))
                elif with_files and entry.is_file(follow_symlinks=False):
                    raw = os.fsencode(entry.path)
                    files.append(WalkedFile(raw, os.fsencode(entry.name), entry.stat(follow_symlinks=False)))
        except OSError as exc:
            problems.append(_unwalkable(path, exc))
            continue
        yield Folder(path, None, tuple(files))
        stack.extend(reversed(subdirs))


def _unwalkable(path: bytes, exc: OSError) -> Unwalkable:
    return Unwalkable(path, exc.errno or 0, exc.strerror or type(exc).__name__)
