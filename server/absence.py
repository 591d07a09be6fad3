"""Agent health: an agent that sent no heartbeat for too long raises one alert per silence, which
escalates the longer it lasts and resolves itself when the agent is back.

A background thread of the collector checks every few seconds (server.app.ABSENCE_CHECK_S), so an
alert comes at most that long after `agent_offline_s` (or the rule's own time) has passed.

- Raising: each silence is a row keyed by (rule, agent, time of the last heartbeat) inserted with
  ON CONFLICT DO NOTHING, so however many collectors check at once, one of them raises the alert.
  The agent's row is re-read (and on PostgreSQL locked FOR UPDATE, which a heartbeat's UPDATE
  waits for) in the same transaction, so a heartbeat that arrived meanwhile wins: no alert for an
  agent that is back, and no silence left that its heartbeat could not see.
- Escalation: at each multiple in `server.agent_offline_escalate` (default 3 and 10 times the
  limit) the alert's severity goes one step up, with a history entry and a new notification.
  `agent_silences.escalations` is compare-and-set, so two collectors escalate once.
- Back: the heartbeat that ends a silence marks it ended and resolves its alert with the note
  "agent back after N min" (server.store.Store.heartbeat, same transaction).
- A clean stop (agent.stopped with details.clean) is not a disappearance: the agent shows as
  `stopped` and raises an alert only if it stays down longer than `server.agent_stopped_alert_s`
  (default one day; off: never). A heartbeat within STOP_GRACE_S after the stop (the agent's last
  round while it drains its spool) does not count as a return.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from rules.explain import explain_absence
from rules.model import SEVERITY_STEPS, raise_severity
from server.alerts import AlertDraft, auto_resolve, escalate, insert_alert
from server.database import insert_ignore, writing
from server.policies import PolicyBook
from server.schema import agent_silences, agents
from server.times import Clock, aware, iso
from server.watchlists import WatchlistLookup

HOUSEKEEPING_S = 600.0  # how often quiet correlation hits are pruned
STOP_GRACE_S = 5.0
DEFAULT_ESCALATE = (3.0, 10.0)
DEFAULT_STOPPED_ALERT_S = 86400.0


@dataclass(frozen=True)
class Health:
    """How the collector judges silences (server.config: agent_offline_s and the keys below it)."""

    agent_offline_s: float = 120.0
    escalate_at: tuple[float, ...] = DEFAULT_ESCALATE  # multiples of the limit
    stopped_alert_s: float | None = DEFAULT_STOPPED_ALERT_S  # None: a clean stop never alerts


def stopped_cleanly(last_seen: datetime | None, stopped_at: datetime | None) -> bool:
    return stopped_at is not None and (last_seen is None or last_seen <= stopped_at + timedelta(seconds=STOP_GRACE_S))


def agent_state(last_seen: datetime | None, stopped_at: datetime | None, now: datetime, offline_after_s: float) -> str:
    """online | stopped (a clean stop, not back since) | offline."""
    if stopped_cleanly(last_seen, stopped_at):
        return "stopped"
    return "online" if last_seen and now - last_seen <= timedelta(seconds=offline_after_s) else "offline"


def check_absence(
    engine: Engine, book: PolicyBook, clock: Clock, agent_offline_s: float, watching_since: datetime | None = None, health: Health | None = None
) -> int:
    """Raise the alerts of silences not alerted yet and escalate long ones; returns how many were raised.

    `watching_since` is when this collector started: a silence counts from then at the earliest,
    so a collector that was down itself does not report every agent once it is back; they have
    their usual time to send a heartbeat.
    """
    health = health or Health(agent_offline_s)
    policy = book.active()
    rules = [r for r in policy.ruleset.correlation_rules if r.enabled and r.kind == "absence"]
    if not rules:
        return 0
    now = clock()
    with engine.connect() as conn:
        seen = [
            (a, h, aware(t), aware(s))
            # pending and retired agents are never reported silent; nor one that never sent a heartbeat (last_seen NULL)
            for a, h, t, s in conn.execute(
                select(agents.c.agent_id, agents.c.hostname, agents.c.last_seen, agents.c.stopped_at).where(agents.c.state == "active")
            )
        ]
        silences = conn.execute(select(agent_silences).where(agent_silences.c.ended_at.is_(None))).mappings().all()
    raised = {(s["rule_id"], s["agent_id"], s["silent_since"]) for s in silences}
    due = []
    for rule in rules:
        for agent_id, hostname, last_seen, stopped_at in seen:
            limit_s = _limit(rule, agent_offline_s, health, last_seen, stopped_at)
            if last_seen is None or limit_s is None or (rule.id, agent_id, iso(last_seen)) in raised:
                continue
            if now - max(last_seen, watching_since or last_seen) > timedelta(seconds=limit_s):
                due.append((rule, agent_id, hostname, last_seen, stopped_at, limit_s))
    count = 0
    if due:
        with writing(engine) as conn:
            lookup = WatchlistLookup(conn)
            for rule, agent_id, hostname, last_seen, stopped_at, limit_s in due:
                if _raise(conn, rule, agent_id, hostname, last_seen, stopped_at, limit_s, rule.absence_s is None, lookup, policy.worktime, now):
                    count += 1
    _escalate_all(engine, rules, silences, seen, agent_offline_s, health, watching_since, now)
    return count


def _limit(rule, agent_offline_s: float, health: Health, last_seen, stopped_at) -> float | None:
    if stopped_cleanly(last_seen, stopped_at):
        return health.stopped_alert_s
    return rule.absence_s or agent_offline_s


def _raise(conn: Connection, rule, agent_id, hostname, last_seen, stopped_at, limit_s, from_config, lookup, worktime, now) -> bool:
    current = conn.execute(select(agents.c.last_seen).where(agents.c.agent_id == agent_id).with_for_update()).first()
    if current is None or aware(current.last_seen) != last_seen:
        return False  # a heartbeat came in since this round looked: the agent is back
    claim = insert_ignore(conn, agent_silences, ["rule_id", "agent_id", "silent_since"]).values(
        rule_id=rule.id, agent_id=agent_id, silent_since=iso(last_seen), raised_at=now, escalations=0
    )
    if conn.execute(claim.returning(agent_silences.c.rule_id)).first() is None:
        return False  # another collector raised it
    severity = _base_severity(rule)
    watched = rule.watchlist and rule.watchlist.field in ("host", "agent_id")
    if watched and lookup(rule.watchlist.name, hostname if rule.watchlist.field == "host" else agent_id):
        severity = raise_severity(severity)
    stopped = iso(stopped_at) if stopped_cleanly(last_seen, stopped_at) else None
    explanation = explain_absence(rule, agent_id, hostname, last_seen, now, limit_s, from_config, worktime, stopped)
    alert_id = insert_alert(conn, AlertDraft(rule.id, rule.category, severity, rule.title, explanation, (), agent_id, hostname, None), now)
    conn.execute(
        update(agent_silences)
        .where(agent_silences.c.rule_id == rule.id, agent_silences.c.agent_id == agent_id, agent_silences.c.silent_since == iso(last_seen))
        .values(alert_id=alert_id)
    )
    logger.warning("agent silent rule={} agent_id={} hostname={!r} last_seen={} alert={}", rule.id, agent_id, hostname, iso(last_seen), alert_id)
    return True


def _base_severity(rule) -> str:
    return rule.severity if rule.severity in SEVERITY_STEPS else "high"


def _escalate_all(engine: Engine, rules, silences, seen, agent_offline_s: float, health: Health, watching_since, now: datetime) -> int:
    """Silences that reached the next multiple of their limit go one step up, once each."""
    by_rule = {r.id: r for r in rules}
    agents_now = {a: (t, s) for a, _, t, s in seen}
    steps = sorted(health.escalate_at)
    due = []
    for s in silences:
        rule, state = by_rule.get(s["rule_id"]), agents_now.get(s["agent_id"])
        if rule is None or state is None or s["alert_id"] is None or state[0] is None or iso(state[0]) != s["silent_since"]:
            continue
        limit_s = _limit(rule, agent_offline_s, health, *state)
        if limit_s is None:
            continue
        silent_s = (now - max(state[0], watching_since or state[0])).total_seconds()
        reached = sum(1 for m in steps if silent_s >= m * limit_s)
        if reached > s["escalations"]:
            due.append((s, rule, reached, silent_s))
    done = 0
    for s, rule, reached, silent_s in due:
        with writing(engine) as conn:
            swapped = conn.execute(
                update(agent_silences)
                .where(
                    agent_silences.c.rule_id == s["rule_id"], agent_silences.c.agent_id == s["agent_id"],
                    agent_silences.c.silent_since == s["silent_since"], agent_silences.c.escalations == s["escalations"],
                    agent_silences.c.ended_at.is_(None),
                )
                .values(escalations=reached)
            )
            if swapped.rowcount != 1:
                continue  # another collector escalated it, or the agent came back
            severity = _base_severity(rule)
            for _ in range(reached):
                severity = raise_severity(severity)
            multiple = steps[reached - 1]
            comment = f"still silent after {round(silent_s / 60)} min ({multiple:g} x the limit): severity {severity}"
            escalate(conn, s["alert_id"], severity, comment, now)
            logger.warning("agent silence escalated agent_id={} alert={} severity={}", s["agent_id"], s["alert_id"], severity)
            done += 1
    return done


def agent_back(conn: Connection, agent_id: str, now: datetime) -> int:
    """A heartbeat: every silence of this agent ends and its alert resolves with a note. Runs in
    the heartbeat's transaction, after its UPDATE of the agent row. Returns alerts resolved."""
    open_ = conn.execute(
        select(agent_silences).where(agent_silences.c.agent_id == agent_id, agent_silences.c.ended_at.is_(None))
    ).mappings().all()
    resolved = 0
    for s in open_:
        ended = conn.execute(
            update(agent_silences)
            .where(
                agent_silences.c.rule_id == s["rule_id"], agent_silences.c.agent_id == agent_id,
                agent_silences.c.silent_since == s["silent_since"], agent_silences.c.ended_at.is_(None),
            )
            .values(ended_at=now)
        )
        if ended.rowcount != 1 or s["alert_id"] is None:
            continue
        silent_s = max(0.0, (now - datetime.fromisoformat(s["silent_since"].replace("Z", "+00:00"))).total_seconds())
        note = f"agent back after {round(silent_s / 60)} min (silent {round(silent_s)} s since {s['silent_since']})"
        if auto_resolve(conn, s["alert_id"], note, now):
            resolved += 1
        logger.info("agent back agent_id={} alert={} silent_s={}", agent_id, s["alert_id"], round(silent_s))
    return resolved


class AbsenceWatcher:
    """Runs `check` every `interval_s` on its own thread until stopped, and `housekeeping` every
    HOUSEKEEPING_S; a failing round is logged and the next one tries again."""

    def __init__(self, check: Callable[[], int], interval_s: float, housekeeping: Callable[[], int] | None = None):
        self.check = check
        self.interval_s = interval_s
        self.housekeeping = housekeeping
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_S
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="absence", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("absence watcher did not stop within timeout_s={}", timeout_s)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                self.check()
                if self.housekeeping and time.monotonic() >= self._next_housekeeping:
                    self._next_housekeeping = time.monotonic() + HOUSEKEEPING_S
                    self.housekeeping()
            except Exception as exc:  # the next round tries again; the collector keeps serving
                logger.error("background check failed error={}: {!r}", type(exc).__name__, str(exc))
