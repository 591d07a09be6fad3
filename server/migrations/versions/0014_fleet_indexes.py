"""fleet indexes: the fleet page sorts thousands of agents by host name and last seen

`agents_hostname`, `agents_last_seen`: the page's default sort and its last-seen filters sorted
every agent matching a filter. (Its user filter already has the console's `events(user, ts)`,
migration 0006; an index on events costs every ingest, so none is added there.)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("agents_hostname", "agents", ["hostname"])
    op.create_index("agents_last_seen", "agents", ["last_seen"])


def downgrade() -> None:
    op.drop_index("agents_last_seen", table_name="agents")
    op.drop_index("agents_hostname", table_name="agents")
