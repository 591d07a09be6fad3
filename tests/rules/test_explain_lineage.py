"""An edited copy traced by its bytes (a drawing has no text) says so, in both languages; one
traced by its text reads as before."""

from __future__ import annotations

from rules.events import Event, Match
from rules.explain import describe_event, describe_event_zh


def _event(**fields) -> Event:
    return Event(type="egress.file", agent_id="a", host="rd-01", user="alice", path="/media/usb/x.bin", egress="removable",
                 level="core", source_path="/data/drawings/pump.dwg", match=Match("partial", 0.98), **fields)  # fmt: skip


def test_an_edited_copy_traced_by_its_bytes_says_so():
    event = _event(details={"lineage": "bytes"})
    assert "is an edited copy (traced by its bytes) of classified file /data/drawings/pump.dwg" in describe_event(event)
    assert "编辑过的副本（按字节追溯）" in describe_event_zh(event, "2026-12-07 10:00")


def test_an_edited_copy_traced_by_its_text_reads_as_before():
    event = _event()
    assert "is an edited copy of classified file /data/drawings/pump.dwg" in describe_event(event)
    said = describe_event_zh(event, "2026-12-07 10:00")
    assert "编辑过的副本" in said and "按字节" not in said
