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


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_luhn_by_products_is_luhn_by_table(length, seed):
    digits = np.random.default_rng(seed).integers(0, 10, size=(200, length))
    assert vector.luhn_valid(digits).tolist() == vector.luhn_valid_by_table(digits).tolist()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_check_character_and_the_shape_make_a_resident_id(seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(ord("0"), ord("9") + 1, size=(300, 18))
    codes[rng.random(300) < 0.3, 17] = ord("X")
    today = identifiers.date(2026, 11, 26)
    expected = [identifiers.checks.is_resident_id("".join(map(chr, row)), today) for row in codes.tolist()]
    assert vector.is_resident_id(codes, today).tolist() == expected


def test_a_resident_id_ending_in_a_small_x_is_counted_with_a_capital_one():
    from stdnum.cn import ric

    first = next(
        f"11010519491231{n:03d}" for n in range(1000) if ric.calc_check_digit(f"11010519491231{n:03d}0") == "X"
    )
    texts = [f"号码 {first}x 与 {first}X", "甲" * 10]
    joined = "\n".join(texts)
    table = identifiers._scan_table(texts, joined, identifiers.date(2026, 11, 26))
    assert [table.value(i) for i in range(len(table.starts))] == [first + "X", first + "X"]
    assert identifiers._table_parts(table, texts) == identifiers._scan_whole(
        texts, joined, identifiers.date(2026, 11, 26)
    )


@settings(max_examples=300, deadline=None)
@given(table_parts)
def test_a_context_over_the_documents_parts_reads_what_one_over_tuples_reads(parts):
    """_scan hands ColumnContext the document's parts and texts (listed): where and cell read off
    the parts, the tuples made only when asked; the rows, and every position's column, as from
    the tuples."""
    from agent.content.document import TextPart

    texts = [text for _, text, _ in parts]
    document_parts = tuple(TextPart(where, text, cell) for where, text, cell in parts)
    listed = columns.ColumnContext(lambda: parts, None, None, (document_parts, texts))
    plain = columns.ColumnContext(parts)
    part_starts = np.array([0, *accumulate(len(t) + 1 for t in texts)], dtype=np.int64)
    points = vector.ascii_codes("\n".join(texts))
    fast, reference = listed._table_rows(points, part_starts), plain._table_rows(points, part_starts)
    assert [a.tolist() for a in fast[:3]] == [a.tolist() for a in reference[:3]] and fast[3] == reference[3]
    owners = np.repeat(np.arange(len(texts)), [len(t) + 1 for t in texts])[: len(points)]
    positions = np.arange(len(points))
    bits = identifiers._bits
    got = listed.column_bits(owners, positions, lambda: points, part_starts, bits)
    assert got.tolist() == plain.column_bits(owners, positions, lambda: points, part_starts, bits).tolist()
    assert got.tolist() == [
        bits(plain.tags_at(int(p), int(i - part_starts[p]))) for p, i in zip(owners, positions, strict=True)
    ]
