"""A collector on a PostgreSQL server kept in the firm's local time (server/database.py): its
sessions run in UTC, so the API's times end in Z as on SQLite, not in +08:00 (the same instant in
another form, which a SIEM matching the documented form misses). Found while testing
copy-database on such a server. Skips with the reason when PostgreSQL is not installed."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from tests.server import postgres
from tests.server.factories import make_egress
from tests.server.postgres import cluster  # noqa: F401 - one cluster per module

pytestmark = postgres.MARKS


@pytest.fixture
def db_url(cluster):  # noqa: F811 - a fresh database whose sessions default to Beijing time
    with postgres.fresh_database(cluster) as url:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {make_url(url).database} SET timezone = 'Asia/Shanghai'")
        admin.dispose()
        yield url


def test_the_apis_times_end_in_z_on_a_server_in_beijing_time(send, client, reader, engine):
    send(make_egress("core", ts="2026-03-02T09:00:00.000Z"))
    alerts = client.get("/api/v1/alerts", headers=reader).json()["alerts"]
    assert alerts
    alert = client.get(f"/api/v1/alerts/{alerts[0]['id']}", headers=reader).json()
    times = [alert["created_at"], alert["updated_at"], alert["last_seen"]]
    assert all(t.endswith("Z") for t in times), times
    assert alert["events"][0]["ts"] == "2026-03-02T09:00:00.000Z"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "UTC"
