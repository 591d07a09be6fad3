"""The firm's clock: console pages, filters, exports and notifications in server.timezone; the API in UTC.

A known moment, 2026-01-01T00:00:00Z, must read 2026-01-01 08:00:00 in Asia/Shanghai (the
default) and 2026-01-01 01:00:00 in Europe/Berlin, and each page names the zone exactly once.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from server.app import create_app
from server.console.exports import Table, to_csv, to_xlsx
from server.notify.messages import alert_message
from tests.console.conftest import sign_in
from tests.server.factories import KINGSTON, make_egress, make_event

NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)
NEW_YEAR_TS = "2026-01-01T00:00:00.000Z"
PAGES = ("/console/", "/console/alerts", "/console/events", "/console/devices", "/console/agents", "/console/audit")
LABELS = {
    ("Asia/Shanghai", "zh"): "北京时间 (UTC+08:00)",
    ("Asia/Shanghai", "en"): "China Standard Time (UTC+08:00)",
    ("Europe/Berlin", "en"): "Europe/Berlin (UTC+01:00)",
    ("UTC", "en"): "UTC (UTC+00:00)",
}
LOCAL = {"Asia/Shanghai": "2026-01-01 08:00:00", "Europe/Berlin": "2026-01-01 01:00:00", "UTC": "2026-01-01 00:00:00"}


@pytest.fixture
def new_year(clock, client, enroll):
    """An agent enrolled, a USB stick mounted and a classified file copied to it at 2026-01-01T00:00:00Z."""
    clock.now = NEW_YEAR
    agent = enroll("pc-newyear")
    events = [make_event("media.mounted", ts=NEW_YEAR_TS, media=dict(KINGSTON), path=KINGSTON["mountpoint"]), make_egress("core", ts=NEW_YEAR_TS)]
    assert client.post("/api/v1/events", json={"events": events}, headers=agent.headers).status_code == 200
    return NEW_YEAR


def _browser(config, store, make_user, zone: str, lang: str) -> TestClient:
    app = create_app(dataclasses.replace(config, timezone=zone), store)
    browser = TestClient(app)
    browser.__enter__()
    make_user(f"boss-{lang}-{zone.replace('/', '-').lower()}", "admin")
    assert sign_in(browser, f"boss-{lang}-{zone.replace('/', '-').lower()}", lang=lang).status_code == 303
    return browser


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.parametrize("zone, lang", [("Asia/Shanghai", "zh"), ("Asia/Shanghai", "en"), ("Europe/Berlin", "en"), ("UTC", "en")])
def test_pages_show_times_on_the_firms_clock_and_name_the_zone_once(config, store, make_user, new_year, zone, lang):
    browser = _browser(config, store, make_user, zone, lang)
    try:
        alert_id = store.list_alerts(None, None, None, None, 10, None).items[0]["id"]
        for page in (*PAGES, f"/console/alerts/{alert_id}"):
            answer = browser.get(page)
            assert answer.status_code == 200, (page, answer.text[:300])
            text = _text(answer.text)
            assert text.count(LABELS[zone, lang]) == 1, page  # named once: the footer
            assert text.count("UTC+") == 1, page  # and no other zone named anywhere else
            if page != "/console/":  # the dashboard shows counts, no times
                assert LOCAL[zone] in text, page
            if zone != "UTC":
                assert "2026-01-01 00:00:00" not in text, page  # the UTC wall clock is not shown
    finally:
        browser.__exit__(None, None, None)


def test_the_api_stays_in_utc(new_year, client, reader):
    alerts = client.get("/api/v1/alerts", headers=reader).json()["alerts"]
    assert alerts[0]["created_at"] == NEW_YEAR_TS
    events = client.get("/api/v1/events", headers=reader).json()["events"]
    assert events[0]["ts"] == NEW_YEAR_TS


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin"])
def test_exports_carry_real_local_times_and_name_the_zone(config, store, make_user, new_year, zone):
    browser = _browser(config, store, make_user, zone, "en")
    try:
        expected = datetime.fromisoformat(LOCAL[zone])
        header = "Asia/Shanghai, UTC+08:00" if zone == "Asia/Shanghai" else "Europe/Berlin"  # summer time: no one offset
        for what, column in (("events", "ts"), ("alerts", "created_at"), ("devices", "last_seen")):
            book = load_workbook(io.BytesIO(browser.get(f"/console/export/{what}.xlsx").content))
            rows = list(book.active.iter_rows())
            names = [c.value for c in rows[0]]
            index = names.index(f"{column} ({header})")
            cell = rows[1][index]
            assert isinstance(cell.value, datetime) and cell.is_date, (what, cell.value)
            assert cell.value == expected, what
            assert cell.number_format == "yyyy-mm-dd hh:mm:ss"

            text = browser.get(f"/console/export/{what}.csv").content.decode("utf-8-sig")
            table = list(csv.reader(io.StringIO(text)))
            index = table[0].index(f"{column} ({header})")
            assert table[1][index] == LOCAL[zone], what
    finally:
        browser.__exit__(None, None, None)


def test_export_time_columns_keep_odd_values_as_quoted_text():
    table = Table("t", ["at", "name"], [["=1+1", "a"], ["", "b"], [NEW_YEAR, "c"], [NEW_YEAR_TS, "d"]], times=("at",))
    rows = list(csv.reader(io.StringIO(to_csv(table, "Asia/Shanghai").decode("utf-8-sig"))))
    assert rows[0] == ["at (Asia/Shanghai, UTC+08:00)", "name"]
    assert [r[0] for r in rows[1:]] == ["'=1+1", "", "2026-01-01 08:00:00", "2026-01-01 08:00:00"]
    sheet = load_workbook(io.BytesIO(to_xlsx(table, "UTC"))).active
    assert [c.value for c in sheet["A"]] == ["at (UTC, UTC+00:00)", "'=1+1", None, datetime(2026, 1, 1), datetime(2026, 1, 1)]
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


def test_a_datetime_in_an_undeclared_column_is_still_a_local_time():
    rows = list(csv.reader(io.StringIO(to_csv(Table("t", ["when"], [[NEW_YEAR]]), "Asia/Shanghai").decode("utf-8-sig"))))
    assert rows == [["when (Asia/Shanghai, UTC+08:00)"], ["2026-01-01 08:00:00"]]


def test_since_typed_in_the_console_is_the_firms_day(admin, clock, send):
    clock.now = NEW_YEAR
    send(make_egress("core", ts="2025-12-31T16:30:00.000Z"))  # 2026-01-01 00:30 in Shanghai
    page = admin.get("/console/events", params={"since": "2026-01-01"}).text
    assert "2026-01-01 00:30:00" in page  # read as UTC midnight it would have been left out
    assert "2026-01-01 00:30:00" not in admin.get("/console/events", params={"since": "2026-01-01T01:00"}).text
    assert admin.get("/console/events", params={"since": "<script>"}).status_code == 422


def test_fleet_seen_filters_are_the_firms_day(admin, clock, enroll):
    clock.now = datetime(2025, 12, 31, 17, tzinfo=UTC)  # 2026-01-01 01:00 in Shanghai
    agent = enroll("pc-newyear")
    assert admin.post("/api/v1/heartbeat", json={"hostname": "pc-newyear"}, headers=agent.headers).status_code == 200
    assert "pc-newyear" in admin.get("/console/agents", params={"seen_after": "2026-01-01"}).text
    assert "pc-newyear" not in admin.get("/console/agents", params={"seen_before": "2026-01-01"}).text


@pytest.mark.parametrize("zone, zh, en", [
    ("Asia/Shanghai", "2026-01-01 08:00:00 北京时间 (UTC+08:00)", "2026-01-01 08:00:00 China Standard Time (UTC+08:00)"),
    ("Europe/Berlin", "2026-01-01 01:00:00 Europe/Berlin (UTC+01:00)", "2026-01-01 01:00:00 Europe/Berlin (UTC+01:00)"),
])  # fmt: skip
def test_notifications_show_the_firms_clock_and_keep_utc_in_json(zone, zh, en):
    alert = {"id": 7, "severity": "high", "category": "classified-egress", "title": "t", "created_at": NEW_YEAR, "count": 1}
    message = alert_message(alert, None, zone)
    assert f"时间：{zh}" in message.text and f"Time: {en}" in message.text
    assert "UTC\n" not in message.text and " UTC " not in message.text
    assert message.data["alert"]["created_at"] == NEW_YEAR_TS
    assert message.data["alert"]["created_at_local"] == zh[:19] and message.data["alert"]["timezone"] == zone
    # naive, as SQLite hands it back: still UTC
    assert f"时间：{zh}" in alert_message({**alert, "created_at": NEW_YEAR.replace(tzinfo=None)}, None, zone).text


def test_the_notification_sender_uses_the_configured_zone(config, store):
    with TestClient(create_app(dataclasses.replace(config, timezone="Europe/Berlin"), store)) as client:
        assert client.app.state.notifier.zone == "Europe/Berlin"
