"""The notification tables (revision 0005), on the collector's one MetaData."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from server.schema import BigId, metadata

notify_channels = Table(  # config channels (id config:<n>, rewritten at startup) and API ones (ch_<hex>)
    "notify_channels",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("source", String(8), nullable=False),  # config | api
    Column("name", String(255), nullable=False),
    Column("url", Text, nullable=False),  # a secret: never shown or logged whole
    Column("severities", Text, nullable=False),  # JSON list
    Column("categories", Text, nullable=False),  # JSON list, empty = all
    Column("max_per_hour", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
)

notifications = Table(  # the outbox: one row per (alert, channel), inserted with the alert
    "notifications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("alert_id", BigId, ForeignKey("alerts.id", ondelete="CASCADE")),  # null for a digest
    Column("channel_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # alert | digest
    Column("status", String(12), nullable=False),  # pending | sent | digested | skipped | failed | dropped
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),  # also the lease of a claimed row
    Column("slot_at", DateTime(timezone=True)),  # when it took one of the channel's messages per hour
    Column("digest_id", BigId),  # the digest that carried this alert
    Column("last_error", Text),  # redacted
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("alert_id", "channel_id", name="notifications_once"),
    Index("notifications_due", "status", "next_attempt_at"),
    Index("notifications_channel_slot", "channel_id", "slot_at"),
    Index("notifications_digest", "digest_id"),
)
