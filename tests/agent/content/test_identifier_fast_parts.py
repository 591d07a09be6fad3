"""The cheaper pieces of the identifier scan against the references kept beside them: the runs of
18 letters and digits found from one mask of the whole text (identifiers._alphanumeric_18 against
_alphanumeric_18_by_reach), the rows of a strided view (vector.window against an index matrix),
and the context words' parts and header lines found from a document's shared UTF-8 bytes
(identifiers._worded, columns._header_candidates) against their encode-per-part forms."""

from __future__ import annotations

from itertools import accumulate

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content import identifiers
from agent.content.ids import columns, vector
from agent.content.normalised import Joined
from tests.agent.content.test_detector_fast_paths import table_parts

PIECES = ("1234567", "0", "9", "a", "Z", "x", " ", "中", "-", "\n", "é", "123456789012345678", "ABCDEFGHJK", "😀")
text = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=500, deadline=None)
@given(text)
def test_the_runs_of_eighteen_are_the_reference_ones(value):
    points = vector.code_points(value)
    starts, ends = identifiers._runs((points - ord("0")) < 10)
    fast = identifiers._alphanumeric_18(points, starts, ends)
    assert fast.tolist() == identifiers._alphanumeric_18_by_reach(points, starts, ends).tolist()


@settings(max_examples=300, deadline=None)
@given(text, st.integers(1, 20), st.data())
def test_a_window_is_the_characters_from_its_start(value, length, data):
    points = vector.code_points(value)
    at = np.array(
        data.draw(st.lists(st.integers(0, max(len(points) - length, 0)), max_size=5)) if len(points) >= length else [],
        dtype=np.int64,
    )
    rows = vector.window(points, at, length)
    assert rows.dtype == np.int64
    assert rows.tolist() == [[ord(c) for c in value[a : a + length]] for a in at.tolist()]


WORDS = ("手机", "卡号", "tel", "hotel", "cell", "订单", "a/c", "中", "x", " ", "\n", "1", "é", "😀", "ref")
parts = st.lists(st.lists(st.sampled_from(WORDS), max_size=8).map("".join), min_size=1, max_size=8)


@settings(max_examples=500, deadline=None)
@given(parts)
def test_the_worded_parts_from_shared_bytes_are_the_encoded_parts_ones(texts):
    shared = Joined(texts)
    assert identifiers._worded(shared.text, texts, shared) == identifiers._worded(shared.text, texts)


@settings(max_examples=500, deadline=None)
@given(parts)
def test_header_candidates_from_shared_bytes_are_the_bisected_ones(texts):
    shared = Joined(texts)
    assert columns._header_candidates(texts, shared.utf8()) == columns.header_candidates_by_bisection(texts)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | text)
def test_ascii_codes_keep_every_ascii_character_and_no_other_looks_like_one(value):
    points, codes = vector.code_points(value), vector.ascii_codes(value)
    assert len(codes) == len(points) == len(value)
    ascii_ = points < 128
    assert (codes[ascii_] == points[ascii_]).all()
    assert (codes[~ascii_] >= 128).all()


def _one_line_parts(parts):
    return [(where, text.replace("\n", " "), cell) for where, text, cell in parts]


@settings(max_examples=400, deadline=None)
@given(table_parts)
def test_the_worded_parts_as_header_candidates_give_the_same_rows(parts):
    """_scan hands ColumnContext the parts _worded found (each part one line) as its header
    candidates: a superset of the strict search's lines, which must change no row."""
    parts = _one_line_parts(parts)
    shared = Joined([text for _, text, _ in parts])
    candidates = {part: {0} for part in identifiers._worded(shared.text, shared.texts, shared)}
    part_starts = np.array([0, *accumulate(len(t) + 1 for t in shared.texts)], dtype=np.int64)
    points = vector.ascii_codes(shared.text)
    given_, searched = columns.ColumnContext(parts, shared.utf8, candidates), columns.ColumnContext(parts)
    assert given_.rows_by_lines(part_starts) == searched.rows_by_lines(part_starts)
    fast, reference = given_._table_rows(points, part_starts), searched._table_rows(points, part_starts)
    assert [a.tolist() for a in fast[:3]] == [a.tolist() for a in reference[:3]] and fast[3] == reference[3]


def test_a_document_of_one_line_parts_takes_its_header_candidates_from_the_worded_pass(monkeypatch):
    from agent.content.document import BODY, Document, TextPart

    monkeypatch.setattr(identifiers, "NUMPY_SCAN_CHARS", 0)
    monkeypatch.setattr(identifiers, "WORDED_PASS_CHARS", 10**9)
    monkeypatch.setattr(columns, "_header_candidates", None)  # never searched again
    rows = ("姓名,手机,卡号", "张三,13812345678,x", "hotel,13912345678,x")
    scan = identifiers._scan(Document("csv", tuple(TextPart(BODY, row) for row in rows)), identifiers.date.today())
    assert scan.worded == {0, 2}
    assert scan.columns.tags_at(1, 4) == {columns.MOBILE}
