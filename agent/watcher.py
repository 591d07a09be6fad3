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
from collections.abc import Callable
from dataclasses import dataclass

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
    """One watchdog observer; folders are added and removed while it runs (media come and go)."""

    def __init__(self, changes: queue.Queue, on_overflow: Callable[[str], None]):
        self._handler = _QueueingHandler(changes, on_overflow)
        self._log_handler = _OverflowLogHandler(on_overflow)
        self._observer = Observer()
        self._watches: dict[str, ObservedWatch] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        logging.getLogger("watchdog").addHandler(self._log_handler)
        self._observer.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._observer.stop()
        self._observer.join(timeout_s)
        logging.getLogger("watchdog").removeHandler(self._log_handler)

    def watch(self, folder: str) -> bool:
        with self._lock:
            if folder in self._watches:
                return True
            try:
                self._watches[folder] = self._observer.schedule(
                    self._handler, folder, recursive=True, event_filter=EVENT_FILTER
                )
            except OSError as exc:
                logger.error("cannot watch folder path={!r} error={}", folder, exc)
                return False
            logger.info("watching path={!r}", folder)
            return True

    def unwatch(self, folder: str) -> None:
        with self._lock:
            watch = self._watches.pop(folder, None)
            if watch is not None:
                try:
                    self._observer.unschedule(watch)
                except (KeyError, OSError) as exc:  # the mount may already be gone
                    logger.debug("unwatch failed path={!r} error={}", folder, exc)


def _text(path: str | bytes) -> str:
    return os.fsdecode(path)
