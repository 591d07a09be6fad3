"""File system watching: thin watchdog callbacks that only enqueue immutable changes.

watchdog runs every handler on one thread, so the handler converts the event and puts it on a
bounded queue; the pipeline does the work. A full queue, or an inotify queue overflow (which
watchdog only logs), is reported to `on_overflow` so the pipeline can rescan.
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
_KINDS = {"created": "created", "modified": "modified", "moved": "moved", "deleted": "deleted", "closed": "closed"}


@dataclass(frozen=True)
class FsChange:
    kind: str  # created | modified | moved | deleted | closed
    path: str
    is_dir: bool = False
    dest: str | None = None  # for moved
    # when we received it (time.monotonic): the change it reports happened before this
    at: float = field(default_factory=time.monotonic, compare=False)


class _QueueingHandler(FileSystemEventHandler):
    def __init__(self, changes: queue.Queue, on_overflow: Callable[[str], None]):
        self.changes = changes
        self.on_overflow = on_overflow

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = _KINDS.get(event.event_type)
        if kind is None or (event.is_directory and kind in ("modified", "closed")):
            return
        dest = event.dest_path if kind == "moved" else None
        change = FsChange(kind, _text(event.src_path), event.is_directory, _text(dest) if dest else None)
        try:
            self.changes.put_nowait(change)
        except queue.Full:
            self.on_overflow("agent queue full")


class _OverflowLogHandler(logging.Handler):
    """watchdog reports a kernel queue overflow only as a log record; turn it into a call."""

    def __init__(self, on_overflow: Callable[[str], None]):
        super().__init__(logging.WARNING)
        self.on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.on_overflow("inotify queue overflow")


class Watchers:
    """One watchdog observer; folders are added and removed while it runs (media come and go).

    Every watch is recursive, so a folder inside a watched folder on the same file system is
    not watched again (each change would arrive twice): it is part of the outer watch, and gets
    a watch of its own again if the outer one is removed. A file system mounted inside a watched
    folder is watched on its own: the outer watch does not see into it.
    """

    def __init__(self, changes: queue.Queue, on_overflow: Callable[[str], None]):
        self._handler = _QueueingHandler(changes, on_overflow)
        self._log_handler = _OverflowLogHandler(on_overflow)
        self._observer = Observer()
        self._watches: dict[str, ObservedWatch] = {}
        self._covered: dict[str, str] = {}  # folder -> the watched folder whose watch covers it
        self._lock = threading.Lock()

    def start(self) -> None:
        logging.getLogger("watchdog").addHandler(self._log_handler)
        self._observer.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._observer.stop()
        self._observer.join(timeout_s)
        logging.getLogger("watchdog").removeHandler(self._log_handler)

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

    def _schedule(self, folder: str) -> bool:
        try:
            self._watches[folder] = self._observer.schedule(
                self._handler, folder, recursive=True, event_filter=EVENT_FILTER
            )
        except OSError as exc:
            logger.error("cannot watch folder path={!r} error={!r}", folder, str(exc))
            return False
        logger.info("watching path={!r}", folder)
        return True

    def _unschedule(self, folder: str) -> None:
        watch = self._watches.pop(folder, None)
        if watch is not None:
            try:
                self._observer.unschedule(watch)
            except (KeyError, OSError) as exc:  # the mount may already be gone
                logger.debug("unwatch failed path={!r} error={!r}", folder, str(exc))


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
