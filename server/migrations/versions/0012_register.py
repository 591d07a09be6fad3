"""register: the central secret register (保密台账) and its append-only history

- `register_items`: one row per secret item: name, level (core|important|general|internal),
  category (技术信息|经营信息), owner (department, person), scope (知悉范围), period (a date
  YYYY-MM-DD, 长期 or 公布前), locations (JSON list of {"os": "linux"|"windows"|"macos",
  "pattern": "/home/*/研发/图纸"}), state (active|declassified|destroyed), created_at, updated_at.
  Rows are never deleted: a destroyed item keeps its row and its history.
- `register_history`: append-only, one row per change (determined|changed|declassified|destroyed):
  when, who, why, and the item's fields before and after as JSON. Written in the transaction of
  the change (server/register.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "register_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("owner_department", sa.String(200), nullable=False, server_default=""),
        sa.Column("owner_person", sa.String(100), nullable=False, server_default=""),
        sa.Column("scope", sa.Text, nullable=False, server_default=""),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("locations", sa.Text, nullable=False, server_default="[]"),
        sa.Column("state", sa.String(16), nullable=False, server_default="active"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("register_items_state", "state"),
    )
    op.create_table(
        "register_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("register_items.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False, server_default=""),
        sa.Column("before", sa.Text),  # JSON of the item's fields; NULL for 'determined'
        sa.Column("after", sa.Text, nullable=False),  # JSON of the item's fields
        sa.Index("register_history_item_id", "item_id", "id"),
    )


def downgrade() -> None:
    op.drop_table("register_history")
    op.drop_table("register_items")
