"""The words of markings and the words that may stand beside them, as RE2 patterns.

Kept apart from the form rules (marking_form.py) so the vocabulary reads as one list. Every pattern
is RE2, so a scan of a whole body runs in linear time whatever the file holds; the text is NFKC
normalised first (full-width letters, digits, spaces and colons become ASCII).
"""

from __future__ import annotations

from dataclasses import dataclass

import re2

# longest first: RE2 alternation prefers the earlier branch at the same start
CJK_TERMS = (
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
EN_TERMS = (
    r"strictly\s+confidential",
    r"company\s+confidential",
    "confidential",
    r"(?:for\s+)?internal\s+use\s+only",
    r"internal\s+only",
    "proprietary",
    r"trade\s+secrets?",
    r"do\s+not\s+distribute",
)
NOT_BEFORE_SHANGMI = frozenset("协磋会洽面共")  # 协商密切: 商密 is not a word there

# what may stand beside a term on a marking line without making it prose
SEPARATORS = r"\s·・、,，/|\-—–_&+:：;；.。!！*★"
OPEN = "【[〔(（「『〖"
CLOSE = "】]〕)）」』〗"
QUOTES = "“”‘’\"'《》〈〉"
LABEL = r"(?:(?:文件|资料|文档)?密\s*级|保密级别|保密等级|秘密等级|信息分类|(?i:classification|security\s+level|sensitivity))"
LEVEL = (
    r"(?:核心|重要|一般|普通|机要|[A-Da-d一二三四]\s*级|[A-Da-d]\s*类|(?i:highly|strictly|company|business|restricted))"
)
DATE = r"(?:\d{4}\s*[-/.年]\s*\d{1,2}(?:\s*[-/.月]\s*\d{1,2}\s*日?)?)"
PERIOD = r"(?:(?:保密|保管)?期限\s*[:：]?\s*(?:长期|永久|\d+\s*年|[一二三四五六七八九十]+\s*年)|长期|永久)"
DOC_NUMBER = (
    r"(?:(?:文件|文档|资料)?编号\s*[:：]?\s*[A-Za-z0-9][A-Za-z0-9\-_/.]*"
    r"|(?i:doc(?:ument)?\s*(?:no|id|#)\.?|ref\.?|no\.)\s*[:：]?\s*[A-Za-z0-9][A-Za-z0-9\-_/.]*"
    r"|[A-Z]{1,8}[-_][A-Z0-9][A-Z0-9\-_.]*)"
)
PAGE = (
    r"(?:第\s*\d+\s*页(?:\s*[,，/]?\s*共\s*\d+\s*页)?|共\s*\d+\s*页"
    r"|(?i:page)\s*\d+(?:\s*(?i:of|/)\s*\d+)?|\d+\s*/\s*\d+|-\s*\d+\s*-)"
)
VERSION = r"(?:(?i:v|ver\.?|version|rev\.?)\s*\d+(?:\.\d+)*|(?i:draft)|草稿|初稿|定稿|第\s*\d+\s*版)"
COMPANION = (
    r"(?:请勿外传|请勿转发|请勿复制|请勿扩散|禁止外传|不得复制|不得扩散|严禁泄露|严禁扩散|妥善保管|仅限内部传阅|内部传阅|仅限内部"
    r"|(?i:do\s+not\s+(?:forward|copy|share|disclose|circulate|reproduce)|not\s+for\s+(?:distribution|circulation)"
    r"|and|all\s+rights\s+reserved))"
)
COPYRIGHT = r"(?:©|\((?i:c)\)|(?i:copyright))\s*(?:\d{4})?"
# a line made of these around its terms is a marking line wherever it stands
FILLER_WORD = rf"(?:{LABEL}|{LEVEL}|{DATE}|{PERIOD}|{DOC_NUMBER}|{PAGE}|{VERSION}|{COMPANION}|{COPYRIGHT}|\d+)"
OPEN_CLASS = OPEN.replace("[", "\\[")  # escaped for a character class
BRACKETS = (OPEN + CLOSE).replace("[", "\\[").replace("]", "\\]")
FILLER_PIECE = rf"(?:[{SEPARATORS}]|[{BRACKETS}]|{FILLER_WORD})"

STATE_LEVEL = r"(绝\s*密|机\s*密|秘\s*密)"
STATE_PERIOD = (
    r"(?:长期|启用前|公布前|解密前|\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|\d{4}\s*年\s*\d{1,2}\s*月|\d{4}\s*年"
    r"|\d{1,3}\s*(?:个月|年|月|日|天))"
)
# an official document's top lines: copy number, mark and period, urgency (000123 机密★1年 特急)
STATE_FILLER = (
    rf"(?:[{SEPARATORS}]|[{BRACKETS}]|{LABEL}|保密期限|期限|特急|加急|平急|特提|{DATE}|{PAGE}|{DOC_NUMBER}|\d+)"
)
STAR_COMPOUNDS = frozenset({"商业", "技术", "公司", "企业", "个人"})  # 商业秘密★: a trade secret wrongly starred


def compile_re2(pattern: str) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


TERMS_RE = compile_re2("|".join(CJK_TERMS) + "|(?i:" + "|".join(EN_TERMS) + ")")
# forward (机密★5年) or as extraction may order it (★机密 5 年)
STATE_RE = compile_re2(rf"{STATE_LEVEL}\s*★(?:\s*{STATE_PERIOD})?|★\s*{STATE_LEVEL}(?:\s*{STATE_PERIOD})?")


@dataclass(frozen=True)
class Term:
    start: int
    end: int
    label: str  # the term as shown in a sample: whitespace collapsed, English upper-cased


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def find_terms(text: str, start: int = 0, end: int | None = None) -> list[Term]:
    """Every marking term in text[start:end], wherever it stands (offsets into text). A part of
    text is searched as a slice: the RE2 wrapper, given pos and endpos, encodes all of text."""
    found = []
    start = max(0, min(start, len(text)))
    end = len(text) if end is None else max(start, min(end, len(text)))
    for m in TERMS_RE.finditer(text if start == 0 and end == len(text) else text[start:end]):
        term = _term(text, start + m.start(), start + m.end(), m.group())
        if term is not None:
            found.append(term)
    return found


def find_terms_in_utf8(text: str, data: bytes) -> list[Term]:
    """find_terms(text), with data text's UTF-8 encoding (made once for the document): RE2 reads
    the bytes, which its wrapper would otherwise encode again, and each match's byte offsets are
    turned into character offsets by decoding the bytes since the match before."""
    found = []
    byte_at, char_at = 0, 0
    for m in TERMS_RE.finditer(data):
        a = char_at + len(data[byte_at : m.start()].decode())
        word = m.group().decode()
        b = a + len(word)
        byte_at, char_at = m.end(), b
        term = _term(text, a, b, word)
        if term is not None:
            found.append(term)
    return found


def _term(text: str, a: int, b: int, word: str) -> Term | None:
    """The term matched as text[a:b] == word, or None where it is part of a longer word (English
    between letters or digits) or 商密 follows a character that makes it another word (协商密切)."""
    if word.isascii():
        if (a > 0 and _is_ascii_alnum(text[a - 1])) or (b < len(text) and _is_ascii_alnum(text[b])):
            return None
        word = word.upper()
    elif word == "商密" and a > 0 and text[a - 1] in NOT_BEFORE_SHANGMI:
        return None
    return Term(a, b, " ".join(word.split()))


def find_state_marks(text: str, start: int = 0, end: int | None = None, prefilter: bool = True) -> list[Term]:
    """Every ★ form of a state-secret mark in text[start:end], labelled level★period: 机密★5年.
    `prefilter` False: the RE2 pass even when text holds no ★ (the reference of the prefilter)."""
    found: list[Term] = []
    end = len(text) if end is None else end
    if prefilter and text.find("★", start, end) < 0:  # every form holds one: no RE2 pass (its wrapper encodes the text)
        return found
    for m in STATE_RE.finditer(text, start, end):
        a, b = m.start(), m.end()
        level = "".join((m.group(1) or m.group(2)).split())
        if m.group(1) and level == "秘密" and text[max(0, a - 2) : a] in STAR_COMPOUNDS:
            continue
        period = "".join(m.group()[m.group().index(level[-1]) + 1 :].split()).lstrip("★")
        if m.group(2) and period == "" and b < len(text) and is_han(text[b]):
            continue  # ★机密文件管理: a bullet before a heading, not a mark
        found.append(Term(a, b, f"{level}★{period}"))
    return found


def is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"
