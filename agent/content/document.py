"""The text of a file as inspection sees it: parts that know where in the document they stand.

Extraction (extract.py) turns a file into a Document; detectors (markings, identifiers) read it.
Where a part stands matters: a marking in a header, footer, title, the first lines, the file name
or the document properties is a marking; the same word in running prose usually is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

# where a part of the text stands in its document
NAME, TITLE, PROPERTIES, HEADER, FOOTER, BODY = "name", "title", "properties", "header", "footer", "body"
PLACES = (NAME, TITLE, PROPERTIES, HEADER, FOOTER, BODY)

# a str holding these cannot be encoded as UTF-8, which every detector's regex engine (re2) and the
# fingerprints do: os.fsdecode gives U+DC80..U+DCFF for each byte of a name that is not UTF-8
_SURROGATES = re.compile("[\ud800-\udfff]")
FAST_SURROGATES = True  # False: has_surrogates by the regex search (the reference it is tested against)


@dataclass(frozen=True)
class Cell:
    """Where a part stands in a table (docx): its header row gives the column a meaning."""

    table: int  # tables numbered in document order, nested ones too
    row: int
    column: int  # counting merged cells by the grid columns they span


class _Fields(NamedTuple):
    where: str  # one of PLACES
    text: str  # always encodable as UTF-8 (see readable)
    cell: Cell | None = None  # the table cell it was read from, if any
    page_line: int = 0  # the part's first line is line N (1-based) of its page, where extraction knows pages (PDF)


class TextPart(_Fields):
    """One paragraph, line, cell or field of a document, and where it stands.

    A tuple, not a dataclass: a MB of docx text is some 9,400 parts, and a tuple's fields can be
    made for all of a member's paragraphs at once, by C (Collector.add_all: tuple.__new__ mapped
    over the texts, no Python bytecode per part), where a dataclass took a Python loop; its fields
    also read faster. Made as TextPart(where, text, cell=..., page_line=...), the text goes
    through readable; equal and hashed as the tuple of its fields, as the frozen dataclass was
    (which, unlike a tuple, never equalled a plain tuple of the same fields: nothing compares a
    part with one)."""

    __slots__ = ()

    def __new__(cls, where: str, text: str, cell: Cell | None = None, page_line: int = 0) -> TextPart:
        return tuple.__new__(cls, (where, readable(text), cell, page_line))

    @classmethod
    def _make(cls, iterable: Iterable) -> TextPart:  # _replace's way in: through readable too
        return cls(*iterable)


@dataclass(frozen=True)
class Document:
    file_type: str | None  # detected from the content, e.g. "pdf", "docx", "zip", "text"; None if unknown
    parts: tuple[TextPart, ...] = ()
    truncated: bool = False  # the size or time budget ran out before the end
    problem: str | None = None  # why the text could not be (fully) extracted
    markup: bool = False  # the text is what a web page or an RTF document shows (agent/content/markup.py)

    def text_of(self, *places: str) -> str:
        return "\n".join([p.text for p in self.parts if p.where in places])  # a list: join makes one anyway


def readable(text: str) -> str:
    """text, with what UTF-8 cannot hold made readable. A name's raw bytes (kept by os.fsdecode as
    surrogate escapes) are read as GB18030 when they all are (a name written on a Chinese Windows
    PC reads as what it says, so a marking in it still counts), else as UTF-8 with U+FFFD for the
    odd bytes (so "商业秘密\xff.docx" keeps its marking); any other lone surrogate becomes U+FFFD."""
    if not has_surrogates(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        return _SURROGATES.sub("\ufffd", text)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def has_surrogates(text: str) -> bool:
    """Whether text holds a lone surrogate (what readable replaces): UTF-16's strict encoder
    refuses one, in a fraction of the time a regex search takes over a long text (a whole
    worksheet is one part: the search took some 3 ms a MB of non-ASCII text)."""
    if FAST_SURROGATES:
        if text.isascii():
            return False
        try:
            text.encode("utf-16-le")
        except UnicodeEncodeError:
            return True
        return False
    return _SURROGATES.search(text) is not None
