"""The audit log: every administrative action, written in the transaction that makes the change.

A change and its audit row commit together or not at all. `details` is JSON of what the change
was, never secrets: no tokens, password hashes or channel URLs (callers pass names and ids).
Actors are written as the rest of the collector writes them: token:<name>, console:<user>, cli,
system.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from server.schema import audit_log
from server.times import aware, iso

SECRET_KEYS = ("token", "password", "password_hash", "token_hash", "url", "secret")


def record(conn: Connection, at: datetime, actor: str, action: str, target: str, details: dict[str, Any] | None = None) -> None:
    """Append one row; keys that name secrets are refused so a careless caller cannot log one."""
    details = details or {}
    leaked = [k for k in details if k.lower() in SECRET_KEYS]
    if leaked:
        raise ValueError(f"audit details must not carry secrets: {', '.join(sorted(leaked))}")
    conn.execute(
        insert(audit_log).values(
            at=at, actor=actor[:255], action=action[:64], target=str(target)[:255],
            details=json.dumps(details, ensure_ascii=False, separators=(",", ":"), default=str),
        )
    )


def entries(conn: Connection, actor: str | None, action: str | None, since: datetime | None, limit: int, cursor: int | None) -> tuple[list[dict], str | None]:
    """Newest first, `limit` a page; `action` matches exactly or, ending in '.', as a prefix."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit + 1)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        query = query.where(audit_log.c.action.startswith(action, autoescape=True) if action.endswith(".") else audit_log.c.action == action)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if cursor is not None:
        query = query.where(audit_log.c.id < cursor)
    rows = conn.execute(query).mappings().all()
    items = [
        {"id": r["id"], "at": iso(aware(r["at"])), "actor": r["actor"], "action": r["action"], "target": r["target"], "details": json.loads(r["details"])}
        for r in rows[:limit]
    ]
    return items, (str(rows[limit - 1]["id"]) if len(rows) > limit else None)
