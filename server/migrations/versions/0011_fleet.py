"""fleet: who an event names, and who may enrol

- `agents.state`: active | pending (a second live agent of one host name, or a blocked host name,
  waits for an admin) | retired (its token refused, its history kept, never reported offline).
  Agents enrolled before this revision are active. `retired_at`, `approved_at` say when,
  `enrolled_from` the address that enrolled it, `enroll_key_id` the group key it used (NULL: the
  shared secret), `claimed_host` the last other host name its events or heartbeats named (so a
  mismatch raises agent-tamper once per new name, not once per batch).
- `events.claimed_host`: the host an event's body named when it differs from the agent's enrolled
  host; the `host` column holds the enrolled one. The body is kept as sent (the chain hashes it).
- `blocked_hosts`: host names that may not enrol again without an admin's approval.
- `enroll_keys`: per-group enrolment keys, stored as SHA-256, with an expiry.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("state", sa.String(16), nullable=False, server_default="active"))
    op.add_column("agents", sa.Column("approved_at", sa.DateTime(timezone=True)))
    op.add_column("agents", sa.Column("retired_at", sa.DateTime(timezone=True)))
    op.add_column("agents", sa.Column("enrolled_from", sa.String(64)))
    op.add_column("agents", sa.Column("enroll_key_id", sa.Integer))
    op.add_column("agents", sa.Column("claimed_host", sa.String(255)))
    op.add_column("events", sa.Column("claimed_host", sa.String(255)))
    op.create_table(
        "blocked_hosts",
        sa.Column("hostname", sa.String(255), primary_key=True),  # compared case-folded
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_by", sa.String(255), nullable=False),
        sa.Column("note", sa.String(1000), nullable=False, server_default=""),
    )
    op.create_table(
        "enroll_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("created_by", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    # the older schema has no pending or retired agents: their tokens would work again
    op.execute("DELETE FROM agents WHERE state = 'pending'")
    op.execute("UPDATE agents SET token_hash = 'retired:' || agent_id WHERE state = 'retired'")
    op.drop_table("enroll_keys")
    op.drop_table("blocked_hosts")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("claimed_host")
    with op.batch_alter_table("agents") as batch:
        for column in ("claimed_host", "enroll_key_id", "enrolled_from", "retired_at", "approved_at", "state"):
            batch.drop_column(column)
