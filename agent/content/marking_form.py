"""Whether a term found on a line stands as a marking there, or is only mentioned.

A marking is a form, not a word: "【商业秘密】", "密级：核心商密", "内部资料 注意保密" alone on its line,
"ACME Ltd. Confidential" in a footer. The same words in a sentence ("员工应当保守公司的商业秘密"),
in a title about secrecy (商业秘密保护管理制度, "Trade Secret Protection Policy") or in quotes
(应标注“内部资料”字样) are prose, wherever they stand. How lax the test is depends on where the line
stands (Standing):

- BODY, anywhere: the line holds nothing but terms and filler (separators, brackets, a 密级/
  Classification label, level words, dates, document numbers, page numbers, versions, companion
  bans such as 请勿外传 / "do not forward"), or the term is in brackets 【】[]〔〕()「」『』〖〗, or it
  follows a label (密级：商业秘密).
- TOP (a title, or the first lines of the body or of a PDF page), also: a short line that is not a
  sentence (no 。？！； inside, not a numbered clause), where the term is a word of its own: not
  quoted, not followed by a Chinese character or an English word that makes it a topic (商业秘密保护,
  "Trade Secret Policy", "confidential information"), not preceded by a verb or particle
  (侵犯商业秘密, "stealing trade secrets") nor by lower-case English prose; an organisation before it
  is fine ("ACME Ltd. Confidential", "某某科技有限公司 内部资料").
- BAND (header, footer, properties, file name), also: longer lines (legends), a term right after an
  organisation or other words ("XX科技内部资料"), and legends such as "This document is confidential".

Every check reads a bounded window around the term, so a line of any length costs linear time.
"""

from __future__ import annotations

from enum import Enum

from agent.content.marking_terms import (
    CLOSE,
    FILLER_PIECE,
    FILLER_WORD,
    LABEL,
    OPEN,
    OPEN_CLASS,
    QUOTES,
    SEPARATORS,
    STATE_FILLER,
    Term,
    compile_re2,
    is_han,
)


class Standing(Enum):
    BODY = "body"  # running text: only the marking forms count
    TOP = "top"  # a title or the first lines of a page
    BAND = "band"  # header, footer, properties, file name


WINDOW = 64  # characters read before and after a term
MAX_LINE = {Standing.TOP: 80, Standing.BAND: 160}  # longer lines are prose

_FILLER = compile_re2(rf"(?:{FILLER_PIECE})*")
_FILLER_WORD_AT_START = compile_re2(rf"^\s*(?:{FILLER_WORD})")
_STATE_FILLER = compile_re2(rf"(?:{STATE_FILLER})*")
_LABEL_TAIL = compile_re2(rf"{LABEL}\s*[:：]?\s*[{OPEN_CLASS}]?\s*$")
_SENTENCE = compile_re2(r"[？！；?!。]")
_NUMBERED = compile_re2(
    r"^\s*(?:第\s*[一二三四五六七八九十百\d]+\s*[章条节款项部分]|[一二三四五六七八九十]+\s*[、.]|\d+(?:\.\d+)*\s*[、.)]|[(（]\s*[一二三四五六七八九十\d]+\s*[)）])"
)
_ORG_OR_LEGEND = compile_re2(
    r"(?:公司|集团|有限|[^全内外本各局]部|中心|研究院|研究所|[^医学]院|[^场住]所|厂|[^教卧]室|为|属|系)$"
)
_PROSE_BEFORE_CJK = compile_re2(
    r"(?:侵犯|侵害|侵占|保护|保守|保管|泄露|泄漏|泄密|窃取|盗取|盗用|披露|获取|使用|涉及|关于|加强|管理|认定|构成|属于|含有|包含|包括"
    r"|何为|什么是|所称|是|的|之|与|和|及|或|对|谈|论|即|等|指|称|了|在|将|应|须|要|需|请|及其)$"
)
_WORD_BEFORE = compile_re2(r"([A-Za-z][A-Za-z'’]*)\s+$")
_WORD_AFTER = compile_re2(r"^\s+([A-Za-z][A-Za-z'’]*)(?:\s+([A-Za-z]+))?")
_WORD_AFTER_SEPARATOR = compile_re2(rf"^[{SEPARATORS}]+([A-Za-z]+)")

TOPIC_WORDS = frozenset(
    "policy policies agreement agreements nda protection protections law laws act case cases litigation lawsuit "
    "suit theft misappropriation training guide guidelines guideline procedure procedures management handbook "
    "handling information info data matters clause clauses obligations obligation program programme rules "
    "overview basics awareness dispute disputes claim claims trial verdict ruling owners owner rights statute "
    "disclosure protect protecting".split()
)
PROSE_WORDS_BEFORE = frozenset(
    "with of about on against regarding under what how why was were been keep keeps kept keeping handle handling "
    "treat treated treating protect protecting protects protected steal stealing stole stolen theft misappropriated "
    "misappropriating misappropriation your our their its his her the a an this that these those such any all as to "
    "from into in by not include includes including share sharing disclose disclosing leaked leaking leak stealing "
    "and or".split()
)
LEGEND_WORDS_BEFORE = frozenset("is are remain remains be considered marked contains".split())  # footers only


def _groups(line: str, terms: list[Term]) -> list[list[Term]]:
    """Terms joined by separators or companions only form one group: 内部资料·严禁外传."""
    groups = [[terms[0]]]
    for a, b in zip(terms, terms[1:], strict=False):
        gap = line[a.end : b.start]
        if len(gap) <= WINDOW and _FILLER.fullmatch(gap):
            groups[-1].append(b)
        else:
            groups.append([b])
    return groups


def _line_is_filler(line: str, spans: list[Term], pattern) -> bool:
    """Nothing but filler around the spans (the whole line is read once)."""
    edges = [0] + [x for t in spans for x in (t.start, t.end)] + [len(line)]
    # slices, not pos/endpos: the re2 wrapper encodes the whole string it is given on every call
    gaps = (line[edges[i] : edges[i + 1]] for i in range(0, len(edges), 2))
    return all(not gap.strip() or pattern.fullmatch(gap) for gap in gaps)


def _bracketed_or_labelled(before: str, after: str) -> bool:
    b, a = before.rstrip(), after.lstrip()
    if b[-1:] and b[-1] in OPEN and a[:1] and a[0] in CLOSE:
        return True
    return _LABEL_TAIL.search(before[-24:]) is not None


def _quoted(before: str, after: str) -> bool:
    b, a = before.rstrip(), after.lstrip()
    return (b[-1:] != "" and b[-1] in QUOTES) or (a[:1] != "" and a[0] in QUOTES)


def _a_sentence(line: str, standing: Standing) -> bool:
    if len(line) > 2 * MAX_LINE[standing] or len(line.strip()) > MAX_LINE[standing]:
        return True
    return standing is Standing.TOP and (_SENTENCE.search(line) is not None or _NUMBERED.search(line) is not None)


def _starts_with_filler(text: str) -> bool:
    """The first word of text (after spaces) is filler: 第3页, Page 2, Draft, 请勿外传, not "Android"."""
    m = _FILLER_WORD_AT_START.search(text)
    if m is None:
        return False
    end = m.end()
    return end == len(text) or not (_is_ascii_alnum(text[end - 1]) and _is_ascii_alnum(text[end]))


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _topic_after(after: str) -> bool:
    """A word after the term that makes it the topic: 商业秘密保护, "Trade Secret Policy"."""
    if not after:
        return False
    if is_han(after[0]) or (after[0].isascii() and after[0].isalpha()):
        return not _starts_with_filler(after)
    separated = _WORD_AFTER_SEPARATOR.search(after)
    if separated and separated.group(1).lower() in TOPIC_WORDS:
        return True
    spaced = _WORD_AFTER.search(after)
    if not spaced or _starts_with_filler(after):
        return False
    word = spaced.group(1)
    if word.lower() == "of":  # "Trade Secret of ACME Ltd.", not "confidential of the"
        return not (spaced.group(2) or "")[:1].isupper()
    return word.lower() in TOPIC_WORDS or word.islower()


def _prose_before(before: str, standing: Standing) -> bool:
    """Words before the term that make it part of a sentence: 侵犯商业秘密, "stealing trade secrets"."""
    if not before:
        return False
    last = before[-1]
    if is_han(last):
        if _PROSE_BEFORE_CJK.search(before) is not None:
            return True
        return standing is Standing.TOP and _ORG_OR_LEGEND.search(before) is None
    word = _WORD_BEFORE.search(before)
    if word is None:
        return False
    w = word.group(1).lower()
    if w in LEGEND_WORDS_BEFORE:
        return standing is not Standing.BAND
    if w in PROSE_WORDS_BEFORE:
        return True
    return standing is Standing.TOP and word.group(1).islower() and not _starts_with_filler(word.group(1))


def marked_terms(line: str, terms: list[Term], standing: Standing) -> list[Term]:
    """The terms of one line (offsets into line) that stand as markings there."""
    if _line_is_filler(line, terms, _FILLER):
        return terms
    accepted: list[Term] = []
    loose = line_allows_loose_form(line, standing)
    for group in _groups(line, terms):
        start, end = group[0].start, group[-1].end
        before, after = line[max(0, start - WINDOW) : start], line[end : end + WINDOW]
        if _bracketed_or_labelled(before, after):
            accepted.extend(group)
        elif loose and not _quoted(before, after) and not _topic_after(after) and not _prose_before(before, standing):
            accepted.extend(group)
    return accepted


def state_mark_stands(line: str, mark: Term, standing: Standing, line_is_filler: bool, loose: bool) -> bool:
    """True when a ★ form stands as a state-secret marking; False when a sentence mentions it.
    line_is_filler and loose (line_allows_loose_form) are asked once per line by the caller."""
    before, after = line[max(0, mark.start - WINDOW) : mark.start], line[mark.end : mark.end + WINDOW]
    if _quoted(before, after):
        return False
    if line_is_filler or _bracketed_or_labelled(before, after):
        return True
    return loose and not _prose_before(before, standing)


def line_allows_loose_form(line: str, standing: Standing) -> bool:
    """A short line in a band or at the top, not a sentence: terms there need not stand alone."""
    return standing is not Standing.BODY and not _a_sentence(line, standing)


def state_line_is_filler(line: str, marks: list[Term]) -> bool:
    return _line_is_filler(line, marks, _STATE_FILLER)
