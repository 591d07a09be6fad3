"""Event.made(**fields) is the event Event(**fields) makes: equal, with the same dict in the same
order (the spool and to_dict read it), frozen, a fresh uuid4 and a UTC millisecond time where none
is given, and the same refusals (an unknown field, no type)."""

from __future__ import annotations

import dataclasses
import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import events
from rules.events import EVENT_TYPES, Detection, Event, Match, Media

VALUES = st.one_of(st.none(), st.text(max_size=6), st.integers(), st.floats(allow_nan=False), st.booleans())
SPECIAL = {
    "match": st.one_of(st.none(), st.builds(Match, method=st.just("exact"))),
    "media": st.one_of(st.none(), st.builds(Media, mountpoint=st.text(max_size=6))),
    "detections": st.lists(st.builds(Detection, detector=st.text(max_size=4), count=st.integers(0, 5)), max_size=2).map(
        tuple
    ),
    "rule_ids": st.lists(st.text(max_size=4), max_size=2).map(tuple),
    "details": st.one_of(st.none(), st.dictionaries(st.text(max_size=4), VALUES, max_size=3)),
}
NAMES = [f.name for f in dataclasses.fields(Event) if f.name != "type"]


@st.composite
def field_sets(draw):
    chosen = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=len(NAMES)))
    fields = {name: draw(SPECIAL.get(name, VALUES)) for name in chosen}
    fields["type"] = draw(st.sampled_from(sorted(EVENT_TYPES)))
    return fields


@settings(max_examples=1500, deadline=None)
@given(field_sets())
def test_made_is_the_event_init_makes(fields):
    fields.setdefault("id", "fixed-id")
    fields.setdefault("ts", "2026-12-06T00:00:00.000Z")
    made, built = Event.made(**fields), Event(**fields)
    assert made == built
    assert list(made.__dict__.items()) == list(built.__dict__.items())
    assert made.to_dict() == built.to_dict()


def test_made_gives_a_new_id_and_time_where_none_is_given():
    a, b = Event.made(type="egress.file", path="/media/usb/a"), Event.made(type="egress.file", path="/media/usb/a")
    assert a.id != b.id and uuid.UUID(a.id).version == 7 and str(uuid.UUID(a.id)) == a.id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", a.ts)
    assert a.replaced(id="x", ts="y") == Event(type="egress.file", path="/media/usb/a", id="x", ts="y")
    assert list(a.__dict__) == [f.name for f in dataclasses.fields(Event)]


def test_made_is_frozen_and_refuses_what_init_refuses():
    event = Event.made(type="agent.started")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.path = "/x"
    with pytest.raises(TypeError):
        Event.made(type="agent.started", colour="red")
    with pytest.raises(TypeError):
        Event.made(path="/x")


def test_the_reference_switch_runs_init(monkeypatch):
    monkeypatch.setattr(events, "FAST_MADE", False)
    calls = []
    real = Event.__init__
    monkeypatch.setattr(Event, "__init__", lambda self, **f: calls.append(f) or real(self, **f))
    Event.made(type="agent.started")
    assert calls == [{"type": "agent.started"}]
