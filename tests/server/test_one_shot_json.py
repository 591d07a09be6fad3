"""EventIn.stored writes the body and the chain digest's canonical form with the C encoder made
once (rules/events.py one_shot) instead of calling JSONEncoder.encode for each: the text must be
the one encode() writes, byte for byte (the agent's chain hashes it, the console shows it), for any
JSON-like value: non-ASCII, control characters and lone surrogates in strings and keys, floats
(integral, huge, tiny, negative zero, and NaN and infinities, which the body writes and the canonical
form refuses), big integers, booleans, nesting, key order. The reference (models.ONE_SHOT_JSON =
False) and the one-shot encoders must also give the same StoredEvent for decoded events.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import models
from server.models import EventBatch
from tests.server.test_stored_event import raw_events

TEXT = st.text(max_size=10)  # every code point, surrogates and NUL included
NUMBER = st.one_of(
    st.integers(-(2**80), 2**80), st.floats(width=64), st.integers(-1000, 1000).map(float), st.sampled_from([0.0, -0.0, 1e16, 1e-7, 5e-324])
)  # fmt: skip
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBER, TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=5)),
    max_leaves=20,
)
PAIRS = [
    (models._BODY_JSON, models._BODY_JSON_REFERENCE, dict(ensure_ascii=False, separators=(",", ":"))),
    (models._CANONICAL_JSON, models._CANONICAL_JSON_REFERENCE, dict(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)),
]  # fmt: skip


def _written(encode, value):
    try:
        return encode(value)
    except ValueError as e:  # the canonical form refuses NaN and the infinities
        return ("ValueError", str(e))


@pytest.mark.parametrize("fast, reference, options", PAIRS, ids=["body", "canonical"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.dictionaries(TEXT, JSONISH, max_size=8))
def test_one_shot_writes_what_encode_writes(fast, reference, options, value):
    assert _written(fast, value) == _written(reference, value) == _written(lambda v: json.dumps(v, **options), value)


@pytest.mark.parametrize("fast, reference, options", PAIRS, ids=["body", "canonical"])
def test_one_shot_table(fast, reference, options):
    for value in (
        {}, {"b": 1, "a": [1.0, -0.0, 2.5, 10**30]}, {"路径": "C:\\机密\\\"报价\".xlsx", "\ud800": "\udfff\x00\x1f\u2028"},
        {"nested": {"z": {"y": [None, True, False, {"x": 1e300}]}, "a": []}}, {"nan": float("nan")}, {"inf": [float("-inf")]},
    ):  # fmt: skip
        assert _written(fast, value) == _written(reference, value) == _written(lambda v: json.dumps(v, **options), value)


def test_a_circular_dict_is_not_written():
    """No memo: a dict holding itself recurses until Python stops it, as no request can make one."""
    value: dict = {}
    value["self"] = value
    for fast, _, _ in PAIRS:
        with pytest.raises((RecursionError, ValueError)):
            fast(value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(raw_events(), min_size=1, max_size=5))
def test_stored_is_the_same_with_the_reference_encoders(raws):
    decoded = EventBatch.model_validate_json(json.dumps({"events": raws})).events
    fast = [e.stored("agent-9") for e in decoded]
    saved = models.ONE_SHOT_JSON
    models.ONE_SHOT_JSON = False
    try:
        reference = [e.stored("agent-9") for e in decoded]
    finally:
        models.ONE_SHOT_JSON = saved
    assert [(s.event, s.body, s.chain_hash) for s in fast] == [(s.event, s.body, s.chain_hash) for s in reference]
