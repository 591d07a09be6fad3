"""Text of PowerPoint 97-2003 presentations (.ppt, and WPS Office's .dps).

The PowerPoint Document stream is a tree of records (MS-PPT): an 8-byte header (version and
instance, type, length), containers holding records. Text is in TextCharsAtom (UTF-16) and
TextBytesAtom (8-bit, the low bytes of UTF-16) records, in the slide list of the document and in
the slides' and notes' drawings; each paragraph (ended by a carriage return) is a body part, as
each a:p of a pptx slide is. Masters (and the master slide list) hold template text ("Click to
edit Master title style"), which the pptx reader does not read either, so they are skipped. The
footer, header and date texts that apply to slides are CString records of the HeadersFooters
containers: footer and header parts. The stream is walked as it lies, so text kept by an
incremental save from an older version is read too.
"""

from __future__ import annotations

import struct

import olefile

from agent.content.budget import Collector
from agent.content.document import BODY, FOOTER, HEADER
from agent.content.ole import read_stream

MAIN_MASTER, SLIDE_LIST_WITH_TEXT, HEADERS_FOOTERS = 0x03F8, 0x0FF0, 0x0FD9
TEXT_CHARS, TEXT_BYTES, CSTRING = 0x0FA0, 0x0FA8, 0x0FBA
MASTER_LIST = 1  # instance of the SlideListWithText of masters
HEADER_FOOTER_PLACES = {0: FOOTER, 1: HEADER, 2: FOOTER}  # date, header, footer texts
MAX_DEPTH = 32


def read_ppt(ole: olefile.OleFileIO, out: Collector) -> None:
    stream = read_stream(ole, "PowerPoint Document", out)
    found = _Found()
    _walk(stream, 0, len(stream), 0, False, out, found)
    seen = set()
    for where, text in found.bands:
        if (where, text) not in seen:  # each slide's HeadersFooters repeats the same footer
            seen.add((where, text))
            out.add(where, text)
    for paragraph in found.body:
        out.add(BODY, paragraph)


class _Found:
    """Text read so far (kept until the walk ends: footers go before the body, as in pptx)."""

    def __init__(self) -> None:
        self.bands: list[tuple[str, str]] = []
        self.body: list[str] = []
        self.chars = 0

    def count(self, text: str, out: Collector) -> None:
        self.chars += len(text)
        out.check_chars(self.chars)


def _walk(stream: bytes, at: int, end: int, depth: int, in_footer: bool, out: Collector, found: _Found) -> None:
    """Records in stream[at:end]; a record running past its container's end ends the walk there."""
    while at + 8 <= end:
        version_instance, kind, size = struct.unpack_from("<HHI", stream, at)
        start, at = at + 8, at + 8 + size
        if at > end:
            at = end  # a crafted length: read what there is
        version, instance = version_instance & 0x0F, version_instance >> 4
        if version == 0x0F:
            if kind == MAIN_MASTER or (kind == SLIDE_LIST_WITH_TEXT and instance == MASTER_LIST) or depth >= MAX_DEPTH:
                continue
            out.check_time()
            _walk(stream, start, at, depth + 1, in_footer or kind == HEADERS_FOOTERS, out, found)
        elif kind in (TEXT_CHARS, TEXT_BYTES):
            raw = stream[start:at]
            text = (
                raw[: len(raw) // 2 * 2].decode("utf-16-le", "replace") if kind == TEXT_CHARS else raw.decode("latin-1")
            )
            found.count(text, out)
            # "*" alone stands for a field (slide number, date) in a placeholder
            found.body.extend(p.replace("\x0b", "\n") for p in text.split("\r") if p != "*")
        elif kind == CSTRING and in_footer:
            raw = stream[start:at]
            text = raw[: len(raw) // 2 * 2].decode("utf-16-le", "replace")
            found.count(text, out)
            found.bands.append((HEADER_FOOTER_PLACES.get(instance, FOOTER), text))
