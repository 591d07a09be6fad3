"""seals: each day's chained events of every agent, sealed and signed, kept beyond event retention

- `seal_days`: a day (the firm's calendar day) whose events were sealed, one row per day, so the
  daily task and `miwei-server seal` seal a day once (also with two collectors).
- `seals`: append-only, one row per agent and day: the first and last seq of the agent's chain
  received that day, how many, the chain head (digest of the last), the Merkle root of the day's
  event digests, the previous seal's digest (the agent's seals form a chain of their own), the
  signed JSON (`body`), its Ed25519 signature, the key's fingerprint, the day's leaves (the
  event digests, base64 of 32 bytes each: the Merkle proofs of kept events after retention purged
  the rest) and an optional RFC 3161 token. Retention (server/retention.py) never deletes them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "seal_days",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("sealed_at", When, nullable=False),
        sa.Column("agents", sa.Integer, nullable=False),
    )
    op.create_table(
        "seals",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("chain_head", sa.String(64), nullable=False),
        sa.Column("merkle_root", sa.String(64), nullable=False),
        sa.Column("prev_seal", sa.String(64)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("key_fingerprint", sa.String(64), nullable=False),
        sa.Column("leaves", sa.Text, nullable=False),
        sa.Column("tsa_token", sa.Text),
        sa.Column("sealed_at", When, nullable=False),
        sa.UniqueConstraint("agent_id", "day", name="seals_agent_day"),
        sa.Index("seals_agent_id", "agent_id", "id"),
    )


def downgrade() -> None:
    op.drop_table("seals")
    op.drop_table("seal_days")
