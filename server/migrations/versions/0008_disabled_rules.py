"""disabled rules: each policy keeps the rule ids switched off in it (shipped rules included)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for the policies activated before: none of their rules was switched off this way
    op.add_column("policies", sa.Column("disabled", sa.Text))


def downgrade() -> None:
    # the older code builds every stored policy without the list: its rules come back on, and the
    # versions it computes differ from the stored ones, so it activates a fresh row at its start
    with op.batch_alter_table("policies") as batch:
        batch.drop_column("disabled")
