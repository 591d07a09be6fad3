"""The console on PostgreSQL: every page, export and form works there as on SQLite (the per-day
charts use to_char there). Skips with the reason when PostgreSQL is not installed."""

from __future__ import annotations

import dataclasses
import io
import uuid
import zipfile

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.database import make_engine, migrate
from server.store import Store
from tests.console.conftest import CHEAP, PASSWORD, sign_in
from tests.console.test_pages import PAGES
from tests.server import postgres
from tests.server.factories import ENROLL_SECRET, make_egress, make_event

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    with postgres.running() as cluster:
        yield cluster


@pytest.fixture
def pg_browser(cluster, config, clock):
    with postgres.fresh_database(cluster) as url:
        engine = make_engine(url)
        migrate(engine)
        store = Store(engine, clock=clock)
        store.create_user("boss", "admin", CHEAP.hash(PASSWORD))
        with TestClient(create_app(dataclasses.replace(config, database=url), store)) as browser:
            body = {"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": "pc-0042", "version": "0.1.0"}
            token = browser.post("/api/v1/enroll", json=body).json()["token"]
            batch = [make_event("media.mounted", path=None, media=make_egress()["media"]), make_egress("core"), make_event("file.modified", level="core")]
            assert browser.post("/api/v1/events", json={"events": batch}, headers={"Authorization": f"Bearer {token}"}).status_code == 200
            assert sign_in(browser, "boss").status_code == 303
            yield browser
        engine.dispose()


def test_every_page_export_and_form_on_postgresql(pg_browser, post_form):
    for page in PAGES[:-1]:
        assert pg_browser.get(page).status_code == 200, page
    dash = pg_browser.get("/console/", params={}).text
    assert "<title>Critical: 1</title>" in dash  # one open critical alert, counted in SQL
    assert "<title>2026-03-02 Classified content leaving: 1</title>" in dash  # per UTC hour (to_char), on the firm's day
    # the drill-down pages (to_char per UTC hour, ILIKE on a device's serial there)
    user_page = pg_browser.get("/console/people/user", params={"name": "zhang.wei"}).text
    assert "<title>2026-03-02: 1</title>" in user_page and 'href="/console/devices/' in user_page
    device_id = user_page.split('href="/console/devices/', 1)[1].split('"', 1)[0]
    device_page = pg_browser.get(f"/console/devices/{device_id}").text
    assert device_page.count('href="/console/events/') == 2  # the mount and the copy
    event_id = device_page.split('href="/console/events/', 1)[1].split('"', 1)[0]
    assert pg_browser.get(f"/console/events/{event_id}").status_code == 200
    assert "<title>2026-03-02: 1</title>" in pg_browser.get("/console/people/host", params={"name": "pc-0042"}).text
    for what in ("alerts", "events", "register", "devices"):
        for fmt in ("csv", "xlsx"):
            assert pg_browser.get(f"/console/export/{what}.{fmt}").status_code == 200
    assert post_form(pg_browser, "/console/alerts/1", "/console/alerts/1", {"status": "acknowledged", "comment": "pg"}).status_code == 303
    assert "pg" in pg_browser.get("/console/audit").text
    pack = zipfile.ZipFile(io.BytesIO(pg_browser.get("/console/alerts/1/evidence.zip").content))
    assert "manifest.json" in pack.namelist()
    assert pg_browser.get("/console/alerts", params={"since": "2026-03-01", "sort": "severity"}).status_code == 200
