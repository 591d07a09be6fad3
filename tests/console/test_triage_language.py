"""Triage refusals on console pages in the officer's language (server/console/routes_alerts.py,
errors.py, validation.py): a bad status, an over-long note, an unknown assignee, a change the
alert's status does not allow (a colleague resolved it while the page was open: 409) and a path or
query value of the wrong type (FastAPI's 422, JSON for the API) are HTML pages in Chinese for a
Chinese console, with what the officer typed escaped. The API keeps its JSON shapes."""

from __future__ import annotations

import re

import pytest

from tests.console.test_one_language import english_in_chinese, foreign
from tests.server.factories import make_egress

ALERT = "/console/alerts/1"
HOSTILE = "<script>alert(1)</script>"


def _said(html: str) -> str:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', html, re.DOTALL)
    assert found, "the page says nothing"
    return found.group(1)


def _typed_only(html: str, *typed: str) -> None:
    """What is left in Latin letters on the Chinese page is what the officer typed."""
    left = {w.strip("'") for t in foreign(html, "zh") for w in english_in_chinese(t)}
    assert left <= set(typed), left


@pytest.fixture
def zh(admin, send):
    send(make_egress("core"))
    admin.cookies.set("mw_lang", "zh")
    return admin


def test_acknowledging_an_alert_a_colleague_resolved_is_refused_in_chinese(zh, post_form, store, client, reader):
    page = zh.get(ALERT).text  # the officer opens the page while the alert is open
    client.patch("/api/v1/alerts/1", json={"status": "resolved", "comment": "done"}, headers=reader)  # a colleague closes it
    history = store.get_alert(1)["history"]
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    answer = zh.post(ALERT, data={"csrf": token, "status": "acknowledged", "comment": "我来处理"}, follow_redirects=False)

    assert answer.status_code == 409 and answer.headers["content-type"].startswith("text/html")
    assert _said(answer.text) == "告警已是「已解决」：请先「重新打开」（改为「未处理」），再改为「已确认」"
    assert store.get_alert(1)["status"] == "resolved" and store.get_alert(1)["history"] == history
    reopened = post_form(zh, ALERT, ALERT, {"status": "open", "comment": "批准是伪造的"})
    assert reopened.status_code == 303
    assert post_form(zh, ALERT, ALERT, {"status": "acknowledged", "comment": "我来处理"}).status_code == 303
    assert [h["action"] for h in store.get_alert(1)["history"][-2:]] == ["reopened", "status"]


def test_the_refusal_is_in_english_for_an_english_console(admin, send, post_form, client, reader):
    send(make_egress("core"))
    client.patch("/api/v1/alerts/1", json={"status": "false_positive", "comment": "approved"}, headers=reader)
    answer = post_form(admin, ALERT, ALERT, {"status": "acknowledged"})
    assert answer.status_code == 409
    assert _said(answer.text) == "the alert is false_positive: reopen it (status open) before setting it to acknowledged"


def test_an_unknown_status_is_said_in_chinese_with_the_value_escaped(zh, post_form, store):
    answer = post_form(zh, ALERT, ALERT, {"status": HOSTILE, "comment": "x"})
    assert answer.status_code == 422
    assert _said(answer.text) == "处置状态：&#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39; 不是处置状态：应为 未处理、已确认、已解决 或 误报"
    assert HOSTILE not in answer.text
    _typed_only(answer.text, "script", "alert")
    assert store.get_alert(1)["status"] == "open"


def test_an_overlong_note_is_refused_in_chinese_not_cut_short(zh, post_form, store):
    answer = post_form(zh, ALERT, ALERT, {"status": "resolved", "comment": "备" * 4001})
    assert answer.status_code == 422
    assert _said(answer.text) == "备注：有 4001 个字符，最多 4000 个"
    _typed_only(answer.text)
    assert store.get_alert(1)["status"] == "open" and len(store.get_alert(1)["history"]) == 1
    bulk = post_form(zh, "/console/alerts", "/console/alerts/bulk", [("id", "1"), ("status", "resolved"), ("comment", "x" * 4001)])
    assert bulk.status_code == 422 and _said(bulk.text) == "备注：有 4001 个字符，最多 4000 个"
    assert post_form(zh, ALERT, ALERT, {"status": "resolved", "comment": "备" * 4000}).status_code == 303


def test_a_bulk_action_and_an_assignee_that_do_not_exist_are_said_in_chinese(zh, post_form):
    bulk = post_form(zh, "/console/alerts", "/console/alerts/bulk", [("id", "1"), ("status", "open!")])
    assert bulk.status_code == 422
    assert _said(bulk.text) == "处置状态：&#39;open!&#39; 不是批量操作：应为 确认、解决、误报 或 分配"
    nobody = post_form(zh, ALERT, "/console/alerts/1/assign", {"assignee": HOSTILE})
    assert nobody.status_code == 422
    assert _said(nobody.text) == "&#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39; 不是角色为分析员或管理员的控制台用户"
    _typed_only(nobody.text, "script", "alert")


@pytest.mark.parametrize(
    "method, path, said",
    [
        ("post", "/console/alerts/abc", "告警编号：必须是整数"),
        ("get", "/console/alerts/1?page=0", "页码：不能小于 1"),
        ("get", "/console/alerts?order=up&page=x", "顺序：格式不对；页码：必须是整数"),
    ],
)
def test_a_mistyped_path_or_query_value_is_a_console_page_in_chinese(zh, post_form, method, path, said):
    answer = post_form(zh, ALERT, path, {"status": "resolved"}) if method == "post" else zh.get(path)
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("text/html")
    assert _said(answer.text) == said
    _typed_only(answer.text)


def test_the_api_keeps_its_json_error_shapes(client, reader, send):
    send(make_egress("core"))
    bad = client.patch("/api/v1/alerts/1", json={"status": "deleted", "comment": "x" * 4001}, headers=reader)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/json"
    assert [(e["type"], e["loc"]) for e in bad.json()["detail"]] == [
        ("literal_error", ["body", "status"]),
        ("string_too_long", ["body", "comment"]),
    ]
    assert client.get("/api/v1/alerts/1?x", headers=reader).status_code == 200
    assert client.patch("/api/v1/alerts/abc", json={"status": "open"}, headers=reader).json()["detail"][0]["type"] == "int_parsing"


def _open_button(html: str) -> str | None:
    found = re.search(r'<button type="submit" name="status" value="open" formnovalidate>(.*?)</button>', html)
    return found.group(1) if found else None


def test_the_button_back_to_open_says_what_it_does(zh, post_form, store):
    """An acknowledged alert goes back to the queue unclaimed (history: status, nobody notified);
    only a closed alert is reopened (history: reopened, notified again): the button said 重新打开
    for both."""
    assert _open_button(zh.get(ALERT).text) is None  # open already
    post_form(zh, ALERT, ALERT, {"status": "acknowledged", "comment": "我来处理"})
    assert _open_button(zh.get(ALERT).text) == "退回未处理"
    post_form(zh, ALERT, ALERT, {"status": "open", "comment": "不是我的"})
    post_form(zh, ALERT, ALERT, {"status": "resolved", "comment": "已处理"})
    assert _open_button(zh.get(ALERT).text) == "重新打开"
    assert [h["action"] for h in store.get_alert(1)["history"][-3:]] == ["status", "status", "status"]


def _status_buttons(html: str) -> dict[str, str]:
    form = re.search(r'<form method="post" action="[^"]*/alerts/1" class="handle">(.*?)</form>', html, re.DOTALL)
    assert form, "no handling form"
    return {label: value for value, label in re.findall(r'<button type="submit" name="status" value="([^"]*)"[^>]*>(.*?)</button>', form.group(1))}


def test_each_status_offers_the_changes_it_allows_and_a_comment_of_its_own(zh, post_form, store):
    """An acknowledged alert offered 确认 again (a comment in disguise, and a resolved one offered
    解决): each status now offers only real changes, and 添加备注 sends the alert's own status,
    which the history keeps as a comment without changing anything."""
    assert _status_buttons(zh.get(ALERT).text) == {"确认": "acknowledged", "解决": "resolved", "误报": "false_positive", "添加备注": "open"}
    post_form(zh, ALERT, ALERT, {"status": "acknowledged", "comment": "我来处理"})
    assert _status_buttons(zh.get(ALERT).text) == {"解决": "resolved", "误报": "false_positive", "退回未处理": "open", "添加备注": "acknowledged"}
    post_form(zh, ALERT, ALERT, {"status": "acknowledged", "comment": "已约谈当事人"})
    alert = store.get_alert(1)
    assert alert["status"] == "acknowledged"
    assert [(h["action"], h["comment"]) for h in alert["history"][-2:]] == [("status", "我来处理"), ("comment", "已约谈当事人")]
    post_form(zh, ALERT, ALERT, {"status": "resolved", "comment": "已处理"})
    assert _status_buttons(zh.get(ALERT).text) == {"误报": "false_positive", "重新打开": "open", "添加备注": "resolved"}
    post_form(zh, ALERT, ALERT, {"status": "false_positive", "comment": "规则误判"})
    assert _status_buttons(zh.get(ALERT).text) == {"解决": "resolved", "重新打开": "open", "添加备注": "false_positive"}


def test_only_the_comment_button_needs_a_comment():
    """The browser asks for a comment before 添加备注 (the textarea is required) but not before a
    status change (formnovalidate): a change with no note stays one click."""
    from pathlib import Path

    form = Path(__file__).resolve().parents[2] / "server/console/templates/alert.html"
    html = form.read_text(encoding="utf-8")
    assert re.search(r'<textarea name="comment"[^>]* required>', html)
    for button in re.findall(r'<button type="submit" name="status"[^>]*>', html):
        assert ("formnovalidate" in button) != ('class="comment-only"' in button), button
