"""console: browser sessions, and indexes for the console's pages

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
    )
    op.create_index("console_sessions_user", "console_sessions", ["user_id"])
    # the alert page shows the same user's events 24 h either side; the dashboard counts alerts per day
    op.create_index("events_user_ts", "events", ["user", "ts"])
    op.create_index("events_type_ts", "events", ["type", "ts"])  # covers the egress-per-day chart
    op.create_index("alerts_created", "alerts", ["created_at"])


def downgrade() -> None:
    op.drop_index("alerts_created", table_name="alerts")
    op.drop_index("events_type_ts", table_name="events")
    op.drop_index("events_user_ts", table_name="events")
    op.drop_table("console_sessions")
