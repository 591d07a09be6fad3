"""The console's table (revision 0006), on the collector's one MetaData, and the indexes its pages need."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Index, String, Table

from server.schema import BigId, alerts, events, metadata

console_sessions = Table(  # one row per signed-in browser; the cookie holds a random id, the row its SHA-256
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),  # the synchronizer token of this session's forms
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("console_sessions_user", "user_id"),
)

# a user's activity around an alert (the alert page's timeline), egress events per day (covering:
# 101 ms -> 12 ms over 20,000 egress events) and the alerts-per-day chart
Index("events_user_ts", events.c.user, events.c.ts)
Index("events_type_ts", events.c.type, events.c.ts)
Index("alerts_created", alerts.c.created_at)
