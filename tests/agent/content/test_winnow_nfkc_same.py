"""_winnow.nfkc gives back the text itself when every character is its own NFKC (no second pass, no
new string): the same value unicodedata gives, for texts of every character width, and a new
string as soon as one character changes, wherever it stands."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import winnow_fast

_native = winnow_fast._native
pytestmark = pytest.mark.skipif(_native is None, reason="agent.content._winnow not built: unicodedata only")
SOME = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAME = ("a", "Z", " ", "\n", "×", "泵", "合同", "、", "1", "\t")  # each its own NFKC
CHANGED = ("ＡＢＣ", "①", "ﬁ", "℃", "²", "\u3000", "㎏", "ｶ")  # each not


@SOME
@given(st.lists(st.sampled_from(SAME), max_size=60).map("".join), st.sampled_from(CHANGED), st.data())
def test_a_text_that_nfkc_keeps_is_given_back_and_one_it_changes_is_not(same, changed, data):
    assert same == unicodedata.normalize("NFKC", same)
    done = _native.nfkc(same, *winnow_fast._nfkc_table())
    assert done is same
    at = data.draw(st.integers(0, len(same)))
    text = same[:at] + changed + same[at:]
    done = _native.nfkc(text, *winnow_fast._nfkc_table())
    assert done is not text
    assert done == unicodedata.normalize("NFKC", text)


@pytest.mark.parametrize("text", ["", "plain ascii\nlines", "Latin-1 × ÷ ¿", "泵体 合同\n第3条"])
def test_every_width_kept_as_is(text):
    assert _native.nfkc(text, *winnow_fast._nfkc_table()) is text
