"""The central secret register through /api/v1/register: CRUD, roles, field checks, append-only
history, audit rows, and the XLSX round trip and all-or-nothing import."""

from __future__ import annotations

import base64
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from server.auth import API_TOKEN_PREFIX, new_token
from server.register_check import check_pattern
from server.register_xlsx import XLSX_HEADER_ZH
from server.schema import audit_log, register_history, register_items

PUMP = {
    "name": "泵叶轮图纸",
    "level": "core",
    "category": "技术信息",
    "owner_department": "研发部",
    "owner_person": "王工",
    "scope": "研发部设计组",
    "period": "长期",
    "locations": [
        {"os": "linux", "pattern": "/home/*/研发/图纸"},
        {"os": "windows", "pattern": "%USERPROFILE%\\Documents\\研发"},
    ],
    "reason": "核心产品的设计",
}


@pytest.fixture
def admin_h(store) -> dict[str, str]:
    token = new_token(API_TOKEN_PREFIX)
    store.create_api_token("boss", token, role="admin")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def analyst_h(store) -> dict[str, str]:
    token = new_token(API_TOKEN_PREFIX)
    store.create_api_token("li.na", token, role="analyst")
    return {"Authorization": f"Bearer {token}"}


def _create(client, headers, **changes) -> dict:
    response = client.post("/api/v1/register", json={**PUMP, **changes}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_admin_creates_changes_declassifies_and_destroys_with_history(client, admin_h, analyst_h, engine):
    item = _create(client, admin_h)
    assert item["state"] == "active" and item["locations"][1] == {
        "os": "windows",
        "pattern": "%USERPROFILE%\\Documents\\研发",
    }
    changed = client.patch(
        f"/api/v1/register/{item['id']}", json={"level": "important", "reason": "降级评审"}, headers=admin_h
    )
    assert changed.status_code == 200 and changed.json()["changed"] is True and changed.json()["level"] == "important"
    same = client.patch(
        f"/api/v1/register/{item['id']}", json={"level": "important", "reason": "again"}, headers=admin_h
    )
    assert same.json()["changed"] is False
    assert (
        client.post(f"/api/v1/register/{item['id']}/declassify", json={"reason": "已公开"}, headers=admin_h).json()[
            "state"
        ]
        == "declassified"
    )
    assert (
        client.patch(f"/api/v1/register/{item['id']}", json={"name": "x", "reason": "r"}, headers=admin_h).status_code
        == 409
    )
    assert (
        client.post(f"/api/v1/register/{item['id']}/destroy", json={"reason": "载体已销毁"}, headers=admin_h).json()[
            "state"
        ]
        == "destroyed"
    )
    assert (
        client.post(f"/api/v1/register/{item['id']}/declassify", json={"reason": "r"}, headers=admin_h).status_code
        == 409
    )

    detail = client.get(f"/api/v1/register/{item['id']}", headers=analyst_h).json()
    history = detail["history"]
    assert [h["action"] for h in history] == ["determined", "changed", "declassified", "destroyed"]
    assert (
        history[0]["before"] is None
        and history[0]["after"]["level"] == "core"
        and history[0]["reason"] == "核心产品的设计"
    )
    assert (
        history[1]["before"]["level"] == "core" and history[1]["after"]["level"] == "important"
    )  # the earlier state is kept
    assert {h["actor"] for h in history} == {"token:boss"}
    with engine.connect() as conn:
        actions = [
            r[0]
            for r in conn.execute(
                select(audit_log.c.action).where(audit_log.c.action.startswith("register.")).order_by(audit_log.c.id)
            )
        ]
    assert actions == ["register.create", "register.update", "register.declassify", "register.destroy"]


def test_analyst_reads_but_cannot_change(client, admin_h, analyst_h, engine):
    item = _create(client, admin_h)
    assert client.get("/api/v1/register", headers=analyst_h).json()["items"][0]["name"] == "泵叶轮图纸"
    assert client.post("/api/v1/register", json=PUMP, headers=analyst_h).status_code == 403
    assert (
        client.patch(f"/api/v1/register/{item['id']}", json={"name": "x", "reason": "r"}, headers=analyst_h).status_code
        == 403
    )
    for action in ("declassify", "destroy"):
        assert (
            client.post(f"/api/v1/register/{item['id']}/{action}", json={"reason": "r"}, headers=analyst_h).status_code
            == 403
        )
    assert client.post("/api/v1/register/import", json={"xlsx_base64": "eA=="}, headers=analyst_h).status_code == 403
    assert client.get("/api/v1/register").status_code == 401
    assert _count(engine, register_history) == 1


def test_history_cannot_be_deleted_or_rewritten_through_the_api(client, admin_h):
    item = _create(client, admin_h)
    for method in ("delete", "put", "patch"):
        assert getattr(client, method)(f"/api/v1/register/{item['id']}/history", headers=admin_h).status_code in (
            404,
            405,
        )
    assert client.delete(f"/api/v1/register/{item['id']}", headers=admin_h).status_code == 405
    assert len(client.get(f"/api/v1/register/{item['id']}", headers=admin_h).json()["history"]) == 1


def test_list_filters(client, admin_h):
    _create(client, admin_h)
    _create(
        client,
        admin_h,
        name="客户名单",
        level="important",
        category="经营信息",
        locations=[],
        owner_department="销售部",
    )
    assert [i["name"] for i in client.get("/api/v1/register?category=经营信息", headers=admin_h).json()["items"]] == [
        "客户名单"
    ]
    assert [i["name"] for i in client.get("/api/v1/register?level=core", headers=admin_h).json()["items"]] == [
        "泵叶轮图纸"
    ]
    assert [i["name"] for i in client.get("/api/v1/register?q=销售", headers=admin_h).json()["items"]] == ["客户名单"]
    assert client.get("/api/v1/register?q=_", headers=admin_h).json()["items"] == []  # _ is text, not a LIKE wildcard
    assert client.get("/api/v1/register?state=destroyed", headers=admin_h).json()["items"] == []
    assert client.get("/api/v1/register?level=secret", headers=admin_h).status_code == 422


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"level": "secret"}, "level", "not a level"),
        ({"category": "技术"}, "category", "not a category"),
        ({"period": "2026-02-30"}, "period", "not a period"),
        ({"period": "五年"}, "period", "not a period"),
        ({"name": " "}, "name", "must not be empty"),
        ({"name": "x" * 201}, "name", "at most 200"),
        ({"locations": [{"os": "linux", "pattern": "/home/../etc"}]}, "locations[0]", "'..'"),
        ({"locations": [{"os": "linux", "pattern": "研发/图纸"}]}, "locations[0]", "not absolute"),
        ({"locations": [{"os": "bsd", "pattern": "/x"}]}, "locations[0]", "not one of"),
        ({"locations": [{"os": "windows", "pattern": "%TEMP%\\x"}]}, "locations[0]", "not absolute"),
        ({"locations": [{"os": "linux", "pattern": f"/d{i}"} for i in range(51)]}, "locations", "at most 50"),
    ],
)
def test_field_errors_name_the_field(client, admin_h, engine, changes, field, words):
    response = client.post("/api/v1/register", json={**PUMP, **changes}, headers=admin_h)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]["errors"]
    assert any(e["field"] == field and words in e["message"] for e in errors), errors
    assert _count(engine, register_items) == 0 and _count(engine, register_history) == 0


def test_every_error_of_a_body_is_reported_at_once(client, admin_h):
    errors = client.post(
        "/api/v1/register", json={**PUMP, "level": "x", "category": "y", "period": "z"}, headers=admin_h
    ).json()["detail"]["errors"]
    assert {e["field"] for e in errors} == {"level", "category", "period"}


def test_declassify_needs_a_reason(client, admin_h):
    item = _create(client, admin_h)
    response = client.post(f"/api/v1/register/{item['id']}/declassify", json={"reason": " "}, headers=admin_h)
    assert response.status_code == 422 and response.json()["detail"]["errors"][0]["field"] == "reason"


@pytest.mark.parametrize(
    "os_name, pattern, stored",
    [
        ("linux", "/home/*/研发/图纸/", "/home/*/研发/图纸"),
        ("linux", "~/图纸", "~/图纸"),
        ("macos", "${HOME}/Documents/研发", "${HOME}/Documents/研发"),
        ("linux", "/data/$USER/图纸", "/data/$USER/图纸"),
        ("windows", "d:/图纸", "D:\\图纸"),
        ("windows", "%userprofile%\\Documents\\研发", "%USERPROFILE%\\Documents\\研发"),
        ("windows", "\\\\fs01\\研发", "\\\\fs01\\研发"),
        ("windows", "D:\\项目\\%username%\\图纸", "D:\\项目\\%USERNAME%\\图纸"),
    ],
)
def test_patterns_accepted(os_name, pattern, stored):
    assert check_pattern(os_name, pattern) == stored


@pytest.mark.parametrize(
    "os_name, pattern",
    [("linux", "/*"), ("linux", "~"), ("linux", "$PATH/x"), ("linux", "/a/**/b"), ("linux", "/a/?"), ("linux", "/a/./b"),
     ("linux", "/a//b"), ("windows", "C:\\a|b"), ("windows", "C:\\a:b"), ("windows", "\\\\..\\x"), ("windows", "%TEMP%\\x"),
     ("windows", "Documents\\x"), ("linux", "/a\x00b"), ("linux", "/" + "a" * 1024)],
)  # fmt: skip
def test_patterns_refused(os_name, pattern):
    with pytest.raises(ValueError):
        check_pattern(os_name, pattern)


def _import(client, data: bytes, headers, **extra):
    return client.post(
        "/api/v1/register/import", json={"xlsx_base64": base64.b64encode(data).decode(), **extra}, headers=headers
    )


def _sheet(data: bytes):
    return load_workbook(io.BytesIO(data)).active


def _xlsx(sheet) -> bytes:
    out = io.BytesIO()
    sheet.parent.save(out)
    return out.getvalue()


def test_xlsx_round_trip_leaves_the_register_unchanged(client, admin_h, engine):
    first = _create(client, admin_h, name='=HYPERLINK("x")', scope="研发部\n设计组")
    second = _create(
        client, admin_h, name="客户名单", level="important", category="经营信息", period="2030-12-31", locations=[]
    )
    client.post(f"/api/v1/register/{second['id']}/declassify", json={"reason": "已公开"}, headers=admin_h)
    before = client.get("/api/v1/register", headers=admin_h).json()["items"]
    history_rows, audit_rows = _count(engine, register_history), _count(engine, audit_log)

    exported = client.get("/api/v1/register/export.xlsx", headers=admin_h)
    assert exported.status_code == 200
    sheet = _sheet(exported.content)
    assert [c.value for c in sheet[1]][:3] == ["编号 / No.", "名称 / Name", "密级 / Level"]
    assert [c.value for c in sheet[1]] and all(
        str(c.value).split(" / ")[0] == zh for c, zh in zip(sheet[1], XLSX_HEADER_ZH, strict=True)
    )
    assert (
        sheet["B2"].value == '\'=HYPERLINK("x")'
        and sheet["C2"].value == "核心商业秘密"
        and sheet["J3"].value == "已解密"
    )
    assert sheet["I2"].value == "linux:/home/*/研发/图纸\nwindows:%USERPROFILE%\\Documents\\研发"

    imported = _import(client, exported.content, admin_h)
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"created": 0, "changed": 0, "declassified": 0, "destroyed": 0, "unchanged": 2}
    assert client.get("/api/v1/register", headers=admin_h).json()["items"] == before
    assert _count(engine, register_history) == history_rows  # no change, no history row
    assert _count(engine, audit_log) == audit_rows + 2  # the export and the import themselves
    assert first["name"] == before[0]["name"]


def test_import_applies_changes_and_new_rows(client, admin_h):
    item = _create(client, admin_h)
    sheet = _sheet(client.get("/api/v1/register/export.xlsx", headers=admin_h).content)
    sheet["F2"] = "李工"
    sheet.append([None, "工艺配方", "核心商密", "技术信息", "工艺部", "赵工", "", "公布前", "windows:D:\\配方", "有效"])
    result = _import(client, _xlsx(sheet), admin_h, reason="年度复核").json()
    assert result == {"created": 1, "changed": 1, "declassified": 0, "destroyed": 0, "unchanged": 0}
    history = client.get(f"/api/v1/register/{item['id']}", headers=admin_h).json()["history"]
    assert (
        history[-1]["reason"] == "年度复核"
        and history[-1]["before"]["owner_person"] == "王工"
        and history[-1]["after"]["owner_person"] == "李工"
    )
    new = client.get("/api/v1/register?q=配方", headers=admin_h).json()["items"][0]
    assert new["level"] == "core" and new["locations"] == [{"os": "windows", "pattern": "D:\\配方"}]


def test_a_bad_sheet_changes_nothing_and_says_row_and_column(client, admin_h, engine):
    _create(client, admin_h)
    sheet = _sheet(client.get("/api/v1/register/export.xlsx", headers=admin_h).content)
    sheet["F2"] = "李工"  # a good change on row 2: must not be applied either
    sheet.append([None, "新图纸", "绝密", "技术信息", "", "", "", "长期", "linux:/srv/图纸", "有效"])
    sheet.append([999, "不存在", "core", "技术信息", "", "", "", "长期", "", "有效"])
    sheet.append([None, "路径", "core", "技术信息", "", "", "", "明年", "linux:srv/../x\nplan9:/x", "有效"])
    before = client.get("/api/v1/register", headers=admin_h).json()["items"]
    history_rows, audit_rows = _count(engine, register_history), _count(engine, audit_log)

    response = _import(client, _xlsx(sheet), admin_h)
    assert response.status_code == 422
    errors = response.json()["detail"]["errors"]
    assert any(e.startswith("3:C (密级): 'x'") or e.startswith("3:C (密级):") for e in errors), errors
    assert any(e.startswith("4:A (编号): no item 999") for e in errors), errors
    assert any(e.startswith("5:I (存放位置): 'plan9:/x'") for e in errors), errors
    assert client.get("/api/v1/register", headers=admin_h).json()["items"] == before
    assert _count(engine, register_history) == history_rows and _count(engine, audit_log) == audit_rows


def test_import_refuses_what_is_not_a_workbook(client, admin_h):
    response = _import(client, b"PK\x03\x04not really", admin_h)
    assert response.status_code == 422 and "not an XLSX workbook" in response.json()["detail"]["errors"][0]
    big = _import(client, b"x" * (5 * 1024 * 1024 + 1), admin_h)
    assert big.status_code == 422 and "at most" in big.text
    assert client.post("/api/v1/register/import", json={"xlsx_base64": "***"}, headers=admin_h).status_code == 422
