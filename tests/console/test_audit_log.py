"""The audit log page: paged and filtered in SQL, readable in both languages, exported (and audited), sign-ins recorded."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from tests.console.conftest import csrf_of, sign_in

NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)


def _audit(store) -> list[dict]:
    return store.list_audit(limit=1000).items


def _rows(html: str) -> list[str]:
    """The audit table's rows as text, newest first."""
    table = html.split('<h2>', 2)[1] if '<h2>' in html else html
    return [re.sub(r"<[^>]+>", "|", r) for r in re.findall(r"<tr><td class=\"nowrap\">.*?</tr>", table, re.S)]


@pytest.fixture
def many(store, clock):
    """130 audit rows, one a minute from 2026-01-01T00:00Z, of three kinds and two actors."""
    clock.now = NEW_YEAR
    for i in range(130):
        action, actor = (("user.create", "console:wang.wu") if i % 3 == 0 else ("alert.status", "token:siem") if i % 3 == 1 else ("export.events", "console:li_na"))
        store.audit(actor, action, f"thing:{i}", {"n": i})
        clock.advance(60)
    return 130


def test_the_page_is_paged_in_sql_newest_first(admin, many):
    first = admin.get("/console/audit")
    assert first.status_code == 200
    total = int(re.search(r"(\d+) audit records", first.text).group(1))
    assert total == many + 2  # and the admin's account and sign-in, written first
    assert "Page 1 of 3" in first.text and "page=2" in first.text
    rows = _rows(first.text)
    assert len(rows) == 50
    assert "thing:129" in rows[0] and "thing:80" in rows[49]
    third = admin.get("/console/audit", params={"page": 3}).text
    assert len(_rows(third)) == total - 100 and "thing:0" in third and "Next" not in third.split("</table>")[1]


def test_filters_by_actor_action_target_and_time_on_the_firms_clock(admin, many):
    def shown(**params) -> list[str]:
        """The rows of the first page, as many as match (every test here matches at most 50)."""
        page = admin.get("/console/audit", params=params)
        assert page.status_code == 200, page.text
        total = int(re.search(r"(\d+) audit records", page.text).group(1))
        return _rows(page.text) if total <= 50 else [""] * total

    assert len(shown(actor="WANG")) == 44  # part of the actor, any case
    assert len(shown(action="alert.status")) == 43
    assert len(shown(action="export.")) == 43  # a kind: every export
    assert len(shown(action="login.")) == 1  # the admin's sign-in
    assert len(shown(target="thing:12")) == 11  # 12, 120..129
    assert len(shown(actor="li_na")) == 43 and shown(actor="li%") == []  # LIKE's wildcards match themselves
    # 08:10 in Shanghai is 00:10 UTC: rows 10..19; until a date alone is that whole day
    assert len(shown(**{"from": "2026-01-01 08:10", "until": "2026-01-01 08:20"})) == 10
    assert len(shown(**{"from": "2026-01-01", "until": "2026-01-01"})) == many
    assert shown(**{"until": "2026-01-01 08:00"}) == []  # read as UTC it would have held the whole set
    combined = shown(actor="siem", action="alert.status", **{"from": "2026-01-01 09:00"})
    assert combined and all("thing:" in r for r in combined) and len(combined) == sum(1 for i in range(60, 130) if i % 3 == 1)


@pytest.mark.parametrize("params", [{"action": "LOGIN OR 1=1"}, {"from": "yesterday"}, {"until": "2026-13-01"}, {"actor": "x" * 201}])
def test_bad_filter_values_are_refused(admin, params):
    assert admin.get("/console/audit", params=params).status_code == 422
    assert admin.get("/console/audit/export.csv", params=params).status_code == 422


def test_hostile_filter_values_are_shown_as_text(admin):
    hostile = '"><script>alert(1)</script><a href="javascript:x">'
    page = admin.get("/console/audit", params={"actor": hostile, "target": hostile})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and 'href="javascript:x"' not in page.text
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text  # in the inputs, escaped
    assert "actor=%22%3E%3Cscript%3E" in page.text  # in the export links, url-encoded


def test_export_csv_and_xlsx_keep_the_filters_hold_local_times_and_are_audited(admin, many, store):
    params = {"action": "user.create", "from": "2026-01-01 08:00", "until": "2026-01-01 08:30"}
    csv_bytes = admin.get("/console/audit/export.csv", params=params).content
    text = csv_bytes.decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["id", "at (Asia/Shanghai, UTC+08:00)", "actor", "action", "what", "target", "client", "details"]
    assert [r[5] for r in table[1:]] == [f"thing:{i}" for i in range(27, -1, -3)]
    assert table[-1][1] == "2026-01-01 08:00:00" and table[-1][4] == "User created" and table[-1][7] == '{"n": 0}'

    xlsx_bytes = admin.get("/console/audit/export.xlsx", params=params).content
    sheet = load_workbook(io.BytesIO(xlsx_bytes)).active
    cells = list(sheet.iter_rows(values_only=True))
    assert len(cells) == len(table) and cells[-1][1] == datetime(2026, 1, 1, 8, 0)
    assert sheet.cell(row=len(cells), column=2).is_date

    exports = [e for e in _audit(store) if e["action"] == "export.audit"]
    assert [e["target"] for e in exports] == ["audit.xlsx", "audit.csv"]
    assert exports[0]["actor"] == "console:boss"
    filters = {"action": "user.create", "since": "2026-01-01 08:00", "until": "2026-01-01 08:30"}
    assert exports[0]["details"] == {"rows": 10, "filters": filters, "sha256": hashlib.sha256(xlsx_bytes).hexdigest()}
    assert exports[1]["details"]["sha256"] == hashlib.sha256(csv_bytes).hexdigest()  # each export with its digest


def test_exported_agent_text_cannot_start_a_formula(admin, store):
    store.audit("@evil", "watchlist.add", "=cmd|' /C calc'!A0", {"value": "=1+1"})
    text = admin.get("/console/audit/export.csv", params={"action": "watchlist.add"}).content.decode("utf-8-sig")
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[2] == "'@evil" and row[5] == "'=cmd|' /C calc'!A0"
    assert not any(c.startswith(("=", "+", "@", "-")) for c in row)


def test_sign_in_failure_and_sign_out_are_recorded_with_the_address(client, make_user, store):
    make_user("zhao.lei", "analyst")
    assert sign_in(client, "zhao.lei", "wrong password").status_code == 401
    assert sign_in(client, "nobody", "whatever").status_code == 401
    assert sign_in(client, "zhao.lei").status_code == 303
    page = client.get("/console/audit")
    assert client.post("/console/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
    assert client.post("/console/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code in (303, 403)
    sign_ins = ("login.ok", "login.failed", "login.locked", "logout")
    rows = [(e["action"], e["actor"], e["target"], e["details"].get("client")) for e in reversed(_audit(store)) if e["action"] in sign_ins]
    assert rows == [
        ("login.failed", "anonymous", "user:zhao.lei", "testclient"),
        ("login.failed", "anonymous", "user:nobody", "testclient"),
        ("login.ok", "console:zhao.lei", "user:zhao.lei", "testclient"),
        ("logout", "console:zhao.lei", "user:zhao.lei", "testclient"),  # once: the second had no session left
    ]


@pytest.mark.parametrize("lang, words", [
    ("zh", ("登录", "退出登录", "登录被拒绝", "未登录", "来源地址", "审计记录")),
    ("en", ("Signed in", "Signed out", "Sign-in refused", "Not signed in", "Address", "audit records")),
])  # fmt: skip
def test_sign_ins_are_shown_with_readable_actions_and_the_address(client, make_user, lang, words):
    make_user("zhao.lei", "admin")
    sign_in(client, "zhao.lei", "wrong password", lang=lang)
    assert sign_in(client, "zhao.lei", lang=lang).status_code == 303
    other = TestClient(client.app)
    sign_in(other, "zhao.lei", lang=lang)
    other.post("/console/logout", data={"csrf": csrf_of(other.get("/console/audit").text)})
    page = client.get("/console/audit").text
    shown = [w for w in words if w in page]
    assert len(shown) == len(words), set(words) - set(shown)
    assert "testclient" in page
    filtered = "".join(_rows(client.get("/console/audit", params={"action": "login."}).text))
    assert words[0] in filtered and words[2] in filtered and words[1] not in filtered  # sign-outs are not login.*


def test_paging_stays_fast_with_many_rows(admin, store, engine):
    from sqlalchemy import insert

    from server.schema import audit_log

    with engine.begin() as conn:
        conn.execute(insert(audit_log), [
            {"at": NEW_YEAR + timedelta(seconds=i), "actor": f"console:u{i % 50}", "action": "alert.status", "target": f"alert:{i}", "details": "{}"}
            for i in range(20_000)
        ])  # fmt: skip
    timings = []
    for params in ({}, {"page": 300}, {"actor": "u7", "page": 5}, {"from": "2026-01-01 10:00", "until": "2026-01-01 12:00"}):
        start = time.perf_counter()
        assert admin.get("/console/audit", params=params).status_code == 200
        timings.append(time.perf_counter() - start)
    assert max(timings) < 2.0, timings  # generous for a shared machine; measured figures in the report
