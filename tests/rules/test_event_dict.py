"""Event.to_dict is what dataclasses.asdict gives, key for key and in the same order: the event
chain hashes it (canonical_json), so a difference would break every agent's chain. Media fields
added later (LATER_MEDIA_FIELDS) are left out while unknown, so an older agent's event is stored
and hashed as it sent it."""

from __future__ import annotations

import dataclasses

import pytest

from rules.events import LATER_MEDIA_FIELDS, Detection, Event, Match, Media, canonical_json


def _asdict(event: Event) -> dict:
    data = dataclasses.asdict(event)
    for name in LATER_MEDIA_FIELDS:
        if data["media"] is not None and data["media"][name] in ("", None):
            del data["media"][name]
    data["detections"] = [dataclasses.asdict(d) for d in event.detections]
    data["rule_ids"] = list(event.rule_ids)
    return data


FULL = Event(
    type="egress.file",
    agent_id="a-1",
    host="pc-07",
    user="alice",
    path="/media/alice/KINGSTON/总装图.dwg",
    size=3,
    sha256="ab" * 32,
    level="core",
    source_path="/secret/总装图.dwg",
    match=Match("partial", 0.5),
    media=Media(mountpoint="/media/alice/KINGSTON", serial="X1", vendor_id="0951", removable=True),
    egress="removable",
    detections=(Detection("cn_resident_id", 3, "1101**********1234"), Detection("cn_mobile", 0)),
    rule_ids=("MW-EGRESS-CLASSIFIED",),
    details={"attribution": "open-file", "process": {"pid": 7, "argv": ["cp", "-r"]}},
    seq=4,
    prev_hash="cd" * 32,
)


@pytest.mark.parametrize("event", [FULL, Event(type="agent.started"), dataclasses.replace(FULL, match=None, media=None, details=None)])
def test_to_dict_is_asdict_key_for_key_and_in_order(event):
    assert event.to_dict() == _asdict(event)
    assert list(event.to_dict()) == list(_asdict(event))
    assert list(event.to_dict()["media"] or {}) == list(_asdict(event)["media"] or {})
    assert canonical_json(event.to_dict()) == canonical_json(_asdict(event))
    assert Event.from_dict(event.to_dict()) == event


def test_the_dict_shares_nothing_with_the_event():
    data = FULL.to_dict()
    data["details"]["process"]["argv"].append("x")
    data["rule_ids"].append("Y")
    assert FULL.details["process"]["argv"] == ["cp", "-r"] and FULL.rule_ids == ("MW-EGRESS-CLASSIFIED",)


def test_an_older_agents_media_is_stored_and_hashed_as_it_was_sent():
    """Before: the collector added volume_id '' and size_bytes None to every stored event, so the
    digest it computed differed from the one an agent without those fields had chained."""
    sent = FULL.to_dict()
    assert "volume_id" not in sent["media"] and "size_bytes" not in sent["media"]
    assert Event.from_dict(sent).to_dict() == sent
    known = dataclasses.replace(FULL, media=dataclasses.replace(FULL.media, volume_id="1A2B-3C4D", size_bytes=8 << 30))
    assert known.to_dict()["media"]["volume_id"] == "1A2B-3C4D" and Event.from_dict(known.to_dict()) == known


ODD_DETAILS = {
    "process": {"pid": 7, "argv": ["cp", "-r"], "env": ("LANG", ["zh_CN"])},
    "counts": [1, 2.5, True, None, {"deep": [[]]}],
    "set": {1, 2},  # not JSON, but asdict copied it too
    "名称": "总装图",
}


def test_details_are_copied_as_deepcopy_copies_them():
    """to_dict copies details without copy.deepcopy: the same values, sharing no container."""
    event = dataclasses.replace(FULL, details=ODD_DETAILS)
    data = event.to_dict()
    assert data == _asdict(event) and data["details"] == ODD_DETAILS
    assert data["details"]["process"]["env"][1] is not ODD_DETAILS["process"]["env"][1]
    assert data["details"]["counts"][4]["deep"][0] is not ODD_DETAILS["counts"][4]["deep"][0]
    assert data["details"]["set"] is not ODD_DETAILS["set"]
    data["details"]["process"]["env"][1].append("x")
    assert ODD_DETAILS["process"]["env"][1] == ["zh_CN"]


def test_an_instance_whose_dict_is_out_of_field_order_still_gives_field_order():
    """to_dict reads the instance's dict, which __init__ fills in field order; one filled in another
    order (built without __init__) still gives the keys in field order."""
    event = object.__new__(Event)
    for f in reversed(dataclasses.fields(Event)):
        object.__setattr__(event, f.name, getattr(FULL, f.name))
    assert list(event.to_dict()) == list(_asdict(FULL)) and event.to_dict() == FULL.to_dict()


@pytest.mark.parametrize("event", [FULL, Event(type="agent.started"), dataclasses.replace(FULL, details=ODD_DETAILS)])
def test_replaced_is_dataclasses_replace(event):
    """Event.replaced (what the engine stamps with) skips __init__: the same event as replace gives."""
    changes = {"rule_ids": ("MW-A", "MW-B"), "severity": "high", "policy_version": "v7"}
    new, expected = event.replaced(**changes), dataclasses.replace(event, **changes)
    assert new == expected
    if event.details is None:  # a dict in the details makes an event unhashable, as it always did
        assert hash(new) == hash(expected)
    assert list(vars(new).items()) == list(vars(expected).items())
    assert new.to_dict() == expected.to_dict() and list(new.to_dict()) == list(expected.to_dict())
    assert event.rule_ids != changes["rule_ids"] and event.replaced() == event
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.severity = "low"  # type: ignore[misc]
    with pytest.raises(TypeError, match="no field 'sevrity'"):
        event.replaced(sevrity="low")
