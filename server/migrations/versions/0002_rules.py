"""rules: policy history, watchlists, correlation hits and state, agent silences

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("files", sa.Text, nullable=False),
        sa.Column("worktime", sa.Text, nullable=False),
    )
    op.create_table(
        "watchlists",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
    )
    op.create_table(
        "watchlist_members",
        sa.Column("watchlist", sa.String(64), sa.ForeignKey("watchlists.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("value_key", sa.String(255), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("added_at", When, nullable=False),
        sa.Column("added_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "rule_hits",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("group_key", sa.String(64), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("alert_id", BigId),
        sa.UniqueConstraint("rule_id", "event_id", "step", name="rule_hits_once"),
    )
    op.create_index("rule_hits_group_ts", "rule_hits", ["rule_id", "group_key", "ts"])
    op.create_index("rule_hits_alert", "rule_hits", ["alert_id"])
    op.create_table(
        "correlation_state",
        sa.Column("rule_id", sa.String(128), primary_key=True),
        sa.Column("group_key", sa.String(64), primary_key=True),
        sa.Column("group_values", sa.Text, nullable=False),
        sa.Column("alert_id", BigId, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("first_ts", sa.String(32), nullable=False),
        sa.Column("last_ts", sa.String(32), nullable=False),
        sa.Column("updated_at", When, nullable=False),
    )
    op.create_table(
        "agent_silences",
        sa.Column("rule_id", sa.String(128), primary_key=True),
        sa.Column("agent_id", sa.String(36), primary_key=True),
        sa.Column("silent_since", sa.String(32), primary_key=True),
        sa.Column("alert_id", BigId),
        sa.Column("raised_at", When, nullable=False),
    )


def downgrade() -> None:
    op.drop_index("rule_hits_alert", "rule_hits")
    op.drop_index("rule_hits_group_ts", "rule_hits")
    for table in ("agent_silences", "correlation_state", "rule_hits", "watchlist_members", "watchlists", "policies"):
        op.drop_table(table)
