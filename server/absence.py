"""Absence rules: an agent that sent no heartbeat for too long raises one alert per silence.

A background thread of the collector checks every few seconds. Each silence is a row keyed by
(rule, agent, time of the last heartbeat) inserted with ON CONFLICT DO NOTHING, so however many
collectors check at once, one of them raises the alert; a heartbeat ends the silence, and the
next silence is a new one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from rules.explain import explain_absence
from rules.model import raise_severity
from server.alerts import AlertDraft, insert_alert
from server.database import insert_ignore, writing
from server.policies import PolicyBook
from server.schema import agent_silences, agents
from server.times import Clock, aware, iso
from server.watchlists import WatchlistLookup

HOUSEKEEPING_S = 600.0  # how often quiet correlation hits are pruned


def check_absence(engine: Engine, book: PolicyBook, clock: Clock, agent_offline_s: float, watching_since: datetime | None = None) -> int:
    """Raise the alerts of silences not alerted yet; returns how many were raised.

    `watching_since` is when this collector started: a silence counts from then at the earliest,
    so a collector that was down itself does not report every agent once it is back; they have
    their usual time to send a heartbeat.
    """
    policy = book.active()
    rules = [r for r in policy.ruleset.correlation_rules if r.enabled and r.kind == "absence"]
    if not rules:
        return 0
    now = clock()
    with engine.connect() as conn:
        seen = [(a, h, aware(t)) for a, h, t in conn.execute(select(agents.c.agent_id, agents.c.hostname, agents.c.last_seen))]
        raised = {(r, a, s) for r, a, s in conn.execute(select(agent_silences.c.rule_id, agent_silences.c.agent_id, agent_silences.c.silent_since))}
    due = [
        (rule, agent_id, hostname, last_seen)
        for rule in rules
        for agent_id, hostname, last_seen in seen
        if last_seen is not None
        and now - max(last_seen, watching_since or last_seen) > timedelta(seconds=rule.absence_s or agent_offline_s)
        and (rule.id, agent_id, iso(last_seen)) not in raised
    ]
    if not due:
        return 0
    count = 0
    with writing(engine) as conn:
        lookup = WatchlistLookup(conn)
        for rule, agent_id, hostname, last_seen in due:
            claim = insert_ignore(conn, agent_silences, ["rule_id", "agent_id", "silent_since"]).values(
                rule_id=rule.id, agent_id=agent_id, silent_since=iso(last_seen), raised_at=now
            )
            if conn.execute(claim.returning(agent_silences.c.rule_id)).first() is None:
                continue  # another collector raised it
            limit_s = rule.absence_s or agent_offline_s
            severity = rule.severity if rule.severity in ("critical", "high", "medium", "low", "info") else "high"
            watched = rule.watchlist and rule.watchlist.field in ("host", "agent_id")
            if watched and lookup(rule.watchlist.name, hostname if rule.watchlist.field == "host" else agent_id):
                severity = raise_severity(severity)
            explanation = explain_absence(rule, agent_id, hostname, last_seen, now, limit_s, rule.absence_s is None, policy.worktime)
            alert_id = insert_alert(conn, AlertDraft(rule.id, rule.category, severity, rule.title, explanation, (), agent_id, hostname, None), now)
            conn.execute(
                update(agent_silences)
                .where(agent_silences.c.rule_id == rule.id, agent_silences.c.agent_id == agent_id, agent_silences.c.silent_since == iso(last_seen))
                .values(alert_id=alert_id)
            )
            logger.warning("agent silent rule={} agent_id={} hostname={!r} last_seen={}", rule.id, agent_id, hostname, iso(last_seen))
            count += 1
    return count


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
