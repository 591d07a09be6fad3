"""_winnow.marks lets winnow_fast skip the marking terms' RE2 pass (and the UTF-8 it needs) in a
chunk where no term can match: it must never say "none" where TERMS_RE finds one. Checked on random
texts holding the terms in any case, with the letters RE2's (?i) folds ("ſ", "K"), white space of
every kind and the terms cut or run together; on every BMP character RE2 takes for a letter of
the words looked for; by the marking lines with the pass always run; and the scan (masks on a
place's first three letters, then the word compared) against comparing every word at every place.
Breaks tried: a word shorter than three letters not let through the third mask, the comparison
starting at the fifth letter, a CJK term's end not answered: each fails
test_marks_says_what_a_character_by_character_scan_says. Two guards cannot be seen by it: past the
text's end a byte of 2 instead of 0, and the word's fit not checked before the comparison (the
str's terminating NUL, table byte 0, ends a comparison that runs over).

marks_lines (the first place of each line holding one, for MARKS_BY_LINE) is held to the same
character-by-character scan a line at a time, and _marking_lines searching those lines alone to the
whole RE2 pass and to the reference's own test of each line. Breaks tried, each failing them: the
scan not moved on to the next line, the limit reached one place early, the scan started at 0 instead
of its start, a line's number not summed from the place before, the last line cut by find's -1, no
whole pass when the limit is passed, a line taken as marked without the search."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import marking_terms, winnow, winnow_fast

_native = winnow_fast._native
pytestmark = pytest.mark.skipif(_native is None, reason="agent.content._winnow not built: the pass always runs")
SOME = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

EXAMPLES = (
    "核心商业秘密", "内部资料，注意保密", "内部资料 · 注意保密", "商密", "仅供内部使用", "严禁复制", "不得外传", "保密文件",
    "Strictly  Confidential", "COMPANY\tCONFIDENTIAL", "confidential", "For Internal Use Only", "internal\nonly",
    "PROPRIETARY", "Trade Secrets", "trade secret", "Do not distribute", "DO\u3000NOT DISTRIBUTE", "ſecret",
    "\u212aeep", "undo not distribute", "tradE  secrets",
)  # fmt: skip
NEAR = ("商业", "秘", "内部", "confi", "dential", "intern", "trad", "d", "o", "not", "secret", "use only", "prop")
pieces = st.sampled_from(EXAMPLES) | st.sampled_from(NEAR) | st.sampled_from((" ", "\n", "\t", "泵体", "x", "ſ", "K"))
texts = st.lists(pieces | st.text(max_size=6), max_size=30).map("".join)


def _words() -> bytes:
    return "".join(w + "\n" for w in winnow_fast._MARK_WORDS).encode("ascii")


@SOME
@given(texts)
def test_marks_never_says_none_where_the_terms_match(text):
    if marking_terms.TERMS_RE.search(text.encode("utf-8")) is not None:
        assert _native.marks(text, winnow_fast._marks_table(), _words()), text


@SOME
@given(texts)
def test_marking_lines_are_those_with_the_pass_always_run(text):
    lines = text.count("\n") + 1
    fast = winnow_fast._marking_lines(text, lines).tolist()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(winnow_fast, "_may_be_marked", lambda marked: True)
        assert winnow_fast._marking_lines(text, lines).tolist() == fast


def test_each_english_term_holds_one_of_the_words_outside_optional_parts():
    """A match of a term holds its word: the word is a literal run of the term with the optional
    groups taken out."""
    for term in marking_terms.EN_TERMS:
        required = re.sub(r"\(\?:[^()]*\)\?", "", term)
        assert any(word in required for word in winnow_fast._MARK_WORDS), term


def test_each_cjk_term_ends_with_a_literal_cjk_character_marked_in_the_table():
    table = winnow_fast._marks_table()
    for term in marking_terms.CJK_TERMS:
        assert winnow_fast._is_cjk(np.array([ord(term[-1])])).all(), term
        assert table[ord(term[-1])] == 1, term


def test_every_character_re2_folds_to_a_letter_of_the_words_matches_it():
    table = winnow_fast._marks_table()
    chars = "".join(chr(c) for c in range(0x10000) if not 0xD800 <= c < 0xE000)
    data = chars.encode("utf-8")
    for letter in sorted(set("".join(winnow_fast._MARK_WORDS))):
        for m in marking_terms.compile_re2(f"(?i:{letter})").finditer(data):
            char = data[m.start() : m.end()].decode("utf-8")
            assert table[ord(char)] in (ord(letter), 2), (letter, char)


@pytest.mark.parametrize("other", ["é", "泵", "\U0001f600"])
def test_every_width_and_the_text_s_ends(other):
    table = winnow_fast._marks_table()
    assert not _native.marks(f"{other} pump tolerance 泵体 d", table, _words())
    assert _native.marks(f"{other} pump\nDo", table, _words())
    assert _native.marks(f"x{other}内部资料", table, _words())
    assert not _native.marks(f"{other}内部资", table, _words())
    assert not _native.marks(f"{other} confidentia", table, _words())


def test_marks_refuses_bad_words_and_tables():
    table = winnow_fast._marks_table()
    for words in (b"Do\n", b"do", b"\n", b"d-o\n", b"a\n" * 17):
        with pytest.raises(ValueError):
            _native.marks("x", table, words)
    with pytest.raises(ValueError):
        _native.marks("x", table[:-1], _words())


def test_a_character_that_folds_to_a_letter_matches_any_letter():
    """None of today's words holds "s" or "k", but a word that does is still matched where RE2's
    (?i) would take "ſ" or "K" for them."""
    table = winnow_fast._marks_table()
    assert table[0x17F] == 2 and table[0x212A] == 2
    assert _native.marks("top \u017fecret", table, b"secret\n")
    assert _native.marks("\u212aeep out", table, b"keep\n")
    assert _native.marks("a de\u017f\u212a", table, b"desk\n")
    assert not _native.marks("top secre", table, b"secret\n")


def _may_match(text: str, table: bytes, words: list[str]) -> bool:
    """What _winnow.marks says, a character at a time: a character whose table byte is 1 (the end
    of a CJK term), or a place where each letter of a word is a character of that letter's byte
    or of byte 2 (any letter), the whole word within the text."""
    marks = [table[ord(c)] if ord(c) < 0x10000 else 0 for c in text]
    if 1 in marks:
        return True
    return any(
        all(marks[i + k] in (2, ord(letter)) for k, letter in enumerate(word))
        for i in range(len(text))
        for word in words
        if i + len(word) <= len(text)
    )


# words of one, two, three and more letters, sharing first letters and prefixes: the scan's
# masks on the first three letters and its full comparison after them both matter
WORD_SETS = (list(winnow_fast._MARK_WORDS), ["a", "do", "dot", "doe", "confidential", "conf"], ["xy", "q", "tra"])
near_words = st.sampled_from(
    ("d", "o", "do", "dO", "ſ", "K", "a", "x", "xy", "tr", "tra", "con", "conf", "内部资料", "é")
)
scan_texts = st.lists(pieces | near_words | st.text(max_size=4), max_size=30).map("".join)


@SOME
@given(scan_texts, st.sampled_from(WORD_SETS))
def test_marks_says_what_a_character_by_character_scan_says(text, words):
    """The scan masks each place by its first three letters before comparing a word in full: the
    same answer as comparing every word at every place, at the text's end too."""
    table = winnow_fast._marks_table()
    raw = "".join(w + "\n" for w in words).encode("ascii")
    assert _native.marks(text, table, raw) == _may_match(text, table, words), (text, words)


def _places_by_line(text: str, table: bytes, words: list[str]) -> list[int]:
    """What _winnow.marks_lines lists, a character at a time: in each line, the first place where
    a CJK term ends or a word starts (_may_match's places), as an offset into text."""
    marks = [table[ord(c)] if ord(c) < 0x10000 else 0 for c in text]
    places, begin = [], 0
    for line in text.split("\n"):
        for i in range(begin, begin + len(line)):
            if marks[i] == 1 or any(
                i + len(word) <= len(text) and all(marks[i + k] in (2, ord(letter)) for k, letter in enumerate(word))
                for word in words
            ):
                places.append(i)
                break
        begin += len(line) + 1
    return places


lined_texts = st.lists(pieces | near_words | st.just("\n") | st.text(max_size=4), max_size=40).map("".join)


@SOME
@given(lined_texts, st.sampled_from(WORD_SETS), st.integers(0, 6))
def test_marks_lines_lists_the_first_place_of_each_line_holding_one(text, words, limit):
    """marks_lines: the lines' first places in order, limit + 1 of them at most (the caller's sign
    that there are more), whatever the width, the line breaks first or last, the places first or
    last in their line."""
    table = winnow_fast._marks_table()
    raw = "".join(w + "\n" for w in words).encode("ascii")
    expected = _places_by_line(text, table, words)
    assert _native.marks_lines(text, table, raw, limit) == expected[: limit + 1], (text, words, limit)
    assert _native.marks_lines(text, table, raw, 10**6) == expected
    assert bool(expected) == _native.marks(text, table, raw)


def test_marks_lines_refuses_a_negative_limit_and_bad_words():
    table = winnow_fast._marks_table()
    with pytest.raises(ValueError):
        _native.marks_lines("x", table, _words(), -1)
    with pytest.raises(ValueError):
        _native.marks_lines("x", table, b"Do\n", 3)
    with pytest.raises(ValueError):
        _native.marks_lines("x", table[:-1], _words(), 3)


stars = st.sampled_from(("★", "机密★", "★秘密 1年", "第3页", "　"))
marked_lines = st.lists(st.lists(pieces | near_words | stars, max_size=8).map("".join), max_size=12).map("\n".join)


@SOME
@given(marked_lines, st.sampled_from((0, 1, 2, 64)))
def test_marking_lines_by_line_are_those_of_the_whole_pass(text, most):
    """_marking_lines searching only the lines marks_lines lists (MARKS_BY_LINE) finds the lines
    the whole RE2 pass finds (the reference), also where it gives up for too many lines and makes
    that pass after all; each line is also what the reference's own test says of it. The text is
    NFKC, as _marking_lines is given it."""
    text = unicodedata.normalize("NFKC", text)
    lines = text.count("\n") + 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(winnow_fast, "MAX_MARKED_LINES", most)
        by_line = winnow_fast._marking_lines(text, lines).tolist()
        patch.setattr(winnow_fast, "MARKS_BY_LINE", False)
        assert winnow_fast._marking_lines(text, lines).tolist() == by_line, text
    assert by_line == [winnow._is_template_line(line) for line in text.split("\n")], text
