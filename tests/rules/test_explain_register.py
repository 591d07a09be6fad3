"""The Chinese line of a classified-egress alert names the register item: 核心商密《泵叶轮图纸》."""

from __future__ import annotations

from rules.events import Event
from rules.explain import chinese_line


def _event(**fields) -> Event:
    return Event(type="egress.file", agent_id="a", host="rd-01", user="alice", path="/media/usb/x.dwg", egress="folder",
                 source_path="/data/图纸/x.dwg", level="core", **fields)  # fmt: skip


def test_central_item_is_named_with_its_level_and_owner():
    line = chinese_line(
        "classified-egress",
        _event(register_entry="泵叶轮图纸", details={"register_item_id": 7, "register_owner": "研发部 张工"}),
    )
    assert "把核心商密《泵叶轮图纸》（责任人 研发部 张工）文件 /data/图纸/x.dwg 复制到" in line


def test_without_an_entry_the_level_alone_is_said():
    assert "把核心商业秘密文件 /data/图纸/x.dwg 复制到" in chinese_line("classified-egress", _event())
