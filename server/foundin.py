"""Where the register's items were found: per item, on how many PCs and in how many files.

Each agent's last heartbeat reports `indexed_by_item` (register item id -> the files its
fingerprint index holds under the item's folders), stored in the agents row's status JSON
(server/api.py heartbeat). An item counts on a PC when that agent is not retired and its last
heartbeat reported the item with at least one file; the files are the sum over those PCs. The
status text is the agent's: it is read defensively (anything but a whole number >= 0 under a
digits-only id is skipped), and the caller escapes what it shows. One pass over the agents' rows
(1,000s of them: one JSON parse each), no schema change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from server.schema import agents, register_items

ITEM_ID = re.compile(r"[1-9][0-9]{0,18}")
MAX_COUNT = 2**63 - 1


@dataclass(frozen=True)
class FoundIn:
    pcs: int  # agents (not retired) whose last heartbeat reported the item with >= 1 file
    files: int  # the files those heartbeats reported, summed


NOWHERE = FoundIn(0, 0)


def indexed_by_item(status_text: str | None) -> dict[int, int]:
    """The per-item file counts of one agent's last heartbeat ({} when it reported none)."""
    try:
        status = json.loads(status_text or "{}")
    except ValueError:
        return {}
    counts = status.get("indexed_by_item") if isinstance(status, dict) else None
    if not isinstance(counts, dict):
        return {}
    return {
        int(k): v
        for k, v in counts.items()
        if isinstance(k, str) and ITEM_ID.fullmatch(k) and type(v) is int and 0 <= v <= MAX_COUNT
    }


def found_in(conn: Connection) -> dict[int, FoundIn]:
    """Register item id -> FoundIn over the agents that are not retired (items found nowhere are absent)."""
    pcs: dict[int, int] = {}
    files: dict[int, int] = {}
    rows = conn.execute(
        select(agents.c.status).where(
            agents.c.state != "retired", agents.c.status.like('%"indexed\\_by\\_item"%', escape="\\")
        )
    )
    for (text,) in rows:
        for item_id, count in indexed_by_item(text).items():
            if count > 0:
                pcs[item_id] = pcs.get(item_id, 0) + 1
                files[item_id] = files.get(item_id, 0) + count
    return {i: FoundIn(pcs[i], files[i]) for i in pcs}


def item_names(conn: Connection, item_ids: set[int]) -> dict[int, str]:
    """The names of these register items (an id the register does not hold is left out)."""
    ids = sorted(i for i in item_ids if 0 < i < 2**31)[:10_000]
    if not ids:
        return {}
    rows = conn.execute(select(register_items.c.id, register_items.c.name).where(register_items.c.id.in_(ids)))
    return {r.id: r.name for r in rows}
