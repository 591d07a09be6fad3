"""The marking scan reads the body from the document's shared UTF-8 encoding when the body is the
last parts of the document (markings._body, marking_terms.find_terms_in_utf8): the same terms at
the same offsets as find_terms over the str, and the same scan as the str path, on random texts
of terms, near misses, line breaks and characters of every width."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content import markings
from agent.content.document import BODY, FOOTER, HEADER, NAME, PROPERTIES, TITLE, Document, TextPart
from agent.content.marking_terms import find_terms, find_terms_in_utf8

PIECES = (
    "商业秘密",
    "商密",
    "协商密切",
    "内部资料",
    "注意保密",
    "内部资料\n注意保密",
    "CONFIDENTIAL",
    "confidentiality",
    "Strictly\nConfidential",
    "internal use only",
    "xproprietary",
    "【",
    "】",
    " ",
    "\n",
    "甲",
    "é",
    "😀",
    "１２",
    "a",
    "密级：核心",
)
text = st.lists(st.sampled_from(PIECES), max_size=25).map("".join)


@settings(max_examples=500, deadline=None)
@given(text)
def test_the_terms_from_utf8_are_find_terms_ones(value):
    assert find_terms_in_utf8(value, value.encode()) == find_terms(value)


documents = st.lists(st.tuples(st.sampled_from([NAME, HEADER, FOOTER, BODY, BODY, BODY]), text), max_size=8).map(
    lambda parts: Document("text", tuple(TextPart(where, value) for where, value in parts))
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_the_scan_from_shared_bytes_is_the_str_scan(document):
    body = markings._body(document)
    assert body.text == "\n".join(markings.normalise(p.text) for p in document.parts if p.where == BODY)
    assert body.utf8 is None or body.utf8 == body.text.encode()
    fast = markings.scan(document)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(markings, "find_terms_in_utf8", lambda text, _data: find_terms(text))
        reference = markings.scan(document)
    assert fast == reference


def test_a_body_after_the_name_is_read_from_the_shared_bytes():
    document = Document("text", (TextPart(NAME, "报告😀.txt"), TextPart(BODY, "甲é"), TextPart(BODY, "【商业秘密】")))
    body = markings._body(document)
    assert body.utf8 == body.text.encode() and body.text == "甲é\n【商业秘密】"
    assert markings.scan(document).trade.sample == "商业秘密 @body:2"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.just(0), st.just(1), st.integers(-2, 9), st.integers(10, 80)), max_size=60))
def test_page_edge_lines_are_the_lines_near_a_page_edge(page_lines):
    """Random page_line runs (pages of any length, parts of no page, odd numbers): the one-pass
    answer names exactly the lines the per-line reference does."""
    parts = [TextPart(BODY, f"line {i}", page_line=n) for i, n in enumerate(page_lines)]
    expected = [i for i in range(len(parts)) if markings._near_a_page_edge(parts, i)]
    assert markings._page_edge_lines(page_lines) == expected


def test_page_edge_lines_of_real_pages():
    """Three pages of 10, 2 and 7 lines: the first and last three of each."""
    page_lines = [*range(1, 11), 1, 2, *range(1, 8)]
    assert markings._page_edge_lines(page_lines) == [0, 1, 2, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18]


# prominent texts drawn from a few, so that a text comes again in its place and in other places
prominent_texts = st.lists(text, min_size=1, max_size=4).flatmap(
    lambda pool: st.lists(
        st.tuples(st.sampled_from([NAME, TITLE, PROPERTIES, HEADER, FOOTER, BODY]), st.sampled_from(pool) | text),
        max_size=12,
    )
)


@settings(max_examples=400, deadline=None)
@given(prominent_texts)
def test_a_prominent_text_read_once_counts_as_each_of_its_parts(parts):
    """markings.scan reads a prominent text once per place (MEMO_PROMINENT): the same counts and
    first samples as reading every part's lines, whatever repeats in which places."""
    document = Document("text", tuple(TextPart(where, value) for where, value in parts))
    fast = markings.scan(document)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(markings, "MEMO_PROMINENT", False)
        assert markings.scan(document) == fast


def test_a_footer_on_every_slide_counts_once_a_slide():
    parts = [TextPart(TITLE, "deck")]
    for slide in range(1, 6):
        parts += [TextPart(BODY, f"第{slide}页 泵体"), TextPart(FOOTER, "内部资料"), TextPart(HEADER, "内部资料")]
    found = markings.scan(Document("pptx", tuple(parts)))
    assert (found.trade.count, found.trade.sample) == (10, "内部资料 @header")
