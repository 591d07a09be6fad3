"""incidents: egress alerts grouped per user, destination and session, their files; saved views; e-mail

- `alerts` gets what an incident (kind 'incident': one user's egress to one destination within a
  session window, server/incidents.py) shows at a glance: `kind` ('alert' | 'incident'),
  `destination` (a readable label), `place_kind`, `app`, `device_label`, `device_vendor`,
  `file_count`, `total_bytes`, `top_level`, `first_file`, `register_item`, `facets` (JSON list of
  the categories seen), and `assignee` (the analyst working it). Indexes on assignee and user serve
  the list's filters (created_at has one since 0006: `alerts_created`, server/console/tables.py).
- `incident_files`: one row per file of an incident, in arrival order (`seq`), with the file's name,
  path, size, hash, level, register item, source, how it matched and its facets (JSON: the
  detections on that one file: classified, marked, personal data...).
- `saved_views`: an analyst's named list filters (owner, name unique).
- console `users.email`: where assignments are notified.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)

ALERT_COLUMNS = (
    "assignee",
    "kind",
    "destination",
    "place_kind",
    "app",
    "device_label",
    "device_vendor",
    "file_count",
    "total_bytes",
    "top_level",
    "first_file",
    "register_item",
    "facets",
)


def upgrade() -> None:
    op.add_column("alerts", sa.Column("assignee", sa.String(255)))
    op.add_column("alerts", sa.Column("kind", sa.String(16), nullable=False, server_default="alert"))
    op.add_column("alerts", sa.Column("destination", sa.String(255)))
    op.add_column("alerts", sa.Column("place_kind", sa.String(16)))
    op.add_column("alerts", sa.Column("app", sa.String(128)))
    op.add_column("alerts", sa.Column("device_label", sa.String(255)))
    op.add_column("alerts", sa.Column("device_vendor", sa.String(255)))
    op.add_column("alerts", sa.Column("file_count", sa.Integer, nullable=False, server_default="0"))
    op.add_column("alerts", sa.Column("total_bytes", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("alerts", sa.Column("top_level", sa.String(16)))
    op.add_column("alerts", sa.Column("first_file", sa.Text))
    op.add_column("alerts", sa.Column("register_item", sa.String(255)))
    op.add_column("alerts", sa.Column("facets", sa.Text))
    op.create_index("alerts_assignee", "alerts", ["assignee"])
    op.create_index("alerts_user", "alerts", ["user"])
    op.create_table(
        "incident_files",
        sa.Column("alert_id", BigId, sa.ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.String(36)),
        sa.Column("at", When),
        sa.Column("path", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("size", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("level", sa.String(16)),
        sa.Column("register_item", sa.String(255)),
        sa.Column("source", sa.Text),
        sa.Column("match", sa.Text),
        sa.Column("facets", sa.Text),
    )
    op.create_index("incident_files_event", "incident_files", ["alert_id", "event_id"])
    op.create_table(
        "saved_views",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.UniqueConstraint("owner", "name", name="saved_views_owner_name"),
    )
    op.add_column("users", sa.Column("email", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
    op.drop_table("saved_views")
    op.drop_index("incident_files_event", table_name="incident_files")
    op.drop_table("incident_files")
    op.drop_index("alerts_user", table_name="alerts")
    op.drop_index("alerts_assignee", table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        for name in reversed(ALERT_COLUMNS):
            batch.drop_column(name)
