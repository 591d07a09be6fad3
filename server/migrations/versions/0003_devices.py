"""devices: the register of removable media seen by any agent, and the allow-list

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("identity", sa.Text, nullable=False),
        sa.Column("vendor_id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("serial", sa.String(1024), nullable=False),
        sa.Column("vendor", sa.String(1024), nullable=False),
        sa.Column("model", sa.String(1024), nullable=False),
        sa.Column("bus", sa.String(64), nullable=False),
        sa.Column("fstype", sa.String(64), nullable=False),
        sa.Column("label", sa.String(1024), nullable=False),
        sa.Column("first_seen", sa.String(32), nullable=False),
        sa.Column("last_seen", sa.String(32), nullable=False),
        sa.Column("last_agent_id", sa.String(36), nullable=False),
        sa.Column("last_host", sa.String(255), nullable=False),
        sa.Column("last_user", sa.String(255), nullable=False),
        sa.Column("times_seen", sa.Integer, nullable=False),
    )
    op.create_index("devices_last_seen", "devices", ["last_seen"])
    op.create_table(
        "device_allow",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("pattern", sa.String(1200), nullable=False, unique=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("expires_at", When),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", When, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("device_allow")
    op.drop_index("devices_last_seen", "devices")
    op.drop_table("devices")
