"""Numbers wrapped over a line break inside a table cell, joined again.

A PDF table cell too narrow for an ID prints it on two lines, and pypdf gives them as two lines
(110105194 / 91231002X). A line ending in a digit run and the next starting with one are joined
when the join is a valid resident ID, USCC or strong-range bank card and neither piece is one on
its own: the check comes after the join, so nothing false is made. The ending run may be the tail
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


def is_identifier(value: str, today: date) -> bool:
    value = value.upper()
    if len(value) == 18 and checks.is_resident_id(value, today):
        return True
    if len(value) == 18 and checks.is_uscc(value):
        return True
    issuer = checks.card_issuer(value) if value.isdigit() else None
    return issuer is not None and issuer.strong and not checks.looks_like_resident_id(value, today)


def _join(tail: str, head: str, today: date) -> int:
    """How many of tail's last characters complete head into an identifier (0: none). The whole
    tail for any identifier; a suffix of a longer one only for an 18-character resident ID or
    USCC (Luhn alone would let one in ten arbitrary splits through as a card)."""
    if is_identifier(head, today) or is_identifier(tail, today):
        return 0
    if len(tail) + len(head) <= 19:
        return len(tail) if is_identifier(tail + head, today) else 0
    keep = 18 - len(head)
    if keep >= MIN_PIECE and not is_identifier(tail[-keep:], today):
        value = (tail[-keep:] + head).upper()
        if checks.is_resident_id(value, today) or checks.is_uscc(value):
            return keep
    return 0


def join_wrapped(lines: list[str], today: date) -> list[str]:
    """lines, with identifiers wrapped from one line to the next joined on the first."""
    lines = list(lines)
    for i in range(len(lines) - 1):
        tail, head = _TAIL.search(lines[i].rstrip()), _HEAD.match(lines[i + 1])
        if tail is None or head is None or len(head.group(1)) < MIN_PIECE:
            continue
        keep = _join(tail.group(1), head.group(1), today)
        if keep:
            left = lines[i].rstrip()
            cut = len(left) - keep
            lines[i] = left[:cut] + (" " if cut and left[cut - 1].isdigit() else "") + left[cut:] + head.group(1)
            lines[i + 1] = lines[i + 1][head.end() :].lstrip()
    return lines
