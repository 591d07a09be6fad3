"""marking_windows.find_terms_by_window (the terms of a long body searched in windows around the
lines they can be in) gives find_terms's terms, the whole pass, whenever it answers: on random
texts of the terms' words and CJK terms split by line breaks and separators of every kind (the
matches that run over a line break are what the windows must keep whole), with the limits made
small and large so that each way out is taken; and markings.scan with the windows is the scan
without them. The words a term can hold on either side of a line break are all in CROSS_RE."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import marking_terms, marking_windows, markings, winnow_fast
from agent.content.document import BODY, FOOTER, HEADER, NAME, Document, TextPart

pytestmark = pytest.mark.skipif(winnow_fast._native is None, reason="agent.content._winnow not built")
SOME = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

WORDS = ("strictly", "Company", "for", "INTERNAL", "use", "only", "trade", "secret", "secrets", "do", "not",
         "distribute", "confidential", "proprietary", "ſecret", "\u212aeep", "内部资料", "注意保密", "商业秘密",
         "商密", "协商密切", "料", "注", "xdo", "confidentiality")  # fmt: skip
GAPS = (" ", "\n", "\n\n", " \n ", "\t\n", ",\n", "，\n、", "：", "·", "\u3000\n", "\r\n", "\x0b", "")
FILLER = ("泵体", "x", "a", "1", "。", "【", "】", "é", "😀", "\n")
texts = st.lists(
    st.sampled_from(WORDS) | st.sampled_from(GAPS) | st.sampled_from(FILLER) | st.text(max_size=3), max_size=40
).map("".join)
LIMITS = st.tuples(
    st.sampled_from((0, 1, 3, 64)),
    st.sampled_from((0, 2, 256)),
    st.sampled_from((0.25, 1.0)),
    st.sampled_from((1, 128)),
)


@SOME
@given(texts, LIMITS)
def test_the_windows_find_the_whole_pass_terms(text, limits):
    with pytest.MonkeyPatch.context() as patch:
        for name, value in zip(("MAX_WINDOWS", "MAX_GLUE_STEPS", "MAX_SHARE", "MAX_SEPARATORS"), limits, strict=True):
            patch.setattr(marking_windows, name, value)
        found = marking_windows.find_terms_by_window(text)
    assert found is None or found == marking_terms.find_terms(text), (text, limits)


@SOME
@given(texts)
def test_the_windows_answer_when_the_limits_allow(text):
    """With room enough the windows always answer (the test above then compares every text)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(marking_windows, "MAX_WINDOWS", 10**6)
        patch.setattr(marking_windows, "MAX_GLUE_STEPS", 10**6)
        patch.setattr(marking_windows, "MAX_SHARE", 1.0)
        found = marking_windows.find_terms_by_window(text)
    assert found == marking_terms.find_terms(text), text


def test_every_pair_of_words_a_term_holds_across_a_line_break_is_glued():
    """Every English word of the terms (and the CJK terms) before and after a line break: where
    TERMS_RE matches over the break, CROSS_RE matches too (so the break is glued)."""
    words = set(re.findall(r"[a-z]+", " ".join(marking_terms.EN_TERMS).replace(r"\s", " "))) - {"s"}
    words |= {"secrets", *marking_terms.CJK_TERMS} - {t for t in marking_terms.CJK_TERMS if "[" in t}
    for before, after in itertools.product(sorted(words), repeat=2):
        for gap in ("\n", " \n\t", "，\n、"):
            text = before + gap + after
            crossing = any("\n" in m.group() for m in marking_terms.TERMS_RE.finditer(text))
            if crossing:
                assert marking_windows._glued(text, text.index("\n")), text


# an instance of each English term: a line break in place of each space must be glued
PHRASES = ("strictly confidential", "company confidential", "for internal use only", "internal use only",
           "internal only", "trade secret", "trade secrets", "do not distribute", "confidential", "proprietary")  # fmt: skip


def test_every_english_term_broken_at_any_space_is_glued():
    for pattern in marking_terms.EN_TERMS:  # each term has an instance here
        assert any(re.fullmatch(pattern, phrase, re.IGNORECASE) for phrase in PHRASES), pattern
    for phrase in PHRASES:
        assert marking_terms.TERMS_RE.fullmatch(phrase.encode()), phrase
        for at in [i for i, char in enumerate(phrase) if char == " "]:
            for gap in ("\n", " \n", "\n\t ", " \x0c\n\r "):
                text = phrase[:at] + gap + phrase[at + 1 :]
                assert marking_windows._glued(text, text.index("\n")), text


@pytest.mark.parametrize(
    "term",
    [
        "Strictly" + "\t" * 20 + "\n" + " " * 20 + "Confidential",
        "Strictly\n" + "\t" * 20 + "Confidential",
        "内部资料" + "，" * 20 + "\n" + "、" * 20 + "注意保密",
        "内部资料\n" + "、" * 20 + "注意保密",
    ],
)
@pytest.mark.parametrize("most", [2, 128])
def test_a_term_over_a_long_run_of_separators(term, most):
    """Separators beyond the words' reach on either side of the break (and beyond MAX_SEPARATORS:
    then the break is taken as glued without a look)."""
    body = "\n".join(["泵体 规格 说明 第一节"] * 300 + [term] + ["x y"] * 300)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(marking_windows, "MAX_SEPARATORS", most)
        found = marking_windows.find_terms_by_window(body)
    assert found == marking_terms.find_terms(body) and len(found) == 1


def test_the_only_non_literal_pieces_of_the_cjk_terms_are_classes():
    """marking_windows reads a CJK term as literal pieces and [...]* classes; anything else in one
    would be a way over a line break CROSS_RE does not know."""
    for term in marking_terms.CJK_TERMS:
        assert re.fullmatch(r"[\u4e00-\u9fff]+", "".join(marking_windows._CLASS.split(term))), term


def test_a_long_body_with_a_term_over_a_line_break():
    body = "\n".join(
        ["泵体 规格 说明 第一节"] * 300 + ["Strictly", "", "  Confidential", "内部资料，", "注意保密"] + ["x y"] * 300
    )
    found = marking_windows.find_terms_by_window(body)
    assert found == marking_terms.find_terms(body)
    assert [t.label for t in found] == ["STRICTLY CONFIDENTIAL", "内部资料， 注意保密"]


documents = st.lists(
    st.tuples(st.sampled_from([NAME, HEADER, FOOTER, BODY, BODY, BODY]), texts), min_size=1, max_size=6
).map(lambda parts: Document("text", tuple(TextPart(where, value) for where, value in parts)))


@SOME
@given(documents)
def test_the_scan_with_windows_is_the_scan_without(document):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(markings, "WINDOWED_CHARS", 0)
        patch.setattr(marking_windows, "MAX_SHARE", 1.0)
        windowed = markings.scan(document)
        patch.setattr(markings, "WINDOWED_TERMS", False)
        assert markings.scan(document) == windowed
