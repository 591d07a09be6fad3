"""token roles: an API token acts as an admin or as an analyst, like a console user

Tokens made before this revision could do everything; they stay admin so that no integration
breaks on upgrade. New tokens are made with the role asked for (`create-token --role`).
A downgrade revokes the analyst tokens: the older schema would make them admins.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("role", sa.String(16), nullable=False, server_default="admin"))


def downgrade() -> None:
    # before 0009 every token could do everything: an analyst token must not become an admin
    op.execute("UPDATE api_tokens SET revoked_at = CURRENT_TIMESTAMP WHERE role <> 'admin' AND revoked_at IS NULL")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("role")
