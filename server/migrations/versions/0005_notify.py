"""notify: notification channels and the outbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notify_channels",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("severities", sa.Text, nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("max_per_hour", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("alert_id", BigId, sa.ForeignKey("alerts.id", ondelete="CASCADE")),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", When, nullable=False),
        sa.Column("slot_at", When),
        sa.Column("digest_id", BigId),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", When, nullable=False),
        sa.Column("sent_at", When),
        sa.UniqueConstraint("alert_id", "channel_id", name="notifications_once"),
    )
    op.create_index("notifications_due", "notifications", ["status", "next_attempt_at"])
    op.create_index("notifications_channel_slot", "notifications", ["channel_id", "slot_at"])
    op.create_index("notifications_digest", "notifications", ["digest_id"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("notify_channels")
