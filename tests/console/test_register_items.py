"""The console's central register: items and history for every reader, forms for administrators only,
CSRF on every form (the upload too), errors shown with the input kept, XLSX export and import."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlalchemy import func, select

from server import register
from server.schema import audit_log, register_history, register_items
from tests.console.conftest import csrf_of

ITEM = {
    "name": "泵叶轮图纸", "level": "core", "category": "技术信息", "owner_department": "研发部", "owner_person": "王工",
    "scope": "研发部设计组", "period": "长期", "locations": "linux:/home/*/研发/图纸\nwindows:D:\\图纸", "reason": "核心产品",
}  # fmt: skip


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def _items(engine) -> list[register.RegisterItem]:
    with engine.connect() as conn:
        return register.list_items(conn, active_only=False)


def test_admin_determines_changes_and_declassifies_an_item(admin, post_form, engine):
    answer = post_form(admin, "/console/register", "/console/register/items", ITEM)
    assert answer.status_code == 303 and "msg=register_saved" in answer.headers["location"]
    item = _items(engine)[0]
    assert item.locations == (("linux", "/home/*/研发/图纸"), ("windows", "D:\\图纸")) and item.owner_person == "王工"

    page = f"/console/register?item={item.id}"
    changed = post_form(
        admin, page, f"/console/register/items/{item.id}", {**ITEM, "owner_person": "李工", "reason": "人员调整"}
    )
    assert changed.status_code == 303
    assert (
        post_form(admin, page, f"/console/register/items/{item.id}/declassify", {"reason": "专利已公开"}).status_code
        == 303
    )
    html = admin.get(page).text
    assert "人员调整" in html and "专利已公开" in html and "王工 &rarr; 李工" in html
    assert "Declassified" in html and 'action="/console/register/items/1/destroy"' in html
    with engine.connect() as conn:
        assert [h.action for h in register.history(conn, item.id)] == ["determined", "changed", "declassified"]
        audits = [
            r[0] for r in conn.execute(select(audit_log.c.actor).where(audit_log.c.action.startswith("register.")))
        ]
    assert audits == ["console:boss"] * 3


def test_refused_fields_are_listed_and_the_input_kept(admin, post_form, engine):
    bad = {**ITEM, "period": "五年", "locations": "linux:/home/../etc\nplan9:/x"}
    answer = post_form(admin, "/console/register", "/console/register/items", bad)
    assert answer.status_code == 422
    assert "period: &#39;五年&#39; is not a period" in answer.text
    assert "&#39;plan9:/x&#39; is not os:pattern" in answer.text and "&#39;..&#39;" in answer.text
    assert 'value="泵叶轮图纸"' in answer.text  # what was typed is still in the form
    assert _count(engine, register_items) == 0 and _count(engine, register_history) == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(audit_log.c.action.startswith("register."))).scalar() == 0


def html_of_a_page_without_forms(browser) -> str:
    return browser.get("/console/events").text


def test_analyst_sees_items_and_history_but_no_forms(admin, analyst, post_form, engine):
    post_form(admin, "/console/register", "/console/register/items", ITEM)
    html = analyst.get("/console/register?item=1").text
    assert "泵叶轮图纸" in html and "核心产品" in html
    assert 'action="/console/register/items' not in html and 'action="/console/register/import"' not in html
    assert html.count('name="csrf"') == html_of_a_page_without_forms(analyst).count(
        'name="csrf"'
    )  # the sign-out form only
    assert "/console/register/items.xlsx" in html  # reading and exporting are for every reader
    token = csrf_of(analyst.get("/console/").text)
    refused = analyst.post("/console/register/items", data={**ITEM, "csrf": token}, follow_redirects=False)
    assert refused.status_code == 403
    assert (
        analyst.post(
            "/console/register/items/1/destroy", data={"reason": "x", "csrf": token}, follow_redirects=False
        ).status_code
        == 403
    )
    assert _count(engine, register_history) == 1


def test_forms_without_the_csrf_token_are_refused(admin, post_form, engine):
    assert admin.post("/console/register/items", data=ITEM, follow_redirects=False).status_code == 403
    post_form(admin, "/console/register", "/console/register/items", ITEM)
    assert (
        admin.post(
            "/console/register/items/1/destroy", data={"reason": "x", "csrf": "wrong"}, follow_redirects=False
        ).status_code
        == 403
    )
    workbook = admin.get("/console/register/items.xlsx").content
    upload = admin.post(
        "/console/register/import",
        data={"reason": "x"},
        files={"workbook": ("r.xlsx", workbook)},
        follow_redirects=False,
    )
    assert upload.status_code == 403
    assert _count(engine, register_history) == 1


def test_export_and_import_back_through_the_console(admin, post_form, engine):
    post_form(admin, "/console/register", "/console/register/items", ITEM)
    before, history_rows = _items(engine), _count(engine, register_history)
    exported = admin.get("/console/register/items.xlsx")
    assert (
        exported.status_code == 200 and load_workbook(io.BytesIO(exported.content)).active["B2"].value == "泵叶轮图纸"
    )
    token = csrf_of(admin.get("/console/register").text)
    answer = admin.post(
        "/console/register/import",
        data={"csrf": token},
        files={"workbook": ("r.xlsx", exported.content)},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and "msg=register_imported" in answer.headers["location"]
    assert _items(engine) == before and _count(engine, register_history) == history_rows

    book = load_workbook(io.BytesIO(exported.content))
    book.active["C2"] = "绝密"
    out = io.BytesIO()
    book.save(out)
    bad = admin.post(
        "/console/register/import",
        data={"csrf": token},
        files={"workbook": ("r.xlsx", out.getvalue())},
        follow_redirects=False,
    )
    assert bad.status_code == 422 and "2:C (密级): &#39;绝密&#39; is not a level" in bad.text
    assert _items(engine) == before


def test_the_page_is_in_chinese(admin, post_form):
    post_form(admin, "/console/register", "/console/register/items", ITEM)
    admin.cookies.set("mw_lang", "zh")
    html = admin.get("/console/register?item=1").text
    for words in ("台账事项", "变更记录", "知悉范围", "定密", "导出保密台账", "从 XLSX 导入", "代理上报的情况"):
        assert words in html, words
