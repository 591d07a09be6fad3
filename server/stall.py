"""A stalled pipeline: the agent's heartbeats go on, but its worker finished no step for too long.

A heartbeat carries the pipeline's progress (`pipeline.stepped_at`, the agent's wall clock when its
worker last finished a step, and `pipeline.queued`). An idle worker still finishes a step every
second or so, so an old `stepped_at` means the worker is stuck (a file it cannot get through, a
spool it cannot write): files written to egress places then go unseen while the agent looks alive.

- The age is measured on the agent's own clock (its `agent_time` minus `stepped_at`) and stored on
  the collector's (`agents.pipeline_stepped_at` = now - age), so a PC whose clock is off raises no
  false stall (nor hides one).
- Judged in the heartbeat's transaction, after its UPDATE of the agent row (which serialises the
  heartbeats of one agent, also across collectors): when the age passes `server.pipeline_stall_s`
  and no stall is open, the collector makes one `agent.stalled` event (the host, since when, how
  much is queued), which MW-AGENT-STALLED turns into an `agent-health` alert, and keeps its id in
  `agents.pipeline_stall_event`. A heartbeat whose pipeline moves again ends the stall and resolves
  its alerts with a note, as an agent back from silence does (server/absence.py).
- An agent that sends no progress (older versions) is never judged. A stalled agent whose heartbeats
  stop too is an agent-offline matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from rules.events import Event
from rules.explain import duration
from server.alerts import auto_resolve
from server.schema import agents, alert_events
from server.times import iso, parse_ts

DEFAULT_PIPELINE_STALL_S = 300.0


@dataclass(frozen=True)
class Progress:
    stepped_at: datetime  # when the worker last finished a step, on the collector's clock
    queued: int  # changes and files waiting for it


def progress_from(pipeline: dict | None, agent_time: str | None, now: datetime) -> Progress | None:
    """The heartbeat's `pipeline` ({stepped_at: UTC seconds, queued}) on the collector's clock."""
    if not pipeline:
        return None
    try:
        sent_at_s = parse_ts(agent_time).timestamp() if agent_time else now.timestamp()
    except (ValueError, OverflowError):
        sent_at_s = now.timestamp()
    age_s = max(0.0, sent_at_s - float(pipeline["stepped_at"]))
    try:
        stepped_at = now - timedelta(seconds=age_s)
    except OverflowError:  # stepped_at 0 from a clock set to 9999: as old as a datetime goes
        stepped_at = datetime.min.replace(tzinfo=now.tzinfo)
    return Progress(stepped_at, int(pipeline.get("queued", 0)))


def progress_columns(progress: Progress | None) -> dict:
    """The agent row's columns for the heartbeat's UPDATE (NULL when the agent sends none)."""
    return {
        "pipeline_stepped_at": progress.stepped_at if progress else None,
        "pipeline_queued": progress.queued if progress else None,
    }


def judge_stall(
    conn: Connection, agent_id: str, host: str, progress: Progress | None, stall_s: float, now: datetime
) -> list[Event]:
    """Runs in the heartbeat's transaction after its UPDATE; returns the agent.stalled event to
    store and judge (at most one per stall)."""
    if progress is None:
        return []
    open_stall = conn.execute(select(agents.c.pipeline_stall_event).where(agents.c.agent_id == agent_id)).scalar()
    stalled_s = (now - progress.stepped_at).total_seconds()
    if stalled_s > stall_s:
        return [] if open_stall else [_report(conn, agent_id, host, progress, stalled_s, stall_s, now)]
    if open_stall:
        _moving_again(conn, agent_id, open_stall, progress, now)
    return []


def _report(
    conn: Connection, agent_id: str, host: str, progress: Progress, stalled_s: float, stall_s: float, now: datetime
) -> Event:
    since = iso(progress.stepped_at)
    text = (
        f"the agent's pipeline on host {host} has finished no step since {since} ({duration(round(stalled_s))}, more than"
        f" server.pipeline_stall_s {stall_s:g} s) while its heartbeats go on; {progress.queued} changes queued, unseen until it moves"
    )
    details = {
        "stepped_at": since,
        "stalled_s": round(stalled_s, 3),
        "queued": progress.queued,
        "threshold_s": stall_s,
        "detected_by": "collector",
    }
    event = Event(type="agent.stalled", ts=iso(now), agent_id=agent_id, host=host, error=text, details=details)
    conn.execute(update(agents).where(agents.c.agent_id == agent_id).values(pipeline_stall_event=event.id))
    logger.warning(
        "agent pipeline stalled agent_id={} host={!r} since={} queued={}", agent_id, host, since, progress.queued
    )
    return event


def _moving_again(conn: Connection, agent_id: str, stall_event: str, progress: Progress, now: datetime) -> None:
    conn.execute(update(agents).where(agents.c.agent_id == agent_id).values(pipeline_stall_event=None))
    note = f"pipeline moving again: it finished a step at {iso(progress.stepped_at)}, {progress.queued} queued"
    alert_ids = (
        conn.execute(select(alert_events.c.alert_id).where(alert_events.c.event_id == stall_event)).scalars().all()
    )
    for alert_id in alert_ids:
        auto_resolve(conn, alert_id, note, now)
    logger.info("agent pipeline moving again agent_id={} alerts={}", agent_id, list(alert_ids))
