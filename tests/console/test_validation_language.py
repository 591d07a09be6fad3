"""Validation messages on console pages in the viewer's language (server/console/validation.py)."""

from __future__ import annotations

import pytest

from server.console.validation import say
from tests.console.test_one_language import english_in_chinese, foreign

BAD_ITEM = {
    "name": "",
    "level": "secret",
    "category": "x",
    "period": "soon",
    "locations": "linux:/srv/图纸",
    "reason": "r",
}


@pytest.mark.parametrize(
    "english, chinese",
    [
        ("name: must not be empty", "名称：不能为空"),
        ("level: 'secret' is not a level: one of core, important, general, internal", "密级：'secret' 不是密级"),
        ("period: 'soon' is not a period: a date YYYY-MM-DD, 长期 or 公布前", "保密期限：'soon' 不是保密期限"),
        ("scope: is 3000 characters, at most 2000", "知悉范围：有 3000 个字符，最多 2000 个"),
        (
            "'zz' is not vendor:product:serial (two ':' needed), e.g. 0951:1666:* or *:*:60A4",
            "例如 0951:1666:* 或 *:*:60A4",
        ),
        ("the allow-list holds at most 10000 entries", "允许清单最多 10000 条"),
    ],
)
def test_known_messages_are_said_in_chinese_and_left_alone_in_english(english, chinese):
    assert chinese in say(english, "zh")
    assert say(english, "en") == english


def test_a_message_of_no_known_shape_stays_as_it_is():
    assert say("something new went wrong", "zh") == "something new went wrong"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_register_form_says_what_is_wrong_in_the_viewers_language(admin, post_form, lang):
    admin.cookies.set("mw_lang", lang)
    answer = post_form(admin, "/console/register", "/console/register/items", BAD_ITEM)
    assert answer.status_code == 422
    if lang == "zh":
        assert "名称：不能为空" in answer.text and "must not be empty" not in answer.text
        # what is left in Latin letters is what the user typed
        left = {w.strip("'") for t in foreign(answer.text, "zh") for w in english_in_chinese(t)}
        assert left <= {"secret", "soon", "x"}, left
    else:
        assert "name: must not be empty" in answer.text


def test_a_refused_device_pattern_is_said_in_chinese(admin, post_form):
    admin.cookies.set("mw_lang", "zh")
    answer = post_form(admin, "/console/devices", "/console/devices/allow", {"pattern": "zz", "comment": ""})
    assert answer.status_code == 422 and "不是“厂商:产品:序列号”" in answer.text


@pytest.mark.parametrize(
    "note, chinese",
    [
        ("20 more files", "新增 20 个文件"),
        ("3 more files, 5 matching events", "新增 3 个文件，5 个匹配事件"),
        ("2 more matches", "又匹配 2 次"),
        ("high -> critical: 10 files, 1.2 MB", "高 → 严重：10 个文件，1.2 MB"),
        ("still silent after 6 min (3 x the limit): severity critical", "静默已 6 分钟（阈值的 3 倍）：严重程度 严重"),
    ],
)
def test_the_notes_miwei_writes_in_a_history_are_said_in_chinese(note, chinese):
    assert say(note, "zh") == chinese and say(note, "en") == note


def test_a_refused_rule_file_is_explained_in_chinese_at_its_lines(admin, post_form):
    admin.cookies.set("mw_lang", "zh")
    text = "- id: ACME-1\n  title: t\n  category: classified-egress\n  severity: high\n  when:\n    bogus: 1\n"
    answer = post_form(admin, "/console/rules", "/console/rules/upload", {"name": "acme.yaml", "text": text})
    assert answer.status_code == 422
    assert "ACME-1.when.bogus：未知字段 &#39;bogus&#39;" in answer.text and "unknown field" not in answer.text


@pytest.mark.parametrize(
    "english, chinese",
    [
        ("X-1.category: required key is missing", "X-1.category：缺少必需的键"),
        (
            "X-1: the rule needs 'when' (an event rule) or 'correlate' (a correlation rule)",
            "X-1：规则需要 'when'（事件规则）或 'correlate'（关联规则）",
        ),
        (
            "A.when.bogus: unknown field 'bogus' (did you mean 'type'?)",
            "A.when.bogus：未知字段 'bogus'（是否想写 'type'？）",
        ),
        ("A.b: something new (a hint)", "A.b: something new (a hint)"),
    ],
)
def test_rule_file_errors_in_chinese(english, chinese):
    from server.console.validation import say_rule_error

    assert say_rule_error(english, "zh") == chinese and say_rule_error(english, "en") == english
