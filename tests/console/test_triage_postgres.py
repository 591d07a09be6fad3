"""The alert list's filters, saved views, bulk actions and assignment on PostgreSQL as on SQLite.
Skips with the reason when PostgreSQL is not installed (tests/server/postgres.py)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.console.test_postgres import cluster, pg_browser  # noqa: F401 - fixtures, by name

pytestmark = pytest.mark.slow


def test_filters_views_bulk_and_assignment_on_postgresql(pg_browser, post_form):  # noqa: F811
    browser = pg_browser
    for params in ({}, {"status": "all"}, {"user": "zhang.wei", "level": "core"}, {"since": "2026-03-01", "until": "2026-03-31"},
                   {"assignee": "me"}, {"device": "KINGSTON", "host": "pc-0042", "register_item": "x"}):  # fmt: skip
        assert browser.get("/console/alerts", params=params).status_code == 200, params
    ids = re.findall(r'name="id" value="(\d+)"', browser.get("/console/alerts", params={"status": "all"}).text)
    assert ids
    saved = post_form(
        browser, "/console/alerts", "/console/alerts/views", {"name": "pg view", "back": "user=zhang.wei"}
    )
    assert saved.status_code == 303
    (view_id,) = re.findall(r'/console/alerts/views/(\d+)"', browser.get("/console/alerts").text)
    assert (
        browser.get(f"/console/alerts/views/{view_id}", follow_redirects=False).headers["location"]
        == "/console/alerts?user=zhang.wei"
    )
    answer = post_form(
        browser,
        "/console/alerts",
        "/console/alerts/bulk",
        [*(("id", i) for i in ids), ("status", "assign"), ("assignee", "boss"), ("back", "user=zhang.wei")],
    )
    assert parse_qs(urlsplit(answer.headers["location"]).query)["n"] == [str(len(ids))]
    assert (
        re.findall(
            r'name="id" value="(\d+)"', browser.get("/console/alerts", params={"assignee": "me", "status": "all"}).text
        )
        == ids
    )
    answer = post_form(
        browser, "/console/alerts", "/console/alerts/bulk", [*(("id", i) for i in ids), ("status", "resolved")]
    )
    assert parse_qs(urlsplit(answer.headers["location"]).query)["n"] == [str(len(ids))]
    assert post_form(browser, "/console/alerts", f"/console/alerts/views/{view_id}/delete").status_code == 303
    assert (
        post_form(browser, "/console/users", "/console/users/1/email", {"email": "boss@example.com"}).status_code == 303
    )
