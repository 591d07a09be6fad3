"""_winnow.heads (agent/content/_winnow.c) lets winnow_fast skip the clause numbers' regex in a
chunk where no line can start with one: it must never say "none" where the regex finds one. Checked
on random lines (clause numbers, odd white space and case folds such as "ſ" for "s"), on every BMP
character as a line's first, and by the line anchors with the regex always run."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import winnow, winnow_fast
from tests.agent.content.test_winnow_fast import CLAUSES, texts

_native = winnow_fast._native
pytestmark = pytest.mark.skipif(_native is None, reason="agent.content._winnow not built: the regex always runs")
SOME = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HEADS = (
    "第3条", "第十二章", "1.2 ", "3、", "12）", "4)", "7 ", "（一）", "(12)", "Article 4.", "SECTION 2:", "clause 9",
    "ſection 3", "ARTİCLE 1", "٣.", "１.", "①", "二、", "十 ", "a", "s", "c", "x", "第", "(", "（",
)  # fmt: skip
SPACE = (" ", "\t", "\u3000", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\xa0", "\r", "")
lines = st.lists(
    st.tuples(st.sampled_from(SPACE), st.sampled_from(HEADS + ("", "x", "泵体", "-", "★"))).map("".join)
    | st.text(max_size=8)
    | st.sampled_from(CLAUSES),
    max_size=12,
).map("\n".join)


def _regex_finds(text: str) -> bool:
    return winnow_fast._ENUMERATION_LINES.search("\n" + text) is not None


@SOME
@given(lines)
def test_heads_never_says_none_where_the_regex_finds_a_number(text):
    found = _native.heads(text, winnow_fast._heads_table())
    if _regex_finds(text):
        assert found, text


@SOME
@given(lines)
def test_a_line_starting_with_a_number_is_seen_after_any_lines(text):
    numbered = text + "\n \u3000第3条 泵体"
    assert _native.heads(numbered, winnow_fast._heads_table())


@pytest.mark.parametrize("width", ["latin", "bmp", "astral"])
def test_heads_reads_every_character_width(width):
    """The same answer for text held one, two or four bytes a character (CPython's kinds)."""
    other = {"latin": "é", "bmp": "泵", "astral": "\U0001f600"}[width]
    table = winnow_fast._heads_table()
    assert not _native.heads(f"x{other}\n  - y{other}\n\tz{other}", table)
    assert _native.heads(f"x{other}\n  - y\n\t1.2 {other}", table)
    assert _native.heads(f"x\n{other}", table) == (width == "astral")
    assert _native.heads("x\n\U0001d7ce", table)  # beyond the BMP: counted as may (a digit here)
    assert not _native.heads(f"x{other}\nassembly\n schedule\ncoating\ns", table)  # a, s, c: not their words
    assert _native.heads(f"x{other}\nassembly\n Se", table)


def _no_match(probes: str, follow: str) -> None:
    found = winnow_fast._ENUMERATION_LINES.search(probes)  # a match starts at a probe's "\n"
    assert found is None, (found.group(), follow)


def test_no_bmp_character_left_out_of_the_table_starts_a_number():
    """Every character the table calls neither a head (1, 3) nor white space (2) ends the regex's
    leading white space without a match, whatever follows it; after a word's first letter (3),
    so does every character that is not a second (4); white space is skipped."""
    table = winnow_fast._heads_table()
    usable = [c for c in range(0x10000) if not 0xD800 <= c < 0xE000 and c != 10]
    follows = ("", "1", "1.", "3条", "条", ")", "）", " ", "rticle 1", "ection 1", "lause 1", "RTICLE 1", "1 ")
    for follow in follows:
        _no_match("".join(f"\n{chr(c)}{follow}" for c in usable if table[c] in (0, 4)), follow)
    seconds = [chr(c) for c in usable if table[c] != 4]
    for first in (chr(c) for c in usable if table[c] == 3):
        for follow in ("ticle 1", "ction 1", "ause 1", "TICLE 1"):
            _no_match("".join(f"\n{first}{second}{follow}" for second in seconds), first + follow)
    for c in usable:
        if table[c] == 2:
            assert winnow_fast._ENUMERATION_LINES.match(f"\n{chr(c)}1.") is not None


@SOME
@given(st.one_of(texts, lines))
def test_line_anchors_are_those_with_the_regex_always_run(text):
    boilerplate = winnow.boilerplate_hashes()
    fast = winnow_fast.line_anchors(text, winnow.GRAM_BYTES, boilerplate)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(winnow_fast, "_may_be_numbered", lambda joined: True)
        assert winnow_fast.line_anchors(text, winnow.GRAM_BYTES, boilerplate) == fast
    assert winnow.line_anchors(text, winnow.GRAM_BYTES, boilerplate) == fast


@pytest.mark.parametrize("other", ["é", "泵", "\U0001f600"])
def test_long_lines_of_every_width_are_read_to_their_breaks(other):
    """The next line break found past blocks of 64 characters: a number after lines of any length
    (a break at any place in a block) is seen, and none is made up."""
    table = winnow_fast._heads_table()
    for length in range(200):
        line = f"w{other}" + "y" * length
        for before in ("", f"x{other}\n", "z" * 50 + "\n"):
            assert not _native.heads(f"{before}{line}\nx{other}\n{line}", table), (length, before)
            assert _native.heads(f"{before}{line}\n 1.\n{line}", table), (length, before)
            assert _native.heads(f"{before}{line}\n{line}\n第3条", table), (length, before)
