"""Markings: the words a firm stamps on its secrets, and the ★ marks reserved for state secrets.

A marking is a form, not a mention (marking_form.py says which forms): "【商业秘密】", "密级：核心商密",
"内部资料 注意保密" alone on its line, "ACME Ltd. Confidential" in a footer or at the top of a page.
News about a trade-secret case, a policy on 保密管理, an NDA titled 保密协议 whose body says "双方应
注意保密", a title such as 商业秘密保护管理制度: prose, wherever it stands.

Where a line stands decides how lax the form test is: the file name, properties, header and footer
are bands; the title, the first TOP_LINES non-empty lines of the body and, in a PDF, the first and
last TOP_LINES lines of every page (where page headers and footers land in extracted text) are the
top; every other line is body.

trade_secret_marking: one detector id for every company marking (商业秘密, 商密, 核心商密, 普通商密,
技术秘密, 公司秘密, 企业秘密, 内部资料, 仅供内部使用, 内部文件, 严禁外传, 不得外传, 严禁复制, 注意保密,
保密文件; CONFIDENTIAL, STRICTLY CONFIDENTIAL, COMPANY CONFIDENTIAL, INTERNAL ONLY, FOR INTERNAL
USE ONLY, PROPRIETARY, TRADE SECRET(S), DO NOT DISTRIBUTE). Bare 秘密 or 保密 is never a term.
English terms match case-insensitively between non-alphanumeric neighbours ("confidentiality" is
not a term); 商密 after 协/磋/会/洽/面/共 (协商密切) is not. count = the occurrences that stand as
markings; overlapping terms count once, as the longest. The sample names the first by place:
"商业秘密 @header", "严禁外传 @body:12" (line 12 of the joined body).

state_secret_marking: (绝密|机密|秘密)★ with an optional period (长期, 启用前, 5年, 2030年12月31日),
also as extraction may order or space it (★机密 5 年, 机 密 ★). It counts when it stands as a mark:
in a band, at the top, alone on its line with a copy number, 密级 label, urgency or date, or in
brackets. A ★ form in a sentence or in quotes (文件应标注“机密★”) is state_secret_mention: worth a
look, not a marked file. ☆ is not accepted; 秘密★ right after 商业/技术/公司/企业/个人 (a trade
secret wrongly starred) is neither.

The three detectors read one scan per document: the body is joined and searched in one RE2 pass
per vocabulary, and only the lines holding a candidate are read again (kept per thread while the
document lives, as identifiers.py does).
"""

from __future__ import annotations

import bisect
import threading
import unicodedata
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import attrgetter

from agent.content.document import BODY, FOOTER, HEADER, NAME, PROPERTIES, TITLE, Document, TextPart
from agent.content.marking_form import (
    Standing,
    line_allows_loose_form,
    marked_terms,
    state_line_is_filler,
    state_mark_stands,
)
from agent.content.marking_terms import Term, find_state_marks, find_terms, find_terms_in_utf8
from agent.content.marking_windows import find_terms_by_window
from agent.content.normalised import Joined, joined, normalised_texts
from rules.events import Detection

TOP_LINES = 3
PROMINENT_PLACES = (NAME, TITLE, PROPERTIES, HEADER, FOOTER)
STANDING_OF_PLACE = {
    NAME: Standing.BAND,
    PROPERTIES: Standing.BAND,
    HEADER: Standing.BAND,
    FOOTER: Standing.BAND,
    TITLE: Standing.TOP,
}

TRADE, STATE, MENTION = "trade_secret_marking", "state_secret_marking", "state_secret_mention"


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


class _Tally:
    """A count and the first sample: a file full of markings must not fill memory with strings."""

    def __init__(self) -> None:
        self.count = 0
        self.sample = ""

    def add(self, labels: Iterator[str] | list[str], where: str) -> None:
        for label in labels:
            if not self.count:
                self.sample = f"{label} @{where}"
            self.count += 1

    def detection(self, detector: str) -> Detection | None:
        return Detection(detector, self.count, self.sample) if self.count else None


@dataclass(frozen=True)
class MarkingScan:
    trade: Detection | None  # trade_secret_marking
    state: Detection | None  # state_secret_marking
    mention: Detection | None  # state_secret_mention


@dataclass(frozen=True)
class _Body:
    text: str  # body parts, normalised, joined by "\n"
    first_lines_end: int  # offset just past the first TOP_LINES non-empty lines
    top_starts: tuple[int, ...]  # sorted ranges of PDF lines at the top or bottom of a page
    top_ends: tuple[int, ...]
    shared: Joined | None = None  # the document's joined parts, when the body is their last ones
    ahead: int = 0  # the parts before the body

    @property
    def utf8(self) -> bytes | None:
        """text's UTF-8 cut from the document's shared encoding (made when first asked, by the
        identifiers or here), or None when the body is not the document's last parts."""
        if self.shared is None:
            return None
        ahead = self.shared.texts[: self.ahead]
        return self.shared.utf8()[sum(len(t.encode()) for t in ahead) + self.ahead :]

    def standing(self, line_start: int) -> Standing:
        if line_start < self.first_lines_end:
            return Standing.TOP
        i = bisect.bisect_right(self.top_starts, line_start) - 1
        return Standing.TOP if i >= 0 and line_start < self.top_ends[i] else Standing.BODY


def _near_a_page_edge(parts: Sequence[TextPart], i: int) -> bool:
    """A PDF line among the first or last TOP_LINES lines of its page (the reference of
    _page_edge_lines, which answers for every line at once)."""
    if parts[i].page_line <= 0:
        return False
    if parts[i].page_line <= TOP_LINES:
        return True
    following = parts[i + 1 : i + 1 + TOP_LINES]
    return len(following) < TOP_LINES or any(p.page_line == 1 for p in following)


def _page_edge_lines(page_lines: Sequence[int]) -> list[int]:
    """The indexes i for which _near_a_page_edge(parts, i) holds, given each part's page_line, in
    one backward pass (a PDF of 30,000 lines asked each line's next TOP_LINES parts: some 40 ms a
    MB of text)."""
    n = len(page_lines)
    near = []
    next_page_start = n + TOP_LINES  # index of the nearest later part with page_line 1 (none yet)
    for i in range(n - 1, -1, -1):
        line = page_lines[i]
        if line > 0 and (line <= TOP_LINES or n - 1 - i < TOP_LINES or next_page_start - i <= TOP_LINES):
            near.append(i)
        if line == 1:
            next_page_start = i
    near.reverse()
    return near


def _body_start(wheres: list[str]) -> int | None:
    """Where the body starts when it is the document's last parts (extraction's usual order: the
    name, properties and title first), else None."""
    if BODY not in wheres:
        return None
    first = wheres.index(BODY)
    return first if wheres.count(BODY) == len(wheres) - first else None


def _body(document: Document, wheres: list[str] | None = None) -> _Body:
    wheres = list(map(_WHERE, document.parts)) if wheres is None else wheres
    first = _body_start(wheres)
    if first is not None:  # the last parts: a cut of the document's joined text and of its UTF-8
        parts: Sequence[TextPart] = document.parts[first:]
        texts = normalised_texts(document)[first:]
    else:
        in_body = list(map(BODY.__eq__, wheres))
        parts = list(compress(document.parts, in_body))
        texts = list(compress(normalised_texts(document), in_body))
    starts: list[int] = []
    ends: list[int] = []
    page_lines = list(map(_PAGE_LINE, parts))
    if max(page_lines, default=0) > 0:  # PDF lines: those near a page's edge stand at the top
        offsets = [0, *accumulate(len(t) + 1 for t in texts)]
        for i in _page_edge_lines(page_lines):
            starts.append(offsets[i])
            ends.append(offsets[i] + len(texts[i]))
    if first is not None:
        shared = joined(document)
        text = shared.text[sum(map(len, shared.texts[:first])) + first :]
        return _Body(text, _first_lines_end(text), tuple(starts), tuple(ends), shared, first)
    text = "\n".join(texts)
    return _Body(text, _first_lines_end(text), tuple(starts), tuple(ends))


_WHERE, _PAGE_LINE = attrgetter("where"), attrgetter("page_line")


def _first_lines_end(text: str) -> int:
    position, seen = 0, 0
    while position < len(text) and seen < TOP_LINES:
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        if text[position:end].strip():
            seen += 1
        position = end + 1
    return position


def _by_line(text: str, spans: list[Term]) -> Iterator[tuple[int, int, list[Term]]]:
    """(line start, line number, the spans on that line with offsets into the line), in order."""
    i, line_number, counted_to = 0, 1, 0
    while i < len(spans):
        start = text.rfind("\n", 0, spans[i].start) + 1
        end = text.find("\n", spans[i].start)
        end = len(text) if end < 0 else end
        j = i
        while j < len(spans) and spans[j].start < end:
            j += 1
        line_number += text.count("\n", counted_to, start)
        counted_to = start
        yield start, line_number, [Term(t.start - start, t.end - start, t.label) for t in spans[i:j]]
        i = j


def _line_at(text: str, start: int) -> str:
    end = text.find("\n", start)
    return text[start : len(text) if end < 0 else end]


def _state_marks(line: str, marks: list[Term], standing: Standing) -> tuple[list[str], list[str]]:
    """The labels of the marks that stand as markings, and of those only mentioned."""
    alone, loose = state_line_is_filler(line, marks), line_allows_loose_form(line, standing)
    stands, mentioned = [], []
    for mark in marks:
        (stands if state_mark_stands(line, mark, standing, alone, loose) else mentioned).append(mark.label)
    return stands, mentioned


# a body longer than this is searched for terms in windows around the lines they can be in
# (marking_windows.py); shorter, or WINDOWED_TERMS False (the reference), by one whole pass
WINDOWED_CHARS = 4096
WINDOWED_TERMS = True
_Labels = tuple[list[str], list[str], list[str]]  # trade markings, state marks standing, state marks mentioned
# False: every prominent part's lines are searched, however often the same text comes again (the reference)
MEMO_PROMINENT = True


def _prominent_labels(text: str, standing: Standing) -> _Labels:
    """The labels of a prominent part's (normalised) text, line by line: they depend on nothing
    but the text and its standing, so a text that repeats in one place is read once."""
    trade: list[str] = []
    state: list[str] = []
    mention: list[str] = []
    for line in text.splitlines():
        terms = find_terms(line)
        if terms:
            trade += [t.label for t in marked_terms(line, terms, standing)]
        marks = find_state_marks(line)
        if marks:
            stands, mentioned = _state_marks(line, marks, standing)
            state += stands
            mention += mentioned
    return trade, state, mention


def scan(document: Document) -> MarkingScan:
    """Trade and state markings of a document, counted by form and place."""
    trade, state, mention = _Tally(), _Tally(), _Tally()
    wheres = list(map(_WHERE, document.parts))
    first = _body_start(wheres)
    # a few: the body is read below
    prominent = document.parts[:first] if first is not None else [p for p in document.parts if p.where != BODY]
    for place in PROMINENT_PLACES:
        standing = STANDING_OF_PLACE[place]
        read: dict[str, _Labels] = {}  # a text's labels in this place: a deck's footer repeats on every slide
        for part in prominent:
            if part.where != place:
                continue
            labels = read.get(part.text) if MEMO_PROMINENT else None
            if labels is None:
                labels = read[part.text] = _prominent_labels(normalise(part.text), standing)
            trade.add(labels[0], place)
            state.add(labels[1], place)
            mention.add(labels[2], place)
    body = _body(document, wheres)
    found = find_terms_by_window(body.text) if WINDOWED_TERMS and len(body.text) > WINDOWED_CHARS else None
    if found is None:
        utf8 = body.utf8
        found = find_terms(body.text) if utf8 is None else find_terms_in_utf8(body.text, utf8)
    for start, number, terms in _by_line(body.text, found):
        line = _line_at(body.text, start)
        trade.add([t.label for t in marked_terms(line, terms, body.standing(start))], f"body:{number}")
    for start, number, marks in _by_line(body.text, find_state_marks(body.text)):
        stands, mentioned = _state_marks(_line_at(body.text, start), marks, body.standing(start))
        state.add(stands, f"body:{number}")
        mention.add(mentioned, f"body:{number}")
    return MarkingScan(trade.detection(TRADE), state.detection(STATE), mention.detection(MENTION))


_cache = threading.local()  # (weak reference to the document, its scan)


def scanned(document: Document) -> MarkingScan:
    """The scan of a document, made once for the three detectors; forgotten when the document goes."""
    held = getattr(_cache, "entry", None)
    if held is not None and held[0]() is document:
        return held[1]
    result = scan(document)
    _cache.entry = (weakref.ref(document, _forget), result)
    return result


def _forget(_ref: weakref.ref) -> None:
    _cache.__dict__.pop("entry", None)


class TradeSecretMarkingDetector:
    """Company markings (商业秘密, 内部资料, 严禁外传, CONFIDENTIAL...) where they stand as markings."""

    id = TRADE

    def detect(self, document: Document) -> Detection | None:
        return scanned(document).trade


class StateSecretMarkingDetector:
    """绝密★ / 机密★ / 秘密★ (any order of ★ and level) standing as a mark."""

    id = STATE

    def detect(self, document: Document) -> Detection | None:
        return scanned(document).state


class StateSecretMentionDetector:
    """A ★ form in a sentence or quotes: a document that talks about the marks, or hides one in prose."""

    id = MENTION

    def detect(self, document: Document) -> Detection | None:
        return scanned(document).mention
