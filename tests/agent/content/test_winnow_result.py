"""winnow_fast's result set by the native path (_winnow.absent: the boilerplate's grams dropped by a
mask, the frozenset made from one list) is the one set changed in place of the numpy path, on
random hashes holding boilerplate grams, duplicates, anchors and values of 2^63 or more."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import winnow, winnow_fast

_native = winnow_fast._native
pytestmark = pytest.mark.skipif(_native is None, reason="agent.content._winnow not built: one set path only")
SOME = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOILERPLATE = sorted(winnow.boilerplate_hashes())

values = st.lists(
    st.sampled_from(BOILERPLATE) | st.integers(0, winnow.HASH_MASK) | st.integers(2**63, 2**64 - 1), max_size=200
)


def _by_set(grams: np.ndarray, anchors: np.ndarray) -> frozenset[int]:
    found = set(grams.tolist())
    found -= winnow.boilerplate_hashes()
    found.update(anchors.tolist())
    return frozenset(found)


@SOME
@given(values, st.lists(st.integers(0, winnow.HASH_MASK), max_size=50), st.data())
def test_the_result_is_the_set_changed_in_place(grams, anchor_values, data):
    gram_array = np.array(grams, dtype=np.uint64)
    anchors = np.unique(np.array(anchor_values, dtype=np.uint64) | np.uint64(winnow.ANCHOR_BIT))
    result = winnow_fast._result(gram_array, winnow.GRAM_BYTES, anchors)
    assert result == _by_set(gram_array, anchors)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(winnow_fast, "_native", None)
        assert winnow_fast._result(gram_array, winnow.GRAM_BYTES, anchors) == result


def test_absent_marks_exactly_the_values_outside_the_keys():
    rng = np.random.default_rng(7)
    keys = np.array(BOILERPLATE, dtype=np.int64)
    mixed = np.concatenate((keys[::3].astype(np.uint64), rng.integers(0, 2**63, 5000, dtype=np.uint64)))
    mixed = np.concatenate((mixed, np.array([2**64 - 1, 2**63, 0], dtype=np.uint64)))
    got = np.frombuffer(_native.absent(mixed, keys), dtype=bool)
    expected = ~np.isin(mixed, keys.astype(np.uint64))
    assert (got == expected).all()
    assert _native.absent(np.empty(0, dtype=np.uint64), keys) == b""
    assert _native.absent(mixed, np.empty(0, dtype=np.int64)) == b"\x01" * len(mixed)


def test_absent_refuses_buffers_of_the_wrong_size():
    with pytest.raises(ValueError):
        _native.absent(b"1234567", np.zeros(1, dtype=np.int64))
    with pytest.raises(ValueError):
        _native.absent(np.zeros(1, dtype=np.uint64), b"123")
