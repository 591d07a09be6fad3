"""Telling an analyst that alerts were assigned to them: by e-mail, over an e-mail channel's server.

The outbox holds such rows on the pseudo-channel `assign:<channel id>` (server/triage.py writes
them, server/notify/outbox.py folds one assignee's rows into one job). The message goes through
the channel's SMTP server and sender, but to the assignee's own address (console users' `email`)
instead of the channel's recipients: the URL's targets are replaced, nothing else of it changes.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.engine import Engine

from server.notify.messages import MAX_TITLE_CHARS, Message, line, md
from server.schema import users

MAX_EMAIL_CHARS = 254
# one plain address: no display name, no list, nothing a mail header or a URL would read as syntax
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
MAX_LISTED = 20


def valid_email(value: str) -> bool:
    return len(value) <= MAX_EMAIL_CHARS and bool(_EMAIL.match(value))


def recipient_url(url: str, email: str) -> str:
    """The e-mail channel's URL sending to `email` only (path targets and to=/cc=/bcc= dropped)."""
    if not valid_email(email):
        raise ValueError("not an e-mail address")
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in ("to", "cc", "bcc")]
    return urlunsplit((parts.scheme, parts.netloc, "", urlencode([*query, ("to", email)]), ""))


def assignee_email(engine: Engine, name: str | None) -> str | None:
    if not name:
        return None
    with engine.connect() as conn:
        email = conn.execute(select(users.c.email).where(users.c.name == name)).scalar()
    return email if email and valid_email(email) else None


def assignment_message(assignee: str, alerts: list[dict], public_url: str | None = None) -> Message:
    """One message for the alerts given to one analyst (bilingual, Chinese first, like the others)."""
    who, n = line(assignee, 100), len(alerts)
    rows = [
        f"#{int(a['id'])} {line(a['severity'], 16).upper()} {line(a['title'], 120)} ({line(a.get('user') or '-', 80)}@{line(a.get('host') or '-', 80)})"
        for a in alerts[:MAX_LISTED]
    ]
    if n > MAX_LISTED:
        rows.append(f"… +{n - MAX_LISTED}")
    zh, en = f"密卫：{n} 条告警已分配给 {who}。", f"MiWei: {n} alert(s) assigned to {who}."
    link = f"{public_url.rstrip('/')}/console/alerts?{urlencode({'assignee': assignee[:255]})}" if public_url else None
    tail = [f"控制台 / Console: {link}"] if link else []
    text = "\n".join([zh, en, "", *rows, *tail])
    markdown = "\n\n".join([f"**{md(zh)}**", md(en), *(f"- {md(r)}" for r in rows), *tail])
    subject = line(f"[密卫 MiWei] 分配给您 assigned to you: {n}", MAX_TITLE_CHARS)
    return Message(subject, text, markdown, {"assigned": {"assignee": who, "alerts": [int(a["id"]) for a in alerts]}})
