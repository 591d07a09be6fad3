"""initial schema: agents, tokens, users, events, alerts

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String(36), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("enrolled_at", When, nullable=False),
        sa.Column("last_seen", When),
        sa.Column("version", sa.String(64)),
        sa.Column("policy_version", sa.String(64)),
        sa.Column("spool_depth", sa.Integer),
        sa.Column("status", sa.Text),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("revoked_at", When),
    )
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", When, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("received_at", When, nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("user", sa.String(255)),
        sa.Column("path", sa.Text),
        sa.Column("size", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("level", sa.String(16)),
        sa.Column("source_path", sa.Text),
        sa.Column("severity", sa.String(16)),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("events_type_seq", "events", ["type", "seq"])
    op.create_index("events_agent_seq", "events", ["agent_id", "seq"])
    op.create_table(
        "alerts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("agent_id", sa.String(36)),
        sa.Column("host", sa.String(255)),
        sa.Column("user", sa.String(255)),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("explanation", sa.Text, nullable=False),
    )
    op.create_index("alerts_status_id", "alerts", ["status", "id"])
    op.create_table(
        "alert_events",
        sa.Column("alert_id", BigId, sa.ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
    )
    op.create_index("alert_events_event", "alert_events", ["event_id"])
    op.create_table(
        "alert_history",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("alert_id", BigId, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
    )
    op.create_index("alert_history_alert", "alert_history", ["alert_id", "id"])


def downgrade() -> None:
    for table in ("alert_history", "alert_events", "alerts", "events", "users", "api_tokens", "agents"):
        op.drop_table(table)
