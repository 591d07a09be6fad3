"""EventIn.stored builds the event, its body and its chain digest in cheaper steps than the
per-event reference (EventIn.to_event, then server.chain.chain_columns parsing the body text
back for rules.events.chain_digest): for any event the batch decode accepts, both must give the
same event (with its instance dict in field order, which Event.to_dict relies on), the same body
text and the same digest.

The events are random JSON bodies decoded as the collector decodes them
(EventBatch.model_validate_json): integral and other floats where the model lets a float be
(match.similarity, details, a newer agent's extra fields), media with and without the later
fields, detections, non-ASCII and control characters, events in and outside a chain.
"""

from __future__ import annotations

import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.events import Event
from server.chain import chain_columns
from server.models import EventBatch

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
NUMBER = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(-1000, 1000).map(float),  # integral floats: the canonical form writes them as integers
)
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBER, TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
MEDIA = st.fixed_dictionaries(
    {"mountpoint": TEXT},
    optional={
        "device": TEXT, "fstype": TEXT, "label": TEXT, "serial": TEXT, "vendor": TEXT, "model": TEXT, "vendor_id": TEXT,
        "product_id": TEXT, "bus": TEXT, "removable": st.one_of(st.none(), st.booleans()), "volume_id": TEXT,
        "size_bytes": st.one_of(st.none(), st.integers(0, 2**63 - 1), st.integers(0, 2**40).map(float)),
    },
)  # fmt: skip
EXTRA_NAMES = st.text(alphabet="abcdefghij_", min_size=3, max_size=8).filter(lambda name: name not in Event.__dataclass_fields__)


@st.composite
def raw_events(draw) -> dict:
    event = {
        "id": str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
        "type": draw(st.sampled_from(("file.created", "file.deleted", "egress.file", "media.mounted", "agent.gap", "agent.tamper"))),
        "ts": draw(st.sampled_from(("2026-03-02T09:15:00.123Z", "2026-03-02T09:15:00+08:00", "2026-03-02T09:15:00.5", "1999-12-31T23:59:59.999-05:30"))),
    }  # fmt: skip
    optional = {
        "agent_id": TEXT, "host": TEXT, "user": TEXT, "path": st.one_of(st.none(), TEXT), "path_b64": TEXT, "dest_path": TEXT,
        "size": st.one_of(st.none(), st.integers(0, 2**63 - 1), st.integers(0, 2**40).map(float)),
        "sha256": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        "level": st.sampled_from((None, "core", "important", "general", "internal")), "source_path": TEXT,
        "register_entry": TEXT,
        "match": st.fixed_dictionaries({"method": st.sampled_from(("exact", "archive", "partial"))},
                                       optional={"similarity": st.one_of(st.sampled_from((1, 1.0, 0, 0.0, 0.93)), st.floats(0, 1))}),
        "media": st.one_of(st.none(), MEDIA), "egress": TEXT, "file_type": TEXT, "type_mismatch": st.one_of(st.none(), st.booleans()),
        "policy_version": TEXT,
        "detections": st.lists(st.fixed_dictionaries({"detector": TEXT, "count": st.integers(0, 2**31)}, optional={"sample": TEXT}), max_size=3),
        "rule_ids": st.lists(TEXT, max_size=3), "severity": st.sampled_from((None, "critical", "high", "low")),
        "error": st.one_of(st.none(), TEXT), "details": st.one_of(st.none(), st.dictionaries(TEXT, JSONISH, max_size=4)),
        "seq": st.one_of(st.none(), st.integers(1, 2**63 - 1)),
        "prev_hash": st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
    }  # fmt: skip
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        event[name] = draw(optional[name])
    for name in draw(st.lists(EXTRA_NAMES, unique=True, max_size=3)):
        event[name] = draw(JSONISH)
    return event


def _same_as_reference(raw: dict, ensure_ascii: bool) -> None:
    body = json.dumps({"events": [raw]}, ensure_ascii=ensure_ascii).encode()
    (model,) = EventBatch.model_validate_json(body).events
    stored = model.stored("agent-7")
    event, text = model.to_event("agent-7")
    assert stored.event == event
    assert list(stored.event.__dict__.items()) == list(event.__dict__.items())  # field order too
    assert stored.body == text
    assert stored.chain_hash == chain_columns(event, text)["chain_hash"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=raw_events(), ensure_ascii=st.booleans())
def test_stored_gives_the_event_body_and_digest_of_the_reference(raw, ensure_ascii):
    _same_as_reference(raw, ensure_ascii)


def test_integral_floats_in_every_place_a_float_can_be():
    """The places the digest must rewrite, each alone (hypothesis finds them too, but not always soon)."""
    base = {"id": str(uuid.uuid4()), "type": "egress.file", "ts": "2026-03-02T09:15:00Z", "seq": 3}
    for raw in (
        {**base, "match": {"method": "exact", "similarity": 1.0}},
        {**base, "match": {"method": "exact", "similarity": 1}},
        {**base, "details": {"ratio": 2.0, "deep": [{"x": 3.0}]}},
        {**base, "from_a_newer_agent": 5.0},
        {**base, "from_a_newer_agent": {"nested": [1.0, 2.5]}},
        {**base, "media": {"mountpoint": "/media/x", "size_bytes": 16.0}, "size": 12.0},
    ):
        _same_as_reference(raw, ensure_ascii=False)
