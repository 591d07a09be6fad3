"""Migration 0015 (incidents, saved views, users.email) up and down on SQLite and PostgreSQL: an
alert stored at 0014 comes out as kind 'alert' with no files, the migrated database matches
server/schema.py for everything 0015 touches, and a downgrade keeps the alert."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

import server.console.tables  # noqa: F401 - declares its tables and indexes on the same metadata
import server.notify.tables  # noqa: F401
from server.database import _alembic_config, make_engine
from server.schema import metadata
from tests.server import postgres

NEW_ALERT_COLUMNS = {
    "assignee", "kind", "destination", "place_kind", "app", "device_label", "device_vendor",
    "file_count", "total_bytes", "top_level", "first_file", "register_item", "facets",
}  # fmt: skip
NEW_TABLES = {"incident_files", "saved_views"}


def _to(engine, revision: str, downgrade: bool = False) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if downgrade else command.upgrade)(cfg, revision)


def _alert_columns(engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("alerts")}


def _drift(engine) -> list:
    """Differences between the migrated database and the tables the code declares (all of them)."""
    from tests.server.test_partitions import by_design  # the monthly event partitions on PostgreSQL (0017)

    with engine.connect() as conn:
        return [d for d in compare_metadata(MigrationContext.configure(conn), metadata) if not by_design(d)]


def _migrate_up_and_down(url: str) -> None:
    engine = make_engine(url)
    try:
        _to(engine, "0014")
        assert not NEW_ALERT_COLUMNS & _alert_columns(engine)
        with engine.begin() as conn:  # an alert as 0014 stored it
            conn.execute(
                text(
                    "INSERT INTO alerts (rule_id, category, severity, title, status, created_at, updated_at,"
                    " count, explanation, suppressed) VALUES ('r1', 'classified-egress', 'high', 't', 'open',"
                    " '2026-12-01 00:00:00+00:00', '2026-12-01 00:00:00+00:00', 1, 'e', 0)"
                )
            )
        _to(engine, "head")
        assert NEW_ALERT_COLUMNS <= _alert_columns(engine)
        assert NEW_TABLES <= set(inspect(engine).get_table_names())
        assert "email" in {c["name"] for c in inspect(engine).get_columns("users")}
        assert _drift(engine) == []
        with engine.connect() as conn:
            row = conn.execute(text("SELECT kind, file_count, total_bytes, assignee FROM alerts")).one()
        assert tuple(row) == ("alert", 0, 0, None)
        _to(engine, "0014", downgrade=True)
        assert not NEW_ALERT_COLUMNS & _alert_columns(engine)
        assert not NEW_TABLES & set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT rule_id FROM alerts")).scalars().all() == ["r1"]
        _to(engine, "head")
    finally:
        engine.dispose()


def test_migration_0015_up_and_down_on_sqlite(tmp_path):
    _migrate_up_and_down(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.slow
@pytest.mark.skipif(postgres.why_not() is not None, reason=str(postgres.why_not()))
def test_migration_0015_up_and_down_on_postgresql():
    with postgres.running() as cluster, postgres.fresh_database(cluster) as url:
        _migrate_up_and_down(url)
