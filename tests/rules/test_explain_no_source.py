"""A classified-egress alert whose source file is unknown (content matched, original not named)
says what is known, in both languages, and never prints a literal `?`."""

from __future__ import annotations

import pytest

from rules.events import Event
from rules.explain import chinese_line, describe_event


def _event(**fields) -> Event:
    return Event(type="egress.file", agent_id="a", host="rd-01", user="alice", path="/media/usb/x.dwg",
                 egress="removable", **fields)  # fmt: skip


@pytest.mark.parametrize(
    "fields, said",
    [
        ({"level": "core"}, "把一个核心商业秘密文件复制到"),
        ({}, "把一个涉密文件复制到"),
        ({"level": "core", "register_entry": "泵叶轮图纸"}, "把一个核心商密《泵叶轮图纸》文件复制到"),
    ],
)
def test_chinese_line_without_a_source_names_the_level_not_a_question_mark(fields, said):
    line = chinese_line("classified-egress", _event(**fields))
    assert "?" not in line and said in line and line.endswith("：/media/usb/x.dwg。")


def test_chinese_line_with_a_source_still_names_it():
    line = chinese_line("classified-egress", _event(level="core", source_path="/data/图纸/x.dwg"))
    assert "把核心商业秘密文件 /data/图纸/x.dwg 复制到" in line


def test_english_sentence_without_a_source_says_classified_content():
    sentence = describe_event(_event(level="core"), "2026-01-05 10:00")
    assert "?" not in sentence and "holds classified content (level core: core trade secret)" in sentence
