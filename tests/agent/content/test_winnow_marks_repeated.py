"""_marking_lines on a chunk whose term places lie in lines that repeat (a deck's footer on every
slide): winnow_fast._marked_by_line walks up to MAX_PLACES places, searching each distinct line
once, instead of the whole RE2 pass. The lines it finds are those of the whole pass (the
reference) and of the reference's own test of each line, with the limits made small so that every
way out is taken (too many distinct lines among the first places, too many places, too many
distinct lines while walking); and no line is searched twice, nor more than MAX_MARKED_LINES
lines in all."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import marking_terms, winnow, winnow_fast

pytestmark = pytest.mark.skipif(winnow_fast._native is None, reason="agent.content._winnow not built")
SOME = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PIECES = (
    "内部资料", "商业秘密", "商密", "协商密切", "CONFIDENTIAL", "confidentiality", "do", "do not distribute",
    "Strictly", "internal", "use only", "trade secrets", "第3页", "泵体", "x", " ", "\t", "ſ", "é", "😀",
)  # fmt: skip
line = st.lists(st.sampled_from(PIECES) | st.text(max_size=3).filter(lambda t: "\n" not in t), max_size=5).map("".join)
# a few lines, then a text of many lines drawn from them (some lines repeat, some are new)
texts = st.lists(line, min_size=1, max_size=5).flatmap(
    lambda pool: st.lists(st.sampled_from(pool) | line, max_size=40).map("\n".join)
)
LIMITS = st.tuples(st.sampled_from((0, 1, 2, 4, 64)), st.sampled_from((0, 1, 2, 16)), st.sampled_from((1, 3, 8, 2048)))


@SOME
@given(texts, LIMITS)
def test_repeated_lines_are_searched_once_and_give_the_whole_pass_lines(text, limits):
    text = unicodedata.normalize("NFKC", text)
    lines = text.count("\n") + 1
    most, few, places = limits
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(winnow_fast, "MAX_MARKED_LINES", most)
        patch.setattr(winnow_fast, "FEW_DISTINCT", few)
        patch.setattr(winnow_fast, "MAX_PLACES", places)
        fast = winnow_fast._marking_lines(text, lines).tolist()
        patch.setattr(winnow_fast, "REPEATED_LINES", False)
        assert winnow_fast._marking_lines(text, lines).tolist() == fast, (text, limits)
        patch.setattr(winnow_fast, "MARKS_BY_LINE", False)
        assert winnow_fast._marking_lines(text, lines).tolist() == fast, (text, limits)
    assert fast == [winnow._is_template_line(piece) for piece in text.split("\n")], (text, limits)


class _Counting:
    """TERMS_RE, counting the texts its search is asked about."""

    def __init__(self, pattern) -> None:
        self.pattern = pattern
        self.searched: list = []

    def search(self, text):
        self.searched.append(text)
        return self.pattern.search(text)

    def finditer(self, text):
        return self.pattern.finditer(text)


@SOME
@given(texts, st.sampled_from((1, 2, 4, 64)))
def test_each_distinct_line_is_searched_once_and_at_most_the_limit_in_all(text, most):
    text = unicodedata.normalize("NFKC", text)
    counting = _Counting(marking_terms.TERMS_RE)
    found = winnow_fast.np.zeros(text.count("\n") + 1, dtype=bool)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(winnow_fast, "MAX_MARKED_LINES", most)
        patch.setattr(winnow_fast, "FEW_DISTINCT", most)
        patch.setattr(marking_terms, "TERMS_RE", counting)
        by_line = winnow_fast._marked_by_line(text, found)
    assert len(counting.searched) == len(set(counting.searched)) <= most, (text, most)
    if by_line:  # every line holding a place was searched (or is one searched before)
        places = winnow_fast._native.marks_lines(text, winnow_fast._marks_table(), winnow_fast._mark_words(), 10**6)
        assert {winnow_fast._line_at(text, p) for p in places} == set(counting.searched), (text, most)


def test_a_footer_on_every_slide_is_searched_once():
    text = "\n".join(f"第{i}页 泵体 {'do ' if i % 3 else ''}it\n内部资料" for i in range(300))
    counting = _Counting(marking_terms.TERMS_RE)
    found = winnow_fast.np.zeros(text.count("\n") + 1, dtype=bool)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(marking_terms, "TERMS_RE", counting)
        assert not winnow_fast._marked_by_line(text, found)  # 200 distinct "do" lines: the whole pass
    text = "\n".join(f"第{i}页 泵体 it\n内部资料" for i in range(300))
    counting.searched.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(marking_terms, "TERMS_RE", counting)
        assert winnow_fast._marked_by_line(text, found)
    assert counting.searched == ["内部资料"]
    assert found.tolist() == [i % 2 == 1 for i in range(600)]
