"""The spool's encoding of an event (agent/spool.py _encoded): the fast path built from the event's
own dict gives the body, byte count and chain digest the reference (to_dict, canonical_json, the
excluded keys appended) gives, for random events of every shape: floats integral or not, NaN,
nested details, media with and without the later fields, matches, detections, lone surrogates,
agent ids that are not strings, values JSON refuses (then both refuse alike)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import spool
from agent.spool import Spool, _encoded, _encoded_fast, _encoded_reference
from rules.events import EVENT_TYPES, Detection, Event, Match, Media, chain_digest

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
ODD_TEXT = st.one_of(TEXT, st.sampled_from(["\udcff", "a\udcfe", "\x00", "\u2028", '"\\', "密级★", ""]))
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1.0, 0.0, -0.0, 2.5, 1e20, 1e300, math.inf])
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), FLOATS, ODD_TEXT)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(ODD_TEXT, inner, max_size=3),
    ),
    max_leaves=8,
)
MEDIA = st.builds(
    Media,
    mountpoint=TEXT,
    serial=ODD_TEXT,
    removable=st.one_of(st.none(), st.booleans()),
    volume_id=st.sampled_from(["", "ABCD-1234"]),
    size_bytes=st.one_of(st.none(), st.integers(0, 2**40), FLOATS),
)
DETECTIONS = st.lists(
    st.builds(Detection, detector=TEXT, count=st.one_of(st.integers(0, 10), FLOATS), sample=ODD_TEXT), max_size=3
).map(tuple)


@st.composite
def events(draw):
    event = Event(
        type=draw(st.sampled_from(sorted(EVENT_TYPES))),
        agent_id=draw(st.one_of(TEXT, TEXT, st.none(), st.integers())),
        host=draw(TEXT),
        user=draw(ODD_TEXT),
        path=draw(st.one_of(st.none(), ODD_TEXT)),
        size=draw(st.one_of(st.none(), st.integers(0, 2**40), FLOATS)),
        sha256=draw(st.one_of(st.none(), st.just("ab" * 32))),
        level=draw(st.one_of(st.none(), st.sampled_from(["core", "important"]))),
        match=draw(
            st.one_of(st.none(), st.builds(Match, method=st.sampled_from(["exact", "partial"]), similarity=FLOATS))
        ),
        media=draw(st.one_of(st.none(), MEDIA)),
        egress=draw(st.one_of(st.none(), st.just("removable"))),
        type_mismatch=draw(st.one_of(st.none(), st.booleans())),
        detections=draw(DETECTIONS),
        rule_ids=draw(st.lists(TEXT, max_size=3).map(tuple)),
        severity=draw(st.one_of(st.none(), st.just("high"))),
        details=draw(st.one_of(st.none(), st.dictionaries(ODD_TEXT, JSONISH, max_size=4))),
    )
    if draw(st.booleans()):  # any field holding any value: floats where integers belong, None for a tuple
        event = event.replaced(**{draw(st.sampled_from(sorted(event.__dict__))): draw(JSONISH)})
    return event.replaced(policy_version="v1") if draw(st.booleans()) else event


def _answer(encode, event, seq, prev):
    try:
        return encode(event, seq, prev)
    except Exception as exc:  # noqa: BLE001 - compared: both must refuse alike
        return type(exc)


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.integers(1, 2**40), st.one_of(st.none(), st.just("cd" * 32)))
def test_the_fast_encoding_gives_the_references_body_size_and_digest(event, seq, prev):
    assert _answer(_encoded, event, seq, prev) == _answer(_encoded_reference, event, seq, prev)


def _plain_event(i: int) -> Event:
    """An egress event as the pipeline makes them: the shape the fast path must take."""
    return Event(
        type="egress.file", agent_id="7f2c", host="pc-1", user="zhang", path=f"/media/usb/报价-{i}.bin", size=4096 + i,
        sha256="ab" * 32, egress="removable", rule_ids=("MW-1",), severity="low", policy_version="v1",
        detections=(Detection("cn_mobile", 2, "138****5678"),), media=Media("/media/usb", serial="X1"),
        match=Match("partial", 0.5) if i % 2 else None,
        details={"writer_pid": 1234, "writer_exe": "/usr/bin/cp", "session_user": "zhang", "ratio": 1.0, "list": [1.0, (2, 3.5)]},
    )  # fmt: skip


def test_the_pipelines_events_take_the_fast_path_and_read_back_as_the_reference_writes_them():
    for i in range(20):
        event = _plain_event(i)
        fast = _encoded_fast(event, i + 1, None)
        assert fast is not None and fast == _encoded_reference(event, i + 1, None)
        body = json.loads(fast[0])
        assert body["details"]["ratio"] == 1 and type(body["details"]["ratio"]) is int  # integral floats as integers
        assert fast[2] == chain_digest(body)  # the collector's digest of what it stores


@pytest.mark.parametrize(
    "odd", [None, 1.0, 2.5, math.nan, [1.0, "a"], (), {"b": 1.0, "a": None}, "text", 7, True, object()]
)
def test_any_field_holding_any_value_is_encoded_or_refused_as_the_reference_does(odd):
    base = _plain_event(1)
    for name in base.__dict__:
        event = base.replaced(**{name: odd})
        assert _answer(_encoded, event, 3, None) == _answer(_encoded_reference, event, 3, None), name


def test_events_it_cannot_take_go_to_the_reference():
    event = _plain_event(0)
    assert _encoded_fast(event.replaced(agent_id=None), 1, None) is None  # not a string: json decides
    assert _encoded_fast(event.replaced(path="a\udcffb"), 1, None) is None  # a lone surrogate: escaped by the reference
    assert _encoded_fast(event.replaced(details={"x": math.nan}), 1, None) is None  # refused by both
    odd = object.__new__(Event)
    odd.__dict__.update(reversed(list(event.__dict__.items())))  # fields not in their order
    assert _encoded_fast(odd, 1, None) is None
    assert _encoded(odd, 1, None) == _encoded_reference(event, 1, None)


def test_rule_ids_are_read_once_as_to_dict_reads_them():
    """to_dict makes rule_ids a list (one pass over any iterable); a fast path that looked at their
    types first would find an iterator empty when it made the list, and hash and send no ids."""
    base = _plain_event(1)
    fast = _encoded(base.replaced(rule_ids=iter(["MW-1", "MW-2"])), 3, None)
    assert fast == _encoded_reference(base.replaced(rule_ids=iter(["MW-1", "MW-2"])), 3, None)
    assert json.loads(fast[0])["rule_ids"] == ["MW-1", "MW-2"]


def test_the_reference_switch_encodes_by_the_reference(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(spool, "_encoded_fast", lambda *a: calls.append(a))
    monkeypatch.setattr(spool, "FAST_ENCODING", False)
    store = Spool(str(tmp_path / "spool.db"))
    store.put([_plain_event(1)])
    assert not calls and json.loads(store.peek(1)[0].body)["seq"] == 1
    store.close()
