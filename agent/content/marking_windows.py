"""The marking terms of a long body found by searching only the lines a term can be in.

find_terms(body) is one RE2 pass over the whole body (some 1.5 ms a MB of text, and the UTF-8 it
needs when the body is not the document's last parts). A term holds a place _winnow.marks_lines
lists (the last character of a CJK term, the first letter of a word of an English term: see
winnow_fast.term_places), so only the lines holding one need a search, but a term can also run
over a line break: "Strictly\\nConfidential", "内部资料\\n注意保密" (RE2's \\s, and the class between
the two CJK terms, take one). So each listed line is searched in a window that goes on over every
line break a term could run over (glued: the words or CJK terms that can stand on either side of
a break inside a match, CROSS_RE, are there), and a window ends at a break no match can hold. Then
no match of the whole pass crosses a window's edge, every match lies in a window, and each
window searched alone gives the whole pass's matches in it (RE2's leftmost-first choice at a
position only ever loses candidates that would cross the edge, which do not exist).

Too many windows, too long a walk over glued breaks or windows covering much of the body (English
prose: "do" starts many a word) and the whole pass runs as before (None here).
tests/agent/content/test_marking_windows.py holds this to find_terms on random texts."""

from __future__ import annotations

import re

from agent.content.marking_terms import CJK_TERMS, Term, compile_re2, find_terms

MAX_WINDOWS = 64  # more lines listed: the whole pass
MAX_GLUE_STEPS = 256  # line breaks walked over in all, at most
MAX_SHARE = 0.25  # windows longer than this share of the text in all: the whole pass
MAX_SEPARATORS = 128  # a longer run of separators at a line break is taken as glued without a look

# English terms' words that can stand before and after a \s+ inside a term (test_marking_windows.py
# checks every pair of the terms' words against TERMS_RE)
WORDS_BEFORE_SPACE = ("strictly", "company", "for", "internal", "use", "trade", "do", "not")
WORDS_AFTER_SPACE = ("confidential", "internal", "use", "only", "secret", "not", "distribute")
_CLASS = re.compile(r"\[[^\]]*\]\*")  # the one kind of non-literal piece a CJK term holds
_SEPARATORS = r"[\s,，、·:：]"  # what either kind of term holds between its words (or more)


def _cjk_crossings() -> list[str]:
    """For each CJK term holding a class (内部资料[...]*注意保密): the term with a line break in it."""
    crossings = []
    for term in CJK_TERMS:
        pieces = _CLASS.split(term)
        for i in range(1, len(pieces)):
            crossings.append(f"{re.escape(''.join(pieces[:i]))}{_SEPARATORS}*\n{_SEPARATORS}*{''.join(pieces[i:])}")
    return crossings


CROSS_RE = compile_re2(
    "|".join(
        [
            f"(?i:{'|'.join(WORDS_BEFORE_SPACE)}){_SEPARATORS}*\n{_SEPARATORS}*(?i:{'|'.join(WORDS_AFTER_SPACE)})",
            *_cjk_crossings(),
        ]
    )
)
_REACH = max(map(len, (*WORDS_BEFORE_SPACE, *WORDS_AFTER_SPACE, *CJK_TERMS)))  # a word's characters at most
_SEPARATOR_CHARS = frozenset(",，、·:：")


def _is_separator(char: str) -> bool:
    return char.isspace() or char in _SEPARATOR_CHARS  # more than RE2's \s: never less


def _glued(text: str, at: int) -> bool:
    """Whether a term might run over the line break at text[at]: CROSS_RE matches around it, or
    the separators there are too many to look past."""
    begin, end = at, at + 1
    while begin > 0 and _is_separator(text[begin - 1]):
        begin -= 1
        if at - begin > MAX_SEPARATORS:
            return True
    while end < len(text) and _is_separator(text[end]):
        end += 1
        if end - at > MAX_SEPARATORS:
            return True
    return CROSS_RE.search(text[max(0, begin - _REACH) : end + _REACH]) is not None


def windows(text: str, places: list[int]) -> list[tuple[int, int]] | None:
    """The windows (start, end: a line's start, a line's end) around the lines of places (offsets,
    in order), in order and apart; None when there are too many or they cost too much."""
    found: list[tuple[int, int]] = []
    steps, covered, n = 0, 0, len(text)
    for place in places:
        if found and place < found[-1][1]:
            continue  # in the window before
        start = text.rfind("\n", 0, place) + 1
        while start > 0 and _glued(text, start - 1):
            start = text.rfind("\n", 0, start - 1) + 1
            steps += 1
            if steps > MAX_GLUE_STEPS:
                return None
        end = text.find("\n", place)
        end = n if end < 0 else end
        while end < n and _glued(text, end):
            following = text.find("\n", end + 1)
            end = n if following < 0 else following
            steps += 1
            if steps > MAX_GLUE_STEPS:
                return None
        found.append((start, end))
        covered += end - start
        if len(found) > MAX_WINDOWS or covered > MAX_SHARE * n:
            return None
    return found


def find_terms_by_window(text: str) -> list[Term] | None:
    """find_terms(text) from the windows around the lines a term can be in, or None (the caller
    makes the whole pass) when there is no native table or the windows are too many."""
    try:
        from agent.content import winnow_fast  # numpy: an inspection worker's, loaded for winnowing
    except ImportError:
        return None
    places = winnow_fast.term_places(text, MAX_WINDOWS)
    if places is None or len(places) > MAX_WINDOWS:
        return None
    spans = windows(text, places)
    if spans is None:
        return None
    return [term for start, end in spans for term in find_terms(text, start, end)]
