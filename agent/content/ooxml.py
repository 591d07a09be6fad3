"""Text of Office Open XML files (docx, xlsx, pptx), each part in its place.

Members are read in this order so that a body cut short by the budget loses nothing else:
properties (title, subject, keywords, company, custom properties), headers, footers, then body.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from agent.content.budget import Collector
from agent.content.document import BODY, FOOTER, HEADER, PROPERTIES, TITLE
from agent.content.xmltext import FieldsHandler, Handler, TextHandler, parse
from agent.content.zipread import BoundedZip

CORE_FIELDS = {
    "title": TITLE,
    "subject": PROPERTIES,
    "keywords": PROPERTIES,
    "description": PROPERTIES,
    "category": PROPERTIES,
    "contentStatus": PROPERTIES,
}
APP_FIELDS = {"Company": PROPERTIES, "Manager": PROPERTIES}
CUSTOM_LABELLED = {"property": PROPERTIES}
INLINE = {"tab": "\t", "br": "\n", "cr": "\n"}
HEADER_FOOTER_TAGS = {
    "oddHeader": HEADER, "evenHeader": HEADER, "firstHeader": HEADER,
    "oddFooter": FOOTER, "evenFooter": FOOTER, "firstFooter": FOOTER,
}  # fmt: skip
# &L &C &R sections, &P page, &"font,style", &12 size, &K colour ... stand for no text
_SHEET_CODES = re.compile(r'&&|&"[^"]*"|&K[0-9A-Fa-f]{6}|&K\d\d[+-]\d{3}|&\d+|&[LCRPNDTZFAGSXYUBEOH]', re.IGNORECASE)


def _numbered(names: set[str], pattern: str) -> list[str]:
    """Members matching pattern (one group: the number), in numeric order: slide2 before slide10."""
    found = [(int(m.group(1) or 0), n) for n in names if (m := re.fullmatch(pattern, n))]
    return [n for _, n in sorted(found)]


def read_member(z: BoundedZip, name: str, handler: Handler, out: Collector) -> None:
    """Stream one member through handler, if the zip has it."""
    if name in z.names():
        # a member cut at MAX_MEMBER_BYTES has no end tags; only then is that not an error
        parse(z.chunks(name, out), handler, name, lambda: not z.member_truncated)
        if isinstance(handler, TextHandler):
            handler.flush()


def _properties(z: BoundedZip, out: Collector) -> None:
    read_member(z, "docProps/core.xml", FieldsHandler(out, CORE_FIELDS), out)
    read_member(z, "docProps/app.xml", FieldsHandler(out, APP_FIELDS), out)
    read_member(z, "docProps/custom.xml", FieldsHandler(out, {}, CUSTOM_LABELLED), out)


def _paragraphs(out: Collector, where: str) -> TextHandler:
    return TextHandler(out, where, frozenset({"t"}), frozenset({"p"}), inline=INLINE)


def read_docx(z: BoundedZip, out: Collector) -> None:
    _properties(z, out)
    for name in _numbered(z.names(), r"word/header(\d*)\.xml"):
        read_member(z, name, _paragraphs(out, HEADER), out)
    for name in _numbered(z.names(), r"word/footer(\d*)\.xml"):
        read_member(z, name, _paragraphs(out, FOOTER), out)
    for name in ("word/document.xml", "word/footnotes.xml", "word/endnotes.xml"):
        read_member(z, name, _paragraphs(out, BODY), out)


class _SheetHandler(TextHandler):
    """Inline strings are body; oddHeader/oddFooter (and even/first) are header and footer."""

    def __init__(self, out: Collector) -> None:
        tags = frozenset(HEADER_FOOTER_TAGS)
        super().__init__(out, BODY, frozenset({"t"}) | tags, frozenset({"is"}) | tags, frozenset({"rPh"}))

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.where = HEADER_FOOTER_TAGS.get(name, self.where)
        super().start(name, attrs)

    def end(self, name: str) -> None:
        super().end(name)
        if name in HEADER_FOOTER_TAGS:
            self.where = BODY

    def clean(self, text: str) -> str:
        if self.where == BODY:
            return text
        text = _SHEET_CODES.sub(lambda m: "&" if m.group() == "&&" else " ", text)
        return " ".join(text.split())


def read_xlsx(z: BoundedZip, out: Collector) -> None:
    _properties(z, out)
    strings = TextHandler(out, BODY, frozenset({"t"}), frozenset({"si"}), frozenset({"rPh"}))
    read_member(z, "xl/sharedStrings.xml", strings, out)
    for name in _numbered(z.names(), r"xl/worksheets/sheet(\d*)\.xml"):
        read_member(z, name, _SheetHandler(out), out)


class _SlideHandler(TextHandler):
    """Slide text is body, except in footer, date and slide-number placeholders."""

    PLACEHOLDERS = {"ftr": FOOTER, "dt": FOOTER, "sldNum": FOOTER, "hdr": HEADER}

    def __init__(self, out: Collector) -> None:
        super().__init__(out, BODY, frozenset({"t"}), frozenset({"p"}), inline=INLINE)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "sp":
            self.where = BODY
        elif name == "ph":
            self.where = self.PLACEHOLDERS.get(attrs.get("type", ""), BODY)
        super().start(name, attrs)


def read_pptx(z: BoundedZip, out: Collector) -> None:
    _properties(z, out)
    for name in _numbered(z.names(), r"ppt/slides/slide(\d*)\.xml"):
        read_member(z, name, _SlideHandler(out), out)


READERS: dict[str, Callable[[BoundedZip, Collector], None]] = {
    "docx": read_docx,
    "xlsx": read_xlsx,
    "pptx": read_pptx,
}
