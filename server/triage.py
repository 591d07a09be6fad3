"""Working the alert queue: status changes in bulk and assignment to an analyst.

Both run in one write transaction each and say how many alerts they changed (the list says "3
alerts changed"), so an alert already in the asked-for state is not counted and gets no history
row. Acknowledging is for alerts still open: a resolved or false-positive alert is not reopened
by a bulk "acknowledge" (reopening is its own, deliberate step on the alert's page; the store
refuses it anyway: server/alerts.py TRANSITIONS).

Assignment is audited, written to the alert's history (action `assigned`) and notified to the
assignee by e-mail when they have an address and an e-mail channel exists: one outbox row per
alert on the pseudo-channel `assign:<channel id>` (server/notify/outbox.py folds an assignee's
rows into one message), so a bulk assignment of 50 alerts is one e-mail, not 50.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loguru import logger
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from server import audit as audit_log
from server.alerts import CLOSED_STATUSES, TransitionConflict, TransitionRefused, change_status
from server.database import writing
from server.notify.assignment import MAX_EMAIL_CHARS, valid_email
from server.notify.channels import scheme_of
from server.notify.channelstore import enabled_channels
from server.notify.outbox import ASSIGN_PREFIX
from server.notify.tables import notifications
from server.schema import alert_history, alerts, users

ASSIGNABLE_ROLES = ("analyst", "admin")
EMAIL_SCHEMES = ("mailto", "mailtos")
MAX_BULK = 500  # alerts one bulk action changes at most (a page's selection is far fewer)


@dataclass(frozen=True)
class Outcome:
    changed: int  # alerts whose status or assignee changed
    notified: int = 0  # outbox rows written for the assignee


class UnknownAssignee(ValueError):
    """Not a console user who may work alerts (analyst or admin)."""


def analysts(conn: Connection) -> list[str]:
    """Console users alerts can be assigned to, by name."""
    query = select(users.c.name).where(users.c.role.in_(ASSIGNABLE_ROLES)).order_by(users.c.name)
    return list(conn.execute(query).scalars())


def set_status(engine: Engine, ids: list[int], status: str, comment: str, actor: str, now: datetime) -> Outcome:
    """Change the status of several alerts; those already there (or closed, for acknowledge) are left alone."""
    changed = 0
    with writing(engine) as conn:
        for alert_id in sorted(set(ids))[:MAX_BULK]:
            current = conn.execute(select(alerts.c.status).where(alerts.c.id == alert_id)).scalar()
            if current is None or current == status or (status == "acknowledged" and current in CLOSED_STATUSES):
                continue
            try:
                action = change_status(conn, alert_id, status, comment, actor, now)
            except (TransitionRefused, TransitionConflict):  # not a change, or one its status refuses
                continue
            audit_log.record(
                conn,
                now,
                actor,
                f"alert.{action}",
                f"alert:{alert_id}",
                {"status": status, "comment": comment[:500], "bulk": True},
            )
            changed += 1
    logger.info("alerts changed in bulk count={} asked={} status={} by={!r}", changed, len(ids), status, actor)
    return Outcome(changed)


def assign(engine: Engine, ids: list[int], assignee: str | None, actor: str, now: datetime) -> Outcome:
    """Give alerts to an analyst (None or '': nobody); UnknownAssignee for anyone else."""
    assignee = assignee or None
    changed, notified = 0, 0
    with writing(engine) as conn:
        email = None
        if assignee is not None:
            row = conn.execute(select(users.c.role, users.c.email).where(users.c.name == assignee)).first()
            if row is None or row.role not in ASSIGNABLE_ROLES:
                raise UnknownAssignee(f"'{assignee[:100]}' is not a console user with the analyst or admin role")
            email = row.email
        channel_id = _email_channel(conn) if email else None
        for alert_id in sorted(set(ids))[:MAX_BULK]:
            row = conn.execute(select(alerts.c.status, alerts.c.assignee).where(alerts.c.id == alert_id)).first()
            if row is None or row.assignee == assignee:
                continue
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(assignee=assignee, updated_at=now))
            note = assignee or ""  # the new assignee's name; empty: nobody (the page words it)
            conn.execute(
                insert(alert_history).values(
                    alert_id=alert_id,
                    at=now,
                    actor=actor[:255],
                    action="assigned",
                    from_status=row.status,
                    status=row.status,
                    comment=note,
                )
            )
            audit_log.record(
                conn, now, actor, "alert.assigned", f"alert:{alert_id}", {"assignee": assignee, "before": row.assignee}
            )
            changed += 1
            if channel_id is not None:
                notified += _enqueue(conn, alert_id, channel_id, now)
    logger.info("alerts assigned count={} assignee={!r} notified={} by={!r}", changed, assignee, notified, actor)
    return Outcome(changed, notified)


def _email_channel(conn: Connection) -> str | None:
    """The first enabled e-mail channel: its SMTP server carries the assignee's message."""
    for channel in enabled_channels(conn):
        if scheme_of(channel.url) in EMAIL_SCHEMES:
            return channel.id
    return None


def _enqueue(conn: Connection, alert_id: int, channel_id: str, now: datetime) -> int:
    """One pending row per alert and e-mail channel; an earlier assignment's row goes back to pending."""
    row_channel = ASSIGN_PREFIX + channel_id
    again = dict(
        status="pending",
        attempts=0,
        next_attempt_at=now,
        slot_at=None,
        digest_id=None,
        last_error=None,
        sent_at=None,
        created_at=now,
    )
    done = conn.execute(
        update(notifications)
        .where(notifications.c.alert_id == alert_id, notifications.c.channel_id == row_channel)
        .values(**again)
    ).rowcount
    if not done:
        conn.execute(insert(notifications).values(alert_id=alert_id, channel_id=row_channel, kind="assign", **again))
    return 1


def set_email(engine: Engine, user_id: int, email: str, actor: str, now: datetime) -> bool:
    """A console user's e-mail address for assignments ('' clears it); ValueError when not one address."""
    if email and not valid_email(email):
        raise ValueError(f"give one e-mail address like li.na@example.com (at most {MAX_EMAIL_CHARS} characters)")
    with writing(engine) as conn:
        name = conn.execute(select(users.c.name).where(users.c.id == user_id)).scalar()
        if name is None:
            return False
        conn.execute(update(users).where(users.c.id == user_id).values(email=email or None))
        audit_log.record(conn, now, actor, "user.email", f"user:{name}", {"email": email or None})
    logger.info("console user e-mail set user={!r} cleared={} by={!r}", name, not email, actor)
    return True
