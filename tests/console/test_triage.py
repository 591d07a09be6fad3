"""The alert list an officer triages (issue 19 item 2): columns, filters, the default view, saved
views, bulk actions that keep the filters and count what changed, assignment, CSRF, hostile values.

Alerts are written straight into the table (the columns an incident has), so each filter is tested
against rows that differ in exactly the value filtered on, whatever the grouping rules do.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import insert, select

from server.schema import alert_history, alerts, saved_views, users
from tests.console.conftest import FORM

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 17:00 in Beijing
BASE = {
    "rule_id": "MW-EGRESS-CLASSIFIED", "category": "classified-egress", "severity": "high", "title": "Classified content leaving",
    "status": "open", "count": 1, "explanation": "", "agent_id": "a1", "host": "pc-0042", "user": "zhang.wei",
}  # fmt: skip


def put(engine, *rows: dict) -> list[int]:
    """Insert alerts (each a dict of the columns that differ from BASE); returns their ids."""
    ids = []
    with engine.begin() as conn:
        for i, row in enumerate(rows):
            created = row.pop("created_at", T0 + timedelta(minutes=i))
            values = {**BASE, "created_at": created, "updated_at": created, **row}
            ids.append(conn.execute(insert(alerts).values(**values).returning(alerts.c.id)).scalar_one())
    return ids


def listed(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="id" value="(\d+)"', html)]


INCIDENT = {
    "kind": "incident", "first_file": "泵体图纸-v3.dwg", "file_count": 13, "top_level": "core", "register_item": "Product drawings",
    "device_label": "KINGSTON", "device_vendor": "Kingston", "place_kind": "removable", "destination": "KINGSTON",
}  # fmt: skip


def test_columns_show_who_what_where_when_status_and_assignee(admin, engine):
    put(
        engine,
        {**INCIDENT, "assignee": "boss"},
        {"title": "Agent stopped <b>", "category": "agent-tamper", "rule_id": "CUSTOM-STOP"},
    )
    html = admin.get("/console/alerts").text
    row = html[html.index('value="1"') :].split("</tr>")[0]
    assert "zhang.wei</bdi></a>@<a" in row and "pc-0042" in row  # who: user@host
    assert "泵体图纸-v3.dwg" in row and "+12 more" in row  # what: the first file and how many besides
    assert "level-core" in row and "Product drawings" in row  # the highest level and the register item
    assert "KINGSTON" in row and "Kingston" in row and "removable media" in row  # where
    assert "2026-03-02 17:00:00" in row  # when, on the firm's clock
    assert "status-open" in row and "<td>boss</td>" in row
    other = html[html.index('value="2"') :].split("</tr>")[0]
    assert "Agent stopped &lt;b&gt;" in other  # not an incident: its title


def test_default_view_is_open_and_acknowledged_newest_first_with_an_all_statuses_choice(admin, engine):
    ids = put(
        engine, {"status": "open"}, {"status": "acknowledged"}, {"status": "resolved"}, {"status": "false_positive"}
    )
    assert listed(admin.get("/console/alerts").text) == [ids[1], ids[0]]
    assert listed(admin.get("/console/alerts", params={"status": "all"}).text) == ids[::-1]
    assert listed(admin.get("/console/alerts", params={"status": "resolved"}).text) == [ids[2]]
    html = admin.get("/console/alerts").text
    assert 'value="active" selected' in html and "All statuses" in html


@pytest.mark.parametrize(
    ("name", "value", "other"),
    [
        ("user", "li.si", {"user": "wang.wu"}),
        ("host", "pc-0007", {"host": "pc-0008"}),
        ("device", "SANDISK-9", {"device_label": "KINGSTON"}),
        ("level", "important", {"top_level": "core"}),
        ("register_item", "Quotations 2026", {"register_item": "Product drawings"}),
        ("assignee", "li.na", {"assignee": "boss"}),
        ("severity", "critical", {"severity": "low"}),
        ("category", "marked-egress", {"category": "classified-egress"}),
        ("status", "acknowledged", {"status": "open"}),
    ],
)
def test_each_filter_narrows_to_the_matching_alerts(admin, engine, name, value, other):
    column = {"device": "device_label", "level": "top_level"}.get(name, name)
    wanted = put(engine, {column: value}, other, {column: value}, {})
    html = admin.get("/console/alerts", params={name: value}).text
    assert listed(html) == [wanted[2], wanted[0]]
    assert f"{2} alerts" in html


def test_time_range_is_read_on_the_firms_clock(admin, engine):
    # 16:30 UTC on 2 March is 00:30 on 3 March in Beijing (the collector's default zone)
    late, early = put(
        engine,
        {"created_at": datetime(2026, 3, 2, 16, 30, tzinfo=UTC)},
        {"created_at": datetime(2026, 3, 2, 15, 30, tzinfo=UTC)},
    )
    assert listed(admin.get("/console/alerts", params={"since": "2026-03-03"}).text) == [late]
    assert listed(admin.get("/console/alerts", params={"until": "2026-03-02"}).text) == [early]  # the whole local day
    assert listed(
        admin.get("/console/alerts", params={"since": "2026-03-02 23:00", "until": "2026-03-03 00:29"}).text
    ) == [early]
    assert admin.get("/console/alerts", params={"until": "tomorrow"}).status_code == 422


def test_filters_are_done_in_sql_with_paging(admin, engine):
    put(engine, *({"user": "bulk.user"} for _ in range(60)), {"user": "else"})
    first = admin.get("/console/alerts", params={"user": "bulk.user"}).text
    assert "60 alerts" in first and len(listed(first)) == 50 and "Page 1 of 2" in first
    assert "user=bulk.user" in re.search(r'href="([^"]*page=2[^"]*)"', first).group(1)
    assert len(listed(admin.get("/console/alerts", params={"user": "bulk.user", "page": 2}).text)) == 10


@pytest.mark.parametrize("hostile", ['"><script>alert(1)</script>', "'; DROP TABLE alerts; --", "%' OR '1'='1"])
def test_hostile_filter_values_are_escaped_and_match_nothing(admin, engine, hostile):
    put(engine, {})
    answer = admin.get("/console/alerts", params={"user": hostile, "host": hostile, "register_item": hostile})
    assert answer.status_code == 200 and listed(answer.text) == []
    assert "<script>alert(1)" not in answer.text
    if "<" in hostile:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
    with admin.app.state.store.engine.connect() as conn:
        assert conn.execute(select(alerts.c.id)).all()  # the table is still there


@pytest.mark.parametrize(
    "params",
    [
        {"user": "x" * 256},
        {"device": "y" * 5000},
        {"host": "a\x00b"},
        {"level": "secret"},
        {"status": "deleted"},
        {"since": "9" * 100},
    ],
)
def test_overlong_or_impossible_filter_values_are_refused(admin, params):
    answer = admin.get("/console/alerts", params=params)
    assert answer.status_code == 422
    error = answer.text.split('class="error"')[1].split("</p>")[0]
    assert len(error) < 200 and "yyy" not in error  # said, not echoed


def test_saved_view_round_trip_keeps_only_filters(admin, engine, post_form):
    answer = post_form(
        admin,
        "/console/alerts",
        "/console/alerts/views",
        {"name": "  Zhang's USB  ", "back": "status=all&user=zhang.wei&page=3&evil=<x>"},
    )
    assert answer.status_code == 303
    assert parse_qs(urlsplit(answer.headers["location"]).query) == {
        "status": ["all"],
        "user": ["zhang.wei"],
        "msg": ["view_saved"],
    }
    html = admin.get("/console/alerts").text
    (view_id,) = re.findall(r'href="/console/alerts/views/(\d+)">Zhang&#39;s USB<', html)
    opened = admin.get(f"/console/alerts/views/{view_id}", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/console/alerts?status=all&user=zhang.wei"
    # saving the same name again replaces the query
    post_form(admin, "/console/alerts", "/console/alerts/views", {"name": "Zhang's USB", "back": "severity=critical"})
    with engine.connect() as conn:
        assert conn.execute(select(saved_views.c.name, saved_views.c.query)).all() == [
            ("Zhang's USB", "severity=critical")
        ]
    assert (
        post_form(admin, "/console/alerts", f"/console/alerts/views/{view_id}/delete")
        .headers["location"]
        .endswith("msg=view_deleted")
    )
    assert admin.get(f"/console/alerts/views/{view_id}", follow_redirects=False).status_code == 404


def test_another_users_view_can_be_neither_opened_nor_deleted(admin, analyst, engine, post_form):
    post_form(admin, "/console/alerts", "/console/alerts/views", {"name": "mine", "back": "user=zhang.wei"})
    with engine.connect() as conn:
        view_id = conn.execute(select(saved_views.c.id)).scalar_one()
    assert analyst.get(f"/console/alerts/views/{view_id}", follow_redirects=False).status_code == 404
    assert post_form(analyst, "/console/alerts", f"/console/alerts/views/{view_id}/delete").status_code == 404
    assert "mine" not in analyst.get("/console/alerts").text.split("Saved views")[1].split("</section>")[0]
    with engine.connect() as conn:
        assert conn.execute(select(saved_views.c.owner)).scalars().all() == ["boss"]


@pytest.mark.parametrize(
    "action",
    [
        "/console/alerts/views",
        "/console/alerts/bulk",
        "/console/alerts/1/assign",
        "/console/alerts/views/1/delete",
        "/console/users/1/email",
    ],
)
def test_forms_without_the_csrf_token_are_refused(admin, engine, action):
    put(engine, {})
    admin.get("/console/alerts")
    body = "name=x&back=user%3Dx&id=1&status=resolved&assignee=boss&email=a%40example.com"
    answer = admin.post(action, content=body, headers=FORM, follow_redirects=False)
    assert answer.status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(alerts.c.status, alerts.c.assignee)).all() == [("open", None)]
        assert conn.execute(select(saved_views.c.id)).all() == []
        assert conn.execute(select(users.c.email)).scalars().all() == [None]


def test_bulk_action_says_how_many_changed_and_keeps_the_filters(admin, engine, post_form):
    ids = put(engine, {}, {}, {"status": "acknowledged"}, {"status": "resolved"}, {"user": "other"})
    page = "/console/alerts?user=zhang.wei&status=all&severity=high"
    body = [
        *(("id", str(i)) for i in ids[:4]),
        ("status", "acknowledged"),
        ("back", "user=zhang.wei&status=all&severity=high&page=9"),
    ]
    answer = post_form(admin, page, "/console/alerts/bulk", body)
    location = answer.headers["location"]
    assert parse_qs(urlsplit(location).query) == {
        "user": ["zhang.wei"],
        "status": ["all"],
        "severity": ["high"],
        "msg": ["changed"],
        "n": ["2"],
    }
    assert "2 alerts changed" in admin.get(location).text
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(alerts.c.id, alerts.c.status)).all())
        # the acknowledged one was not counted; the resolved one is not reopened by "acknowledge"
        assert [statuses[i] for i in ids] == ["acknowledged", "acknowledged", "acknowledged", "resolved", "open"]
        history = conn.execute(select(alert_history.c.alert_id, alert_history.c.action)).all()
    assert sorted(history) == [(ids[0], "status"), (ids[1], "status")]
    fp = post_form(
        admin, page, "/console/alerts/bulk", [("id", str(ids[4])), ("status", "false_positive"), ("back", "")]
    )
    assert fp.headers["location"] == "/console/alerts?msg=changed&n=1"


def test_acknowledge_is_not_offered_for_resolved_or_false_positive_alerts(admin, engine):
    open_, resolved, false_positive = put(engine, {}, {"status": "resolved"}, {"status": "false_positive"})
    button = 'name="status" value="acknowledged"'
    assert button in admin.get("/console/alerts").text
    for status in ("resolved", "false_positive"):
        assert button not in admin.get("/console/alerts", params={"status": status}).text
    assert button in admin.get(f"/console/alerts/{open_}").text
    for alert_id in (resolved, false_positive):
        page = admin.get(f"/console/alerts/{alert_id}").text
        assert button not in page and 'name="status" value="open"' in page  # reopening is its own step


def test_assignment_from_the_list_and_the_page_is_audited_in_the_history_and_filterable(
    admin, analyst, engine, post_form, store
):
    ids = put(engine, {}, {}, {})
    answer = post_form(
        admin,
        "/console/alerts",
        "/console/alerts/bulk",
        [
            ("id", str(ids[0])),
            ("id", str(ids[1])),
            ("status", "assign"),
            ("assignee", "li.na"),
            ("back", "user=zhang.wei"),
        ],
    )
    assert parse_qs(urlsplit(answer.headers["location"]).query)["n"] == ["2"]
    assert (
        post_form(
            admin, f"/console/alerts/{ids[2]}", f"/console/alerts/{ids[2]}/assign", {"assignee": "boss"}
        ).status_code
        == 303
    )
    with engine.connect() as conn:
        assert dict(conn.execute(select(alerts.c.id, alerts.c.assignee)).all()) == {
            ids[0]: "li.na",
            ids[1]: "li.na",
            ids[2]: "boss",
        }
    history = store.get_alert(ids[0])["history"]
    assert (
        history[-1]["action"] == "assigned"
        and history[-1]["actor"] == "console:boss"
        and history[-1]["comment"] == "li.na"
    )
    assert "Assigned to li.na" in admin.get(f"/console/alerts/{ids[0]}").text
    audit = [e for e in store.list_audit(action="alert.assigned").items]
    assert sorted(e["target"] for e in audit) == sorted(f"alert:{i}" for i in ids)
    # the analyst's "assigned to me" view
    mine = analyst.get("/console/alerts", params={"assignee": "me"}).text
    assert listed(mine) == [ids[1], ids[0]]
    # unassigning, and names that are not analysts or admins
    assert post_form(admin, "/console/alerts", f"/console/alerts/{ids[2]}/assign", {"assignee": ""}).status_code == 303
    assert store.get_alert(ids[2])["history"][-1]["comment"] == ""
    assert (
        post_form(admin, "/console/alerts", f"/console/alerts/{ids[2]}/assign", {"assignee": "nobody.here"}).status_code
        == 422
    )
    assert post_form(admin, "/console/alerts", "/console/alerts/999/assign", {"assignee": "boss"}).status_code == 404


def test_admin_sets_a_users_email_on_the_users_page(admin, analyst, engine, post_form, store):
    with engine.connect() as conn:
        li_na = conn.execute(select(users.c.id).where(users.c.name == "li.na")).scalar_one()
    answer = post_form(admin, "/console/users", f"/console/users/{li_na}/email", {"email": "li.na@example.com"})
    assert answer.headers["location"] == "/console/users?msg=email_saved"
    assert 'value="li.na@example.com"' in admin.get("/console/users").text
    for bad in (
        "li.na@example.com, boss@example.com",
        "x\r\nBcc: evil@example.com",
        "no-at-sign",
        "a@" + "b" * 300 + ".com",
    ):
        assert post_form(admin, "/console/users", f"/console/users/{li_na}/email", {"email": bad}).status_code == 422
    assert (
        post_form(analyst, "/console/alerts", f"/console/users/{li_na}/email", {"email": "x@example.com"}).status_code
        == 403
    )
    with engine.connect() as conn:
        assert conn.execute(select(users.c.email).where(users.c.id == li_na)).scalar_one() == "li.na@example.com"
    assert [e["details"] for e in store.list_audit(action="user.email").items] == [{"email": "li.na@example.com"}]


def test_the_lists_export_links_carry_its_filters_and_its_status(admin, engine):
    put(engine, {"user": "li.si"}, {"user": "li.si", "status": "resolved"}, {"user": "wang.wu"})
    html = admin.get("/console/alerts", params={"user": "li.si"}).text
    link = re.search(r'href="(/console/export/alerts\.csv\?[^"]+)"', html).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(link).query) == {"user": ["li.si"], "status": ["active"]}
    rows = admin.get(link).text.strip().splitlines()
    assert len(rows) == 2 and "li.si" in rows[1]  # the header and the one open alert of li.si


@pytest.mark.parametrize(
    "back", ["//evil.example/x", "https://evil.example/", "next=/evil&user=a%0d%0aSet-Cookie:x", "user=" + "z" * 5000]
)
def test_a_bulk_actions_way_back_keeps_only_filter_keys(admin, engine, post_form, back):
    (alert_id,) = put(engine, {})
    answer = post_form(
        admin,
        "/console/alerts",
        "/console/alerts/bulk",
        [("id", str(alert_id)), ("status", "resolved"), ("back", back)],
    )
    location = answer.headers["location"]
    assert answer.status_code == 303 and location.startswith("/console/alerts?")
    assert "evil" not in location and "\r" not in location and "\n" not in location
    assert set(parse_qs(urlsplit(location).query)) <= {"user", "msg", "n"}
