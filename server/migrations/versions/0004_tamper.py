"""tamper: each event's place in its agent's chain, per-agent chain state, explained gaps, incidents

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    # plain ADD COLUMN (nullable): no copy of the events table, also on SQLite
    op.add_column("events", sa.Column("agent_seq", sa.BigInteger))
    op.add_column("events", sa.Column("chain_hash", sa.String(64)))
    op.add_column("events", sa.Column("prev_hash", sa.String(64)))
    op.create_index("events_agent_chain", "events", ["agent_id", "agent_seq"])
    op.create_table(
        "agent_chains",
        sa.Column("agent_id", sa.String(36), primary_key=True),
        sa.Column("low_seq", sa.BigInteger),
        sa.Column("judged_through", sa.BigInteger),
        sa.Column("skew_reported_at", When),
        sa.Column("updated_at", When, nullable=False),
    )
    op.create_table(
        "chain_gaps",
        sa.Column("agent_id", sa.String(36), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("seq_from", sa.BigInteger, nullable=False),
        sa.Column("seq_to", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "chain_incidents",
        sa.Column("agent_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("raised_at", When, nullable=False),
    )


def downgrade() -> None:
    for table in ("chain_incidents", "chain_gaps", "agent_chains"):
        op.drop_table(table)
    op.drop_index("events_agent_chain", "events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("prev_hash")
        batch.drop_column("chain_hash")
        batch.drop_column("agent_seq")
