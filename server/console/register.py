"""The secret register's figures, folded incrementally: each visit reads only the events since the last.

Counting distinct files per classified folder is a GROUP BY over every file event in classified
folders: 0.75 s over 70,000 of them on SQLite (0.35 s with a covering index). The console keeps,
per process, the distinct paths per (host, folder, level) and the classified content seen leaving
per level, and on each visit folds in the events with a higher seq (the events_type_seq index
finds them). When the oldest event is gone (retention) the fold starts over.
"""

from __future__ import annotations

import ntpath
import posixpath
import threading

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from server.schema import events

FOLDER_EVENT_TYPES = ("file.created", "file.modified", "file.moved", "file.deleted", "file.opened")
LEVELS = ("core", "important", "general", "internal")


def folder_of(path: str) -> str:
    """The folder of a path as the agent wrote it: POSIX, or Windows when it has a drive or backslashes."""
    if "\\" in path or (len(path) > 1 and path[1] == ":"):
        return ntpath.dirname(path)
    return posixpath.dirname(path)


class RegisterFold:
    def __init__(self):
        self._lock = threading.Lock()
        self._reset(None)

    def _reset(self, first_seq: int | None) -> None:
        self._first_seq = first_seq
        self._last_seq = 0
        self._folders: dict[tuple, dict] = {}  # (host, folder, level) -> {"paths": set, "last": ts}
        self._egress: dict[str, dict] = {}  # level -> {"events": n, "sources": set, "last": ts}

    def read(self, conn: Connection) -> tuple[list[dict], list[dict]]:
        """(classified folders with activity, classified content seen leaving per level), both sorted by level."""
        with self._lock:
            first = conn.execute(select(func.min(events.c.seq))).scalar()
            if first != self._first_seq:
                self._reset(first)
            query = (
                select(events.c.seq, events.c.type, events.c.host, events.c.path, events.c.level, events.c.ts, events.c.source_path)
                .where(events.c.type.in_(FOLDER_EVENT_TYPES + ("egress.file",)), events.c.seq > self._last_seq, events.c.level.is_not(None))
                .order_by(events.c.seq)
            )
            for seq, type_, host, path, level, ts, source in conn.execute(query):
                self._last_seq = max(self._last_seq, seq)
                if type_ == "egress.file":
                    entry = self._egress.setdefault(level, {"events": 0, "sources": set(), "last": ""})
                    entry["events"] += 1
                    if source:
                        entry["sources"].add(source)
                    entry["last"] = max(entry["last"], ts)
                elif path:
                    key = (host, folder_of(path), level)
                    entry = self._folders.setdefault(key, {"paths": set(), "last": ""})
                    entry["paths"].add(path)
                    entry["last"] = max(entry["last"], ts)
            rank = {lv: i for i, lv in enumerate(LEVELS)}
            folders = [
                {"host": h, "folder": f, "level": lv, "files": len(v["paths"]), "last": v["last"]} for (h, f, lv), v in self._folders.items()
            ]
            egress = [{"level": lv, "events": v["events"], "sources": len(v["sources"]), "last": v["last"]} for lv, v in self._egress.items()]
        folders.sort(key=lambda e: (rank.get(e["level"], 9), e["host"] or "", e["folder"]))
        egress.sort(key=lambda e: rank.get(e["level"], 9))
        return folders, egress
