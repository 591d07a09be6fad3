"""pipeline progress: heartbeats say when the agent's pipeline last finished a step and how much is queued

The collector keeps the last heartbeat's progress on the agent row (`pipeline_stepped_at` on its
own clock, `pipeline_queued`) and the id of the `agent.stalled` event it made for a stall that is
not over yet (`pipeline_stall_event`), so a stall is reported once and its alert resolves when the
pipeline moves again. Agents from before this revision send no progress: the columns stay NULL
and no stall is judged for them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("pipeline_stepped_at", sa.DateTime(timezone=True)))
    op.add_column("agents", sa.Column("pipeline_queued", sa.Integer))
    op.add_column("agents", sa.Column("pipeline_stall_event", sa.String(36)))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("pipeline_stall_event")
        batch.drop_column("pipeline_queued")
        batch.drop_column("pipeline_stepped_at")
