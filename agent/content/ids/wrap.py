"""Numbers wrapped over a line break inside a table cell, joined again.

A PDF table cell too narrow for an ID prints it on two lines, and pypdf gives them as two lines
(110105194 / 91231002X). A line ending in a digit run and the next starting with one are joined
when the join is a valid resident ID or USCC and neither piece is one on its own: the check comes
after the join, so nothing false is made (a card's Luhn digit passes one arbitrary join in ten, so
a card joins only in a row where a resident ID or USCC joined too). The ending run may be the tail
of a longer run (pypdf glues a neighbouring cell's last line to it): the suffix that makes an
18-character resident ID or USCC is used. Line numbers stay as they were (an emptied line stays).
"""

from __future__ import annotations

import re
from datetime import date

from agent.content.ids import checks

MIN_PIECE = 3  # digits on each side: a lone check character or digit does not make a join
_TAIL = re.compile(r"([0-9]{3,})$")
_HEAD = re.compile(r"^\s*([0-9]{2,}[0-9A-Za-z]*?)(?=\s|$)")
_ASCII_DIGITS = frozenset("0123456789")
_ASCII_DIGIT = re.compile(r"[0-9]")
_DIGIT_TO_LINE_END = re.compile(r"[0-9][^\n]*")  # one match per line holding an ASCII digit
_FRAGMENTS = re.compile(r"\s*[0-9A-Za-z]{1,17}(?:\s+[0-9A-Za-z]{1,17})*\s*")
# a maximal alphanumeric run with a digit (tried once a run: the look-behind skips a run's inside)
_CELL_WITH_DIGIT = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]*[0-9][0-9A-Za-z]*")
MAX_ROW_CHARS = 400  # a table row; longer lines are prose


def is_strong_identifier(value: str, today: date) -> bool:
    """A resident ID or a USCC: checks that an arbitrary join passes about once in thousands."""
    value = value.upper()
    return len(value) == 18 and (checks.is_resident_id(value, today) or checks.is_uscc(value))


def is_card(value: str, today: date) -> bool:
    """Luhn and a strong range: one arbitrary join in ten or so passes Luhn."""
    issuer = checks.card_issuer(value) if value.isdigit() else None
    return issuer is not None and issuer.strong and not checks.looks_like_resident_id(value, today)


def is_identifier(value: str, today: date) -> bool:
    return is_strong_identifier(value, today) or is_card(value, today)


def _join(tail: str, head: str, today: date) -> int:
    """How many of tail's last characters complete head into an identifier (0: none). The whole
    tail for any identifier; a suffix of a longer one only for an 18-character resident ID or
    USCC (Luhn alone would let one in ten arbitrary splits through as a card)."""
    if is_identifier(head, today) or is_identifier(tail, today):
        return 0
    if len(tail) + len(head) <= 19:
        return len(tail) if is_strong_identifier(tail + head, today) else 0
    keep = 18 - len(head)
    if keep >= MIN_PIECE and not is_identifier(tail[-keep:], today):
        value = (tail[-keep:] + head).upper()
        if checks.is_resident_id(value, today) or checks.is_uscc(value):
            return keep
    return 0


def _is_mobile_shape(value: str) -> bool:
    return len(value) == 11 and value.isdigit() and value[0] == "1" and value[1] in "3456789"


def _join_row(row: str, wrapped: str, today: date, prefilter: bool = True) -> str | None:
    """row with each fragment of wrapped (a line of nothing but fragments: a table row's
    continuation) joined to its cell, or None unless every fragment finds one. Fragments join
    cells in order; a join must be a valid identifier, except a fragment between two valid joins
    with one cell left between them, which may complete a mobile number's shape (no check digit).
    `prefilter` False: every fragment tried against every cell (the reference of the length test)."""
    if not _FRAGMENTS.fullmatch(wrapped):  # wrapped.split(): 1 to 17 alphanumerics each
        return None
    fragments = wrapped.split()
    if prefilter and _ASCII_DIGIT.search(row) is None:
        return None  # no cell to join to
    cells = list(_CELL_WITH_DIGIT.finditer(row))
    # a join is 11 (a mobile's shape) to 19 characters (a card): a fragment no cell can reach, or a
    # row where none reaches 18 (a resident ID or USCC, which every joined row needs), is no join
    lengths = {m.end() - m.start() for m in cells}
    if prefilter and (
        not any(len(f) + n == 18 for f in fragments for n in lengths)
        or not all(any(11 <= len(f) + n <= 19 for n in lengths) for f in fragments)
    ):
        return None
    matched: dict[int, int] = {}  # fragment -> cell
    next_cell = 0
    for k, fragment in enumerate(fragments):
        for j in range(next_cell, len(cells)):
            cell = cells[j].group()
            if not is_identifier(cell, today) and is_identifier(cell + fragment, today):
                matched[k], next_cell = j, j + 1
                break
    for k, fragment in enumerate(fragments):
        if k in matched:
            continue
        low = max((j for f, j in matched.items() if f < k), default=-1)
        high = min((j for f, j in matched.items() if f > k), default=len(cells))
        between = [j for j in range(low + 1, high) if j not in matched.values()]
        if len(between) == 1 and _is_mobile_shape(cells[between[0]].group() + fragment):
            matched[k] = between[0]
    strong = [k for k, j in matched.items() if is_strong_identifier(cells[j].group() + fragments[k], today)]
    if len(matched) != len(fragments) or not strong:
        return None  # a row of Luhn-valid joins alone is not evidence of a wrapped row
    joined, last = [], 0
    for k, j in sorted(matched.items(), key=lambda kv: kv[1]):
        joined += [row[last : cells[j].end()], fragments[k]]
        last = cells[j].end()
    return "".join(joined) + row[last:]


def join_wrapped(lines: list[str], today: date) -> list[str]:
    """lines, with identifiers wrapped from one line to the next joined on the first."""
    lines = list(lines)
    for i in range(len(lines) - 1):
        _join_at(lines, i, today)
    return lines


def join_wrapped_fast(lines: list[str], today: date) -> list[str]:
    """join_wrapped(lines, today), trying only the lines a join can start at: a line holding an
    ASCII digit (_join_row wants one in the row, a tail join a line ending in one), and a line the
    join before it changed. The lines with a digit come from one pass over the joined lines, so
    prose costs no Python per line; the others are left as they are by _join_at, which
    join_wrapped tries on every line."""
    lines = list(lines)
    last = len(lines) - 1
    text = "\n".join(lines)  # splitlines() left no line break inside a line
    starts, line, at = [], 0, 0
    for m in _DIGIT_TO_LINE_END.finditer(text):
        line += text.count("\n", at, m.start())
        at = m.start()
        starts.append(line)
    k, i = 0, starts[0] if starts else last
    while i < last:
        changed = _join_at(lines, i, today)
        while k < len(starts) and starts[k] <= i:
            k += 1
        i = i + 1 if changed else starts[k] if k < len(starts) else last
    return lines


def _join_at(lines: list[str], i: int, today: date) -> bool:
    """Join what line i + 1 continues of line i, in place; True when line i + 1 changed."""
    if len(lines[i]) <= MAX_ROW_CHARS and len(lines[i + 1]) <= MAX_ROW_CHARS:
        row = _join_row(lines[i], lines[i + 1], today)
        if row is not None:
            lines[i], lines[i + 1] = row, ""
            return True
    left = lines[i].rstrip()
    if not left or left[-1] not in _ASCII_DIGITS:  # _TAIL cannot match: no search along the line
        return False
    tail, head = _TAIL.search(left), _HEAD.match(lines[i + 1])
    if tail is None or head is None or len(head.group(1)) < MIN_PIECE:
        return False
    keep = _join(tail.group(1), head.group(1), today)
    if not keep:
        return False
    cut = len(left) - keep
    lines[i] = left[:cut] + (" " if cut and left[cut - 1].isdigit() else "") + left[cut:] + head.group(1)
    lines[i + 1] = lines[i + 1][head.end() :].lstrip()
    return True
