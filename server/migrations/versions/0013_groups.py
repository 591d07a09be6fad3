"""groups: agent groups whose policy carries the central register's locations to the agents

- `agent_groups`: name, description, the register items that apply (JSON list of ids, or "all"),
  extra egress places (JSON list of {"path", "kind", "app"}), agent settings (JSON, e.g.
  {"heartbeat_s": 60}), the agent version the group should run, and a `revision` bumped on every
  change. The group named `default` (id 1) is created here and cannot be deleted.
- `group_rules`: placement, evaluated in `position` order at enrolment and on heartbeat for agents
  not moved by hand: a host name pattern (* ?), an OS, an enrolment key id (NULL: any). The first
  rule that matches places the agent; none: the default group.
- `agents.group_id` (NULL: the default group), `agents.group_manual` (moved by an admin: rules leave
  it alone), `agents.os` (linux | windows | macos, as the agent reports it; NULL for older agents).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    groups = op.create_table(
        "agent_groups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.String(2000), nullable=False, server_default=""),
        sa.Column("register_items", sa.Text, nullable=False, server_default='"all"'),
        sa.Column("egress", sa.Text, nullable=False, server_default="[]"),
        sa.Column("settings", sa.Text, nullable=False, server_default="{}"),
        sa.Column("agent_version", sa.String(64), nullable=False, server_default=""),
        sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "group_rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("group_id", sa.Integer, sa.ForeignKey("agent_groups.id"), nullable=False),
        sa.Column("hostname_pattern", sa.String(255), nullable=False, server_default="*"),
        sa.Column("os", sa.String(16)),
        sa.Column("enroll_key_id", sa.Integer),
    )
    op.add_column("agents", sa.Column("group_id", sa.Integer))
    op.add_column("agents", sa.Column("group_manual", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("agents", sa.Column("os", sa.String(16)))
    from datetime import datetime

    now = datetime.now(UTC)
    op.bulk_insert(groups, [{"id": 1, "name": "default", "description": "", "register_items": '"all"', "egress": "[]",
                             "settings": "{}", "agent_version": "", "revision": 1, "created_at": now, "updated_at": now}])  # fmt: skip
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('agent_groups', 'id'), 1)")


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        for column in ("os", "group_manual", "group_id"):
            batch.drop_column(column)
    op.drop_table("group_rules")
    op.drop_table("agent_groups")
