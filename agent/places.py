"""Egress places: folders and mounts a file can leave through, with what we know of each."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from agent.paths import is_under
from rules.events import Media

FAST_FIND = True  # False: find asks every place (find_reference); test_places compares the two

# A place removed (a stick unmounted, a folder no longer watched) is remembered this long, at most
# GONE_KEPT of them: changes made there before the removal may still be queued behind a flood (a
# user can mount and unmount disk images without root, so the count is generous; they are asked
# only for a change made before the last removal, not for each change of a burst). A place held
# (hold: the agent's inotify reader still drains its folder, or the pipeline has not yet reached
# the end of that drain) is kept whatever its age or their count: only when the drain's end has
# been handled is everything made there before the removal known to have been said
GONE_KEEP_S = 86400.0
GONE_KEPT = 4096


@dataclass(frozen=True)
class EgressPlace:
    root: str
    kind: str  # removable | folder | sync | share | im | ... (rules.fields.EGRESS_KINDS)
    media: Media | None = None
    app: str = ""  # the app keeping the folder: "WeChat", "Dropbox" (details.app on its events)


class EgressPlaces:
    """The current set of egress places; the media monitor adds and removes mounts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._places: dict[str, EgressPlace] = {}
        # (folder, folder + "/", place), longest root first (ties in the order added: the one max()
        # picks), made again at each add or remove: find reads it without the lock
        self._longest_first: tuple[tuple[str, str, EgressPlace], ...] = ()
        self._gone: dict[str, tuple[EgressPlace, float]] = {}  # root: (place, when removed), oldest first
        self._holds: dict[str, int] = {}  # root: holds taken and not released (hold, release)
        self.removed_at = float("-inf")  # time.monotonic() of the last removal: a change after it has no gone place

    def add(self, place: EgressPlace) -> None:
        with self._lock:
            self._places[place.root] = place
            self._sort()

    def remove(self, root: str) -> EgressPlace | None:
        with self._lock:
            gone = self._places.pop(root, None)
            self._sort()
            if gone is not None:
                self._gone.pop(root, None)
                self.removed_at = time.monotonic()
                self._gone[root] = (gone, self.removed_at)
                if len(self._gone) > GONE_KEPT:
                    self._forget_oldest()
            return gone

    def _forget_oldest(self) -> None:
        """Forget the oldest places removed beyond GONE_KEPT, never a held one (the lock held)."""
        beyond = len(self._gone) - GONE_KEPT
        for root in [r for r in self._gone if r not in self._holds][:beyond]:
            del self._gone[root]

    def hold(self, root: str) -> None:
        """Keep the place at root, once removed, until release(root) (as many releases as holds):
        changes made there may still be on their way (agent/inotify.py, a folder's drain)."""
        with self._lock:
            self._holds[root] = self._holds.get(root, 0) + 1

    def release(self, root: str) -> None:
        """A hold of root ends; the place is then kept as any other removed place is."""
        with self._lock:
            left = self._holds.pop(root, 0) - 1
            if left > 0:
                self._holds[root] = left

    def _sort(self) -> None:
        ordered = sorted(self._places.values(), key=lambda p: len(p.root), reverse=True)  # stable
        folders = ((p.root.rstrip(os.sep) or os.sep, p) for p in ordered)
        self._longest_first = tuple((f, f + os.sep, p) for f, p in folders)

    def find(self, path: str) -> EgressPlace | None:
        """The most specific place holding path, or None. The pipeline asks twice for every file
        of a burst: the first root holding it, longest first, instead of every place's test and a
        max() over them (find_reference, FAST_FIND)."""
        if not FAST_FIND:
            return self.find_reference(path)
        for folder, prefix, place in self._longest_first:
            if path == folder or path.startswith(prefix) or folder == os.sep:  # paths.is_under
                return place
        return None

    def find_gone(self, path: str, at: float = float("-inf"), drained: bool = False) -> EgressPlace | None:
        """The most specific place removed in the last GONE_KEEP_S (or held) that held path when a
        change received at `at` was made there: removed after `at` (the change waited behind a flood),
        or any such place for a `drained` change (read from the kernel's queue after the unwatch,
        inotify._drained). A write to a stick unmounted before the agent got to it is then still
        said, as a file that vanished with its medium, even where another stick or a folder place
        holds that path now."""
        oldest = time.monotonic() - GONE_KEEP_S
        with self._lock:
            matches = [
                p for p, removed in self._gone.values()
                if (removed >= oldest or p.root in self._holds) and (drained or removed >= at) and is_under(path, p.root)
            ]  # fmt: skip
        return max(matches, key=lambda p: len(p.root), default=None)

    def is_current(self, place: EgressPlace) -> bool:
        """Whether place is (equal to) the one at its root now: not when its medium was unmounted,
        or another took its mount point (the same stick mounted again is equal)."""
        now = self._places.get(place.root)
        return now is place or now == place

    def find_reference(self, path: str) -> EgressPlace | None:
        with self._lock:
            matches = [p for p in self._places.values() if is_under(path, p.root)]
        return max(matches, key=lambda p: len(p.root), default=None)

    def all(self) -> list[EgressPlace]:
        with self._lock:
            return list(self._places.values())
