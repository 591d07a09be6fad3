"""File system watching: thin watchdog callbacks that only enqueue immutable changes.

watchdog runs every handler on one thread, so the handler converts the event and puts it on a
bounded queue; the pipeline does the work. A full queue, or an inotify queue overflow (which
watchdog only logs), is reported to `on_overflow` so the pipeline can rescan.

A folder, or a part of one, that cannot be watched is reported to `on_blind` with its path and
reason, because watchdog says little of it: a folder that cannot be watched at all only fails
schedule(); running out of inotify watches later is only a log record; and a subdirectory deeper
than PATH_MAX (inotify takes paths), or one it cannot list, is skipped in silence. So after each
watch is added the tree's directories are walked (agent/walk.py, by descriptor) for what
inotify cannot reach, and a directory created or moved in past PATH_MAX is reported as it comes.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from agent.paths import is_under
from agent.walk import PATH_MAX, Unwalkable, walk

# Opened and closed-without-writing are left out: our own hashing would cause them.
EVENT_FILTER = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]
TOO_DEEP = "deeper than PATH_MAX: inotify cannot watch it"
UNABLE_TO_WATCH = "Unable to watch %r: %s"  # watchdog's log message (observers/inotify.py) when a watch fails
_KINDS = {"created": "created", "modified": "modified", "moved": "moved", "deleted": "deleted", "closed": "closed"}


# The change put after the last of an unwatched folder's changes drained from the kernel's queue
# (agent/inotify.py): the pipeline then lets go of the place that folder was (places.release)
DRAIN_END = "drain-end"


@dataclass(frozen=True)
class FsChange:
    # created | modified | moved | deleted | closed; touched | touched-closed: a file watched on its
    # own; DRAIN_END: every change of the folder at path still queued when it was unwatched is put
    kind: str
    path: str
    is_dir: bool = False
    dest: str | None = None  # for moved
    # when we received it (time.monotonic): the change it reports happened before this
    at: float = field(default_factory=time.monotonic, compare=False)
    # read after its folder was unwatched (a stick unmounted behind a flood): made while it was
    # watched, so it belongs to the place that went (places.find_gone), not to one there now
    drained: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class BlindSpot:
    """A folder (and everything below it) whose changes the agent does not see."""

    path: str  # os.fsdecode of the raw path: may hold surrogate escapes, and be longer than PATH_MAX
    reason: str  # e.g. "Permission denied", "inotify watch limit reached", "deeper than PATH_MAX"


def _ignore(_what: object) -> None:
    pass


class _QueueingHandler(FileSystemEventHandler):
    def __init__(self, changes: queue.Queue, on_overflow: Callable[[str], None], on_blind: Callable[[BlindSpot], None]):
        self.changes = changes
        self.on_overflow = on_overflow
        self.on_blind = on_blind

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = _KINDS.get(event.event_type)
        if kind is None or (event.is_directory and kind in ("modified", "closed")):
            return
        dest = event.dest_path if kind == "moved" else None
        change = FsChange(kind, _text(event.src_path), event.is_directory, _text(dest) if dest else None)
        if event.is_directory and kind in ("created", "moved"):
            arrived = change.dest if kind == "moved" else change.path
            if arrived and len(os.fsencode(arrived)) >= PATH_MAX:  # inotify cannot watch it
                self.on_blind(BlindSpot(arrived, TOO_DEEP))
        try:
            self.changes.put_nowait(change)
        except queue.Full:
            self.on_overflow("agent queue full")


class _OverflowLogHandler(logging.Handler):
    """watchdog reports a kernel queue overflow, and a watch it could not add to a running
    observer (no inotify watches left), only as log records; turn them into calls."""

    def __init__(self, on_overflow: Callable[[str], None], on_blind: Callable[[BlindSpot], None]):
        super().__init__(logging.WARNING)
        self.on_overflow = on_overflow
        self.on_blind = on_blind

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == UNABLE_TO_WATCH and isinstance(record.args, tuple) and len(record.args) == 2:
            path, error = record.args
            self.on_blind(BlindSpot(_text(path), _reason(error)))
        elif "overflow" in record.getMessage().lower():
            self.on_overflow("inotify queue overflow")


class Folders:
    """The folders watched, each with a recursive watch of its own or covered by an outer one;
    folders are added and removed while watching runs (media come and go). Subclasses add and
    remove one folder's watch (`_schedule`, `_unschedule`): watchdog's observer here, the agent's
    own inotify reader on Linux (agent/inotify.py).

    Every watch is recursive, so a folder inside a watched folder on the same file system is
    not watched again (each change would arrive twice): it is part of the outer watch, and gets
    a watch of its own again if the outer one is removed. A file system mounted inside a watched
    folder is watched on its own: the outer watch does not see into it.
    """

    def __init__(self, on_blind: Callable[[BlindSpot], None] = _ignore):
        self._on_blind = on_blind
        self._watches: dict[str, object] = {}  # folder -> its watch
        self._covered: dict[str, str] = {}  # folder -> the watched folder whose watch covers it
        self._lock = threading.Lock()
        # called with a folder as its watch goes, when changes made there may still be on their way
        # to the pipeline; a FsChange(DRAIN_END, folder) follows the last of them (agent/inotify.py:
        # the pipeline keeps the place that folder was until then). watchdog's observer says nothing
        # of the kind, so this one never calls it
        self.on_drain: Callable[[str], None] = _ignore

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, timeout_s: float = 5.0) -> None:
        raise NotImplementedError

    def _schedule(self, folder: str) -> bool:
        raise NotImplementedError

    def _unschedule(self, folder: str) -> None:
        raise NotImplementedError

    def watch_file(self, path: str) -> os.stat_result | None:
        """Watch one file on its own (agent/inotify.py has it; here none: None)."""
        return None

    def unwatch_file(self, path: str) -> None:
        pass

    def touch_taken(self, path: str) -> None:
        pass

    def watched(self) -> list[str]:
        """The folders with a watch of their own."""
        with self._lock:
            return sorted(self._watches)

    def watch(self, folder: str) -> bool:
        with self._lock:
            if folder in self._watches or folder in self._covered:
                return True
            outer = next((w for w in self._watches if _covers(w, folder)), None)
            if outer is not None:
                self._covered[folder] = outer
                logger.info("watching path={!r} within path={!r}", folder, outer)
                return True
            if not self._schedule(folder):
                return False
            for inner in [w for w in self._watches if w != folder and _covers(folder, w)]:
                self._unschedule(inner)  # the new watch covers it now
                self._covered[inner] = folder
            for inner in [c for c, o in self._covered.items() if o != folder and _covers(folder, c)]:
                self._covered[inner] = folder
            return True

    def unwatch(self, folder: str) -> None:
        with self._lock:
            if self._covered.pop(folder, None) is not None:
                return
            self._unschedule(folder)
            orphans = sorted((c for c, o in self._covered.items() if o == folder), key=len)
            for inner in orphans:  # outer ones first, so they cover the rest again
                del self._covered[inner]
                outer = next((w for w in self._watches if _covers(w, inner)), None)
                if outer is not None:
                    self._covered[inner] = outer
                else:
                    self._schedule(inner)


class Watchers(Folders):
    """One watchdog observer (its emitter, dispatcher and handler threads): every platform."""

    def __init__(
        self,
        changes: queue.Queue,
        on_overflow: Callable[[str], None],
        on_blind: Callable[[BlindSpot], None] = _ignore,
    ):
        super().__init__(on_blind)
        self._handler = _QueueingHandler(changes, on_overflow, on_blind)
        self._log_handler = _OverflowLogHandler(on_overflow, on_blind)
        self._observer = Observer()
        self._watches: dict[str, ObservedWatch] = {}

    def start(self) -> None:
        logging.getLogger("watchdog").addHandler(self._log_handler)
        self._observer.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._observer.stop()
        self._observer.join(timeout_s)
        logging.getLogger("watchdog").removeHandler(self._log_handler)

    def _schedule(self, folder: str) -> bool:
        try:
            self._watches[folder] = self._observer.schedule(
                self._handler, folder, recursive=True, event_filter=EVENT_FILTER
            )
        except OSError as exc:
            logger.error("cannot watch folder path={!r} error={!r}", folder, str(exc))
            self._on_blind(BlindSpot(folder, _reason(exc)))
            return False
        logger.info("watching path={!r}", folder)
        for spot in blind_spots(folder):
            logger.warning("cannot watch folder path={!r} error={!r}", spot.path, spot.reason)
            self._on_blind(spot)
        return True

    def _unschedule(self, folder: str) -> None:
        watch = self._watches.pop(folder, None)
        if watch is not None:
            try:
                self._observer.unschedule(watch)
            except (KeyError, OSError) as exc:  # the mount may already be gone
                logger.debug("unwatch failed path={!r} error={!r}", folder, str(exc))


def blind_spots(folder: str) -> list[BlindSpot]:
    """The subtrees of folder a recursive inotify watch cannot see into: directories that cannot
    be opened or listed, and the topmost directories whose path reaches PATH_MAX (inotify takes
    a path; nothing below them is watched either). Files are not looked at: only directories."""
    problems: list[Unwalkable] = []
    spots = []
    for directory in walk(folder, problems, with_files=False):
        if len(directory.path) >= PATH_MAX and len(directory.path.rpartition(b"/")[0]) < PATH_MAX:
            spots.append(BlindSpot(_text(directory.path), TOO_DEEP))
    return [BlindSpot(_text(p.path), p.reason) for p in problems] + spots


def _reason(error: object) -> str:
    return (error.strerror if isinstance(error, OSError) else None) or str(error)


def _covers(outer: str, folder: str) -> bool:
    """A recursive watch of outer sees changes in folder: inside it, on the same file system."""
    if outer == folder or not is_under(folder, outer):
        return False
    try:
        return os.stat(outer).st_dev == os.stat(folder).st_dev
    except OSError:
        return False


def _text(path: str | bytes) -> str:
    return os.fsdecode(path)
