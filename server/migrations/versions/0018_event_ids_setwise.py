"""event ids set-wise: the dedup trigger of 0017 steps aside for an insert that recorded its ids

PostgreSQL only (SQLite keeps UNIQUE (id) on its one events table).

0017's BEFORE INSERT trigger (`events_once`) inserts each new event's id into `event_ids`, one
PL/pgSQL call and one INSERT ... ON CONFLICT per row: 4-8 ms of a 500-event batch. Ingest now puts
a batch's ids into `event_ids` itself, in one statement with the events (server/database.py
`insert_new`), and says so for that statement with the transaction-local setting
`miwei.event_ids = 'taken'`; the trigger fires only when that setting is not there, so every other
insert into events (a collector finding, retention keeping evidence, the database copy, an older
collector during an upgrade) is still recorded and deduplicated by it, as before.

Only the trigger's WHEN condition changes: no row is read or written, so it is instant on any
database. Downgrade puts back 0017's unconditional trigger.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# server/database.py sets this (SET LOCAL, through set_config) around its set-wise events insert
SETTING = "miwei.event_ids"
GUARD = f"current_setting('{SETTING}', true) IS DISTINCT FROM 'taken'"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    run = bind.exec_driver_sql
    # dropped from events, the trigger goes from every partition too; created again on events, it
    # is cloned to each partition, as 0017's was
    run("DROP TRIGGER events_once ON events")
    run(f"CREATE TRIGGER events_once BEFORE INSERT ON events FOR EACH ROW WHEN ({GUARD}) EXECUTE FUNCTION miwei_event_once()")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    run = bind.exec_driver_sql
    run("DROP TRIGGER events_once ON events")
    run("CREATE TRIGGER events_once BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION miwei_event_once()")
