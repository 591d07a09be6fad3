"""The places the collector's group policy puts in force on this PC: the register's folders (as
classified folders with the item's level and name) and the group's extra egress places.

The policy store tells this component when a new group policy is in force (from the reporter
thread: it only wakes this one); its thread expands the location patterns (agent/locations.py),
compares the result with what is in force and asks the app to start or stop watching and indexing
the difference. It also expands again every `interval_s`, so a folder created after the policy came
(a new user's home, a new project folder matching `*`) is taken in without a new policy. The local
config's folders stay as they are: local entries may add places, never remove central ones (on
the same path the register's item wins).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from agent.config import ClassifiedFolder
from agent.locations import Expansion, expand, user_homes
from agent.places import EgressPlace
from rules.grouppolicy import GroupPolicy

MAX_CENTRAL_FOLDERS = 2000  # register folders in force on one PC
MAX_REPORTED_ITEMS = 2000  # register items whose index size one heartbeat reports


@dataclass(frozen=True)
class CentralItem:
    item_id: int
    name: str
    level: str
    owner: str


@dataclass(frozen=True)
class CentralSet:
    """What the group policy gives on this PC now."""

    classified: tuple[ClassifiedFolder, ...] = ()
    egress: tuple[EgressPlace, ...] = ()
    items: tuple[CentralItem, ...] = ()
    problems: tuple[Expansion, ...] = ()  # patterns that gave nothing or were cut short
    # item id -> the folders its patterns found here (a folder two items find is both items')
    item_folders: tuple[tuple[int, tuple[str, ...]], ...] = ()


def resolve(group: GroupPolicy | None, homes: tuple, excluded: tuple[str, ...], local: tuple[str, ...]) -> CentralSet:
    """The folders and places of a group policy here; `local`: the config's classified folders
    (a register folder at the same path replaces it, so it is not listed twice)."""
    if group is None:
        return CentralSet()
    folders: dict[str, ClassifiedFolder] = {}
    problems = []
    item_folders: dict[int, list[str]] = {}
    for item in group.register:
        for pattern in item.patterns:
            found = expand(pattern, homes, excluded)
            if found.problem:
                problems.append(found)
            for path in found.folders:
                if len(folders) < MAX_CENTRAL_FOLDERS:
                    folders.setdefault(path, ClassifiedFolder(path, item.level, item.name, item.owner))
                if path in folders:  # in force here (not cut by the bound)
                    item_folders.setdefault(item.item_id, []).append(path)
    egress = []
    for place in group.egress:
        found = expand(place.path, homes, excluded + tuple(folders) + local)
        if found.problem:
            problems.append(found)
        egress += [EgressPlace(path, place.kind, app=place.app) for path in found.folders]
    items = tuple(CentralItem(i.item_id, i.name, i.level, i.owner) for i in group.register)
    return CentralSet(
        tuple(folders.values()),
        tuple(dict((p.root, p) for p in egress).values()),
        items,
        tuple(problems),
        tuple((i, tuple(dict.fromkeys(paths))) for i, paths in item_folders.items()),
    )


def indexed_by_item(central: CentralSet, count_under: Callable[[tuple[str, ...]], int]) -> dict[int, int]:
    """What the heartbeat reports per register item in force here: the files the fingerprint index
    holds under the item's folders (each file once per item; an item whose folders are missing
    here reports 0). At most MAX_REPORTED_ITEMS items."""
    folders = dict(central.item_folders)
    return {
        item.item_id: count_under(folders[item.item_id]) if item.item_id in folders else 0
        for item in central.items[:MAX_REPORTED_ITEMS]
    }


class CentralPlaces:
    """Keeps the group policy's folders and places in force; `apply(old, new)` is the app's."""

    def __init__(
        self,
        apply: Callable[[CentralSet, CentralSet], None],
        report: Callable[[Expansion], None],
        excluded: tuple[str, ...],
        local: tuple[str, ...],
        interval_s: float = 60.0,
        homes: Callable[[], tuple] = user_homes,  # (user, home) pairs
    ):
        self._apply = apply
        self._report = report
        self.excluded = excluded
        self.local = local
        self.interval_s = interval_s
        self._homes = homes
        self._group: GroupPolicy | None = None
        self.current = CentralSet()
        self._reported: set[tuple[str, str]] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one refresh at a time (start and the thread)
        self._thread: threading.Thread | None = None

    def offer(self, group: GroupPolicy | None) -> None:
        """A new group policy is in force (called from the reporter thread: only wakes ours)."""
        self._group = group
        self._wake.set()

    def refresh(self) -> CentralSet:
        """Expand the patterns now and put the difference in force; returns what is in force."""
        with self._lock:
            wanted = resolve(self._group, self._homes(), self.excluded, self.local)
            for problem in wanted.problems:
                key = (problem.pattern, problem.problem)
                if key not in self._reported:  # once per pattern and reason, not once per pass
                    self._reported.add(key)
                    self._report(problem)
            if (
                wanted.classified != self.current.classified
                or wanted.egress != self.current.egress
                or wanted.items != self.current.items
                or wanted.item_folders != self.current.item_folders  # the index sizes the heartbeat reports
            ):
                before, self.current = self.current, wanted
                logger.info(
                    "central places changed folders={} egress={} items={} (were {}, {})",
                    len(wanted.classified), len(wanted.egress), len(wanted.items), len(before.classified), len(before.egress),
                )  # fmt: skip
                self._apply(before, wanted)
            return self.current

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="central-places", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.refresh()
            except Exception:  # a loop boundary: try again at the next wake
                logger.exception("central places refresh failed")
