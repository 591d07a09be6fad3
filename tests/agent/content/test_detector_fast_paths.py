"""The detectors' shortcuts answer what their references answer: the ★ prefilter of
find_state_marks, the numpy line mapping of the header candidates (ids/columns.py), on random
texts of marks, context words, line breaks and near misses."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content.ids import columns
from agent.content.marking_terms import find_state_marks

MARK_PIECES = (
    "机密★",
    "★机密",
    "秘密★5年",
    "绝 密 ★",
    "商业秘密★",
    "★",
    "☆",
    "机密",
    " ",
    "\n",
    "长期",
    "年",
    "甲",
    "x",
)
WORD_PIECES = (
    "tel",
    "hotel",
    "电话",
    "手机号",
    "卡号",
    "订单号",
    "account",
    "cell",
    "sim",
    "ref",
    ",",
    "\t",
    " ",
    "\n",
    "甲",
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(MARK_PIECES), max_size=20).map("".join), st.integers(0, 30), st.integers(0, 30))
def test_the_star_prefilter_finds_what_the_pass_finds(text, start, length):
    end = min(len(text), start + length)
    assert find_state_marks(text) == find_state_marks(text, prefilter=False)
    assert find_state_marks(text, start, end) == find_state_marks(text, start, end, prefilter=False)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WORD_PIECES), max_size=12).map("".join), min_size=1, max_size=8))
def test_header_candidates_are_the_bisected_ones(texts):
    assert columns._header_candidates(texts) == columns.header_candidates_by_bisection(texts)


def test_the_normalised_texts_are_shared_and_go_with_their_document():
    import gc

    from agent.content import normalised
    from agent.content.detectors import detect
    from agent.content.document import BODY, FOOTER, Document, TextPart

    document = Document(
        "text", (TextPart(FOOTER, "ＣＯＮＦＩＤＥＮＴＩＡＬ"), TextPart(BODY, "手机 １３８１２３４５６７８"))
    )
    calls = []
    real = normalised._nfkc
    normalised._nfkc = lambda text: calls.append(text) or real(text)
    try:
        found = {d.detector: d.count for d in detect(document)}
    finally:
        normalised._nfkc = real
    assert found == {"cn_mobile": 1, "trade_secret_marking": 1}
    assert len(calls) == 2, "each part normalised once for the identifier and marking detectors"
    del document
    gc.collect()
    assert getattr(normalised._cache, "entry", None) is None
