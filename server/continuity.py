"""An agent's continuity over a period: how long it was watching, when it was not, and what it
reported about its own integrity. Evidence reports and the assessor's report read it.

The collector keeps no row per heartbeat, so the time an agent was NOT watching is the union of
  - its silences (agent_silences: from its last heartbeat to the heartbeat that ended the silence,
    or still open), recorded by the absence rules (server/absence.py),
  - its clean stops (an agent.stopped event until its next agent.started event), which raise no
    silence, and
  - the current silence: no heartbeat for longer than `server.agent_offline_s` (also when no
    absence rule records it),
clipped to the period and to the agent's life (enrolled to retired, and never beyond now). The
online share is 1 - that union / the monitored time. Integrity: the chain incidents the collector
found (gaps, breaks, reused seqs, clock skew: server/chain.py) and the agent's own health events
(agent.gap, agent.overflow, agent.tamper...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection

from server.schema import agent_silences, agents, chain_incidents, events
from server.times import aware, iso

INTEGRITY_EVENTS = (
    "agent.tamper",
    "agent.gap",
    "agent.overflow",
    "agent.clock_skew",
    "agent.stalled",
    "agent.started",
    "agent.stopped",
)
MAX_NOTES = 200  # integrity events listed per agent and period


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime
    why: str  # silent | stopped


@dataclass(frozen=True)
class Note:
    at: str  # ISO UTC
    kind: str  # an event type or a chain incident kind (chain_gap, chain_break, seq_reused, clock_skew)
    detail: str


@dataclass(frozen=True)
class Continuity:
    agent_id: str
    hostname: str
    start: datetime  # the monitored part of the period
    end: datetime
    gaps: tuple[Gap, ...]  # merged, clipped to [start, end]
    notes: tuple[Note, ...]

    @property
    def monitored_s(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())

    @property
    def offline_s(self) -> float:
        return sum((g.end - g.start).total_seconds() for g in self.gaps)

    @property
    def online_share(self) -> float | None:
        """0..1; None when the agent was not enrolled during the period."""
        return None if self.monitored_s <= 0 else max(0.0, 1.0 - self.offline_s / self.monitored_s)


def of_agents(
    conn: Connection,
    start: datetime,
    end: datetime,
    now: datetime,
    offline_after_s: float,
    agent_ids: list[str] | None = None,
) -> list[Continuity]:
    """Every agent enrolled before `end` (or the given ones), by host name."""
    query = select(agents).where(agents.c.enrolled_at <= end).order_by(agents.c.hostname, agents.c.agent_id)
    if agent_ids is not None:
        query = query.where(agents.c.agent_id.in_(agent_ids))
    return [_one(conn, row, start, end, now, offline_after_s) for row in conn.execute(query).mappings().all()]


def _one(conn: Connection, agent, start: datetime, end: datetime, now: datetime, offline_after_s: float) -> Continuity:
    low = max(start, aware(agent["enrolled_at"]))
    high = min(end, now, aware(agent["retired_at"]) if agent["retired_at"] else end)
    if high <= low:
        return Continuity(agent["agent_id"], agent["hostname"], low, low, (), ())
    spans: list[Gap] = []
    silences = conn.execute(
        select(agent_silences.c.silent_since, agent_silences.c.ended_at).where(
            agent_silences.c.agent_id == agent["agent_id"]
        )
    ).all()
    for since, ended in silences:
        spans.append(Gap(_parse(since), aware(ended) if ended else high, "silent"))
    spans += _stops(conn, agent["agent_id"], low, high)
    last_seen = aware(agent["last_seen"]) if agent["last_seen"] else aware(agent["enrolled_at"])
    if (now - last_seen).total_seconds() > offline_after_s and not agent["stopped_at"]:
        spans.append(Gap(last_seen, high, "silent"))
    return Continuity(
        agent["agent_id"],
        agent["hostname"],
        low,
        high,
        _merge(spans, low, high),
        _notes(conn, agent["agent_id"], low, high),
    )


def _stops(conn: Connection, agent_id: str, low: datetime, high: datetime) -> list[Gap]:
    """agent.stopped until the next agent.started (the last stop: until the period ends)."""
    rows = conn.execute(
        select(events.c.type, events.c.ts)
        .where(
            events.c.agent_id == agent_id,
            events.c.type.in_(("agent.stopped", "agent.started")),
            events.c.ts <= _text(high),
        )
        .order_by(events.c.ts)
    ).all()
    gaps, stopped = [], None
    for kind, ts in rows:
        if kind == "agent.stopped" and stopped is None:
            stopped = _parse(ts)
        elif kind == "agent.started" and stopped is not None:
            gaps.append(Gap(stopped, _parse(ts), "stopped"))
            stopped = None
    if stopped is not None:
        gaps.append(Gap(stopped, high, "stopped"))
    return [g for g in gaps if g.end > low]


def _merge(spans: list[Gap], low: datetime, high: datetime) -> tuple[Gap, ...]:
    clipped = sorted(
        (
            Gap(max(g.start, low), min(g.end, high), g.why)
            for g in spans
            if g.end > low and g.start < high and g.end > g.start
        ),
        key=lambda g: g.start,
    )
    merged: list[Gap] = []
    for g in clipped:
        if merged and g.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Gap(last.start, max(last.end, g.end), last.why if last.why == g.why else "silent")
        else:
            merged.append(g)
    return tuple(merged)


def _notes(conn: Connection, agent_id: str, low: datetime, high: datetime) -> tuple[Note, ...]:
    found = [
        Note(iso(aware(r.raised_at)), r.kind, f"seq {r.seq}")
        for r in conn.execute(
            select(chain_incidents.c.kind, chain_incidents.c.seq, chain_incidents.c.raised_at)
            .where(
                chain_incidents.c.agent_id == agent_id,
                chain_incidents.c.raised_at >= low,
                chain_incidents.c.raised_at <= high,
            )
            .order_by(chain_incidents.c.raised_at)
            .limit(MAX_NOTES)
        )
    ]
    rows = conn.execute(
        select(events.c.type, events.c.ts, events.c.body)
        .where(
            events.c.agent_id == agent_id,
            events.c.type.in_(INTEGRITY_EVENTS),
            events.c.ts >= _text(low),
            events.c.ts <= _text(high),
        )
        .order_by(events.c.ts)
        .limit(MAX_NOTES)
    ).all()
    for kind, ts, body in rows:
        found.append(Note(ts, kind, _detail(body)))
    return tuple(sorted(found, key=lambda n: n.at)[:MAX_NOTES])


def _detail(body: str) -> str:
    try:
        details = json.loads(body).get("details") or {}
    except (ValueError, AttributeError):
        return ""
    if not isinstance(details, dict):
        return ""
    parts = [
        f"{k}={v}" for k, v in sorted(details.items()) if isinstance(v, (str, int, float, bool)) and k not in ("app",)
    ]
    return "; ".join(parts)[:300]


def _parse(ts: str) -> datetime:
    return aware(datetime.fromisoformat(ts.replace("Z", "+00:00")))


def _text(moment: datetime) -> str:
    """An event ts bound (ISO UTC with ms and Z: events.ts sorts as text)."""
    return iso(moment)


def hours(seconds: float) -> float:
    return round(seconds / 3600.0, 2)


PERIOD_PAD = timedelta(hours=24)  # an evidence report covers 24 hours either side of its alert
