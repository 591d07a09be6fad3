"""Personal and business identifiers: validated, counted, and shown only masked.

Text is NFKC-normalised (full-width digits become ASCII). Candidates are found in linear time and
each detector examines at most MAX_CANDIDATES of them per part of a document (then the count is a
lower bound). A candidate is a group of digit runs joined by single spaces or dashes; a run is
never part of a longer digit run (digit boundaries). What makes a value an identifier is in
ids/checks.py; the context of its column in ids/columns.py.

- cn_resident_id: 17 digits + digit/X, as one run or grouped 6-8-4, with the GB 11643 check
  digit, a birth date from 1900 to today and an area code that existed in any era (never the
  birth-year rule: an ID keeps the county that issued it). Masked 3301**********123X.
- cn_uscc: a maximal ASCII-alphanumeric run of 18 valid in its structure (authority, type,
  division, organisation code and its check digit, final check character) and not a resident
  ID. Masked 9133************2X.
- bank_card: a run of 14-19 digits, four 4-digit runs plus an optional 1-3 digit run
  (6222 0212 3456 7890 123) or Amex 4-6-5, passing Luhn within an issuer's range and lengths.
  Context words (卡号, 银行卡, 账号, card, account ...) near it, else in its column's header, make it
  a card; order, invoice, tracking, serial, corporate account (对公), ICCID and IMEI words make it
  not one, and so do both kinds at once; with neither, a strong range (UnionPay, Visa,
  Mastercard, Amex, JCB, Discover) counts and a weak one does not.
  An 18-digit number laid out as a resident ID (real area and date) is never a card, nor is an
  ICCID or a valid USCC. Masked 622202******7890.
- cn_mobile: 1[3-9] + 9 digits as one run or grouped 3-4-4 (138 1234 5678). With no checksum it
  counts only with context: a context word (手机, 电话, 联系方式, 联系人, mobile, phone, tel;
  case-insensitive, "tel" not after a letter) within CONTEXT_CHARS characters before or after it
  in the same part, or the number sits in a column whose header holds one (CSV, TXT, worksheet,
  PDF and docx tables; ids/columns.py). Masked 138****5678.
Each candidate counts for one identifier at most: resident ID, then USCC, then bank card.

The detectors read the same candidates, found once per document, not once per detector or per
part (the scan is kept, per thread, while the document lives): the parts are normalised, joined by
line breaks (no candidate spans one) and scanned in one pass, by Python's re for the two candidate
patterns (digit groups; alphanumeric runs of exactly 18, the only USCC length), whose matches cost
a tenth of the RE2 wrapper's and which cannot backtrack more than a bounded number of steps per
character. scan_digits and scan_uscc, RE2 over one part at a time, skipping parts with fewer than
MIN_DIGITS ASCII digits (the shortest identifier, a mobile, has 11; a USCC holds 7 at least: its
authority, type and division), are the reference the whole-body scan must equal
(tests/agent/content/test_identifier_whole.py).

That scan (_scan_whole) is in turn the reference of the one the detectors use (_scan_table): the
digit runs of the joined text found with numpy, those that are groups of their own checked by
length all at once (ids/vector.py), the candidates kept in columns (_Table) and counted with their
context as bits, with no object per candidate (tests/agent/content/test_identifier_vector.py).
"""

from __future__ import annotations

import bisect
import re
import sys
import threading
import unicodedata
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import partial
from itertools import accumulate
from operator import attrgetter
from typing import NamedTuple

import re2

from agent.content.document import Cell, Document
from agent.content.ids import checks
from agent.content.ids.columns import ANY_WORD_LOOSE, CARD, NO_TAGS, NOT_CARD, ColumnContext, tags_of, tags_of_each
from agent.content.ids.columns import MOBILE as MOBILE_TAG
from agent.content.lazy import lazy
from agent.content.normalised import Joined
from agent.content.normalised import joined as joined_parts
from rules.events import Detection

# numpy only where a long text is scanned (an inspection worker), not in the agent's main process
np = lazy("numpy", globals(), "np")
vector = lazy("agent.content.ids.vector", globals(), "vector")

MAX_CANDIDATES = 100_000
MIN_DIGITS = 7  # fewer ASCII digits than this in a part: no identifier can be there
SHORT_PART_CHARS = 4096  # parts this short are counted for digits before they are scanned
CONTEXT_CHARS = 30
WORDED_PASS_CHARS = 1024
NUMPY_SCAN_CHARS = 4096  # texts this short are scanned by _scan_whole, not by _scan_table
MOBILE_CONTEXT_WORDS = ("手机", "电话", "联系方式", "手机号", "联系人", "mobile", "phone", "tel")

RESIDENT_ID, USCC, BANK_CARD, MOBILE = "cn_resident_id", "cn_uscc", "bank_card", "cn_mobile"


def _compile(pattern: str) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


# at most 16 runs per group: a grouped card needs 5, a mobile 3; an endless "1 1 1 ..." line must
# not become one match holding millions of runs
_DIGIT_GROUP = _compile(r"[0-9]+(?:[ -][0-9]+){0,15}(?: ?[Xx])?")
_ALNUM_WITH_DIGITS = _compile(r"[0-9A-Za-z]*[0-9]{6}[0-9A-Za-z]*")
# MIN_DIGITS ASCII digits anywhere (the classes are disjoint: linear, no backtracking)
_ENOUGH_DIGITS = re.compile(f"[0-9](?:[^0-9]*[0-9]){{{MIN_DIGITS - 1}}}")


class Found(NamedTuple):
    """A candidate (a named tuple: a roster makes tens of thousands, a frozen dataclass costs four
    times as much to build)."""

    kind: str  # RESIDENT_ID | BANK_CARD | MOBILE (a candidate: context not yet weighed)
    value: str  # digits only (and a final X)
    start: int
    end: int
    strong: bool = True  # a card in a range that counts without context


def mask(kind: str, value: str) -> str:
    keep = {RESIDENT_ID: (4, 4), USCC: (4, 2), BANK_CARD: (6, 4), MOBILE: (3, 4)}[kind]
    head, tail = keep
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


def is_resident_id(value: str, today: date) -> bool:
    return checks.is_resident_id(value, today)


def _card(value: str, start: int, end: int, today: date) -> Found | None:
    if checks.is_iccid(value) or checks.looks_like_resident_id(value, today):
        return None
    if len(value) == 18 and checks.is_uscc(value):
        return None
    issuer = checks.card_issuer(value)
    return Found(BANK_CARD, value, start, end, issuer.strong) if issuer else None


def _classify_run(value: str, start: int, today: date) -> Iterator[Found]:
    end = start + len(value)
    if value[-1] in "Xx":
        value = value[:-1] + "X"
        if is_resident_id(value, today):
            yield Found(RESIDENT_ID, value, start, end)
        return
    if len(value) == 18 and is_resident_id(value, today):
        yield Found(RESIDENT_ID, value, start, end)
    elif 14 <= len(value) <= 19:
        card = _card(value, start, end, today)
        if card:
            yield card
    elif len(value) == 11 and value[0] == "1" and value[1] in "3456789":
        yield Found(MOBILE, value, start, end)


def _joined(runs: list[tuple[str, int]], i: int, used: int) -> tuple[str, int, int]:
    last, last_start = runs[i + used - 1]
    return "".join(r for r, _ in runs[i : i + used]), runs[i][1], last_start + len(last)


def _grouped_card(runs: list[tuple[str, int]], i: int, today: date) -> tuple[Found, int] | None:
    """Four 4-digit runs from i and an optional 1-3 digit run, or Amex 4-6-5: (card, runs used)."""
    lengths = [len(r) for r, _ in runs[i : i + 5]]
    if lengths[:3] == [4, 6, 5]:
        options = [3]
    elif lengths[:4] == [4, 4, 4, 4]:
        options = [5, 4] if len(lengths) == 5 and 1 <= lengths[4] <= 3 else [4]
    else:
        return None
    for used in options:
        value, start, end = _joined(runs, i, used)
        card = _card(value, start, end, today) if value.isdigit() else None
        if card:
            return card, used
    return None


def _grouped_resident_id(runs: list[tuple[str, int]], i: int, today: date) -> tuple[Found, int] | None:
    """110105 19491231 002X: six, eight and four characters."""
    if [len(r) for r, _ in runs[i : i + 3]] != [6, 8, 4]:
        return None
    value, start, end = _joined(runs, i, 3)
    value = value.upper()
    return (Found(RESIDENT_ID, value, start, end), 3) if is_resident_id(value, today) else None


def _grouped_mobile(runs: list[tuple[str, int]], i: int) -> tuple[Found, int] | None:
    if [len(r) for r, _ in runs[i : i + 3]] != [3, 4, 4]:
        return None
    value, start, end = _joined(runs, i, 3)
    if not value.isdigit() or value[1] not in "3456789" or value[0] != "1":
        return None
    return Found(MOBILE, value, start, end), 3


def scan_digits(text: str, today: date, max_candidates: int = MAX_CANDIDATES) -> Iterator[Found]:
    """Resident IDs, card and mobile candidates in text, in order, examining at most max_candidates runs."""
    return _scan_groups(_DIGIT_GROUP.finditer(text), text, today, max_candidates)


def _scan_groups(matches: Iterator, text: str, today: date, max_candidates: int) -> Iterator[Found]:
    """scan_digits over the digit groups found (by RE2, or by re in the whole-body scan)."""
    examined = 0
    for m in matches:
        group, offset = m.group(), m.start()
        if group.isdigit():  # one run (ASCII digits only): _classify_run inline, the common case
            if examined >= max_candidates:
                return
            examined += 1
            n = len(group)
            if n == 18 and is_resident_id(group, today):
                yield Found(RESIDENT_ID, group, offset, offset + n)
            elif 14 <= n <= 19:
                card = _card(group, offset, offset + n, today)
                if card:
                    yield card
            elif n == 11 and group[0] == "1" and group[1] in "3456789":
                yield Found(MOBILE, group, offset, offset + n)
            continue
        if group[-1] in "Xx" and m.end() < len(text) and text[m.end()].isascii() and text[m.end()].isalnum():
            group = group[:-1].rstrip()  # an X glued to a word is not a check character
        elif group[-1] in "Xx" and group[-2] == " ":  # "11010519491231002 X", as PDF text may have it
            group = group[:-2] + group[-1] if len(group) >= 19 and group[-19:-2].isdigit() else group[:-2]
        runs: list[tuple[str, int]] = []
        for run in group.replace("-", " ").split(" "):
            runs.append((run, offset))
            offset += len(run) + 1
        i = 0
        while i < len(runs):
            if examined >= max_candidates:
                return
            examined += 1
            if len(runs) - i >= 3:
                grouped = (
                    _grouped_resident_id(runs, i, today) or _grouped_card(runs, i, today) or _grouped_mobile(runs, i)
                )
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
        if len(value) == 18 and checks.is_uscc(value) and not is_resident_id(value, today):
            yield value


def has_mobile_context(window: str) -> bool:
    return MOBILE_TAG in tags_of(window)


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
    index: int = 0  # of the part in its document
    usccs: tuple[str, ...] | None = None  # its USCCs when the whole-body scan found them (None: scan_uscc)


@dataclass(frozen=True)
class _Scan:
    parts: list[_Scanned]
    columns: ColumnContext  # header context of every position, built when first asked
    worded: frozenset[int] | None = None  # the parts holding a context word at all (None: unknown)
    table: _Table | None = None  # the candidates in columns (then parts is empty): the detectors count with numpy


_cache = threading.local()  # (weak reference to the document, today, its scan)


def _scan(document: Document, today: date) -> _Scan:
    """Each part of the document normalised and scanned for digit identifiers, once: the detectors
    of one document share it. The entry goes when the document does (weak reference)."""
    held = getattr(_cache, "entry", None)
    if held is not None and held[0]() is document and held[1] == today:
        return held[2]
    shared = joined_parts(document)
    texts, joined = shared.texts, shared.text
    # numpy's fixed cost per call (some 250 µs a document) outweighs its gain on a short text: a
    # file's name, a short note; the pure-Python scan gives the same candidates (_scan_table's reference)
    table = _scan_table(texts, joined, today) if len(joined) > NUMPY_SCAN_CHARS else None
    parts = _scan_whole(texts, joined, today) if table is None else []
    if table is None:
        contexts = sum(f.kind in (BANK_CARD, MOBILE) for part in parts for f in part.found)  # weighed by context
    else:
        contexts = int(np.count_nonzero(table.kinds != _KIND[RESIDENT_ID]))
    # a window search costs what a pass over some WORDED_PASS_CHARS characters does: a few
    # candidates are searched one window at a time (worded None: unknown)
    worded = (
        frozenset()
        if not contexts
        else _worded(joined, texts, shared)
        if contexts * WORDED_PASS_CHARS > len(joined)
        else None
    )
    # the parts with a loose context word, when each is one line, are a superset of the header
    # candidates' lines (ColumnContext): the header search needs no pass of its own
    candidates = {part: {0} for part in worded} if worded is not None and shared.one_line_a_part() else None
    columns = ColumnContext(
        partial(_column_parts, document.parts, texts), shared.utf8, candidates, (document.parts, texts)
    )
    scan = _Scan(parts, columns, worded, table)
    _cache.entry = (weakref.ref(document, _forget), today, scan)
    return scan


def _column_parts(parts: tuple, texts: list[str]) -> list[tuple[str, str, Cell | None]]:
    return list(zip(map(_WHERE_OF, parts), texts, map(_CELL_OF, parts), strict=True))


_nfkc = partial(unicodedata.normalize, "NFKC")
_TEXT_OF, _WHERE_OF, _CELL_OF = attrgetter("text"), attrgetter("where"), attrgetter("cell")
# The whole-body scan runs these with Python's re, whose matches cost a tenth of the RE2 wrapper's:
# neither can backtrack more than a bounded number of steps per character (a digit run, then at
# most 15 separator-and-run repetitions; an 18-character window between two look-arounds)
_DIGIT_GROUP_RE = re.compile(_DIGIT_GROUP.pattern)
_ALNUM_18 = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{18}(?![0-9A-Za-z])")
_SIX_DIGITS = re.compile(r"[0-9]{6}")


def _scan_by_part(texts: list[str], today: date) -> list[_Scanned]:
    """The reference: each part scanned alone, unless it has too few digits."""
    return [
        _Scanned(text, tuple(scan_digits(text, today)), True, i) if may_hold_identifier(text) else _Scanned(text, (), False, i)
        for i, text in enumerate(texts)
    ]  # fmt: skip


def _scan_whole(texts: list[str], joined: str, today: date) -> list[_Scanned]:
    """The same candidates as _scan_by_part, from one pass over the parts joined by "\\n" (no
    candidate spans one); only the parts holding one are returned. A part too short to reach
    MAX_CANDIDATES (a run examined takes a digit and a separator, a USCC candidate six digits and
    one) has no cap to keep: the short parts between two long ones are scanned as one stretch;
    a long part alone, with its cap (its USCCs by scan_uscc). A USCC candidate of scan_uscc is a
    maximal alphanumeric run holding six digits in a row, and only one of 18 characters can be
    valid: those are looked for directly."""
    lengths = list(map(len, texts))
    ends = list(accumulate(map((1).__add__, lengths)))  # just past each part's "\\n"
    long_parts = [i for i, n in enumerate(lengths) if n >= 2 * MAX_CANDIDATES]
    found: dict[int, list[Found]] = {}

    def scan(first: int, last: int, cap: int) -> None:  # parts first..last-1
        pos, endpos = ends[first - 1] if first else 0, ends[last - 1] - 1
        for f in _scan_groups(_DIGIT_GROUP_RE.finditer(joined, pos, endpos), joined, today, cap):
            i = bisect.bisect_right(ends, f.start)
            start = ends[i - 1] if i else 0
            found.setdefault(i, []).append(Found(f.kind, f.value, f.start - start, f.end - start, f.strong))

    first = 0
    for i in [*long_parts, len(texts)]:
        if first < i:
            scan(first, i, sys.maxsize)
        if i < len(texts):
            scan(i, i + 1, MAX_CANDIDATES)
        first = i + 1
    usccs: dict[int, list[str]] = {}
    for m in _ALNUM_18.finditer(joined):
        value = m.group().upper()
        if _SIX_DIGITS.search(value) and checks.is_uscc(value) and not is_resident_id(value, today):
            usccs.setdefault(bisect.bisect_right(ends, m.start()), []).append(value)
    alone = {i for i in long_parts if lengths[i] >= 7 * MAX_CANDIDATES}  # scan_uscc, with its cap
    return [
        _Scanned(texts[i], tuple(found.get(i, ())), True, i, None if i in alone else tuple(usccs.get(i, ())))
        for i in sorted(found.keys() | usccs.keys() | alone)
    ]


_X = (ord("X"), ord("x"))  # np.isin takes them as they are
_SEPARATOR = (ord(" "), ord("-"))
_RUN_LENGTHS = (11, *range(14, 20))  # the only lengths a run standing alone can be an identifier at
KINDS = (RESIDENT_ID, BANK_CARD, MOBILE)  # the kinds of a _Table, by index
_KIND = {kind: i for i, kind in enumerate(KINDS)}


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of True in mask."""
    edges = np.flatnonzero(mask[1:] != mask[:-1]) + 1  # np.diff with its prepend and append costs 10 times this
    if len(mask) and mask[0]:
        edges = np.concatenate([[0], edges])
    if len(mask) and mask[-1]:
        edges = np.concatenate([edges, [len(mask)]])
    return edges[0::2], edges[1::2]


def _ascii_alnum(points: np.ndarray) -> np.ndarray:
    return ((points - ord("0")) < 10) | (((points | 32) - ord("a")) < 26)


@dataclass(frozen=True)
class _Table:
    """Every digit candidate of a document in columns, in order of position in joined (the parts
    joined by "\n"), and its USCCs: what _scan_whole finds, without an object per candidate."""

    joined: str
    part_starts: np.ndarray  # where each part starts in joined
    kinds: np.ndarray  # index into KINDS
    starts: np.ndarray  # in joined
    ends: np.ndarray
    parts: np.ndarray  # the part holding each candidate
    strong: np.ndarray
    values: dict[int, str]  # by start: the values that are not joined[start:end] (groups of runs, a final X)
    usccs: dict[int, list[str]]  # by part
    codes: np.ndarray | None = None  # vector.ascii_codes(joined), for the column context's rows

    def value(self, i: int) -> str:
        start = int(self.starts[i])
        return self.values.get(start) or self.joined[start : int(self.ends[i])]


class _Chosen:
    """Candidates as they are found: arrays of starts, lengths and strength for each kind."""

    def __init__(self) -> None:
        self.starts: list[np.ndarray] = []
        self.ends: list[np.ndarray] = []
        self.kinds: list[np.ndarray] = []
        self.strong: list[np.ndarray] = []
        self.values: dict[int, str] = {}

    def add(self, kind: str, starts: np.ndarray, length: int, strong: np.ndarray | None = None) -> None:
        self.starts.append(starts)
        self.ends.append(starts + length)
        self.kinds.append(np.full(len(starts), _KIND[kind], dtype=np.int8))
        self.strong.append(np.ones(len(starts), dtype=bool) if strong is None else strong)

    def add_found(self, found: list[Found]) -> None:
        if found:
            self.starts.append(np.array([f.start for f in found], dtype=np.int64))
            self.ends.append(np.array([f.end for f in found], dtype=np.int64))
            self.kinds.append(np.array([_KIND[f.kind] for f in found], dtype=np.int8))
            self.strong.append(np.array([f.strong for f in found], dtype=bool))
            self.values.update((f.start, f.value) for f in found)


def _scan_table(texts: list[str], joined: str, today: date) -> _Table | None:
    """_scan_whole's candidates, with numpy; None when a part is long enough for MAX_CANDIDATES to
    bind and holds that many digit runs (then _scan_whole scans). A digit run that is a group of its own (no [ -] and digits on
    either side, no X after it or one glued to a letter or digit, which the scan drops) is its
    whole group, so the runs of each identifier length are checked at once (ids/vector.py), and a
    17-digit run with an X is a resident ID or nothing; other groups (several runs, " X"), and
    only those holding 11 digits (the fewest any identifier has), go through _scan_groups."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    long_parts = np.flatnonzero(lengths >= 2 * MAX_CANDIDATES)
    points = vector.ascii_codes(joined)  # only ASCII characters are told apart here
    part_starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths + 1, out=part_starts[1:])
    digit = (points - ord("0")) < 10
    starts, ends = _runs(digit)
    if len(long_parts):  # a part examines one run at least a candidate: fewer runs than its cap, no cap binds
        runs = np.bincount(np.searchsorted(part_starts, starts, side="right") - 1, minlength=len(texts))
        if (runs[long_parts] >= MAX_CANDIDATES).any():
            return None
    chosen = _Chosen()
    if len(starts):
        padded = _Padded(points)
        after = padded[ends]
        linked = np.zeros(len(starts), dtype=bool)  # run i and run i + 1 are one group's
        linked[:-1] = (starts[1:] == ends[:-1] + 1) & np.isin(after[:-1], _SEPARATOR)
        x_direct = np.isin(after, _X)
        x_spaced = (after == ord(" ")) & np.isin(padded[ends + 1], _X)
        glued = (x_direct & _ascii_alnum(padded[ends + 1])) | (x_spaced & _ascii_alnum(padded[ends + 2]))
        first = np.ones(len(starts), dtype=bool)
        first[1:] = ~linked[:-1]
        single = first & ~linked
        alone = single & (~(x_direct | x_spaced) | glued)
        with_x = single & x_direct & ~glued
        plain = ~alone & ~with_x  # several runs, or " X": the reference, for those with 11 digits or more
        group = np.cumsum(first) - 1
        digits_in_group = np.bincount(group, weights=ends - starts)
        last = np.flatnonzero(~linked)
        x_length = np.where(x_direct[last], 1, np.where(x_spaced[last], 2, 0))
        referred = np.flatnonzero(np.bincount(group, weights=plain.astype(np.int64)) > 0)
        referred = referred[digits_in_group[referred] >= 11]
        begins, finishes = starts[first][referred].tolist(), (ends[last] + x_length)[referred].tolist()
        for begin, end in zip(begins, finishes, strict=True):
            matches = _DIGIT_GROUP_RE.finditer(joined, begin, end)
            chosen.add_found(list(_scan_groups(matches, joined, today, sys.maxsize)))
        _alone_runs(points, starts[alone], ends[alone] - starts[alone], today, chosen)
        at = starts[with_x & (ends - starts == 17)]
        if len(at):
            codes = vector.window(points, at, 18)
            codes[:, 17] = ord("X")
            at = at[vector.is_resident_id(codes, today)]
            chosen.add(RESIDENT_ID, at, 18)
            lower = at[points[at + 17] == ord("x")]  # an upper-case X: the value is the text's
            chosen.values.update((s, joined[s : s + 17] + "X") for s in lower.tolist())
    usccs: dict[int, list[str]] = {}
    eighteen = _alphanumeric_18(points, starts, ends)
    if len(eighteen):
        codes = vector.window(points, eighteen, 18)
        codes -= np.where((codes >= ord("a")) & (codes <= ord("z")), 32, 0)
        for start in eighteen[vector.is_uscc(codes)].tolist():
            value = joined[start : start + 18].upper()
            if not is_resident_id(value, today):
                usccs.setdefault(int(np.searchsorted(part_starts, start, side="right")) - 1, []).append(value)
    if chosen.starts:
        at = np.concatenate(chosen.starts)
        order = np.argsort(at, kind="stable")
        at = at[order]
        found = (np.concatenate(chosen.kinds)[order], at, np.concatenate(chosen.ends)[order])
        part = np.searchsorted(part_starts, at, side="right") - 1
        strong = np.concatenate(chosen.strong)[order]
        return _Table(joined, part_starts, *found, part, strong, chosen.values, usccs, points)
    none = np.zeros(0, dtype=np.int64)
    return _Table(joined, part_starts, none.astype(np.int8), none, none, none, none.astype(bool), {}, usccs, points)


class _Padded:
    """points read at any index: 0 (no letter or digit) before the start and past the end, without
    copying the text into a padded array."""

    def __init__(self, points: np.ndarray) -> None:
        self.points = points

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        inside = (index >= 0) & (index < len(self.points))
        return np.where(inside, self.points[np.clip(index, 0, max(len(self.points) - 1, 0))], 0)


def _alphanumeric_18(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The starts of the maximal runs of 18 ASCII letters and digits holding a run of 6 digits or
    more (starts, ends: the digit runs): every valid USCC is one (its division code is 6 digits).
    A digit run with at most one letter to either side before a character that is neither (a
    roster's numbers between commas, an ID's final X) is read off those two characters a side;
    the others are reached for as the reference does (_alphanumeric_18_by_reach, the reference of
    the whole)."""
    long = (ends - starts >= 6) & (ends - starts <= 18)
    starts, ends = starts[long], ends[long]
    padded = _Padded(points)
    before, after = _ascii_alnum(padded[starts - 1]), _ascii_alnum(padded[ends])
    closed = ~(before & _ascii_alnum(padded[starts - 2])) & ~(after & _ascii_alnum(padded[ends + 1]))
    first = starts - before
    alone = first[closed & (ends + after - first == 18)]
    reached = _alphanumeric_18_by_reach(points, starts[~closed], ends[~closed])
    return np.union1d(alone, reached) if len(reached) else alone


def _alphanumeric_18_by_reach(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """_alphanumeric_18 from a window of 13 characters either side of each digit run of 6 to 18:
    the reference of its whole-text mask."""
    long = (ends - starts >= 6) & (ends - starts <= 18)
    starts, ends = starts[long], ends[long]
    if not len(starts):
        return starts
    reach = 13  # a run of 18 reaches at most 12 characters past a 6-digit run, a 13th ends it
    padded = _Padded(points)
    steps = np.arange(1, reach + 1)
    before = _ascii_alnum(padded[starts[:, None] - steps])  # the characters before, nearest first
    after = _ascii_alnum(padded[ends[:, None] - 1 + steps])
    left, right = np.argmin(before, axis=1), np.argmin(after, axis=1)  # letters and digits in a row
    bounded = ~before.all(axis=1) & ~after.all(axis=1)  # else a run of 19 at least
    return np.unique((starts - left)[bounded & (left + (ends - starts) + right == 18)])


def _alone_runs(points: np.ndarray, starts: np.ndarray, lengths: np.ndarray, today: date, chosen: _Chosen) -> None:
    """What _scan_groups finds in runs that are groups of their own: by length, checked at once."""
    for length in _RUN_LENGTHS:
        at = starts[lengths == length]
        if not len(at):
            continue
        if length == 11:  # a mobile's shape is its first two digits
            chosen.add(MOBILE, at[(points[at] == ord("1")) & (points[at + 1] >= ord("3"))], 11)
            continue
        codes = vector.window(points, at, length)
        card = np.ones(len(at), dtype=bool)
        if length == 18:
            looks = vector.looks_like_resident_id(codes, today)  # vector.is_resident_id's first half, once
            chosen.add(RESIDENT_ID, at[looks & vector.resident_check_holds(codes)], 18)
            card = ~looks
            card[card] = ~vector.is_uscc(codes[card])
        elif length == 19:
            card = ~((codes[:, 0] == ord("8")) & (codes[:, 1] == ord("9")))  # an ICCID
        if card.all():
            issuer = vector.card_issuers(codes)
        else:  # the issuers of the rows that may be cards only
            issuer = np.full(len(at), -1, dtype=np.int64)
            issuer[card] = vector.card_issuers(codes[card])
        cards = issuer >= 0
        chosen.add(BANK_CARD, at[cards], length, vector.STRONG[issuer[cards]])


def _table_parts(table: _Table, texts: list[str]) -> list[_Scanned]:
    """The table as _scan_whole answers: the parts holding a candidate (for the tests' comparison)."""
    found: dict[int, list[Found]] = {}
    for i in range(len(table.starts)):
        part, base = int(table.parts[i]), int(table.part_starts[table.parts[i]])
        start, end = int(table.starts[i]), int(table.ends[i])
        f = Found(KINDS[table.kinds[i]], table.value(i), start - base, end - base, bool(table.strong[i]))
        found.setdefault(part, []).append(f)
    return [
        _Scanned(texts[i], tuple(found.get(i, ())), True, i, tuple(table.usccs.get(i, ())))
        for i in sorted(found.keys() | table.usccs.keys())
    ]


def _scan_vector(texts: list[str], joined: str, today: date) -> list[_Scanned]:
    """_scan_whole's answer from _scan_table (or from _scan_whole when a cap may bind)."""
    table = _scan_table(texts, joined, today)
    return _scan_whole(texts, joined, today) if table is None else _table_parts(table, texts)


def _worded(joined: str, texts: list[str], shared: Joined | None = None) -> frozenset[int]:
    """The parts holding a context word, boundaries aside (ANY_WORD_LOOSE): one pass over joined's
    UTF-8 bytes (RE2's wrapper would encode a str and convert every offset back to characters;
    shared: joined's, encoded once for the document). When no part holds a line break, a match's
    part is the line breaks before it, counted from the match before; else the parts' encoded
    lengths are summed."""
    data = joined.encode() if shared is None else shared.utf8()
    starts = [m.start() for m in ANY_WORD_LOOSE.finditer(data)]
    if not starts:
        return frozenset()
    if shared is not None and shared.one_line_a_part():
        parts, part, counted_to = set(), 0, 0
        for start in starts:
            part += data.count(b"\n", counted_to, start)
            counted_to = start
            parts.add(part)
        return frozenset(parts)
    ends = list(accumulate(map((1).__add__, map(len, map(str.encode, texts)))))
    return frozenset(bisect.bisect_right(ends, start) for start in starts)


def scanned_parts(document: Document, today: date) -> list[_Scanned]:
    return _scan(document, today).parts


def _forget(_ref: weakref.ref) -> None:
    _cache.__dict__.pop("entry", None)  # the thread that scanned it: no text kept in memory


def _context(scan: _Scan, part: _Scanned, f: Found) -> tuple[frozenset[str], frozenset[str]]:
    """Context words near f in its part, and those of its column's header."""
    if scan.worded is not None and part.index not in scan.worded:  # no window of it holds one
        return NO_TAGS, scan.columns.tags_at(part.index, f.start)
    text = part.text
    window = text[max(0, f.start - CONTEXT_CHARS) : f.start] + " " + text[f.end : f.end + CONTEXT_CHARS]
    return tags_of(window), scan.columns.tags_at(part.index, f.start)


_BITS = {MOBILE_TAG: 1, CARD: 2, NOT_CARD: 4}  # context tags as bits, for many candidates at once
_CARD_WORDS = _BITS[CARD] | _BITS[NOT_CARD]


def _bits(tags: frozenset[str]) -> int:
    return sum(_BITS[t] for t in tags)


def _context_bits(scan: _Scan, table: _Table, chosen: np.ndarray, settled: int) -> tuple[np.ndarray, np.ndarray]:
    """_context of the table's candidates chosen (indices), as bits: the near words by a window
    search where scan.worded allows one, the column's from ColumnContext.column_bits. A candidate
    whose near words hold a bit of `settled` is decided without its column (the caller never reads
    it): its column is left 0 and not asked, so prose whose cards all have a card word beside them
    never builds the table rows at all."""
    near = np.zeros(len(chosen), dtype=np.int64)
    parts = table.parts[chosen]
    asked = np.ones(len(chosen), dtype=bool)
    if scan.worded is not None:
        asked = np.isin(parts, np.fromiter(scan.worded, dtype=np.int64, count=len(scan.worded)))
    joined = table.joined
    windows, asked = [], np.flatnonzero(asked)
    for k in asked.tolist():
        i = chosen[k]
        start, end = int(table.starts[i]), int(table.ends[i])
        part_start, part_end = int(table.part_starts[parts[k]]), int(table.part_starts[parts[k] + 1]) - 1
        before, after = (
            joined[max(part_start, start - CONTEXT_CHARS) : start],
            joined[end : min(part_end, end + CONTEXT_CHARS)],
        )
        windows.append(before + " " + after)
    if windows:
        near[asked] = list(map(_bits, tags_of_each(windows)))
    column = np.zeros(len(chosen), dtype=np.int64)
    asked = (near & settled) == 0
    if asked.any():
        # asked once a document, when its rows are first read (which tell only ASCII characters apart)
        points = partial(vector.ascii_codes, joined) if table.codes is None else partial(_same, table.codes)
        positions = table.starts[chosen[asked]]
        column[asked] = scan.columns.column_bits(parts[asked], positions, points, table.part_starts, _bits)
    return near, column


def _same(value: np.ndarray) -> np.ndarray:
    return value


class _IdentifierDetector:
    """Counts one kind of identifier in every part; subclasses say which and how."""

    id = ""

    def __init__(self, today: Callable[[], date] = date.today) -> None:
        self.today = today

    def found_in(self, scan: _Scan, part: _Scanned, today: date) -> Iterator[str]:
        raise NotImplementedError

    def counted(self, scan: _Scan, table: _Table) -> tuple[int, str]:
        """The count and the first value from the table: found_in of every part, with numpy."""
        raise NotImplementedError

    def detect(self, document: Document) -> Detection | None:
        today, count, sample = self.today(), 0, ""
        scan = _scan(document, today)
        if scan.table is not None:
            count, value = self.counted(scan, scan.table)
            return Detection(self.id, count, mask(self.id, value)) if count else None
        for part in scan.parts:
            for value in self.found_in(scan, part, today):
                sample = sample or mask(self.id, value)
                count += 1
        return Detection(self.id, count, sample) if count else None


def _first(table: _Table, chosen: np.ndarray) -> tuple[int, str]:
    return (len(chosen), table.value(int(chosen[0]))) if len(chosen) else (0, "")


class ResidentIdDetector(_IdentifierDetector):
    id = RESIDENT_ID

    def found_in(self, scan: _Scan, part: _Scanned, today: date) -> Iterator[str]:
        return (f.value for f in part.found if f.kind == RESIDENT_ID)

    def counted(self, scan: _Scan, table: _Table) -> tuple[int, str]:
        return _first(table, np.flatnonzero(table.kinds == _KIND[RESIDENT_ID]))


class UsccDetector(_IdentifierDetector):
    id = USCC

    def found_in(self, scan: _Scan, part: _Scanned, today: date) -> Iterator[str]:
        if part.usccs is not None:
            return iter(part.usccs)
        return scan_uscc(part.text, today) if part.digits else iter(())

    def counted(self, scan: _Scan, table: _Table) -> tuple[int, str]:
        values = [v for _, found in sorted(table.usccs.items()) for v in found]
        return len(values), values[0] if values else ""


class BankCardDetector(_IdentifierDetector):
    id = BANK_CARD

    def found_in(self, scan: _Scan, part: _Scanned, today: date) -> Iterator[str]:
        for f in part.found:
            if f.kind != BANK_CARD:
                continue
            near, column = _context(scan, part, f)
            said = near if near & {CARD, NOT_CARD} else column  # words beside it before its header's
            if said & {CARD, NOT_CARD} == {CARD} or (not said & {CARD, NOT_CARD} and f.strong):
                yield f.value

    def counted(self, scan: _Scan, table: _Table) -> tuple[int, str]:
        chosen = np.flatnonzero(table.kinds == _KIND[BANK_CARD])
        # a card or order word beside it settles it: its column is not read
        near, column = _context_bits(scan, table, chosen, _CARD_WORDS)
        said = np.where(near & _CARD_WORDS, near, column) & _CARD_WORDS
        return _first(table, chosen[(said == _BITS[CARD]) | ((said == 0) & table.strong[chosen])])


class MobileDetector(_IdentifierDetector):
    id = MOBILE

    def found_in(self, scan: _Scan, part: _Scanned, today: date) -> Iterator[str]:
        for f in part.found:
            if f.kind == MOBILE:
                near, column = _context(scan, part, f)
                if MOBILE_TAG in near or MOBILE_TAG in column:
                    yield f.value

    def counted(self, scan: _Scan, table: _Table) -> tuple[int, str]:
        chosen = np.flatnonzero(table.kinds == _KIND[MOBILE])
        near, column = _context_bits(scan, table, chosen, _BITS[MOBILE_TAG])
        return _first(table, chosen[((near | column) & _BITS[MOBILE_TAG]) != 0])
