"""The fleet as a filtered, sorted, paged list: what the console's agents page and GET /api/v1/agents read.

A collector with thousands of agents cannot load them all into Python for every page view, so the
filters, the state (computed from last_seen, stopped_at and the stall marker exactly as
server/absence.py judges it), the order and the page are one SQL query with LIMIT/OFFSET and a
COUNT beside it. What it watches and its index size come from its last heartbeat (the row's status
JSON). The user last seen on its events is read for the page's rows only, through the events
(agent_id, seq) index; the index size is not read from agent.started events, since finding an
agent's last start can mean reading back through all its events since then.

"Lags" compares an agent's reported version with a target: its group's `agent_version` when the
group sets one (server/groups.py), else the newest version any agent that is not retired reports.
Versions are compared in Python (numbers as numbers) over the few distinct versions reported; the
filter is then plain SQL: per group, `version IN (the versions older than its target)`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from server.absence import STOP_GRACE_S, agent_state
from server.foundin import indexed_by_item as found_counts
from server.groups import DEFAULT_GROUP_ID, OSES
from server.schema import agent_groups, agents, events
from server.times import aware, iso

STATES = ("online", "offline", "stopped", "stalled", "pending", "retired")
SORTS = {
    "host": agents.c.hostname,
    "last_seen": agents.c.last_seen,
    "version": agents.c.version,
    "policy_version": agents.c.policy_version,
    "enrolled": agents.c.enrolled_at,
    "state": agents.c.state,
}
MAX_PER_PAGE = 1000
VERSION = re.compile(r"[vV]?(\d{1,9}(?:\.\d{1,9}){0,7})")
GROUP = func.coalesce(agents.c.group_id, DEFAULT_GROUP_ID)  # NULL is the default group
OS_CHOICES = (*OSES, "unknown")  # unknown: an agent that has not reported its OS (older versions)


@dataclass(frozen=True)
class FleetFilter:
    host: str | None = None  # part of the host name, case-insensitive
    user: str | None = None  # an account named on the agent's events (exact)
    version: str | None = None  # agent version (exact)
    policy_version: str | None = None  # policy version (exact)
    state: str | None = None  # one of STATES
    seen_after: datetime | None = None  # last heartbeat at or after
    seen_before: datetime | None = None  # last heartbeat before (or never)
    lags: bool = False  # only agents whose version is older than the target
    group_id: int | None = None
    os: str | None = None  # one of OS_CHOICES
    agent_ids: tuple[str, ...] = ()  # exactly these (bulk actions)


@dataclass(frozen=True)
class FleetAgent:
    agent_id: str
    hostname: str
    state: str  # online | offline | stopped | pending | retired
    stalled: bool  # its pipeline stalled and has not moved since (server/stall.py)
    last_seen: str | None
    version: str | None
    policy_version: str | None
    spool_depth: int | None
    enrolled_at: str | None
    retired_at: str | None
    watched: tuple[str, ...]  # what its last heartbeat said it watches
    last_user: str | None  # the account on its newest event that names one
    indexed_files: int | None  # the files in its fingerprint index, as its last heartbeat said (None: older agents)
    # (register item id, files its index holds under the item's folders), by id, as its last heartbeat said
    indexed_by_item: tuple[tuple[int, int], ...]
    lags: bool  # its version is older than the target (False when either is unknown)
    target_version: str | None  # its group's, else the newest reported
    group_id: int
    group_name: str | None
    os: str | None  # linux | windows | macos as it reports it; None: not reported
    online: bool
    stopped_at: str | None
    pipeline_stepped_at: str | None  # the last heartbeat's, on the collector's clock
    pipeline_queued: int | None
    enrolled_from: str | None
    enroll_key_id: int | None  # None: the shared secret
    approved_at: str | None
    claimed_host: str | None  # the last other host name it sent (agent-tamper)


@dataclass(frozen=True)
class FleetPage:
    agents: tuple[FleetAgent, ...]
    total: int  # how many match in all
    page: int
    per_page: int
    target_version: str | None  # the newest version reported: what "lags" compares with where a group sets none
    group_targets: dict[int, str] = field(default_factory=dict)  # group id -> the version its agents should run
    versions: tuple[str, ...] = field(default=())  # every agent version reported (filter choices)
    policy_versions: tuple[str, ...] = field(default=())

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


MAX_TEXT = 200


def parse_filter(host: str | None = None, user: str | None = None, version: str | None = None, policy_version: str | None = None,
                 state: str | None = None, seen_after: str | None = None, seen_before: str | None = None, lags: str | None = None,
                 group: str | None = None, os: str | None = None) -> FleetFilter:  # fmt: skip
    """The filters as the page's form and the API's query send them; ValueError says which one is wrong."""
    for name, value in (("host", host), ("user", user), ("version", version), ("policy_version", policy_version)):
        if value and len(value) > MAX_TEXT:
            raise ValueError(f"{name} is at most {MAX_TEXT} characters")
    if state and state not in STATES:
        raise ValueError(f"state is one of {', '.join(STATES)}")
    if lags not in (None, "", "0", "1", "true", "false"):
        raise ValueError("lags is 1 or 0")
    if group and not (group.isascii() and group.isdigit() and 0 < int(group) < 2**31):
        raise ValueError("group is a group's number")
    if os and os not in OS_CHOICES:
        raise ValueError(f"os is one of {', '.join(OS_CHOICES)}")
    return FleetFilter(
        host=host or None, user=user or None, version=version or None, policy_version=policy_version or None, state=state or None,
        seen_after=_moment("seen_after", seen_after), seen_before=_moment("seen_before", seen_before), lags=lags in ("1", "true"),
        group_id=int(group) if group else None, os=os or None,
    )  # fmt: skip


def _moment(name: str, value: str | None) -> datetime | None:
    """A date (its midnight) or a date and time, UTC unless it says otherwise."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be a date like 2026-11-20 or 2026-11-20T08:00") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def version_key(version: str | None) -> tuple[int, ...] | None:
    """'0.10.2' -> (0, 10, 2), 'v1.2rc1' -> (1, 2): numbers compare as numbers. None for what is not
    a release number ('dev', 'e2e', a commit): such an agent neither sets the newest nor lags."""
    found = VERSION.match(version or "")
    return tuple(int(n) for n in found.group(1).split("."))[:8] if found else None


def older(version: str | None, target: str | None) -> bool:
    """The version is a release number below the target's."""
    mine, theirs = version_key(version), version_key(target)
    return mine is not None and theirs is not None and mine < theirs


def group_targets(conn: Connection) -> dict[int, str]:
    """Each group's target agent version (issue 18 item 5), for the groups that set one."""
    return {gid: v for gid, v in conn.execute(select(agent_groups.c.id, agent_groups.c.agent_version)) if v}


def group_names(conn: Connection) -> dict[int, str]:
    return dict(conn.execute(select(agent_groups.c.id, agent_groups.c.name)).all())


def fleet_page(conn: Connection, f: FleetFilter, now: datetime, offline_after_s: float, sort: str = "host",
               descending: bool = False, page: int = 1, per_page: int = 50) -> FleetPage:  # fmt: skip
    """One page of agents matching `f`, and how many match in all."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    versions = tuple(sorted(conn.execute(select(agents.c.version).where(agents.c.version.isnot(None)).distinct()).scalars(),
                            key=lambda v: (version_key(v) is None, version_key(v) or (), v)))  # fmt: skip
    live = conn.execute(
        select(agents.c.version).where(agents.c.version.isnot(None), agents.c.state != "retired").distinct()
    ).scalars()
    newest = max((v for v in live if version_key(v) is not None), key=version_key, default=None)
    targets = group_targets(conn)
    where = _where(conn, f, now, offline_after_s, _lagging(versions, newest, targets))
    total = conn.execute(select(func.count()).select_from(agents).where(*where)).scalar() or 0
    key = SORTS.get(sort, agents.c.hostname)
    order = [key.desc() if descending else key.asc(), agents.c.agent_id.asc()]
    if sort == "last_seen":  # never seen sorts as the oldest
        order.insert(0, agents.c.last_seen.is_(None).asc() if descending else agents.c.last_seen.is_(None).desc())
    page = max(1, page)
    rows = (
        conn.execute(select(agents).where(*where).order_by(*order).limit(per_page).offset((page - 1) * per_page))
        .mappings()
        .all()
    )
    users = _last_users(conn, [r["agent_id"] for r in rows], now)
    names = group_names(conn)
    listed = tuple(_agent(r, now, offline_after_s, users.get(r["agent_id"]), newest, targets, names) for r in rows)
    policy_versions = tuple(
        sorted(
            conn.execute(
                select(agents.c.policy_version).where(agents.c.policy_version.isnot(None)).distinct()
            ).scalars()
        )
    )
    return FleetPage(listed, total, page, per_page, newest, targets, versions, policy_versions)


def count(conn: Connection, f: FleetFilter, now: datetime, offline_after_s: float) -> int:
    """How many agents match `f` (the dashboard's online and offline figures), without loading them."""
    where = _where(conn, f, now, offline_after_s, _lagging((), None, {}))
    return conn.execute(select(func.count()).select_from(agents).where(*where)).scalar() or 0


def _lagging(versions: tuple[str, ...], newest: str | None, targets: dict[int, str]):
    """SQL: the agent's version is one of those older than its group's target (else the newest)."""

    def below(target: str | None) -> list[str]:
        return [v for v in versions if older(v, target)]

    clauses = [and_(GROUP == gid, agents.c.version.in_(below(t))) for gid, t in sorted(targets.items())]
    clauses.append(and_(GROUP.notin_(sorted(targets)), agents.c.version.in_(below(newest))))
    return or_(*clauses)


def _where(conn: Connection, f: FleetFilter, now: datetime, offline_after_s: float, lagging) -> list:
    clauses = []
    if f.host:
        clauses.append(func.lower(agents.c.hostname).contains(f.host.lower(), autoescape=True))
    if f.user:
        clauses.append(agents.c.agent_id.in_(select(events.c.agent_id).where(events.c.user == f.user).distinct()))
    if f.version:
        clauses.append(agents.c.version == f.version)
    if f.policy_version:
        clauses.append(agents.c.policy_version == f.policy_version)
    if f.seen_after is not None:
        clauses.append(agents.c.last_seen >= f.seen_after)
    if f.seen_before is not None:
        clauses.append(or_(agents.c.last_seen < f.seen_before, agents.c.last_seen.is_(None)))
    if f.lags:
        clauses += [agents.c.state != "retired", lagging]
    if f.group_id is not None:
        clauses.append(GROUP == f.group_id)
    if f.os:
        clauses.append(agents.c.os.is_(None) if f.os == "unknown" else agents.c.os == f.os)
    if f.agent_ids:
        clauses.append(agents.c.agent_id.in_(f.agent_ids))
    if f.state:
        clauses.append(_state_clause(conn, f.state, now, offline_after_s))
    return clauses


def _stopped(conn: Connection):
    """An agent.stopped came after its last heartbeat (absence.stopped_cleanly, in SQL)."""
    if conn.dialect.name == "sqlite":  # datetimes are text there: compare as Julian days
        back = func.julianday(agents.c.last_seen) > func.julianday(agents.c.stopped_at) + STOP_GRACE_S / 86400.0
    else:
        back = agents.c.last_seen > agents.c.stopped_at + timedelta(seconds=STOP_GRACE_S)
    return and_(agents.c.stopped_at.isnot(None), or_(agents.c.last_seen.is_(None), ~back))


def _state_clause(conn: Connection, state: str, now: datetime, offline_after_s: float):
    if state in ("pending", "retired"):
        return agents.c.state == state
    active = agents.c.state == "active"
    if state == "stalled":
        return and_(active, agents.c.pipeline_stall_event.isnot(None))
    stopped = _stopped(conn)
    if state == "stopped":
        return and_(active, stopped)
    recent = agents.c.last_seen >= now - timedelta(seconds=offline_after_s)
    if state == "online":
        return and_(active, ~stopped, recent)
    if state == "offline":
        return and_(active, ~stopped, or_(agents.c.last_seen.is_(None), ~recent))
    raise ValueError(f"state is one of {', '.join(STATES)}, not {state!r}")


def _last_users(conn: Connection, agent_ids: list[str], now: datetime) -> dict[str, str | None]:
    """The user on each listed agent's newest event that names one: an indexed look-up per agent
    (events (agent_id, seq), read backwards; nearly every event names its user). The last
    RECENT_DAYS first: on PostgreSQL the events are monthly partitions and a look-up over all
    of them costs one index probe per month (10 million events: the page's p95 500 ms); an agent
    silent that long is looked up over everything."""
    found: dict[str, str | None] = {}
    for agent_id in agent_ids:
        newest = select(events.c.user).where(events.c.agent_id == agent_id, events.c.user.isnot(None)).order_by(events.c.seq.desc()).limit(1)
        user = conn.execute(newest.where(events.c.received_at >= now - timedelta(days=RECENT_DAYS))).scalar()
        found[agent_id] = user if user is not None else conn.execute(newest).scalar()
    return found


RECENT_DAYS = 31


def _status(text: str | None) -> dict:
    """The last heartbeat's extra fields (api.heartbeat stores them as JSON)."""
    try:
        status = json.loads(text or "{}")
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def _indexed_files(status: dict) -> int | None:
    value = status.get("indexed_files")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _watched(status: dict) -> tuple[str, ...]:
    paths = status.get("watched") or []
    return tuple(p for p in paths if isinstance(p, str)) if isinstance(paths, list) else ()


def _agent(r, now: datetime, offline_after_s: float, last_user: str | None, newest: str | None,
           targets: dict[int, str], names: dict[int, str]) -> FleetAgent:  # fmt: skip
    last_seen = aware(r["last_seen"])
    state = (
        agent_state(last_seen, aware(r["stopped_at"]), now, offline_after_s) if r["state"] == "active" else r["state"]
    )
    group_id, status = r["group_id"] or DEFAULT_GROUP_ID, _status(r["status"])
    target = targets.get(group_id, newest)
    lags = r["state"] != "retired" and older(r["version"], target)
    return FleetAgent(
        agent_id=r["agent_id"], hostname=r["hostname"], state=state, stalled=r["state"] == "active" and r["pipeline_stall_event"] is not None,
        last_seen=iso(last_seen), version=r["version"], policy_version=r["policy_version"], spool_depth=r["spool_depth"],
        enrolled_at=iso(aware(r["enrolled_at"])), retired_at=iso(aware(r["retired_at"])), watched=_watched(status),
        last_user=last_user, indexed_files=_indexed_files(status), indexed_by_item=tuple(sorted(found_counts(r["status"]).items())), lags=lags, target_version=target, group_id=group_id, group_name=names.get(group_id),
        os=r["os"], online=state == "online", stopped_at=iso(aware(r["stopped_at"])), pipeline_stepped_at=iso(aware(r["pipeline_stepped_at"])),
        pipeline_queued=r["pipeline_queued"], enrolled_from=r["enrolled_from"], enroll_key_id=r["enroll_key_id"],
        approved_at=iso(aware(r["approved_at"])), claimed_host=r["claimed_host"],
    )  # fmt: skip
