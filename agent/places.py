"""Egress places: folders and mounts a file can leave through, with what we know of each."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from agent.paths import is_under
from rules.events import Media


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

    def add(self, place: EgressPlace) -> None:
        with self._lock:
            self._places[place.root] = place

    def remove(self, root: str) -> EgressPlace | None:
        with self._lock:
            return self._places.pop(root, None)

    def find(self, path: str) -> EgressPlace | None:
        """The most specific place holding path, or None."""
        with self._lock:
            matches = [p for p in self._places.values() if is_under(path, p.root)]
        return max(matches, key=lambda p: len(p.root), default=None)

    def all(self) -> list[EgressPlace]:
        with self._lock:
            return list(self._places.values())
