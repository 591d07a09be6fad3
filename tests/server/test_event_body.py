"""The body stored for an event is built directly (server.models.event_body), not through
dataclasses.asdict: it must stay exactly what `{**extra, **event.to_dict()}` gives."""

from __future__ import annotations

import json

import pytest

from server.models import EventIn, event_body

RICH = {
    "id": "6f1c2a34-1b2c-4d5e-8f90-123456789abc",
    "type": "egress.file",
    "ts": "2026-03-02T09:15:00.123+08:00",
    "agent_id": "claimed-by-the-body",
    "host": "pc-0042",
    "user": "zhang.san",
    "path": "/media/usb/KINGSTON/图纸.dwg",
    "size": 123456,
    "sha256": "a" * 64,
    "level": "core",
    "source_path": "/srv/rnd/图纸.dwg",
    "register_entry": "Product drawings",
    "match": {"method": "partial", "similarity": 1.0},
    "media": {"mountpoint": "/media/usb/KINGSTON", "device": "/dev/sdb1", "fstype": "vfat", "serial": "60A4", "removable": True},
    "egress": "removable",
    "detections": [{"detector": "cn_resident_id", "count": 3, "sample": "3301**********123X"}],
    "rule_ids": ["MW-EGRESS-CLASSIFIED"],
    "severity": "critical",
    "details": {"nested": {"list": [1, 2.0, "三"]}, "flag": False},
    "seq": 7,
    "prev_hash": "b" * 64,
    "from_a_newer_agent": {"kept": [1, 2]},
    "another": "extra field",
}


@pytest.mark.parametrize(
    "raw",
    [
        RICH,
        {"id": "6f1c2a34-1b2c-4d5e-8f90-123456789abd", "type": "file.created", "ts": "2026-03-02T01:15:00Z"},
        {**{k: v for k, v in RICH.items() if k not in ("match", "media", "details")}, "detections": []},
    ],
    ids=["every-field-and-extras", "minimal", "no-nested-values"],
)
def test_stored_body_is_the_extra_fields_then_the_event_as_to_dict_gives_it(raw):
    model = EventIn.model_validate(raw)
    event, body = model.to_event("agent-7")
    expected = json.dumps({**(model.model_extra or {}), **event.to_dict()}, ensure_ascii=False, separators=(",", ":"))
    assert body == expected
    assert json.loads(body)["agent_id"] == "agent-7"


def test_body_shares_no_mutable_value_with_the_event():
    event, _ = EventIn.model_validate(RICH).to_event("agent-7")
    data = event_body(event)
    data["details"]["nested"]["list"].append(4)
    data["media"]["serial"] = "changed"
    assert event.details["nested"]["list"] == [1, 2.0, "三"]
    assert event.media.serial == "60A4"
