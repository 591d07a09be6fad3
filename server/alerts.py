"""Alerts: drafts made from rule verdicts, and the statements that raise, fold and change them.

Event rules with `alert: true` raise alerts with severity by the rule (by level, one step up for a
watchlisted user) and the explanation built from the verdict (rules/explain.py). Repeats of a rule
for the same group (the rule's `group_by`, else DEFAULT_GROUPS by category) within the rule's
dedup window (default DEFAULT_DEDUP_S from the alert's creation) update the open alert instead:
count, last_seen, severity (the highest seen) and evidence (the first MAX_EVIDENCE events linked,
the rest counted). After such an alert is resolved or marked false_positive, repeats within the
rule's `suppress` window raise nothing (the events are stored; the alert's `suppressed` counts
them). Correlation rules (server/correlation.py) raise one alert per rule and group per burst.
Matches of the egress categories on files written to egress places are not alerts of their own:
they are files of an incident (server/incidents.py), one per user, destination and session.

Everything that happens to an alert is an append-only `alert_history` row: created, repeated,
status, comment, escalated, auto_resolved, reopened; the actor is token:<name>, console:<user> or
system. Status changes follow TRANSITIONS: a resolved or false-positive alert is reopened (-> open)
before anyone acknowledges it again.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection, Row

from rules.engine import EventEngine, Verdict
from rules.events import Event
from rules.explain import explain_verdict
from rules.model import SEVERITY_STEPS
from rules.worktime import WorkTime
from server.database import insert_rows, lock, update_rows
from server.notify.channelstore import enabled_channels
from server.notify.outbox import enqueue as enqueue_notifications
from server.notify.tables import notifications
from server.schema import alert_events, alert_history, alerts
from server.times import aware, parse_ts

ALERT_STATUSES = ("open", "acknowledged", "resolved", "false_positive")
OPEN_STATUSES = ("open", "acknowledged")  # an alert someone may still be working on
CLOSED_STATUSES = ("resolved", "false_positive")
SYSTEM = "system"
DEFAULT_DEDUP_S = 3600.0
MAX_EVIDENCE = 1000  # events linked to one alert; later repeats only count
_EGRESS_GROUP = ("agent_id", "user", "sha256", "level", "path")  # the same content to the same place again
DEFAULT_GROUPS: dict[str, tuple[str, ...]] = {
    "classified-egress": _EGRESS_GROUP,
    "marked-egress": _EGRESS_GROUP,
    "personal-data-egress": _EGRESS_GROUP,
    "uninspectable-egress": _EGRESS_GROUP,
    "classified-read": ("agent_id", "user", "path", "app"),  # the same file read by the same app again
    "state-secret-marking": ("agent_id", "path"),
    "off-hours": ("agent_id", "user"),  # one alert per user and window, not one per file touched
    "unknown-device": ("agent_id", "media.identity"),
    "agent-tamper": ("agent_id", "type"),
    "agent-health": ("agent_id", "type"),
}
FALLBACK_GROUP = ("agent_id", "user", "path")


class TransitionRefused(ValueError):
    """A status change that means nothing (e.g. the same status without a comment)."""


class TransitionConflict(ValueError):
    """A status change the alert's state does not allow (a resolved alert acknowledged without
    being reopened): the caller answers 409 with this message and nothing is written."""

    def __init__(self, alert_id: int, current: str, status: str) -> None:
        self.alert_id, self.current, self.status = alert_id, current, status
        super().__init__(f"the alert is {current}: reopen it (status open) before setting it to {status}")


# the triage state machine (docs/architecture.md, "Alert lifecycle"): where a status may go from
# each status besides itself (the same status with a comment is a comment). A closed alert goes
# back into the queue only by reopening it (-> open, notified again); its outcome may be corrected
# (resolved <-> false_positive) without reopening, which notifies nobody.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "resolved", "false_positive"}),
    "acknowledged": frozenset({"open", "resolved", "false_positive"}),
    "resolved": frozenset({"open", "false_positive"}),
    "false_positive": frozenset({"open", "resolved"}),
}


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
    group_key: str | None = None  # event rules: repeats with the same key fold into one alert
    dedup_s: float = 0.0
    suppress_s: float = 0.0
    ts: str | None = None  # the matched event's time, ISO 8601 UTC
    last_ts: str | None = None  # several matches folded before insertion: the latest one's time
    explain: Callable[[], str] | None = field(default=None, compare=False, repr=False)  # writes `explanation` when it is empty
    event: Event | None = field(default=None, compare=False, repr=False)  # event rules: the event matched (incidents read it)

    def explained(self) -> str:
        """The explanation, written only for a draft that becomes an alert: most matches of a flood
        fold into an open one, and explaining each of them cost more than the rest of raising it."""
        return self.explanation or (self.explain() if self.explain else "")


def event_alert(verdict: Verdict, event: Event, worktime: WorkTime, engine: EventEngine) -> AlertDraft:
    """The alert an event rule raises for one event it matched."""
    rule = verdict.rule
    fields = rule.group_by or DEFAULT_GROUPS.get(rule.category, FALLBACK_GROUP)
    group = [(name, engine.value(name, event)) for name in fields]
    canonical = json.dumps([rule.id, group], ensure_ascii=False, default=str)
    return AlertDraft(
        rule_id=rule.id,
        category=rule.category,
        severity=verdict.severity or "info",
        title=rule.title,
        explanation="",
        explain=lambda: explain_verdict(verdict, event, worktime, engine.value),
        event_ids=(event.id,),
        agent_id=event.agent_id,
        host=event.host,
        user=event.user,
        group_key=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        dedup_s=DEFAULT_DEDUP_S if rule.dedup_s is None else rule.dedup_s,
        suppress_s=rule.suppress_s,
        ts=event.ts,
        event=event,
    )


def insert_alert(conn: Connection, draft: AlertDraft, now: datetime) -> int:
    return insert_alerts(conn, [draft], now)[0]


def insert_alerts(conn: Connection, drafts: list[AlertDraft], now: datetime) -> list[int]:
    """Raise alerts in a few statements, however many (a bulk copy raises thousands at once)."""
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
            explanation=d.explained(),
            group_key=d.group_key,
            last_seen=now,
            first_ts=d.ts,
            last_ts=d.last_ts or d.ts,
            suppressed=0,
        )
        for d in drafts
    ]
    ids = conn.execute(insert(alerts).returning(alerts.c.id, sort_by_parameter_order=True), rows).scalars().all()
    links = [
        {"alert_id": i, "event_id": e}
        for i, d in zip(ids, drafts, strict=True)
        for e in list(dict.fromkeys(d.event_ids))[:MAX_EVIDENCE]
    ]
    insert_rows(conn, alert_events, links)
    insert_rows(conn, alert_history, [_history(i, now, SYSTEM, "created", None, "open", "") for i in ids])
    enqueue_notifications(conn, list(ids), drafts, now)  # the outbox row commits with its alert, or neither does
    return list(ids)


def raise_event_alerts(conn: Connection, drafts: list[AlertDraft], now: datetime, incidents=None) -> int:
    """Event rules' alerts with dedup and suppression; returns how many new alerts were raised.

    Egress matches on files become incidents (server/incidents.py; `incidents`: its
    IncidentSettings, None for the defaults). Drafts of one group are folded before touching the
    database, so a batch of 10,000 matches of one rule costs a few statements. On PostgreSQL each
    group is decided under an advisory lock, so two collectors judging repeats of one group at
    once still update one alert.
    """
    from server.incidents import IncidentSettings, is_incident, raise_incidents  # it builds on this module

    grouped = [d for d in drafts if is_incident(d)]
    opened = raise_incidents(conn, grouped, now, incidents or IncidentSettings()) if grouped else 0
    groups: dict[tuple[str, str], list[AlertDraft]] = defaultdict(list)
    plain: list[AlertDraft] = []
    for d in drafts:
        if grouped and is_incident(d):
            continue
        if d.group_key and (d.dedup_s > 0 or d.suppress_s > 0):
            groups[(d.rule_id, d.group_key)].append(d)
        else:
            plain.append(d)
    if groups:
        lock(conn, [f"alert-group:{r}:{k}" for r, k in groups])
    new: list[AlertDraft] = list(plain)
    latest = _latest_alerts(conn, list(groups))
    folds: list[tuple[int, list[AlertDraft]]] = []  # (open alert, the repeats it takes)
    suppressed: list[tuple[int, int]] = []  # (closed alert, repeats it suppresses)
    for (rule_id, key), members in groups.items():
        new += _raise_group(latest.get((rule_id, key)), members, now, folds, suppressed)
    if suppressed and conn.dialect.name == "postgresql":
        update_rows(conn, alerts, [{"id": alert_id, "suppressed": n} for alert_id, n in suppressed], ("id",), added=("suppressed",))
    elif suppressed:
        conn.execute(
            update(alerts).where(alerts.c.id == bindparam("b_id")).values(suppressed=alerts.c.suppressed + bindparam("b_more")),
            [{"b_id": alert_id, "b_more": n} for alert_id, n in suppressed],
        )
    _fold(conn, folds, now)
    insert_alerts(conn, new, now)
    return len(new) + opened


def _latest_alerts(conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Row]:
    """Each group's newest alert, read in chunks rather than one query per group; only the newest
    row of each group is read (max(id) per group_key on index alerts_group), however many alerts
    the group raised before."""
    found: dict[tuple[str, str], Row] = {}
    by_key = sorted({k for _, k in keys})
    wanted = set(keys)
    for i in range(0, len(by_key), 500):
        newest = select(func.max(alerts.c.id)).where(alerts.c.group_key.in_(by_key[i : i + 500])).group_by(alerts.c.group_key)
        rows = conn.execute(
            select(alerts.c.id, alerts.c.rule_id, alerts.c.group_key, alerts.c.status, alerts.c.first_ts, alerts.c.closed_at)
            .where(alerts.c.id.in_(newest))
        )
        for r in rows:
            if (r.rule_id, r.group_key) in wanted:  # the group key hashes the rule id: one rule per key
                found[(r.rule_id, r.group_key)] = r
    return found


def _raise_group(
    latest: Row | None, members: list[AlertDraft], now: datetime, folds: list[tuple[int, list[AlertDraft]]], suppressed: list[tuple[int, int]]
) -> list[AlertDraft]:
    """One group's matches of this batch, oldest first: each folds into the open alert whose first
    match is within the window of its event time, or starts a new one; returns the new ones. Folds
    and suppressions are added to `folds` and `suppressed`, written for every group at once."""
    first = members[0]
    window = timedelta(seconds=first.dedup_s)
    closed_at = aware(latest.closed_at) if latest is not None and latest.closed_at is not None else None
    if first.suppress_s > 0 and latest is not None and latest.status in CLOSED_STATUSES and closed_at and now - closed_at <= timedelta(seconds=first.suppress_s):
        suppressed.append((latest.id, len(members)))
        return []
    if first.dedup_s <= 0:
        return members
    # (alert id, or None for one this batch raises; its first event time; the matches it takes)
    runs: list[tuple[int | None, datetime, list[AlertDraft]]] = []
    if latest is not None and latest.status in OPEN_STATUSES and latest.first_ts:
        runs.append((latest.id, parse_ts(latest.first_ts), []))
    for d in sorted(members, key=lambda d: d.ts or ""):
        at = parse_ts(d.ts) if d.ts else now
        if runs and abs(at - runs[-1][1]) <= window:
            runs[-1][2].append(d)
        else:
            runs.append((None, at, [d]))
    new = []
    for alert_id, _, taken in runs:
        if alert_id is not None:
            if taken:
                folds.append((alert_id, taken))
            continue
        events = tuple(dict.fromkeys(e for d in taken for e in d.event_ids))
        severity = _highest(d.severity for d in taken)
        new.append(replace(taken[0], severity=severity, event_ids=events, last_ts=taken[-1].ts))
    return new


def _fold(conn: Connection, folds: list[tuple[int, list[AlertDraft]]], now: datetime) -> None:
    """Repeats within the window: count, last seen, severity and evidence follow; one history row
    each. One statement of each kind for all the alerts a batch folds into."""
    if not folds:
        return
    ids = sorted({alert_id for alert_id, _ in folds})
    current, linked = {}, {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        current.update((r.id, r) for r in conn.execute(select(alerts.c.id, alerts.c.severity, alerts.c.status, alerts.c.last_ts).where(alerts.c.id.in_(chunk))))
        linked.update(
            conn.execute(select(alert_events.c.alert_id, func.count()).where(alert_events.c.alert_id.in_(chunk)).group_by(alert_events.c.alert_id)).all()
        )
    links, changes, history = [], [], []
    for alert_id, members in folds:
        events = list(dict.fromkeys(e for d in members for e in d.event_ids))
        row = current[alert_id]
        room = max(0, MAX_EVIDENCE - linked.get(alert_id, 0))
        links += [{"alert_id": alert_id, "event_id": e} for e in events[:room]]
        changes.append({
            "b_id": alert_id,
            "b_more": len(events),
            "b_now": now,
            "b_last_ts": max([t for t in (row.last_ts, *(d.ts for d in members)) if t], default=None),
            "b_severity": _highest([row.severity, *(d.severity for d in members)]),
        })
        comment = f"{len(events)} more match" + ("es" if len(events) != 1 else "")
        history.append(_history(alert_id, now, SYSTEM, "repeated", row.status, row.status, comment))
    insert_rows(conn, alert_events, links, ignore=["alert_id", "event_id"])
    if conn.dialect.name == "postgresql":
        update_rows(conn, alerts, [
            dict(id=c["b_id"], count=c["b_more"], last_seen=now, updated_at=now, last_ts=c["b_last_ts"], severity=c["b_severity"])
            for c in changes
        ], ("id",), added=("count",))  # fmt: skip
    else:
        conn.execute(
            update(alerts)
            .where(alerts.c.id == bindparam("b_id"))
            .values(
                count=alerts.c.count + bindparam("b_more"),
                last_seen=bindparam("b_now"),
                updated_at=bindparam("b_now"),
                last_ts=bindparam("b_last_ts"),
                severity=bindparam("b_severity"),
            ),
            changes,
        )
    insert_rows(conn, alert_history, history)


def _highest(severities) -> str:
    known = [s for s in severities if s in SEVERITY_STEPS]
    return max(known, key=SEVERITY_STEPS.index) if known else "info"


def change_status(conn: Connection, alert_id: int, status: str, comment: str, actor: str, now: datetime) -> str | None:
    """Someone changes an alert's status or comments on it; returns the history action written
    (None: no such alert). The same status with a comment is a comment; a closed alert set to open
    is reopened, and notified again; a change TRANSITIONS does not hold raises TransitionConflict.
    The status is read with a row lock (PostgreSQL), so two officers changing one alert at once
    are judged one after the other, each on the status the other left."""
    if status not in ALERT_STATUSES:
        raise TransitionRefused(f"unknown status '{status}'")
    current = conn.execute(select(alerts.c.status).where(alerts.c.id == alert_id).with_for_update()).scalar()
    if current is None:
        return None
    if current == status:
        if not comment.strip():
            raise TransitionRefused(f"the alert is {status} already; give a comment to comment on it")
        action = "comment"
    elif status not in TRANSITIONS[current]:
        raise TransitionConflict(alert_id, current, status)
    elif current in CLOSED_STATUSES and status in OPEN_STATUSES:
        action = "reopened"
    else:
        action = "status"
    values: dict = {"status": status, "updated_at": now}
    if status in CLOSED_STATUSES and current not in CLOSED_STATUSES:
        values["closed_at"] = now
    conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))
    conn.execute(insert(alert_history).values(**_history(alert_id, now, actor, action, current, status, comment)))
    if action == "reopened":
        renotify(conn, alert_id, now)
    return action


def escalate(conn: Connection, alert_id: int, severity: str, comment: str, now: datetime) -> None:
    """The alert's severity goes up (an agent silent for longer); notified again. An alert someone
    closed already (e.g. false_positive: the PC is in repair) stays as it is."""
    current = alert_status(conn, alert_id)
    if current not in OPEN_STATUSES:
        return
    conn.execute(update(alerts).where(alerts.c.id == alert_id).values(severity=severity, updated_at=now))
    conn.execute(insert(alert_history).values(**_history(alert_id, now, SYSTEM, "escalated", current, current, comment)))
    renotify(conn, alert_id, now)


def auto_resolve(conn: Connection, alert_id: int, comment: str, now: datetime) -> bool:
    """The cause went away by itself (an agent is back): resolved by the system with a note.
    An alert someone closed already keeps their status; the note is still written."""
    current = alert_status(conn, alert_id)
    if current is None:
        return False
    to = "resolved" if current in OPEN_STATUSES else current
    values: dict = {"status": to, "updated_at": now}
    if current in OPEN_STATUSES:
        values["closed_at"] = now
    conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))
    conn.execute(insert(alert_history).values(**_history(alert_id, now, SYSTEM, "auto_resolved", current, to, comment)))
    return current in OPEN_STATUSES


def renotify(conn: Connection, alert_id: int, now: datetime) -> int:
    """Notify an alert again (escalated, reopened). The outbox keeps one row per alert and channel,
    so rows already done (sent, digested, skipped, failed, dropped) go back to pending; a row still
    pending, maybe leased by a sender right now, is left alone: it goes out with the alert as it is
    then. Channels added since the alert was raised get a row of their own."""
    done = conn.execute(
        update(notifications)
        .where(notifications.c.alert_id == alert_id, notifications.c.status != "pending")
        .values(status="pending", attempts=0, next_attempt_at=now, slot_at=None, digest_id=None, last_error=None, sent_at=None, created_at=now)
    ).rowcount
    row = conn.execute(select(alerts.c.category).where(alerts.c.id == alert_id)).first()
    have = set(conn.execute(select(notifications.c.channel_id).where(notifications.c.alert_id == alert_id)).scalars())
    if row is not None:
        missing = [c for c in enabled_channels(conn) if c.id not in have and (not c.categories or row.category in c.categories)]
        if missing:
            conn.execute(
                insert(notifications),
                [dict(alert_id=alert_id, channel_id=c.id, kind="alert", status="pending", attempts=0, next_attempt_at=now, created_at=now) for c in missing],
            )
            done += len(missing)
    return done


def refresh_alerts(conn: Connection, refreshed: list[tuple[int, AlertDraft, int]], now: datetime) -> None:
    """Bursts went on: each alert's count, severity, explanation and evidence follow its burst.
    For (alert id, draft, count) of several bursts: a count of their evidence and a read of which
    of the drafts' events it holds already (not all of it: a growing burst's alert holds up to
    MAX_EVIDENCE links, read again on every batch that grew it), one insert of the new links, one
    update (executemany) of the alerts."""
    if not refreshed:
        return
    linked, known = _evidence(conn, refreshed)
    links = []
    for alert_id, draft, _ in refreshed:
        have = known[alert_id]
        new = [e for e in dict.fromkeys(draft.event_ids) if e not in have][: max(0, MAX_EVIDENCE - linked[alert_id])]
        have.update(new)
        linked[alert_id] += len(new)
        links += [{"alert_id": alert_id, "event_id": e} for e in new]
    insert_rows(conn, alert_events, links)
    if conn.dialect.name == "postgresql":
        update_rows(conn, alerts, [
            dict(id=alert_id, severity=d.severity, explanation=d.explanation, count=count, updated_at=now, last_seen=now,
                 agent_id=d.agent_id, host=d.host, user=d.user)
            for alert_id, d, count in refreshed
        ], ("id",))  # fmt: skip
        return
    conn.execute(
        update(alerts)
        .where(alerts.c.id == bindparam("b_id"))
        .values(
            severity=bindparam("severity"),
            explanation=bindparam("explanation"),
            count=bindparam("count"),
            updated_at=bindparam("updated_at"),
            last_seen=bindparam("last_seen"),
            agent_id=bindparam("agent_id"),
            host=bindparam("host"),
            user=bindparam("user"),
        ),
        [
            dict(b_id=alert_id, severity=d.severity, explanation=d.explanation, count=count, updated_at=now, last_seen=now,
                 agent_id=d.agent_id, host=d.host, user=d.user)
            for alert_id, d, count in refreshed
        ],
    )


def _evidence(conn: Connection, refreshed: list[tuple[int, AlertDraft, int]]) -> tuple[dict[int, int], dict[int, set[str]]]:
    """(alert id -> its number of linked events, alert id -> which of the drafts' events it links)."""
    linked: dict[int, int] = defaultdict(int)
    known: dict[int, set[str]] = defaultdict(set)
    ids = sorted({alert_id for alert_id, _, _ in refreshed})
    for i in range(0, len(ids), 500):
        query = select(alert_events.c.alert_id, func.count()).where(alert_events.c.alert_id.in_(ids[i : i + 500]))
        linked.update(conn.execute(query.group_by(alert_events.c.alert_id)).all())
    holding = [alert_id for alert_id in ids if linked[alert_id]]  # an alert opened in this batch links nothing yet
    wanted = sorted({e for alert_id, draft, _ in refreshed if linked[alert_id] for e in draft.event_ids})
    for i in range(0, len(holding), 500):
        for j in range(0, len(wanted), 500):
            query = select(alert_events.c.alert_id, alert_events.c.event_id).where(
                alert_events.c.alert_id.in_(holding[i : i + 500]), alert_events.c.event_id.in_(wanted[j : j + 500])
            )
            for alert_id, event_id in conn.execute(query):
                known[alert_id].add(event_id)
    return linked, known


def alert_status(conn: Connection, alert_id: int) -> str | None:
    return conn.execute(select(alerts.c.status).where(alerts.c.id == alert_id)).scalar()


def _history(alert_id: int, at: datetime, actor: str, action: str, from_status: str | None, to_status: str, comment: str) -> dict:
    return dict(alert_id=alert_id, at=at, actor=actor[:255], action=action, from_status=from_status, status=to_status, comment=comment)
