"""The dashboard's figures, counted in SQL: what is open, how this week compares with the last, who
and what stands out, which agents went quiet, and the trend by category.

Days are the firm's days (server.timezone): the database groups by UTC hour (a few hundred rows at
most) and Python folds the hours into the firm's dates, so the same SQL serves SQLite and
PostgreSQL and a zone with summer time gets its 23- and 25-hour days right. (A zone offset by half
an hour puts that half hour of each hour into the neighbouring one: bounded, and no such zone is
in use by the firms this is for.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from server import firmtime, fleetlist
from server.console.queries import SEVERITIES, ts_text
from server.schema import alerts, devices, events

DAYS = 30
WEEK = 7
TOP = 10
SILENT_LISTED = 10
UNCLOSED = ("open", "acknowledged")


@dataclass(frozen=True)
class Week:
    """New alerts and files sent out in the last 7 days against the 7 before, per category too."""

    alerts_now: int
    alerts_before: int
    files_now: int
    files_before: int
    by_category: list[tuple[str, int, int]]  # (category, last 7 days, the 7 before), busiest first


@dataclass(frozen=True)
class Fleet:
    online: int
    offline: int
    stopped: int
    stalled: int
    silent: list[fleetlist.FleetAgent]  # offline ones, longest silent first (SILENT_LISTED at most)


@dataclass(frozen=True)
class Figures:
    days: list[date]  # the firm's last DAYS dates, oldest first
    open_by_severity: list[tuple[str, int]]  # every severity, in order; open or acknowledged
    open_by_category: list[tuple[str, int]]  # busiest first
    open_total: int
    week: Week
    trend: dict[str, list[int]]  # category -> alerts per day (over `days`), busiest category first
    files_per_day: list[int]  # egress.file events per day (over `days`)
    top_users: list[tuple[str, int]]  # alerts in the last DAYS days
    top_hosts: list[tuple[str, int]]
    top_devices: list[dict]  # register rows seen in the last DAYS days, most mounted first
    fleet: Fleet


def firm_days(now: datetime, zone, days: int = DAYS) -> list[date]:
    today = firmtime.local(now, zone).date()
    return [today - timedelta(days=days - 1 - i) for i in range(days)]


def hour_of(conn: Connection, column, is_text: bool = False):
    """A timestamp's UTC hour as 'YYYY-MM-DD?HH' text (the 11th character varies), in the dialect's SQL."""
    if is_text or conn.dialect.name != "postgresql":  # event ts text, or SQLite's stored datetimes
        return func.substr(column, 1, 13)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")


@lru_cache(maxsize=4096)
def local_date(hour_key: str, zone) -> date:
    """The firm's date of a UTC hour ('2026-03-01 17' or '2026-03-01T17'), cached: a page asks for the
    same few hundred hours once per category."""
    moment = datetime(int(hour_key[0:4]), int(hour_key[5:7]), int(hour_key[8:10]), int(hour_key[11:13]), tzinfo=UTC)
    return firmtime.local(moment, zone).date()


def per_day(rows, days: list[date], zone) -> list[int]:
    """(hour key, count) rows folded into counts per firm's day."""
    counts: Counter = Counter()
    for hour, n in rows:
        counts[local_date(hour, zone)] += n
    return [counts.get(d, 0) for d in days]


def figures(conn: Connection, now: datetime, zone, offline_after_s: float) -> Figures:
    days = firm_days(now, zone)
    start = firmtime.local_day_start(days[0], zone)
    week_start = firmtime.local_day_start(days[-WEEK], zone)
    before_start = firmtime.local_day_start(days[-2 * WEEK], zone)

    open_rows = conn.execute(
        select(alerts.c.severity, alerts.c.category, func.count())
        .where(alerts.c.status.in_(UNCLOSED))
        .group_by(alerts.c.severity, alerts.c.category)
    ).all()
    by_sev, by_cat = Counter(), Counter()
    for severity, category, n in open_rows:
        by_sev[severity] += n
        by_cat[category] += n

    hour = hour_of(conn, alerts.c.created_at)
    trend_rows = conn.execute(
        select(hour, alerts.c.category, func.count())
        .where(alerts.c.created_at >= start)
        .group_by(hour, alerts.c.category)
    ).all()
    trend: dict[str, Counter] = {}
    for key, category, n in trend_rows:
        trend.setdefault(category, Counter())[local_date(key, zone)] += n
    order = sorted(trend, key=lambda c: (-sum(trend[c].values()), c))
    this_week, last_week = set(days[-WEEK:]), set(days[-2 * WEEK : -WEEK])
    week_by_cat = [
        (
            c,
            sum(n for d, n in trend[c].items() if d in this_week),
            sum(n for d, n in trend[c].items() if d in last_week),
        )
        for c in order
    ]
    week_by_cat = sorted((w for w in week_by_cat if w[1] or w[2]), key=lambda w: (-w[1] - w[2], w[0]))

    ehour = hour_of(conn, events.c.ts, is_text=True)
    file_rows = conn.execute(
        select(ehour, func.count()).where(events.c.type == "egress.file", events.c.ts >= ts_text(start)).group_by(ehour)
    ).all()
    files = per_day(file_rows, days, zone)
    files_now = sum(files[-WEEK:])
    files_before = sum(files[-2 * WEEK : -WEEK])
    alert_week = (
        conn.execute(
            select(func.count()).where(alerts.c.created_at >= before_start, alerts.c.created_at < week_start)
        ).scalar()
        or 0
    )
    alerts_now = conn.execute(select(func.count()).where(alerts.c.created_at >= week_start)).scalar() or 0

    def top(column):
        query = (
            select(column, func.count())
            .where(alerts.c.created_at >= start, column.is_not(None), column != "")
            .group_by(column)
        )
        return [(v, n) for v, n in conn.execute(query.order_by(func.count().desc(), column).limit(TOP)).all()]

    device_rows = (
        conn.execute(
            select(
                devices.c.id,
                devices.c.identity,
                devices.c.vendor,
                devices.c.model,
                devices.c.label,
                devices.c.times_seen,
                devices.c.last_user,
            )
            .where(devices.c.last_seen >= ts_text(start))
            .order_by(devices.c.times_seen.desc(), devices.c.id)
            .limit(TOP)
        )
        .mappings()
        .all()
    )

    return Figures(
        days=days,
        open_by_severity=[(s, by_sev.get(s, 0)) for s in SEVERITIES],
        open_by_category=sorted(by_cat.items(), key=lambda kv: (-kv[1], kv[0])),
        open_total=sum(by_sev.values()),
        week=Week(alerts_now, alert_week, files_now, files_before, week_by_cat),
        trend={c: [trend[c].get(d, 0) for d in days] for c in order},
        files_per_day=files,
        top_users=top(alerts.c.user),
        top_hosts=top(alerts.c.host),
        top_devices=[dict(r) for r in device_rows],
        fleet=fleet(conn, now, offline_after_s),
    )


def fleet(conn: Connection, now: datetime, offline_after_s: float) -> Fleet:
    """Counted in SQL (server/fleetlist.py); pending and retired agents are neither up nor down."""

    def count(state: str) -> int:
        return fleetlist.count(conn, fleetlist.FleetFilter(state=state), now, offline_after_s)

    silent = fleetlist.fleet_page(
        conn, fleetlist.FleetFilter(state="offline"), now, offline_after_s, sort="last_seen", per_page=SILENT_LISTED
    )
    return Fleet(count("online"), silent.total, count("stopped"), count("stalled"), list(silent.agents))
