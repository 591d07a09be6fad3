"""The outbox: notification rows written with their alert, claimed by a sender, retried with backoff.

`enqueue()` runs inside the transaction that creates the alerts, so a notification exists exactly
when its alert does: a resent ingest batch creates no alert and therefore no notification, and a
crash between the alert and its notification is impossible. UNIQUE (alert, channel) holds it to one.

`claim()` hands due rows to one sender. It runs in a `writing()` transaction (BEGIN IMMEDIATE on
SQLite; on PostgreSQL an advisory lock per channel, then SELECT ... FOR UPDATE SKIP LOCKED), and
leases each row by pushing `next_attempt_at` LEASE_S ahead: another collector does not see it
until the lease runs out, so a sender that dies mid-send has its rows retried by another one.

Routing: a row is written for each channel whose categories take the alert's category; at claim
time alerts of a severity the channel does not take become `skipped` (a correlation alert gets its
severity after insertion, within the same transaction).

Rate limit: each message (one alert, or one digest) takes a slot (`slot_at`); a channel has
`max_per_hour` slots per sliding hour. When more alerts are due than slots are free, all but one
free slot go to the most severe alerts and the rest are folded into one digest row sent in the
last slot; with no slot free, rows wait until one frees. So a flood sends at most `max_per_hour`
messages an hour per channel, and every alert is in one of them.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from rules.levels import SEVERITIES
from server.database import lock, writing
from server.notify.channels import Channel
from server.notify.channelstore import channel_from_row, enabled_channels
from server.notify.tables import notifications, notify_channels
from server.schema import alerts
from server.times import aware

WINDOW_S = 3600.0  # the rate limit's sliding window
LEASE_S = 300.0  # a claimed row is invisible to other senders this long (sending takes at most ~60 s)
BACKOFF_MIN_S = 30.0
BACKOFF_MAX_S = 3600.0
GIVE_UP_S = 24 * 3600.0  # a notification still not delivered this long after its alert: failed
CLAIM_BATCH = 50  # rows leased at once; each send is renewed first, so a slow round cannot outlive its lease
ASSIGN_PREFIX = "assign:"  # assignment rows (server/triage.py) name an e-mail channel after this


@dataclass(frozen=True)
class Job:
    id: int
    channel: Channel
    kind: str  # alert | digest | assign
    alert_id: int | None
    attempts: int
    created_at: datetime
    lease_until: datetime  # the lease this sender holds; renew() fails once another sender holds it


def enqueue(conn: Connection, alert_ids: list[int], drafts: list, now: datetime) -> int:
    """One pending row per (new alert, channel taking its category); called by server.alerts.insert_alerts.

    Severity is judged when the row is claimed: a correlation alert is inserted as a placeholder and
    given its severity later in the same transaction.
    """
    channels = enabled_channels(conn)
    rows = [
        dict(
            alert_id=alert_id,
            channel_id=c.id,
            kind="alert",
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for alert_id, draft in zip(alert_ids, drafts, strict=True)
        for c in channels
        if not c.categories or draft.category in c.categories
    ]
    if rows:
        conn.execute(insert(notifications), rows)
    return len(rows)


def backoff_s(attempts: int, rng: random.Random | None = None) -> float:
    """30 s, 60 s, 120 s, ... up to an hour, each with +-20% jitter so retries do not come in waves."""
    base = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** max(0, attempts - 1))
    return base * (rng or random).uniform(0.8, 1.2)


def claim(engine: Engine, now: datetime, batch: int = CLAIM_BATCH) -> list[Job]:
    """Lease the due notifications to this sender, deciding rate limits and digests on the way."""
    due = (notifications.c.status == "pending") & (notifications.c.next_attempt_at <= now)
    with writing(engine) as conn:
        channel_ids = sorted(set(conn.execute(select(notifications.c.channel_id).where(due).distinct()).scalars()))
        if not channel_ids:
            return []
        lock(conn, [f"notify-channel:{c}" for c in channel_ids])  # rate-limit decisions, one collector at a time
        channels = {
            r.id: channel_from_row(r)
            for r in conn.execute(
                select(notify_channels).where(
                    notify_channels.c.id.in_({c.removeprefix(ASSIGN_PREFIX) for c in channel_ids}), notifications_enabled()
                )
            )
        }
        query = select(notifications, alerts.c.severity).outerjoin(alerts, alerts.c.id == notifications.c.alert_id)
        query = query.where(due).order_by(notifications.c.id).limit(batch)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(of=notifications, skip_locked=True)
        rows = list(conn.execute(query))
        jobs: list[Job] = []
        for channel_id in channel_ids:
            mine = [r for r in rows if r.channel_id == channel_id]
            channel = channels.get(channel_id.removeprefix(ASSIGN_PREFIX))
            if channel is None:  # removed or disabled since: nothing to send
                _set(conn, [r.id for r in mine], status="dropped", last_error="channel removed or disabled")
                continue
            if channel_id.startswith(ASSIGN_PREFIX):
                jobs += _claim_assignments(conn, channel, mine, now)
            else:
                jobs += _claim_channel(conn, channel, mine, now)
    return jobs


def notifications_enabled():
    return notify_channels.c.enabled.is_(True)


def _claim_channel(conn: Connection, channel: Channel, rows: list, now: datetime) -> list[Job]:
    lease = now + timedelta(seconds=LEASE_S)
    retries = [r for r in rows if r.slot_at is not None]  # already hold a slot (a digest always does)
    _skip_unrouted(conn, channel)
    fresh = [r for r in rows if r.slot_at is None and r.severity in channel.severities]
    jobs = [Job(r.id, channel, r.kind, r.alert_id, r.attempts, r.created_at, lease) for r in retries]
    _set(conn, [r.id for r in retries], next_attempt_at=lease)
    if not fresh:
        return jobs
    window_start = now - timedelta(seconds=WINDOW_S)
    in_window = (notifications.c.channel_id == channel.id) & (notifications.c.slot_at > window_start)
    used, oldest = conn.execute(select(func.count(), func.min(notifications.c.slot_at)).where(in_window)).one()
    free = channel.max_per_hour - used
    if free <= 0:  # wait until the oldest slot of the window frees
        _set(conn, [r.id for r in fresh], next_attempt_at=aware(oldest) + timedelta(seconds=WINDOW_S + 1))
        return jobs
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    fresh.sort(key=lambda r: (rank.get(r.severity, len(SEVERITIES)), r.id))
    folded = _pending_fresh_count(conn, channel.id) > free  # more wait than fit: the last free slot is a digest
    singles = fresh[: free - 1] if folded else fresh
    _set(conn, [r.id for r in singles], next_attempt_at=lease, slot_at=now)
    jobs += [Job(r.id, channel, "alert", r.alert_id, r.attempts, r.created_at, lease) for r in singles]
    if folded:
        digest_id = conn.execute(
            insert(notifications)
            .values(
                channel_id=channel.id,
                kind="digest",
                status="pending",
                attempts=0,
                next_attempt_at=lease,
                slot_at=now,
                created_at=now,
            )
            .returning(notifications.c.id)
        ).scalar_one()
        # every alert of this channel still waiting for a slot goes into the digest, due or not
        conn.execute(
            update(notifications)
            .where(
                notifications.c.channel_id == channel.id,
                notifications.c.status == "pending",
                notifications.c.kind == "alert",
                notifications.c.slot_at.is_(None),
            )
            .values(status="digested", digest_id=digest_id)
        )
        jobs.append(Job(digest_id, channel, "digest", None, 0, now, lease))
    return jobs


def _claim_assignments(conn: Connection, channel: Channel, rows: list, now: datetime) -> list[Job]:
    """Assignment rows (server/triage.py): one job per assignee, the rest of their rows folded into it
    (a bulk assignment is one e-mail); no severity routing or rate limit: the analyst was given the
    work and must hear of it. Rows of alerts assigned to nobody since are dropped."""
    lease = now + timedelta(seconds=LEASE_S)
    owners = dict(conn.execute(select(alerts.c.id, alerts.c.assignee).where(alerts.c.id.in_([r.alert_id for r in rows]))).all())
    jobs: list[Job] = []
    heads: dict[str, int] = {}
    for r in rows:
        owner = owners.get(r.alert_id)
        if r.slot_at is not None:  # a retry: it carries the rows folded into it already
            _set(conn, [r.id], next_attempt_at=lease)
            jobs.append(Job(r.id, channel, "assign", r.alert_id, r.attempts, r.created_at, lease))
        elif not owner:
            _set(conn, [r.id], status="dropped", last_error="no longer assigned")
        elif owner in heads:
            _set(conn, [r.id], status="digested", digest_id=heads[owner])
        else:
            heads[owner] = r.id
            _set(conn, [r.id], next_attempt_at=lease, slot_at=now)
            jobs.append(Job(r.id, channel, "assign", r.alert_id, r.attempts, r.created_at, lease))
    return jobs


def _skip_unrouted(conn: Connection, channel: Channel) -> None:
    """Alerts of a severity the channel does not take are not sent there (status skipped)."""
    conn.execute(
        update(notifications)
        .where(
            notifications.c.channel_id == channel.id,
            notifications.c.status == "pending",
            notifications.c.kind == "alert",
            notifications.c.slot_at.is_(None),
            ~notifications.c.alert_id.in_(select(alerts.c.id).where(alerts.c.severity.in_(channel.severities))),
        )
        .values(status="skipped", last_error="the channel does not take this severity")
    )


def _pending_fresh_count(conn: Connection, channel_id: str) -> int:
    return conn.execute(
        select(func.count()).where(
            notifications.c.channel_id == channel_id,
            notifications.c.status == "pending",
            notifications.c.kind == "alert",
            notifications.c.slot_at.is_(None),
        )
    ).scalar_one()


def _set(conn: Connection, ids: list[int], **values) -> None:
    for start in range(0, len(ids), 500):
        conn.execute(update(notifications).where(notifications.c.id.in_(ids[start : start + 500])).values(**values))


def renew(engine: Engine, job: Job, now: datetime) -> Job | None:
    """Extend the lease just before sending; None when the lease ran out and another sender took
    the row (the lease time is the fencing token), so a slow sender never sends a row twice."""
    lease = now + timedelta(seconds=LEASE_S)
    with writing(engine) as conn:
        done = conn.execute(
            update(notifications)
            .where(
                notifications.c.id == job.id,
                notifications.c.status == "pending",
                notifications.c.next_attempt_at == job.lease_until,
            )
            .values(next_attempt_at=lease)
        )
    return dataclasses.replace(job, lease_until=lease) if done.rowcount == 1 else None


def job_alerts(engine: Engine, job: Job) -> list[dict]:
    """The alert(s) a job is about: its alert, or the alerts a digest carries."""
    with engine.connect() as conn:
        if job.kind == "digest":
            ids = select(notifications.c.alert_id).where(notifications.c.digest_id == job.id)
            rows = conn.execute(select(alerts).where(alerts.c.id.in_(ids)).order_by(alerts.c.id))
        elif job.kind == "assign":  # its own alert and those folded into it
            ids = select(notifications.c.alert_id).where(notifications.c.digest_id == job.id)
            rows = conn.execute(select(alerts).where(or_(alerts.c.id == job.alert_id, alerts.c.id.in_(ids))).order_by(alerts.c.id))
        else:
            rows = conn.execute(select(alerts).where(alerts.c.id == job.alert_id))
        return [dict(r._mapping) for r in rows]


def record(engine: Engine, job: Job, now: datetime, error: str | None, rng: random.Random | None = None) -> str:
    """Write a send's outcome; returns the row's new status (sent, pending for a retry, or failed)."""
    pending = and_(notifications.c.id == job.id, notifications.c.status == "pending")
    base = and_(pending, notifications.c.next_attempt_at == job.lease_until)  # a failure: only while the lease is ours
    with writing(engine) as conn:
        if error is None:
            conn.execute(
                update(notifications)
                .where(pending)
                .values(status="sent", sent_at=now, attempts=job.attempts + 1, last_error=None)
            )
            return "sent"
        attempts = job.attempts + 1
        if (now - aware(job.created_at)).total_seconds() >= GIVE_UP_S:
            conn.execute(
                update(notifications).where(base).values(status="failed", attempts=attempts, last_error=error[:1000])
            )
            return "failed"
        retry_at = now + timedelta(seconds=backoff_s(attempts, rng))
        conn.execute(
            update(notifications)
            .where(base)
            .values(attempts=attempts, next_attempt_at=retry_at, last_error=error[:1000])
        )
        return "pending"


def outbox_rows(engine: Engine, **where) -> list[dict]:
    """Rows of the outbox (for the API and tests), newest first."""
    query = select(notifications).order_by(notifications.c.id.desc())
    for key, value in where.items():
        query = query.where(notifications.c[key] == value)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
