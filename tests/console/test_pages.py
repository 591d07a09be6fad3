"""Every page renders, with strict headers, and agent data is text: markup in paths and labels is never markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.server.factories import make_egress, make_event

CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
PAGES = [
    "/console/", "/console/alerts", "/console/alerts/1", "/console/events", "/console/agents", "/console/register",
    "/console/devices", "/console/rules", "/console/users", "/console/tokens", "/console/channels", "/console/audit",
    "/console/login",
]  # fmt: skip
MARKUP_NAME = "<img src=x onerror=alert(1)>.docx"
MARKUP_LABEL = '<script>alert("usb")</script><b>KINGSTON</b>'


class _Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, style attributes, event handlers, foreign URLs."""

    def __init__(self):
        super().__init__()
        self.problems: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if name in ("src", "href", "action") and value and re.match(r"^(https?:)?//", value):
                self.problems.append(f"<{tag} {name}={value}> loads from outside")
        if tag == "script":
            self.in_script = "src" not in names
        if tag == "style":
            self.problems.append("<style> element")

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script and data.strip():
            self.problems.append("inline script")


@pytest.fixture
def populated(admin, send, store):
    """An egress alert whose events carry markup in the file name and the USB label."""
    media = dict(make_egress()["media"], label=MARKUP_LABEL)
    send(make_event("media.mounted", path=None, media=media))
    send(make_egress("core", path=f"/media/zhang/KINGSTON/{MARKUP_NAME}", media=media))
    send(make_event("file.modified", level="core", path="/srv/rnd/drawings/pump-impeller.dwg"))
    return admin


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_strict_headers_and_nothing_inline(populated, page):
    if page == "/console/login":
        populated.cookies.clear()
    answer = populated.get(page)

    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-security-policy"] == CSP
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["content-type"].startswith("text/html")
    parser = _Inline()
    parser.feed(answer.text)
    assert parser.problems == []


@pytest.mark.parametrize("page", ["/console/events", "/console/alerts/1", "/console/devices", "/console/"])
def test_markup_from_agents_is_shown_as_text(populated, page):
    html = populated.get(page).text
    assert "<img src=x" not in html and "<script>alert" not in html and "<b>KINGSTON" not in html
    if page in ("/console/events", "/console/alerts/1"):
        assert "&lt;img src=x onerror=alert(1)&gt;.docx" in html
    if page in ("/console/devices", "/console/alerts/1"):
        assert "&lt;script&gt;alert(&#34;usb&#34;)&lt;/script&gt;&lt;b&gt;KINGSTON&lt;/b&gt;" in html


def test_static_files_are_served_and_nothing_else(admin):
    assert admin.get("/console/static/console.css").headers["content-type"].startswith("text/css")
    assert admin.get("/console/static/console.js").headers["content-type"].startswith("text/javascript")
    for name in ["../app.py", "..%2Fapp.py", "queries.py", "nothing.css"]:
        assert admin.get(f"/console/static/{name}").status_code == 404


def test_front_page_leads_to_the_console(client):
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"


def test_dashboard_counts_open_alerts_and_draws_charts(populated):
    html = populated.get("/console/").text
    assert html.count("<svg") == 8  # severity, category, week, trend, files, users, hosts, devices (tests/console/test_dashboard.py)
    assert "Classified content leaving" in html
    assert re.search(r'<a href="/console/alerts\?severity=critical"><title>Critical: 1</title>', html)
    assert "zhang.wei" in html  # top users


def test_alert_filters_sorting_and_paging(admin, send):
    for i, level in enumerate(["core"] * 3 + ["important"] * 2):  # five users: five incidents
        send(make_egress(level, path=f"/media/zhang/KINGSTON/{level}-{make_event()['id']}.dwg", user=f"user{i}"))
    by_severity = admin.get("/console/alerts", params={"severity": "high"}).text
    assert "2 alerts" in by_severity
    ascending = admin.get("/console/alerts", params={"sort": "id", "order": "asc"}).text
    ids = re.findall(r'href="/console/alerts/(\d+)">\1<', ascending)
    assert ids == sorted(ids, key=int) and len(ids) == 5
    assert "Page 1 of 1" in ascending
    assert admin.get("/console/alerts", params={"severity": "nonsense"}).status_code == 422
    assert admin.get("/console/alerts", params={"since": "yesterday"}).status_code == 422
    assert "0 alerts" in admin.get("/console/alerts", params={"since": "2099-01-01"}).text


def test_event_search_by_user_type_and_path(populated):
    html = populated.get("/console/events", params={"path": "onerror", "type": "egress.file"}).text
    assert html.count("<tr>") == 2  # header and one event
    assert "No events match." in populated.get("/console/events", params={"user": "someone.else"}).text
    assert populated.get("/console/events", params={"path": "x" * 201}).status_code == 422


def test_audit_page_shows_the_audit_log_with_markup_as_text(admin, store):
    """The audit_log table comes with the schema; paging and filters: tests/console/test_audit_log.py."""
    store.audit("console:boss", "user.create", "<b>wang.fang</b>", {"id": 7})
    html = admin.get("/console/audit").text
    assert "<th>Action</th>" in html and "User created" in html and "&lt;b&gt;wang.fang&lt;/b&gt;" in html


def test_register_shows_central_items_and_what_agents_report(populated):
    html = populated.get("/console/register").text
    assert "The register has no items yet." in html and "What the agents report" in html  # items: tests/console/test_register_items.py
    assert "/srv/rnd/drawings" in html and "Core trade secret" in html
