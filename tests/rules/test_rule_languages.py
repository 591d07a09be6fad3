"""Rules in two languages: title_zh and description_zh, optional, shown to a Chinese reader."""

from __future__ import annotations

import re

import pytest

from rules.errors import InvalidInput
from rules.loader import default_pack_sources, load_rule_sources

OLD_STYLE = """
- id: ACME-CAD
  title: CAD drawing to USB
  category: classified-egress
  severity: high
  description: Any CAD drawing written to removable media.
  when:
    type: egress.file
"""


def test_every_shipped_rule_has_a_chinese_title_and_description():
    rules = load_rule_sources(default_pack_sources())
    for rule in (*rules.event_rules, *rules.correlation_rules):
        assert re.search(r"[\u4e00-\u9fff]", rule.title_zh), rule.id
        assert rule.title_in("zh") == rule.title_zh and rule.title_in("en") == rule.title
        if rule.description:
            assert re.search(r"[\u4e00-\u9fff]", rule.description_zh), rule.id
            assert rule.description_in("zh") == rule.description_zh


def test_a_rule_without_chinese_loads_and_falls_back_to_english():
    (rule,) = load_rule_sources([("site.yaml", OLD_STYLE)]).event_rules
    assert rule.title_zh == "" and rule.title_in("zh") == "CAD drawing to USB"
    assert rule.description_in("zh") == "Any CAD drawing written to removable media."


def test_chinese_fields_are_read_and_an_empty_one_is_refused():
    text = OLD_STYLE.replace("  category:", '  title_zh: "CAD 图纸写入 U 盘"\n  category:')
    (rule,) = load_rule_sources([("site.yaml", text)]).event_rules
    assert rule.title_in("zh") == "CAD 图纸写入 U 盘"
    with pytest.raises(InvalidInput) as refused:
        load_rule_sources([("site.yaml", text.replace('"CAD 图纸写入 U 盘"', '""'))])
    assert "title_zh" in str(refused.value.errors[0])


@pytest.mark.parametrize(
    "english, chinese",
    [
        ("Kingston DataTraveler 3.0 (serial 60A4)", "Kingston DataTraveler 3.0（序列号 60A4）"),
        ("the cloud-drive folder of WeChat", "WeChat网盘同步目录"),
        ("the file folder of WeChat (sent or received through WeChat)", "WeChat的文件目录（经WeChat收发）"),
        ("the phone iPhone", "手机 iPhone"),
        ("KINGSTON", "KINGSTON"),
    ],
)
def test_a_place_as_device_name_says_it_reads_in_chinese(english, chinese):
    from rules.explain import place_zh

    assert place_zh(english) == chinese


def test_an_explanation_is_shown_in_one_language_old_ones_too():
    from rules.explain import bilingual, in_language

    kept = bilingual(
        "a.dwg written to removable media.\nSeverity high.", "用户 zhang 把 a.dwg 复制到移动存储介质。\n严重程度：高。"
    )
    assert in_language(kept, "en") == "a.dwg written to removable media.\nSeverity high."
    assert in_language(kept, "zh") == "用户 zhang 把 a.dwg 复制到移动存储介质。\n严重程度：高。"
    old = "/srv/图纸/a.dwg written to removable media.\nRule X (t) matched.\n用户 zhang 把文件 /srv/图纸/a.dwg 复制到移动存储介质。"
    assert in_language(old, "en") == "/srv/图纸/a.dwg written to removable media.\nRule X (t) matched."
    assert in_language(old, "zh") == "用户 zhang 把文件 /srv/图纸/a.dwg 复制到移动存储介质。"
    assert in_language("only English", "zh") == "only English"
