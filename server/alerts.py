"""Alerts: drafts made from rule verdicts, and the few statements that raise and update them.

Event rules with `alert: true` raise one alert per matching event, severity by the rule (by level,
one step up for a watchlisted user), with the explanation built from the verdict (rules/explain.py).
Correlation rules (server/correlation.py) raise one alert per rule and group per burst and update it
while the burst goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from rules.engine import EventEngine, Verdict
from rules.events import Event
from rules.explain import explain_verdict
from rules.worktime import WorkTime
from server.notify.outbox import enqueue as enqueue_notifications
from server.schema import alert_events, alerts

OPEN_STATUSES = ("open", "acknowledged")  # an alert someone may still be working on


@dataclass(frozen=True)
class AlertDraft:
    rule_id: str
    category: str
    severity: str
    title: str
    explanation: str
    event_ids: tuple[str, ...]
    agent_id: str | None
    host: str | None
    user: str | None


def event_alert(verdict: Verdict, event: Event, worktime: WorkTime, engine: EventEngine) -> AlertDraft:
    """The alert an event rule raises for one event it matched."""
    rule = verdict.rule
    return AlertDraft(
        rule_id=rule.id,
        category=rule.category,
        severity=verdict.severity or "info",
        title=rule.title,
        explanation=explain_verdict(verdict, event, worktime, engine.value),
        event_ids=(event.id,),
        agent_id=event.agent_id,
        host=event.host,
        user=event.user,
    )


def insert_alert(conn: Connection, draft: AlertDraft, now: datetime) -> int:
    return insert_alerts(conn, [draft], now)[0]


def insert_alerts(conn: Connection, drafts: list[AlertDraft], now: datetime) -> list[int]:
    """Raise alerts in two statements, however many (a bulk copy raises thousands at once)."""
    if not drafts:
        return []
    rows = [
        dict(
            rule_id=d.rule_id,
            category=d.category,
            severity=d.severity,
            title=d.title,
            status="open",
            created_at=now,
            updated_at=now,
            agent_id=d.agent_id,
            host=d.host,
            user=d.user,
            count=len(d.event_ids),
            explanation=d.explanation,
        )
        for d in drafts
    ]
    ids = conn.execute(insert(alerts).returning(alerts.c.id, sort_by_parameter_order=True), rows).scalars().all()
    links = [{"alert_id": i, "event_id": e} for i, d in zip(ids, drafts, strict=True) for e in dict.fromkeys(d.event_ids)]
    if links:
        conn.execute(insert(alert_events), links)
    enqueue_notifications(conn, list(ids), drafts, now)  # the outbox row commits with its alert, or neither does
    return list(ids)


def link_events(conn: Connection, alert_id: int, event_ids: tuple[str, ...] | list[str]) -> int:
    """Add evidence to an alert; events already linked are skipped. Returns how many were added."""
    known = set(conn.execute(select(alert_events.c.event_id).where(alert_events.c.alert_id == alert_id)).scalars())
    new = [e for e in dict.fromkeys(event_ids) if e not in known]
    if new:
        conn.execute(insert(alert_events), [{"alert_id": alert_id, "event_id": e} for e in new])
    return len(new)


def refresh_alert(conn: Connection, alert_id: int, draft: AlertDraft, count: int, now: datetime) -> None:
    """A burst went on: the alert's count, severity, explanation and evidence follow it."""
    link_events(conn, alert_id, draft.event_ids)
    conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id)
        .values(
            severity=draft.severity,
            explanation=draft.explanation,
            count=count,
            updated_at=now,
            agent_id=draft.agent_id,
            host=draft.host,
            user=draft.user,
        )
    )


def alert_status(conn: Connection, alert_id: int) -> str | None:
    return conn.execute(select(alerts.c.status).where(alerts.c.id == alert_id)).scalar()
