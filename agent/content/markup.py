"""The text of documents saved as markup: a web page (Word's or LibreOffice's "Save as HTML", a
page saved from a browser) and RTF (WordPad's own format, Word's and LibreOffice's "Save as RTF").

Both are text files, and before they were read as such: tags and control words and all. A Word
page puts a tag at every change of script, so a specification's sentences came apart into pieces
too short to be traced, and RTF writes every Chinese character as an escape (`\\'c9\\'cc`,
`\\u27893?`), so neither a marking nor a line of the document could be found. Now a text whose
start shows it to be either is read as a browser or a word processor shows it.

The file's type stays "text" (it is one, whatever its name says), and what is searched for files
written out in it is its markup (a picture inlined as a data: URI sits in a tag, an RTF object's
bytes in hex)."""

from __future__ import annotations

import codecs
import html
import re

# --- HTML -----------------------------------------------------------------------------------

# a tag as browsers tell one: "<" then a letter, "/", "!" or "?"; a "<" before anything else (a
# space, a digit, "‹5年 ...>") is text, and was dropped with what followed up to a ">"
_TAG = re.compile(r"<[a-zA-Z/!?][^<>]{0,2000}>")
_BREAK = re.compile(r"(?i)</?(?:p|div|br|tr|li|h[1-6]|table|blockquote|ul|ol|hr|pre|title)\b[^<>]{0,2000}>")
_CELL = re.compile(r"(?i)</?t[dh]\b[^<>]{0,2000}>")
# what a browser does not show: comments, and scripts and styles (the element itself: a custom
# <script-x> or <style-guide> is shown)
_NOT_SHOWN = re.compile(r"(?i)<!--|<(script|style)(?=[\s/>])")
# a numeric character reference too long for int() (4,300 digits raised ValueError: the whole
# message or page was lost), its leading zeros left out first
_LONG_NUMBER = re.compile(r"&#(?:[xX]0*([0-9a-fA-F]{1,8})|0*([0-9]{1,10}))(?![0-9a-fA-F])|&#[xX]?[0-9a-fA-F]{9,};?")
_SPACES = re.compile(r"[ \t\r\n\f]+")
# a line break of the source between two East Asian characters shows as nothing (CSS Text's
# segment break transformation), as a space between any others
_WIDE = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
_WIDE_BREAK = re.compile(f"(?<=[{_WIDE}])[ \\t]*\\r?\\n[ \\t]*(?=[{_WIDE}])")
# a web page's start: a declaration, comments, then a tag of an HTML document's head or body (a
# page may start at its <meta> or its first <div>; a text starting so is read as one). A comment is matched
# up to its own end only ((?!-->) at each character): one that could run on into the next made a
# head of forty "<!---->" take longer than a worker's deadline (each split of them tried)
_PAGE_START = re.compile(
    r"(?is)\A\ufeff?\s*(?:<\?xml[^>]{0,200}>\s*)?(?:<!--(?:(?!-->).){0,2000}-->\s*)*<(?:!doctype\s+html|html|head|body|meta|title|link|style|script|base|div|p|span|table|h[1-6]|font|center|pre|section|article|main|header|nav)\b"
)
HEAD_CHARS = 4096  # what is looked at to tell markup from text


def _shown(markup: str) -> str:
    """The markup with comments, scripts and styles left out, each up to its end (in one pass: a
    thousand unclosed <script> tags cost no more than one; one left open hides the rest, as it does
    in a browser)."""
    kept: list[str] = []
    lower = ""
    at = 0
    while (hidden := _NOT_SHOWN.search(markup, at)) is not None:
        kept.append(markup[at : hidden.start()])
        if hidden.group(1) is None:  # a comment
            end = markup.find("-->", hidden.end())
            at = len(markup) if end < 0 else end + 3
            continue
        lower = lower or markup.lower()
        end = lower.find("</" + hidden.group(1).lower(), hidden.end())
        close = markup.find(">", end) if end >= 0 else -1
        at = len(markup) if close < 0 else close + 1
    kept.append(markup[at:])
    return "".join(kept)


def _unescape(text: str) -> str:
    """html.unescape, with a numeric reference of leading zeros read as its number and one of more
    digits than any character has read as U+FFFD."""
    if "&#" in text:
        text = _LONG_NUMBER.sub(_number, text)
    return html.unescape(text)


def _number(found: re.Match) -> str:
    hex_digits, digits = found.group(1), found.group(2)
    if hex_digits is not None:
        return f"&#x{hex_digits}"
    return f"&#{digits}" if digits is not None else "\ufffd"


def html_text(markup: str) -> str:
    """A message's HTML body as its text: scripts and styles left out, other tags left out (a
    paragraph, line or row a line break, a cell a space; an inline one nothing, so <span> cannot
    split an identifier), entities read."""
    return _unescape(_TAG.sub("", _CELL.sub(" ", _BREAK.sub("\n", _shown(markup)))))


def page_text(markup: str) -> str:
    """A web page's text as a browser shows it: html_text, with the source's own line breaks and
    runs of spaces one space (a page's source is wrapped wherever its writer liked: Word wraps it
    in the middle of a sentence), and each line's ends trimmed."""
    shown = _SPACES.sub(" ", _WIDE_BREAK.sub("", _shown(markup)))
    text = _unescape(_TAG.sub("", _CELL.sub(" ", _BREAK.sub("\n", shown))))
    return "\n".join(line.strip() for line in text.split("\n"))


def is_page(text: str) -> bool:
    return _PAGE_START.match(text[:HEAD_CHARS]) is not None


# --- RTF ------------------------------------------------------------------------------------

# a control word and its number (one space after it is its end, not text), a byte in hex, a
# control symbol, a group's brace, a line break of the file (no text), or a run of text
_RTF_TOKEN = re.compile(r"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\([^a-zA-Z'])|([{}])|[\r\n]+|([^\\{}\r\n]+)")
# groups whose content is no text of the document: tables of fonts, colours, styles and lists,
# pictures (hex), shapes' properties and the fallback drawn for readers without shapes (their text
# is read from \shptxt), comments' authors and ids, the writer's own data
_NOT_TEXT = frozenset(
    "fonttbl colortbl stylesheet listtable listoverridetable revtbl rsidtbl generator pict themedata "
    "colorschememapping datastore latentstyles xmlnstbl mmathPr filetbl author operator company manager "
    "category creatim revtim printim buptim hlinkbase userprops template xe tc bkmkstart bkmkend fldinst "
    "objclass objname objdata nonshppict sp shprslt atnid atnauthor atndate atnref atrfstart atrfend "
    "ftnsep ftnsepc aftnsep aftnsepc".split()
)
# a group starting with \* is one a reader that does not know it leaves out (field instructions,
# bookmarks, objects' data); these are shown by Word and LibreOffice, and read: a shape's or text
# box's text, a footnote, a comment, the Unicode text beside \upr's 8-bit one
_STARRED_READ = frozenset({"shpinst", "shptxt", "footnote", "annotation", "ud", "txbxcontent"})
# the document's title, subject, keywords and comment (in its \info, the rest of which is left
# out): read, each on a line of its own
_READ_GROUPS = frozenset({"title", "subject", "keywords", "doccomm"})
_BREAKS = frozenset({"par", "line", "sect", "page", "row", "outlinelevel"})
_SPACE_WORDS = frozenset({"cell", "tab", "emspace", "enspace", "qmspace"})
_SYMBOLS = {"~": "\u00a0", "_": "\u2011", "-": "", "\\": "\\", "{": "{", "}": "}", "\n": "\n", "\r": "\n"}
# a font's character set (\fcharset) as the code page its bytes are in
_CHARSETS = {
    128: "cp932", 129: "cp949", 130: "johab", 134: "gbk", 136: "big5", 161: "cp1253", 162: "cp1254",
    163: "cp1258", 177: "cp1255", 178: "cp1256", 186: "cp1257", 204: "cp1251", 222: "cp874", 238: "cp1250",
}  # fmt: skip
MAX_GROUP_DEPTH = 1000  # groups opened deeper are read as the one they are in (a crafted file's nesting)


def is_rtf(text: str) -> bool:
    return text[:16].lstrip("\ufeff \t\r\n").startswith("{\\rtf")


def is_rtf_file(data: bytes) -> bool:
    return is_rtf(data[:32].removeprefix(b"\xef\xbb\xbf").decode("latin-1"))


def rtf_text(rtf: str) -> str:
    """The text of an RTF document as a word processor shows it, from its bytes as Latin-1 (one
    character a byte: \\binN counts bytes, and bytes past ASCII are read in the font's code page
    as \\'hh ones are): its paragraphs on lines of their own, Unicode (\\u) and code-page (\\'hh)
    characters read (by the font's \\cpg or character set, else the document's \\ansicpg), the
    tables of fonts, colours and styles, pictures and other data left out. Built for what Word,
    WordPad and LibreOffice write; a file cut short reads to its end."""
    out: list[str] = []
    pending = bytearray()  # \'hh bytes in a row: a GBK character is two of them
    default_cp = "cp1252"
    fonts: dict[int, str] = {}  # font number -> code page
    stack: list[tuple] = []
    skip, uc, cp, fonttbl, font, line = False, 1, default_cp, False, -1, False  # the group's state
    drop = 0  # characters still to leave out after a \u (its \ucN fallback; a group's end ends it)
    first = False  # the next token is the first of a group (where a destination is named)
    starred = False  # the group started with \*: left out unless its destination is _STARRED_READ
    at, end = 0, len(rtf)

    def flush() -> None:
        if pending:
            out.append(pending.decode(cp, "replace"))
            pending.clear()

    while at < end:
        m = _RTF_TOKEN.match(rtf, at)
        if m is None:  # a lone backslash at the end
            break
        at = m.end()
        word, number, hex_byte, symbol, brace, run = m.groups()
        if m.lastindex is None:  # a line break of the file: nothing, not even a group's first token
            continue
        starts, first = first, False
        if brace == "{":
            flush()
            if len(stack) < MAX_GROUP_DEPTH:
                stack.append((skip, uc, cp, fonttbl, font, line))
            first = True
            continue
        if brace == "}":
            flush()
            drop = 0
            if line:  # a title's group ends its line
                out.append("\n")
            if stack:
                skip, uc, cp, fonttbl, font, line = stack.pop()
            continue
        if starred:  # the token after a group's \*: its destination
            starred = False
            if word not in _STARRED_READ:
                skip = True
        if hex_byte is not None:
            if drop:
                drop -= 1
            elif not skip:
                pending.append(int(hex_byte, 16))
            continue
        if word is not None:
            value = int(number) if number is not None else None
            if starts and (word in _NOT_TEXT or word == "fonttbl"):
                skip = True
                fonttbl = fonttbl or word == "fonttbl"
            if starts and word in _READ_GROUPS and not skip:
                flush()
                out.append("\n")
                line = True
            if fonttbl:  # the table of fonts: each font's number and character set
                if word == "f" and value is not None:
                    font = value
                elif word == "fcharset" and value is not None and font >= 0 and value in _CHARSETS:
                    fonts.setdefault(font, _CHARSETS[value])
                elif word == "cpg" and value is not None and font >= 0:  # a code page named outright
                    try:
                        fonts[font] = codecs.lookup(f"cp{value}").name
                    except LookupError:
                        pass
                continue
            if word == "bin" and value:  # binary data of that many bytes, in the file as they are
                at += max(value, 0)
                continue
            if word == "ansicpg" and value is not None:
                try:
                    default_cp = cp = codecs.lookup(f"cp{value}").name
                except LookupError:
                    pass
                continue
            if word == "uc" and value is not None:
                uc = max(value, 0)
                continue
            if word == "f" and value is not None:
                flush()
                cp = fonts.get(value, default_cp)
                continue
            if word == "u" and value is not None:
                flush()
                if not skip:
                    out.append(chr(value % 65536))
                drop = uc
                continue
            if skip or drop:
                continue
            if word in _BREAKS:
                flush()
                out.append("\n")
            elif word in _SPACE_WORDS:
                flush()
                out.append(" ")
            continue
        if symbol is not None:
            if starts and symbol == "*":
                starred = first = True  # the next token names the destination
            elif drop:
                drop -= 1
            elif not skip and symbol in _SYMBOLS:
                flush()
                out.append(_SYMBOLS[symbol])
            continue
        if run is not None and not skip:
            if drop:
                cut = min(drop, len(run))
                run, drop = run[cut:], drop - cut
            if run.isascii():
                flush()
                out.append(run)
            else:  # bytes past ASCII written as they are: characters of the font's code page
                pending.extend(run.encode("latin-1", "replace"))
    flush()
    text = "".join(out)
    if any("\ud800" <= c <= "\udfff" for c in text):  # a character past U+FFFF, as \u of its two halves
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return "\n".join(line.strip() for line in text.split("\n"))


def as_text(text: str) -> str:
    """A text file's text as it is read: a web page's as a browser shows it (page_text), any other
    as it is, the same string (RTF is read from its bytes: rtf_text)."""
    return page_text(text) if is_page(text) else text
