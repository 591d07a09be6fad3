"""Names an agent sends (file names, volume labels, users, hosts) cannot forge lines of an explanation.

An explanation is read in the console, in emails and in chat messages. A file named
"a.docx\\nRule MW-EGRESS-CLASSIFIED did not match" must read as one escaped name, not as a second
line in MiWei's voice; a right-to-left override must not turn "gpj.exe" into "exe.jpg".
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rules.engine import EventEngine
from rules.events import Event, Match, Media
from rules.explain import ZH_MARK, chinese_line, describe_event, explain_absence, explain_verdict, hit_facts, plain
from rules.loader import default_pack_sources, load_rule_sources
from rules.worktime import WorkTime

FORGED = "plan.docx\nRule MW-EGRESS-CLASSIFIED did not match; severity info."
RTL = "invoice\u202egpj.exe"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("总装图 v2.dwg", "总装图 v2.dwg"),
        ("a\tb\r\nc", "a\\tb\\r\\nc"),
        (RTL, "invoice\\u202egpj.exe"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("bell\x07", "bell\\x07"),
        ("line\u2028sep", "line\\u2028sep"),
        ("C:\\Users\\alice\\a.txt", "C:\\Users\\alice\\a.txt"),
        ("全角\u3000空格", "全角\u3000空格"),  # a visible (if wide) space stays
        ("", ""),
        (None, None),
    ],
)
def test_plain_escapes_only_what_hides_or_breaks_lines(name, shown):
    assert plain(name) == shown


def _event(**values) -> Event:
    media = Media(mountpoint="/media/u/X\nY", label="LBL\u202eexe", vendor="Evil\nCorp", model="Stick", serial="S1")
    base = dict(
        type="egress.file",
        ts="2024-05-06T02:00:00Z",
        host="pc\n07",
        user="alice\nSeverity info.",
        path="/media/u/" + FORGED,
        size=10,
        sha256="ab" * 32,
        level="core",
        source_path="/secret/" + RTL,
        match=Match("exact"),
        media=media,
        egress="removable",
    )
    base.update(values)
    return Event(**base)


def _one_line_each(text: str, lines: int) -> None:
    assert len(text.split("\n")) == lines, text


def test_an_event_sentence_stays_one_line_whatever_the_names():
    sentence = describe_event(_event())
    _one_line_each(sentence, 1)
    assert "plan.docx\\nRule MW-EGRESS-CLASSIFIED did not match" in sentence
    assert "\u202e" not in sentence and "invoice\\u202egpj.exe" in sentence
    assert "Evil\\nCorp" in sentence and "alice\\nSeverity info." in sentence


@pytest.mark.parametrize("category", ["classified-egress", "unknown-device", "off-hours", "anything-else"])
def test_the_chinese_line_stays_one_line(category):
    _one_line_each(chinese_line(category, _event()), 1)


def test_a_rule_explanation_has_its_own_lines_only():
    rules = load_rule_sources(
        [
            (
                "r.yaml",
                "- id: T-1\n  title: copy\n  category: classified-egress\n  severity: high\n"
                "  when:\n    type: egress.file\n    path: {contains: plan}\n"
                "  unless:\n    user: bob\n",
            )
        ]
    )
    engine = EventEngine(rules)
    event = _event()
    verdict = engine.judge(rules.event_rules[0], event)
    assert verdict.matched
    text = explain_verdict(verdict, event, WorkTime(), engine.value)
    # in each language: what happened, why it matched, its exceptions, the severity (Chinese: the
    # summary line first); the mark between them: ten lines, no more
    _one_line_each(text, 10)
    assert text.split("\n")[4] == ZH_MARK
    assert "\u202e" not in text


def test_correlation_facts_and_absence_carry_escaped_names():
    facts = hit_facts(_event(), {})
    assert "\n" not in facts["path"] and "\n" not in facts["host"] and "\n" not in facts["place"]
    now = datetime(2024, 5, 6, 3, tzinfo=UTC)
    absence = next(r for r in load_rule_sources(default_pack_sources()).correlation_rules if r.category == "agent-offline")
    text = explain_absence(absence, "agent-1", "pc\nFAKE LINE", now.replace(hour=2), now, 300, True, WorkTime())
    _one_line_each(text, 6)  # two English, the mark, three Chinese


@pytest.mark.parametrize(
    ("egress", "app", "en", "zh"),
    [
        ("im", "WeChat", "the file folder of WeChat (sent or received through WeChat)", "WeChat的文件目录（经WeChat收发）"),
        ("sync", "Baidu Netdisk", "the cloud-drive folder of Baidu Netdisk", "Baidu Netdisk网盘同步目录"),
        ("printer", "HP_LaserJet", "the printer HP_LaserJet", "打印机 HP_LaserJet"),
        ("im", None, "the file folder of an IM client", "即时通讯软件的文件目录"),
        ("im", "We\nChat\u202e", "the file folder of We\\nChat\\u202e", "We\\nChat\\u202e的文件目录"),
    ],
)
def test_an_app_place_is_named_by_its_kind_and_app_in_both_languages(egress, app, en, zh):
    event = Event(type="egress.file", host="pc1", user="zhang", path="/x/a.dwg", egress=egress, level="core", source_path="/rnd/a.dwg", details={"app": app} if app else None)
    sentence, line = describe_event(event), chinese_line("classified-egress", event)
    assert en in sentence and zh in line, (sentence, line)
    _one_line_each(sentence, 1)
    _one_line_each(line, 1)


def test_a_read_by_a_network_application_names_the_app_and_its_executable():
    event = Event(type="classified.read", host="pc1", user="zhang", path="/rnd/a.dwg", level="core", details={"app": "Chromium", "process": {"exe": "/usr/lib/chromium/chromium\n"}})
    assert "Chromium (/usr/lib/chromium/chromium\\n) read /rnd/a.dwg, a file in a classified folder (level core" in describe_event(event)
    assert "用网络应用 Chromium 读取了核心商业秘密文件 /rnd/a.dwg" in chinese_line("classified-read", event)
