"""The detectors' shortcuts answer what their references answer: the ★ prefilter of
find_state_marks, the numpy line mapping of the header candidates (ids/columns.py), on random
texts of marks, context words, line breaks and near misses."""

from __future__ import annotations

from itertools import accumulate

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content.document import Cell
from agent.content.ids import columns, vector
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


CELLS = ("tel", "电话", "手机号", "卡号", "订单号", "account", "姓名", "金额", "13812345678", "6222021234567890",
         "1234567", "甲乙", "", " ", '"a,b"', "x" * 30)  # fmt: skip
table_line = st.one_of(
    st.tuples(st.sampled_from([",", "\t", "  ", " "]), st.lists(st.sampled_from(CELLS), max_size=5)).map(
        lambda t: t[0].join(t[1])
    ),
    st.sampled_from(["", "  ", "prose without a delimiter", "x" * 4100, "a," * 2100]),
)
table_parts = st.lists(
    st.tuples(
        st.sampled_from(["body", "body", "body", "footer"]),
        st.lists(table_line, min_size=1, max_size=5).map("\n".join),
        st.sampled_from([None, None, None, None, None, Cell(0, 0, 0), Cell(0, 1, 0)]),
    ),
    min_size=1,
    max_size=16,
)


@settings(max_examples=500, deadline=None)
@given(table_parts)
def test_table_rows_are_the_line_by_line_ones(parts):
    """The rows found a block at a time (ColumnContext._table_rows) are _table_lines' rows."""
    texts = [text for _, text, _ in parts]
    part_starts = np.fromiter(accumulate((len(t) + 1 for t in texts), initial=0), dtype=np.int64)
    points = vector.code_points("\n".join(texts))
    starts, ends, headers, unique = columns.ColumnContext(parts)._table_rows(points, part_starts)
    fast = [(a, b, unique[h]) for a, b, h in zip(starts.tolist(), ends.tolist(), headers.tolist(), strict=True)]
    assert fast == columns.ColumnContext(parts).rows_by_lines(part_starts)


def test_rows_between_notes_keep_the_table():
    """Three notes, rows (read as one block), a note, a row: the block ends the notes' gap."""
    lines = ["姓名,手机", "note", "note", "note", "张三,13812345678", "李四,13912345678", "note", "王五,13712345678"]
    parts = [("body", line, None) for line in lines]
    part_starts = np.fromiter(accumulate((len(t) + 1 for t in lines), initial=0), dtype=np.int64)
    starts, _, _, _ = columns.ColumnContext(parts)._table_rows(vector.code_points("\n".join(lines)), part_starts)
    assert starts.tolist() == [part_starts[4], part_starts[5], part_starts[7]]
    assert [a for a, _, _ in columns.ColumnContext(parts).rows_by_lines(part_starts)] == starts.tolist()


WINDOW_PIECES = (
    "tel", "Tel", "TEL", "hotel", "xtel", "cell", "xcell", "Cell", "sim", "simx", "xsim", "ref", "refs", "a/c", "acct",
    "手机", "电话", "卡号", "对公", "订单", "order", "card", "account", "iccid", "\n", " ", "_", "1", "甲", "-", "é",
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WINDOW_PIECES), max_size=8).map("".join), max_size=12))
def test_the_windows_words_in_one_pass_are_each_windows(windows):
    """Windows searched together (joined by line breaks) hold the words each holds alone."""
    assert columns.tags_of_each(windows) == [columns.tags_of(w) for w in windows]
