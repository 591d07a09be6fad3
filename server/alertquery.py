"""The alert list's filters as the console's list and `GET /api/v1/alerts` take them: parsed once,
checked once, turned into SQL once, so the two cannot drift apart.

Times a person types into the console (from, until) are read on the firm's clock
(server/firmtime.py); the API reads them in UTC unless they carry their own offset. Every value is
bounded and refused (422) when it cannot be a value of its column, never silently dropped: a filter
that was ignored would show an analyst more than they asked for and let them think it was less.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_

from rules.levels import LEVELS, SEVERITIES
from server import firmtime
from server.schema import alerts

STATUSES = ("open", "acknowledged", "resolved", "false_positive")
ACTIVE = ("open", "acknowledged")  # the default view: what someone may still be working on
STATUS_CHOICES = ("active", "all", *STATUSES)
MAX_VALUE_CHARS = 255  # the longest user, host, device label or register item a column holds
TEXT_FILTERS = ("user", "host", "device", "register_item", "assignee")
FILTER_KEYS = ("status", "severity", "category", "level", "since", "until", *TEXT_FILTERS)
_CATEGORY = re.compile(r"^[a-z0-9-]{1,64}$")
UTC = ZoneInfo("UTC")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class AlertFilter:
    statuses: tuple[str, ...] = ()  # empty: every status
    severity: str | None = None
    category: str | None = None
    level: str | None = None  # an incident's highest level
    user: str | None = None
    host: str | None = None
    device: str | None = None  # the device's label (or the destination's label)
    register_item: str | None = None
    assignee: str | None = None
    since: datetime | None = None  # created at or after (UTC)
    until: datetime | None = None  # created before (UTC, exclusive)
    extra: tuple = field(default=(), compare=False)  # more SQL clauses (e.g. only some ids)

    def where(self) -> list:
        clauses = list(self.extra)
        if self.statuses and set(self.statuses) != set(STATUSES):
            clauses.append(
                alerts.c.status == self.statuses[0] if len(self.statuses) == 1 else alerts.c.status.in_(self.statuses)
            )
        for column, value in (
            (alerts.c.severity, self.severity),
            (alerts.c.top_level, self.level),
            (alerts.c.user, self.user),
            (alerts.c.host, self.host),
            (alerts.c.register_item, self.register_item),
            (alerts.c.assignee, self.assignee),
        ):
            if value:
                clauses.append(column == value)
        if self.category:  # an incident holds the categories of all its files: a marked file's is one
            clauses.append(or_(alerts.c.category == self.category, alerts.c.facets.like(f'%"{self.category}"%')))
        if self.device:
            clauses.append(or_(alerts.c.device_label == self.device, alerts.c.destination == self.device))
        if self.since is not None:
            clauses.append(alerts.c.created_at >= self.since)
        if self.until is not None:
            clauses.append(alerts.c.created_at < self.until)
        return clauses


def _text(name: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"{name} is at most {MAX_VALUE_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{name} must not hold control characters")
    return value


def _moment(name: str, value: str | None, zone: ZoneInfo, end: bool) -> datetime | None:
    """A typed time on `zone`'s clock as UTC; a bare day as `until` means up to the end of that day."""
    if not value:
        return None
    if len(value) > 40:
        raise ValueError(f"{name} must be a date like 2026-11-20 or 2026-11-20 08:00")
    try:
        if end and _DAY.match(value.strip()):
            return firmtime.local_day_start(date.fromisoformat(value.strip()) + timedelta(days=1), zone)
        return firmtime.parse_local(value, zone)
    except (ValueError, OverflowError):
        raise ValueError(f"{name} must be a date like 2026-11-20 or 2026-11-20 08:00") from None


def parse_filter(given: dict[str, str | None], zone: ZoneInfo, default_status: str = "active") -> AlertFilter:
    """The filters from a query string; ValueError (said to the user as 422) for a value that cannot be."""
    status = given.get("status") or default_status
    if status not in STATUS_CHOICES:
        raise ValueError(f"status must be one of {', '.join(STATUS_CHOICES)}")
    severity, category, level = given.get("severity") or None, given.get("category") or None, given.get("level") or None
    if severity and severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
    if category and not _CATEGORY.match(category):
        raise ValueError("category is lower-case letters, digits and '-'")
    if level and level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    statuses = ACTIVE if status == "active" else () if status == "all" else (status,)
    texts = {name: _text(name, given.get(name)) for name in TEXT_FILTERS}
    since = _moment("from", given.get("since"), zone, end=False)
    until = _moment("until", given.get("until"), zone, end=True)
    return AlertFilter(statuses, severity, category, level, since=since, until=until, **texts)


def given_of(values: dict[str, str | None]) -> dict[str, str]:
    """Only the filter keys, empty ones left out: what a page's links and a saved view keep."""
    return {k: str(values[k]) for k in FILTER_KEYS if values.get(k) not in (None, "")}


def given_filters(
    status: str | None = None,
    severity: str | None = None,
    category: str | None = None,
    level: str | None = None,
    user: str | None = None,
    host: str | None = None,
    device: str | None = None,
    register_item: str | None = None,
    assignee: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, str]:
    """The list's filters as sent (a FastAPI dependency): the console's list and links keep them.
    Their lengths are checked by parse_filter(), whose 422 does not echo a 5,000-character value."""
    return given_of(
        {"status": status, "severity": severity, "category": category, "level": level, "user": user, "host": host,
         "device": device, "register_item": register_item, "assignee": assignee, "since": since, "until": until}
    )  # fmt: skip
