"""lifecycle: alert history actions, dedup and suppression, offline escalation, clean stops, audit log

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    # history rows written before this revision were all status changes
    op.add_column("alert_history", sa.Column("action", sa.String(16), nullable=False, server_default="status"))
    op.add_column("alert_history", sa.Column("from_status", sa.String(16)))
    op.add_column("alerts", sa.Column("group_key", sa.String(64)))
    op.add_column("alerts", sa.Column("last_seen", When))
    op.add_column("alerts", sa.Column("first_ts", sa.String(32)))
    op.add_column("alerts", sa.Column("last_ts", sa.String(32)))
    op.add_column("alerts", sa.Column("closed_at", When))
    op.add_column("alerts", sa.Column("suppressed", sa.Integer, nullable=False, server_default="0"))
    op.create_index("alerts_group", "alerts", ["group_key", "id"])  # group_key hashes the rule id too
    op.add_column("agents", sa.Column("stopped_at", When))
    op.add_column("agent_silences", sa.Column("escalations", sa.Integer, nullable=False, server_default="0"))
    op.add_column("agent_silences", sa.Column("ended_at", When))
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", When, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("audit_log_at", "audit_log", ["at"])
    op.create_index("audit_log_actor_id", "audit_log", ["actor", "id"])
    op.create_index("audit_log_action_id", "audit_log", ["action", "id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    with op.batch_alter_table("agent_silences") as batch:
        batch.drop_column("ended_at")
        batch.drop_column("escalations")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("stopped_at")
    op.drop_index("alerts_group", table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        for name in ("suppressed", "closed_at", "last_ts", "first_ts", "last_seen", "group_key"):
            batch.drop_column(name)
    with op.batch_alter_table("alert_history") as batch:
        batch.drop_column("from_status")
        batch.drop_column("action")
