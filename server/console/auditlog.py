"""The audit log as the console reads it: filtered and paged in SQL, and exported.

The audit_log table (server/audit.py) is append-only and grows with every administrative action
and every sign-in, so the page never loads it whole: a COUNT and a LIMIT/OFFSET query, newest
first (by id, which follows the time of writing). Filters: who (part of the actor, any case), what
(an action exactly, or every action of a kind: `login.`), on what (part of the target), and a time
range typed on the firm's clock (server/firmtime.py). Text filters are bound parameters with LIKE's
wildcards escaped, so `%` or `_` typed by an officer match themselves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from server import firmtime
from server.schema import audit_log
from server.times import aware, iso

MAX_TEXT = 200
ACTION = re.compile(r"^[a-z_]+(\.[a-z_]*)*$")  # as the API takes it: exact, or a prefix ending in '.'
DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


class FilterError(ValueError):
    """A filter value the page refuses (422), with a message naming the field."""


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None  # part of the actor, any case: li.wei finds console:li.wei
    action: str | None = None  # exact, or a prefix ending in '.'
    target: str | None = None  # part of the target
    since: datetime | None = None  # aware UTC, inclusive
    until: datetime | None = None  # aware UTC, exclusive

    def given(self) -> bool:
        return any(v is not None for v in (self.actor, self.action, self.target, self.since, self.until))


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: str  # ISO 8601 UTC; pages and exports show it on the firm's clock
    actor: str
    action: str
    target: str
    details: dict
    client: str | None  # the address a sign-in came from (details.client), when there is one


def parse_filter(actor: str | None, action: str | None, target: str | None, since: str | None, until: str | None, zone: str) -> AuditFilter:
    """The page's query string as a filter; FilterError names the field that is wrong.

    `from` and `until` are read on the firm's clock; a date alone as `until` means the whole day.
    """
    for name, value in (("actor", actor), ("target", target), ("from", since), ("until", until)):
        if value and len(value) > MAX_TEXT:
            raise FilterError(f"{name} is at most {MAX_TEXT} characters")
    action = (action or "").strip()
    if action and (len(action) > 64 or not ACTION.match(action)):
        raise FilterError("action is an audit action such as login.failed, or a kind such as login.")
    return AuditFilter(
        actor=(actor or "").strip() or None,
        action=action or None,
        target=(target or "").strip() or None,
        since=_moment("from", since, zone),
        until=_moment("until", until, zone, whole_day=True),
    )


def _moment(name: str, value: str | None, zone: str, whole_day: bool = False) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        moment = firmtime.parse_local(value, zone)
    except ValueError:
        raise FilterError(f"{name} must be a date like 2026-11-20 or a time like 2026-11-20 08:00") from None
    return moment + timedelta(days=1) if whole_day and DATE_ONLY.match(value) else moment


def _where(f: AuditFilter) -> list:
    c = audit_log.c
    clauses = []
    if f.actor:
        clauses.append(func.lower(c.actor).contains(f.actor.lower(), autoescape=True))
    if f.action:
        clauses.append(c.action.startswith(f.action, autoescape=True) if f.action.endswith(".") else c.action == f.action)
    if f.target:
        clauses.append(func.lower(c.target).contains(f.target.lower(), autoescape=True))
    if f.since is not None:
        clauses.append(c.at >= f.since)
    if f.until is not None:
        clauses.append(c.at < f.until)
    return clauses


def page(conn: Connection, f: AuditFilter, number: int, per_page: int) -> tuple[list[AuditRow], int]:
    """One page, newest first, and how many rows match in all."""
    where = _where(f)
    total = conn.execute(select(func.count()).select_from(audit_log).where(*where)).scalar_one()
    query = select(audit_log).where(*where).order_by(audit_log.c.id.desc()).limit(per_page).offset((number - 1) * per_page)
    return [_row(r) for r in conn.execute(query).mappings()], total


def for_export(conn: Connection, f: AuditFilter, max_rows: int) -> list[AuditRow]:
    query = select(audit_log).where(*_where(f)).order_by(audit_log.c.id.desc()).limit(max_rows)
    return [_row(r) for r in conn.execute(query).mappings()]


def actions(conn: Connection) -> list[str]:
    """The actions the log holds, for the filter's choices (the index on (action, id) serves it)."""
    return [a for (a,) in conn.execute(select(audit_log.c.action).distinct().order_by(audit_log.c.action))]


def _row(r) -> AuditRow:
    try:
        details = json.loads(r["details"])
    except ValueError:
        details = {"unreadable": r["details"]}
    details = details if isinstance(details, dict) else {"value": details}
    client = details.get("client")
    return AuditRow(r["id"], iso(aware(r["at"])), r["actor"], r["action"], r["target"], details, client if isinstance(client, str) else None)


def details_text(details: dict) -> str:
    """Details as one line of JSON, the client address left out (it has its own column)."""
    rest = {k: v for k, v in details.items() if k != "client"}
    return json.dumps(rest, ensure_ascii=False, separators=(", ", ": "), sort_keys=True) if rest else ""
