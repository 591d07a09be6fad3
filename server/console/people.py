"""What the drill-down pages read: one user, one host, one removable device, one event.

A user's or a host's alerts, egress per day and the media they mounted; a device's users, hosts,
egress and alerts; one event with every field and the alerts it is evidence of. Only reads, in
SQLAlchemy Core, bounded (MAX_SCANNED rows at most are parsed in Python).

Events carry no device column: a device's events are found by the identity part that is unique to
it (its serial, else its volume id) in the stored body, then each candidate's media identity is
computed exactly (rules.events.Media.identity) so a serial that appears in a path does not count.

A user's or a host's event figures (events, first and last seen, the hosts or users beside them, the
media mounted) cover the last WINDOW_DAYS days, as the page says; the events list, filtered by the
user or the host's agent, holds the whole history. Counted over every month they read a person's
whole history: with 10 million events on PostgreSQL the user page took 500 ms, the host page 1.9 s
(p95). The window is on the event's time and, for PostgreSQL's monthly partitions, on received_at
(a day's slack for an agent's clock or spool ahead of the collector), so only the last months'
partitions are read.
Its mounts say which agents used it (the register is built from mounts); only those agents' events
are searched, through the (agent_id, seq) index (100,000 events: 250 -> 55 ms).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from rules.events import VOLUME_MARK, Media
from server import firmtime
from server.console import dashboard
from server.console.queries import ts_text
from server.schema import agents, alert_events, alerts, devices, events
from server.times import aware, iso

DAYS = 30
WINDOW_DAYS = 90  # a user's or host's event figures cover this many days; the events list has the rest
RECEIVED_SLACK = timedelta(days=1)  # an event stamped inside the window may reach the collector before it starts
MAX_ALERTS = 200
MAX_SCANNED = 5000  # event bodies parsed for one page (media of a user or host, a device's events)
MEDIA_TYPES = ("media.mounted", "egress.file", "egress.blocked")
_MEDIA_FIELDS = (
    "mountpoint",
    "device",
    "fstype",
    "label",
    "serial",
    "vendor",
    "model",
    "vendor_id",
    "product_id",
    "bus",
    "removable",
    "volume_id",
    "size_bytes",
)


@dataclass(frozen=True)
class Person:
    """A user or a host as the console has seen them."""

    kind: str  # user | host
    name: str
    alerts: list[dict]
    alert_total: int
    open_alerts: int
    egress_per_day: list[tuple[str, int]]
    devices: list[dict]  # register rows with how often this user or host mounted them
    others: list[tuple[str, int]]  # hosts a user worked on, users seen on a host, with event counts
    events_total: int  # these four: within the last window_days days
    first_ts: str | None
    last_ts: str | None
    window_days: int = WINDOW_DAYS
    agent_ids: tuple[str, ...] = ()  # a host's agents: its whole history is the events list of each


@dataclass(frozen=True)
class DevicePage:
    device: dict
    users: list[tuple[str, int]]
    hosts: list[tuple[str, int]]
    egress_per_day: list[tuple[str, int]]
    alerts: list[dict]
    events: list[dict]  # the newest of its events, newest first
    scanned_all: bool  # False: more candidate events than MAX_SCANNED; the figures cover the newest


def identity_of(body: dict) -> str | None:
    media = body.get("media")
    if not isinstance(media, dict):
        return None
    try:
        return Media(**{k: media[k] for k in _MEDIA_FIELDS if k in media}).identity
    except TypeError:
        return None


def _alert_rows(conn: Connection, where) -> tuple[list[dict], int, int]:
    cols = (
        alerts.c.id,
        alerts.c.severity,
        alerts.c.status,
        alerts.c.category,
        alerts.c.title,
        alerts.c.created_at,
        alerts.c.host,
        alerts.c.user,
        alerts.c.count,
    )
    rows = conn.execute(select(*cols).where(where).order_by(alerts.c.id.desc()).limit(MAX_ALERTS)).mappings().all()
    total = conn.execute(select(func.count()).select_from(alerts).where(where)).scalar() or 0
    open_ = conn.execute(select(func.count()).select_from(alerts).where(where, alerts.c.status == "open")).scalar() or 0
    return [{**r, "created_at": iso(aware(r["created_at"]))} for r in rows], total, open_


def _per_day(conn: Connection, where, now: datetime, zone) -> list[tuple[str, int]]:
    """Files sent out per firm's day (dashboard.py folds UTC hours into the zone's dates)."""
    days = dashboard.firm_days(now, zone, DAYS)
    hour = dashboard.hour_of(conn, events.c.ts, is_text=True)
    start = ts_text(firmtime.local_day_start(days[0], zone))
    # grouped by type too, not filtered on it: an equality on type makes SQLite walk the (type, seq)
    # index over every egress event instead of the user's (user, ts) or the host's agents' rows
    rows = conn.execute(
        select(hour, events.c.type, func.count()).where(where, events.c.ts >= start).group_by(hour, events.c.type)
    ).all()
    files = [(h, n) for h, kind, n in rows if kind == "egress.file"]
    return list(zip([d.isoformat() for d in days], dashboard.per_day(files, days, zone), strict=True))


def _devices_by_identity(conn: Connection, counts: Counter) -> list[dict]:
    if not counts:
        return []
    keys = {hashlib.sha256(identity.encode("utf-8")).hexdigest(): identity for identity in counts}
    cols = (
        devices.c.id,
        devices.c.key_hash,
        devices.c.identity,
        devices.c.vendor,
        devices.c.model,
        devices.c.label,
        devices.c.last_seen,
    )
    rows = conn.execute(select(*cols).where(devices.c.key_hash.in_(list(keys)))).mappings().all()
    found = [{**r, "uses": counts[keys[r["key_hash"]]]} for r in rows]
    return sorted(found, key=lambda d: (-d["uses"], d["id"]))


def person(conn: Connection, kind: str, name: str, now: datetime, zone) -> Person:
    """A user's (kind 'user') or a host's (kind 'host') page."""
    alert_col, other_col = (alerts.c.user, events.c.host) if kind == "user" else (alerts.c.host, events.c.user)
    mine = events.c.user == name  # indexed (user, ts)
    if kind == "host":  # events.host is its agent's enrolled name: found through the agents' (agent_id, seq) index
        agent_ids = select(agents.c.agent_id).where(agents.c.hostname == name)
        mine = and_(events.c.agent_id.in_(agent_ids), events.c.host == name)
    agent_list: tuple[str, ...] = ()
    if kind == "host":
        agent_list = tuple(conn.execute(agent_ids.order_by(agents.c.agent_id)).scalars())
    rows, total, open_ = _alert_rows(conn, alert_col == name)
    mine = and_(mine, *window(now, partitioned=conn.dialect.name == "postgresql"))
    # on SQLite, type || '' keeps the planner off events (type, ts): the fleet's mounts over the window,
    # where the user's (user, ts) or the host's (agent_id, seq) rows are fewer
    mount_type = events.c.type + "" if conn.dialect.name == "sqlite" else events.c.type
    mounts = conn.execute(
        select(events.c.body)
        .where(mine, mount_type == "media.mounted")
        .order_by(events.c.seq.desc())
        .limit(MAX_SCANNED)
    ).scalars()
    counts = Counter(i for i in (identity_of(json.loads(b)) for b in mounts) if i)
    others = conn.execute(
        select(other_col, func.count())
        .where(mine, other_col.is_not(None), other_col != "")
        .group_by(other_col)
        .order_by(func.count().desc(), other_col)
        .limit(20)
    ).all()
    span = conn.execute(select(func.count(), func.min(events.c.ts), func.max(events.c.ts)).where(mine)).first()
    return Person(
        kind,
        name,
        rows,
        total,
        open_,
        _per_day(conn, mine, now, zone),
        _devices_by_identity(conn, counts),
        [(v, n) for v, n in others],
        span[0] or 0,
        span[1],
        span[2],
        WINDOW_DAYS,
        agent_list,
    )


def window(now: datetime, partitioned: bool) -> list:
    """The clauses "within the last WINDOW_DAYS days": on ts (what the page means) and, on
    PostgreSQL, on received_at (what its partitions are cut by; on SQLite one more test a row)."""
    start = now - timedelta(days=WINDOW_DAYS)
    since = [events.c.ts >= ts_text(start)]
    return since + [events.c.received_at >= start - RECEIVED_SLACK] if partitioned else since


def _needle(serial: str, identity: str) -> str:
    """The part of a device's identity its events' bodies must hold: the serial, else the volume id."""
    if serial:
        return serial
    rest = identity.split(":", 2)[-1]
    return rest[len(VOLUME_MARK) :].split(":", 1)[0] if rest.startswith(VOLUME_MARK) else ""


def _holding(conn: Connection, needle: str) -> list:
    """The clause "the body holds the needle" (none for an empty needle), case aside: identities are
    lower case, bodies as the OS reported; SQLite's LIKE already ignores ASCII case, while icontains
    there would lower() every body first."""
    if not needle:
        return []
    text = json.dumps(needle, ensure_ascii=False)[1:-1]
    like = events.c.body.contains if conn.dialect.name == "sqlite" else events.c.body.icontains
    return [like(text, autoescape=True)]


def device(conn: Connection, device_id: int, now: datetime, zone) -> DevicePage | None:
    row = conn.execute(select(devices).where(devices.c.id == device_id)).mappings().first()
    if row is None:
        return None
    identity = row["identity"]
    needle = _needle(row["serial"], identity)
    holds = _holding(conn, needle)
    # the agents that mounted it (the register is built from mounts, so every device has one): their
    # events are read through the (agent_id, seq) index, not every egress event of the fleet
    mounts = select(events.c.agent_id, events.c.body).where(
        events.c.type == "media.mounted", events.c.ts >= row["first_seen"], *holds
    )
    seen_on = {row["last_agent_id"]} | {
        a for a, body in conn.execute(mounts.limit(MAX_SCANNED)).all() if identity_of(json.loads(body)) == identity
    }
    query = select(
        events.c.seq,
        events.c.id,
        events.c.type,
        events.c.ts,
        events.c.host,
        events.c.user,
        events.c.path,
        events.c.size,
        events.c.level,
        events.c.body,
    )
    query = query.where(
        events.c.agent_id.in_(sorted(seen_on)), events.c.type.in_(MEDIA_TYPES), events.c.ts >= row["first_seen"], *holds
    )
    scanned = conn.execute(query.order_by(events.c.seq.desc()).limit(MAX_SCANNED + 1)).mappings().all()
    mine = [dict(r) for r in scanned[:MAX_SCANNED] if identity_of(json.loads(r["body"])) == identity]
    users = Counter(e["user"] for e in mine if e["user"])
    hosts = Counter(e["host"] for e in mine if e["host"])
    days = dashboard.firm_days(now, zone, DAYS)
    per_day = dashboard.per_day([(e["ts"][:13], 1) for e in mine if e["type"] == "egress.file"], days, zone)
    ids = [e["id"] for e in mine]
    alert_list: list[dict] = []
    if ids:
        linked = select(alert_events.c.alert_id).where(alert_events.c.event_id.in_(ids[:MAX_SCANNED])).distinct()
        alert_list, _, _ = _alert_rows(conn, alerts.c.id.in_(linked))
    for e in mine:
        del e["body"]
    return DevicePage(
        dict(row),
        users.most_common(20),
        hosts.most_common(20),
        list(zip([d.isoformat() for d in days], per_day, strict=True)),
        alert_list,
        mine[:100],
        len(scanned) <= MAX_SCANNED,
    )


@dataclass(frozen=True)
class EventPage:
    row: dict  # the indexed columns
    body: dict  # the whole event as the agent sent it
    pretty: str  # the body as indented JSON text (escaped by the template)
    alerts: list[dict]
    device_id: int | None  # the register row of its medium, when it has one


def event(conn: Connection, event_id: str) -> EventPage | None:
    row = conn.execute(select(events).where(events.c.id == event_id)).mappings().first()
    if row is None:
        return None
    body = json.loads(row["body"])
    linked = select(alert_events.c.alert_id).where(alert_events.c.event_id == event_id)
    alert_list, _, _ = _alert_rows(conn, alerts.c.id.in_(linked))
    identity = identity_of(body)
    device_id = None
    if identity:
        key = hashlib.sha256(identity.encode("utf-8")).hexdigest()
        device_id = conn.execute(select(devices.c.id).where(devices.c.key_hash == key)).scalar()
    fields = {k: v for k, v in dict(row).items() if k != "body"}
    fields["received_at"] = iso(aware(fields["received_at"]))
    return EventPage(fields, body, visible_json(body), alert_list, device_id)


def visible_json(body: dict) -> str:
    """Indented JSON, readable (Chinese stays Chinese) but with invisible format characters (RTL
    overrides, zero-width joiners: Unicode category Cf) written as \\uXXXX, so the raw view shows them."""
    text = json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True)
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cf" else c for c in text)
