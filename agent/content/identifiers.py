"""Personal and business identifiers: validated, counted, and shown only masked.

Text is NFKC-normalised (full-width digits become ASCII). Candidates are found with RE2 in linear
time and each detector examines at most MAX_CANDIDATES of them per part of a document (then the count is a
lower bound). A candidate is a group of digit runs joined by single spaces or dashes; a run is
never part of a longer digit run (digit boundaries).

- cn_resident_id: a run of 17 digits + digit/X that stdnum.cn.ric validates (GB 11643 checksum,
  real birth date, known region) with a birth date not after today. Masked 3301**********123X.
- cn_uscc: a maximal ASCII-alphanumeric run of 18 that stdnum.cn.uscc validates and that is not a
  resident ID. Masked 9133************2X.
- bank_card: a run of 16-19 digits, or four 4-digit runs plus an optional 1-3 digit run
  (6222 0212 3456 7890), that passes Luhn and is neither a resident ID nor a USCC. Masked
  622202******7890.
- cn_mobile: 1[3-9] + 9 digits as one run or grouped 3-4-4 (138 1234 5678). With no checksum it
  counts only with context: a context word (手机, 电话, 联系方式, 联系人, mobile, phone, tel;
  case-insensitive, "tel" not after a letter) within CONTEXT_CHARS characters before or after it
  in the same part, or the number sits in a column whose header cell holds a context word. The
  header is the first non-empty line of the part; it is tabular when it holds a tab (else a
  comma); columns are counted by delimiters, so quoted cells with commas shift them. Masked
  138****5678.
Each candidate counts for one identifier at most: resident ID, then USCC, then bank card.

The resident ID, bank card and mobile detectors read the same candidates: each part is
normalised and scanned once per document, not once per detector (the scan is kept, per thread,
while the document lives). A part with fewer than MIN_DIGITS ASCII digits after normalisation
holds no identifier (the shortest, a mobile, has 11; a USCC run holds 8 together) and is not
scanned at all: most file names, most short parts.
"""

from __future__ import annotations

import re
import threading
import unicodedata
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import re2
from stdnum import luhn
from stdnum.cn import ric, uscc

from agent.content.document import Document
from rules.events import Detection

MAX_CANDIDATES = 100_000
MIN_DIGITS = 8  # fewer ASCII digits than this in a part: no identifier can be there
SHORT_PART_CHARS = 4096  # parts this short are counted for digits before they are scanned
CONTEXT_CHARS = 30
MOBILE_CONTEXT_WORDS = ("手机", "电话", "联系方式", "手机号", "联系人", "mobile", "phone", "tel")

RESIDENT_ID, USCC, BANK_CARD, MOBILE = "cn_resident_id", "cn_uscc", "bank_card", "cn_mobile"


def _compile(pattern: str) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


# at most 16 runs per group: a grouped card needs 5, a mobile 3; an endless "1 1 1 ..." line must
# not become one match holding millions of runs
_DIGIT_GROUP = _compile(r"[0-9]+(?:[ -][0-9]+){0,15}[Xx]?")
_ALNUM_WITH_DIGITS = _compile(r"[0-9A-Za-z]*[0-9]{8}[0-9A-Za-z]*")
# MIN_DIGITS ASCII digits anywhere (the classes are disjoint: linear, no backtracking)
_ENOUGH_DIGITS = re.compile(f"[0-9](?:[^0-9]*[0-9]){{{MIN_DIGITS - 1}}}")
_CONTEXT = _compile(r"手机|电话|联系方式|联系人|(?i:phone|mobile|(?:^|[^a-z])tel)")


@dataclass(frozen=True)
class Found:
    kind: str  # RESIDENT_ID | BANK_CARD | MOBILE (a mobile candidate, context not yet weighed)
    value: str  # digits only (and a final X)
    start: int
    end: int


def mask(kind: str, value: str) -> str:
    keep = {RESIDENT_ID: (4, 4), USCC: (4, 2), BANK_CARD: (6, 4), MOBILE: (3, 4)}[kind]
    head, tail = keep
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


def is_resident_id(value: str, today: date) -> bool:
    return len(value) == 18 and ric.is_valid(value) and ric.get_birth_date(value) <= today


def _classify_run(value: str, start: int, today: date) -> Iterator[Found]:
    end = start + len(value)
    if value[-1] in "Xx":
        value = value[:-1] + "X"
        if is_resident_id(value, today):
            yield Found(RESIDENT_ID, value, start, end)
        return
    if len(value) == 18 and is_resident_id(value, today):
        yield Found(RESIDENT_ID, value, start, end)
    elif 16 <= len(value) <= 19 and not (len(value) == 18 and uscc.is_valid(value)) and luhn.is_valid(value):
        yield Found(BANK_CARD, value, start, end)
    elif len(value) == 11 and value[0] == "1" and value[1] in "3456789":
        yield Found(MOBILE, value, start, end)


def _grouped_card(runs: list[tuple[str, int]], i: int) -> tuple[Found, int] | None:
    """Four 4-digit runs from i, plus an optional 1-3 digit run, passing Luhn: (card, runs used)."""
    if i + 3 >= len(runs) or any(len(runs[j][0]) != 4 or not runs[j][0].isdigit() for j in range(i, i + 4)):
        return None
    digits = "".join(r for r, _ in runs[i : i + 4])
    extra = runs[i + 4][0] if i + 4 < len(runs) else ""
    options = [(digits + extra, 5)] if extra.isdigit() and 1 <= len(extra) <= 3 else []
    for value, used in [*options, (digits, 4)]:
        if luhn.is_valid(value):
            last, last_start = runs[i + used - 1]
            return Found(BANK_CARD, value, runs[i][1], last_start + len(last)), used
    return None


def _grouped_mobile(runs: list[tuple[str, int]], i: int) -> tuple[Found, int] | None:
    if i + 2 >= len(runs) or [len(r) for r, _ in runs[i : i + 3]] != [3, 4, 4]:
        return None
    value = "".join(r for r, _ in runs[i : i + 3])
    if not value.isdigit() or value[1] not in "3456789" or value[0] != "1":
        return None
    last, last_start = runs[i + 2]
    return Found(MOBILE, value, runs[i][1], last_start + len(last)), 3


def scan_digits(text: str, today: date, max_candidates: int = MAX_CANDIDATES) -> Iterator[Found]:
    """Resident IDs, bank cards and mobile candidates in text, in order, examining at most max_candidates runs."""
    examined = 0
    for m in _DIGIT_GROUP.finditer(text):
        group, offset = m.group(), m.start()
        if group[-1] in "Xx" and m.end() < len(text) and text[m.end()].isascii() and text[m.end()].isalnum():
            group = group[:-1]  # an X glued to a word is not a check character
        runs: list[tuple[str, int]] = []
        for run in group.replace("-", " ").split(" "):
            runs.append((run, offset))
            offset += len(run) + 1
        i = 0
        while i < len(runs):
            if examined >= max_candidates:
                return
            examined += 1
            grouped = _grouped_card(runs, i) or _grouped_mobile(runs, i)
            if grouped:
                yield grouped[0]
                i += grouped[1]
                continue
            yield from _classify_run(runs[i][0], runs[i][1], today)
            i += 1


def scan_uscc(text: str, today: date, max_candidates: int = MAX_CANDIDATES) -> Iterator[str]:
    for examined, m in enumerate(_ALNUM_WITH_DIGITS.finditer(text)):
        if examined >= max_candidates:
            return
        value = m.group().upper()
        if len(value) == 18 and uscc.is_valid(value) and not is_resident_id(value, today):
            yield value


def has_mobile_context(window: str) -> bool:
    return _CONTEXT.search(window) is not None


class _ColumnTracker:
    """The delimiter-counted column of ever later positions in text, in linear time overall."""

    def __init__(self, text: str, delimiter: str) -> None:
        self.text, self.delimiter = text, delimiter
        self.pos = self.column = 0

    def column_at(self, index: int) -> int:
        newline = self.text.rfind("\n", self.pos, index)
        if newline >= 0:
            self.column = self.text.count(self.delimiter, newline + 1, index)
        else:
            self.column += self.text.count(self.delimiter, self.pos, index)
        self.pos = index
        return self.column


def _context_columns(text: str) -> tuple[str, frozenset[int]] | None:
    header = next((line for line in text.split("\n", 50)[:50] if line.strip()), "")
    delimiter = "\t" if "\t" in header else "," if "," in header else None
    if delimiter is None:
        return None
    columns = frozenset(i for i, cell in enumerate(header.split(delimiter)) if has_mobile_context(cell))
    return (delimiter, columns) if columns else None


def _texts(document: Document) -> Iterator[str]:
    for part in document.parts:
        yield unicodedata.normalize("NFKC", part.text)


def may_hold_identifier(text: str) -> bool:
    """False when the (normalised) text has too few ASCII digits for any identifier."""
    if len(text) > SHORT_PART_CHARS:
        return True  # counting would cost as much as the scan it saves
    return _ENOUGH_DIGITS.search(text) is not None


@dataclass(frozen=True)
class _Scanned:
    text: str  # the part, NFKC-normalised
    found: tuple[Found, ...]  # scan_digits of it (empty when it cannot hold an identifier)
    digits: bool = True  # whether it has enough digits to hold an identifier at all


_cache = threading.local()  # (weak reference to the document, today, its parts scanned)


def scanned_parts(document: Document, today: date) -> list[_Scanned]:
    """Each part of the document normalised and scanned for digit identifiers, once: the detectors
    of one document share it. The entry goes when the document does (weak reference)."""
    held = getattr(_cache, "entry", None)
    if held is not None and held[0]() is document and held[1] == today:
        return held[2]
    parts = [
        _Scanned(text, tuple(scan_digits(text, today)), True) if may_hold_identifier(text) else _Scanned(text, (), False)
        for text in _texts(document)
    ]
    _cache.entry = (weakref.ref(document, _forget), today, parts)
    return parts


def _forget(_ref: weakref.ref) -> None:
    _cache.__dict__.pop("entry", None)  # the thread that scanned it: no text kept in memory


class _IdentifierDetector:
    """Counts one kind of identifier in every part; subclasses say which and how."""

    id = ""

    def __init__(self, today: Callable[[], date] = date.today) -> None:
        self.today = today

    def found_in(self, part: _Scanned, today: date) -> Iterator[str]:
        raise NotImplementedError

    def detect(self, document: Document) -> Detection | None:
        today, count, sample = self.today(), 0, ""
        for part in scanned_parts(document, today):
            for value in self.found_in(part, today):
                sample = sample or mask(self.id, value)
                count += 1
        return Detection(self.id, count, sample) if count else None


class ResidentIdDetector(_IdentifierDetector):
    id = RESIDENT_ID

    def found_in(self, part: _Scanned, today: date) -> Iterator[str]:
        return (f.value for f in part.found if f.kind == RESIDENT_ID)


class UsccDetector(_IdentifierDetector):
    id = USCC

    def found_in(self, part: _Scanned, today: date) -> Iterator[str]:
        return scan_uscc(part.text, today) if part.digits else iter(())


class BankCardDetector(_IdentifierDetector):
    id = BANK_CARD

    def found_in(self, part: _Scanned, today: date) -> Iterator[str]:
        return (f.value for f in part.found if f.kind == BANK_CARD)


class MobileDetector(_IdentifierDetector):
    id = MOBILE

    def found_in(self, part: _Scanned, today: date) -> Iterator[str]:
        mobiles = [f for f in part.found if f.kind == MOBILE]
        if not mobiles:
            return
        text = part.text
        table = _context_columns(text)
        tracker = _ColumnTracker(text, table[0]) if table else None
        for f in mobiles:
            window = text[max(0, f.start - CONTEXT_CHARS) : f.start] + " " + text[f.end : f.end + CONTEXT_CHARS]
            in_column = table is not None and tracker is not None and tracker.column_at(f.start) in table[1]
            if has_mobile_context(window) or in_column:
                yield f.value
