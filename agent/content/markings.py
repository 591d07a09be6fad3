"""Markings: the words a firm stamps on its secrets, and the ★ marks reserved for state secrets.

All text is NFKC-normalised first (full-width letters, spaces and colons become ASCII), and every
pattern is an RE2 regex, so a scan runs in linear time whatever the file holds.

trade_secret_marking: one detector id for every company marking (trade secret, internal,
distribution bans, English). An occurrence of a marking term counts when

1. it is in a prominent part: the file name, title, properties, header or footer; or
2. it is in the first 5 non-empty lines of the body (all body parts joined in order); or
3. anywhere else in the body, it has the form of a marking:
   - it stands on a line of its own: the line holds nothing but marking terms, separators
     (spaces, ·、,/|-_:;.!*★), brackets and labels (密级, 保密级别, 保密等级, 秘密等级,
     classification, security level), e.g. "商业秘密 严禁外传" or "CONFIDENTIAL - INTERNAL ONLY";
   - it (with any terms joined to it by separators) is enclosed in brackets 【】 [] 〔〕 () 「」 『』
     〖〗, e.g. 【商业秘密·严禁外传】; book-title marks 《》 do not count;
   - it follows a label and an optional colon, e.g. "密级：商业秘密".
   Terms in running prose do not count ("员工应当保守公司的商业秘密，不得泄露"), and bare 秘密 or
   保密 is never a term ("本公司重视保密工作").
English terms match case-insensitively and only between non-alphanumeric ASCII neighbours, so
"Q3_CONFIDENTIAL_plan" counts and "confidentiality" does not; 商密 after 协/磋/会/洽/面/共
(协商密切) is not a marking. count = the number of qualifying occurrences; overlapping terms count
once, as the longest (核心商密, not 商密). The sample names the first one by place, e.g.
"商业秘密 @header" or "严禁外传 @body:12" (line 12 of the joined body).

state_secret_marking: (绝密|机密|秘密) followed by ★, optionally with spaces, and an optional period
(长期, 启用前, 5年, 6个月, 2030年12月31日). The form is the marking, so every occurrence counts in
any part. ☆ is not accepted. 秘密★ right after 商业/技术/公司/企业/个人 (a trade secret wrongly
starred) is not a state-secret mark; the trade term itself may still count as trade_secret_marking.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import re2

from agent.content.document import BODY, FOOTER, HEADER, NAME, PROPERTIES, TITLE, Document
from rules.events import Detection

FIRST_LINES = 5
PROMINENT_PLACES = (NAME, TITLE, PROPERTIES, HEADER, FOOTER)

# longest first: RE2 alternation prefers the earlier branch at the same start
_CJK_TERMS = (
    "核心商业秘密",
    "重要商业秘密",
    "一般商业秘密",
    r"内部资料[\s,，、·:：]*注意保密",
    "商业秘密",
    "核心商密",
    "普通商密",
    "技术秘密",
    "公司秘密",
    "企业秘密",
    "仅供内部使用",
    "内部资料",
    "内部文件",
    "严禁外传",
    "不得外传",
    "严禁复制",
    "注意保密",
    "保密文件",
    "商密",
)
_EN_TERMS = (r"strictly\s+confidential", "confidential", r"internal\s+only", "proprietary")
_NOT_BEFORE_SHANGMI = frozenset("协磋会洽面共")
_STAR_COMPOUNDS = frozenset({"商业", "技术", "公司", "企业", "个人"})

_SEPARATORS = r"\s·・、,，/|\-—_&+:：;；.。!！*★"
_OPEN = "【[〔(「『〖"
_CLOSE = "】]〕)」』〗"
_LABEL = r"(?:密\s*级|保密级别|保密等级|秘密等级|(?i:classification|security\s+level))"
_PERIOD = r"(?:长期|启用前|公布前|解密前|\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|\d{4}\s*年\s*\d{1,2}\s*月|\d{4}\s*年|\d{1,3}\s*(?:个月|年|月|日|天))"


def _compile(pattern: str) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


def _in_class(chars: str) -> str:
    return "".join("\\" + c if c in "[]\\^-" else c for c in chars)


_BRACKETS = _in_class(_OPEN + _CLOSE)
_TERMS = _compile("|".join(_CJK_TERMS) + "|(?i:" + "|".join(_EN_TERMS) + ")")
_FILLER = _compile(rf"(?:[{_SEPARATORS}{_BRACKETS}]|{_LABEL})*")
_JOINER = _compile(rf"[{_SEPARATORS}]*")
_LABEL_TAIL = _compile(rf"{_LABEL}\s*[:：]?\s*[{_in_class(_OPEN)}]?\s*$")
_STATE_MARK = _compile(rf"(绝密|机密|秘密)\s*★\s*{_PERIOD}?")


@dataclass(frozen=True)
class _Term:
    start: int
    end: int
    label: str  # the term as shown in a sample: whitespace collapsed, English upper-cased


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def find_terms(text: str) -> list[_Term]:
    """Every marking term in text, wherever it stands."""
    found = []
    for m in _TERMS.finditer(text):
        start, end, word = m.start(), m.end(), m.group()
        if word.isascii():
            if (start > 0 and _is_ascii_alnum(text[start - 1])) or (end < len(text) and _is_ascii_alnum(text[end])):
                continue
            word = word.upper()
        elif word == "商密" and start > 0 and text[start - 1] in _NOT_BEFORE_SHANGMI:
            continue
        found.append(_Term(start, end, " ".join(word.split())))
    return found


def _terms_in_form(line: str, terms: list[_Term]) -> list[_Term]:
    """The terms of one body line that have the form of a marking (own line, brackets, label)."""
    gaps = [line[: terms[0].start]]
    gaps += [line[a.end : b.start] for a, b in zip(terms, terms[1:], strict=False)]
    gaps.append(line[terms[-1].end :])
    if all(_FILLER.fullmatch(g) for g in gaps):
        return terms
    accepted: list[_Term] = []
    first = 0
    for i in range(len(terms)):
        if i + 1 < len(terms) and _JOINER.fullmatch(gaps[i + 1]):
            continue  # terms[i] and terms[i + 1] belong to one group
        before, after = gaps[first].rstrip(), gaps[i + 1].lstrip()
        bracketed = before[-1:] in tuple(_OPEN) and after[:1] in tuple(_CLOSE)
        if bracketed or _LABEL_TAIL.search(before[-24:]):
            accepted.extend(terms[first : i + 1])
        first = i + 1
    return accepted


def _body_lines(document: Document) -> Iterator[tuple[int, int, str]]:
    """(line number, how many non-empty lines so far including this one, line) of the joined body."""
    nonempty = 0
    for number, line in enumerate(normalise(document.text_of(BODY)).splitlines(), start=1):
        if line.strip():
            nonempty += 1
            yield number, nonempty, line


class _Tally:
    """A count and the first sample: a file full of markings must not fill memory with strings."""

    def __init__(self) -> None:
        self.count = 0
        self.sample = ""

    def add(self, samples: list[str]) -> None:
        if samples and not self.count:
            self.sample = samples[0]
        self.count += len(samples)

    def detection(self, detector: str) -> Detection | None:
        return Detection(detector, self.count, self.sample) if self.count else None


class TradeSecretMarkingDetector:
    """Company markings (商业秘密, 内部资料, 严禁外传, CONFIDENTIAL...) where a marking stands."""

    id = "trade_secret_marking"

    def detect(self, document: Document) -> Detection | None:
        tally = _Tally()
        for place in PROMINENT_PLACES:
            for part in document.parts:
                if part.where == place:
                    tally.add([f"{t.label} @{place}" for t in find_terms(normalise(part.text))])
        for number, nonempty, line in _body_lines(document):
            terms = find_terms(line)
            if terms and nonempty > FIRST_LINES:
                terms = _terms_in_form(line, terms)
            tally.add([f"{t.label} @body:{number}" for t in terms])
        return tally.detection(self.id)


def find_state_marks(text: str) -> list[str]:
    """Every state-secret mark in text, as shown in a sample (whitespace removed): 机密★5年."""
    found = []
    for m in _STATE_MARK.finditer(text):
        if m.group(1) == "秘密" and text[max(0, m.start() - 2) : m.start()] in _STAR_COMPOUNDS:
            continue
        found.append("".join(m.group().split()))
    return found


class StateSecretMarkingDetector:
    """绝密★ / 机密★ / 秘密★ with an optional period, in any part: the form itself is the marking."""

    id = "state_secret_marking"

    def detect(self, document: Document) -> Detection | None:
        tally = _Tally()
        for place in PROMINENT_PLACES:
            for part in document.parts:
                if part.where == place:
                    tally.add([f"{mark} @{place}" for mark in find_state_marks(normalise(part.text))])
        for number, _, line in _body_lines(document):
            tally.add([f"{mark} @body:{number}" for mark in find_state_marks(line)])
        return tally.detection(self.id)
