"""Text of Word 97-2003 binary documents (.doc, and WPS Office's .wps, which is the same format).

MS-DOC keeps the characters in the WordDocument stream in pieces, listed by the piece table (the
CLX in the 0Table or 1Table stream, as the FIB says): each piece is UTF-16 or "compressed" 8-bit
(cp1252) text. The text is one run of character positions: the main document, then footnotes,
headers and footers, comments, endnotes and text boxes, each as long as the FIB says. Headers and
footers are told apart by the PlcfHdd (six stories per section: even, odd and first-page headers
and footers, after six separators). Parts come in the OOXML reader's order: headers, footers,
then body (document, footnotes, endnotes, comments, text boxes); paragraphs and table cells are
parts, and field codes (the instructions between 0x13 and 0x14) are left out as docx leaves out
w:instrText, so a .doc and the docx it was saved from have the same text.
"""

from __future__ import annotations

import struct

import olefile

from agent.content.budget import Collector, Refused
from agent.content.document import BODY, FOOTER, HEADER
from agent.content.ole import read_stream

WORD_IDENT = 0xA5EC
FIRST_WORD97_NFIB = 0xC1  # Word 6 and 95 (nFib 0x65-0x68) keep their text another way
F_ENCRYPTED, F_WHICH_TABLE, F_OBFUSCATED = 0x0100, 0x0200, 0x8000
CLX, PLCF_HDD = 33, 11  # indexes of (fc, lcb) pairs in FibRgFcLcb97
MAX_PIECES = 1 << 20
FIB_BYTES = 4096  # the FIB of any version fits (Word 2007's is under 1,600 bytes)
HEADER_STORIES = (HEADER, HEADER, FOOTER, FOOTER, HEADER, FOOTER)  # even, odd, even, odd, first, first
PARAGRAPH_ENDS = {"\r", "\x07", "\x0c", "\x0e"}  # paragraph, cell or row, page or section, column
DROPPED = {chr(c) for c in range(32)} - {"\t", "\n"} - PARAGRAPH_ENDS
REPLACED = {"\x0b": "\n", "\x1e": "-", "\x1f": ""}  # line break, non-breaking hyphen, soft hyphen


class _Fib:
    def __init__(self, word: bytes) -> None:
        if len(word) < 0x22:
            raise Refused("corrupt doc: no FIB")
        ident, self.nfib = struct.unpack_from("<HH", word, 0)
        (self.flags,) = struct.unpack_from("<H", word, 0x0A)
        if ident != WORD_IDENT:
            raise Refused("corrupt doc: not a Word FIB")
        (csw,) = struct.unpack_from("<H", word, 0x20)
        at = 0x22 + 2 * csw
        (cslw,) = struct.unpack_from("<H", word, at)
        self.counts = struct.unpack_from(f"<{cslw}i", word, at + 2) if cslw >= 11 else ()
        at += 2 + 4 * cslw
        (pairs,) = struct.unpack_from("<H", word, at)
        self.fc_lcb = struct.unpack_from(f"<{2 * pairs}I", word, at + 2)

    def pair(self, index: int) -> tuple[int, int]:
        if 2 * index + 1 >= len(self.fc_lcb):
            return 0, 0
        return self.fc_lcb[2 * index], self.fc_lcb[2 * index + 1]

    def story_lengths(self) -> list[int]:
        """ccpText, ccpFtn, ccpHdd, ccpMcr, ccpAtn, ccpEdn, ccpTxbx, ccpHdrTxbx (never negative)."""
        return [max(n, 0) for n in self.counts[3:11]] if self.counts else []


class _Pieces:
    """The piece table: character positions mapped to where their bytes are in WordDocument."""

    def __init__(self, clx: bytes, word: bytes) -> None:
        self.word = word
        at = 0
        while at < len(clx) and clx[at] == 0x01:  # Prc: formatting, skipped
            (size,) = struct.unpack_from("<h", clx, at + 1)
            if size < 0:
                raise Refused("corrupt doc: negative Prc size")
            at += 3 + size
        if at >= len(clx) or clx[at] != 0x02:
            raise Refused("corrupt doc: no piece table")
        (lcb,) = struct.unpack_from("<I", clx, at + 1)
        plc = clx[at + 5 : at + 5 + lcb]
        count = min((len(plc) - 4) // 12, MAX_PIECES)
        if count <= 0:
            raise Refused("corrupt doc: empty piece table")
        cps = struct.unpack_from(f"<{count + 1}I", plc, 0)
        self.pieces: list[tuple[int, int, int, bool]] = []  # cp start, cp end, byte offset, 8-bit
        for i in range(count):
            _flags, fc, _prm = struct.unpack_from("<HIH", plc, 4 * (count + 1) + 8 * i)
            compressed = bool(fc & 0x40000000)
            offset = (fc & 0x3FFFFFFF) // 2 if compressed else fc & 0x3FFFFFFF
            if cps[i + 1] > cps[i]:
                self.pieces.append((cps[i], cps[i + 1], offset, compressed))
        self.end = max((p[1] for p in self.pieces), default=0)

    def text(self, start: int, end: int, out: Collector) -> str:
        """Characters [start, end), as far as the pieces hold them."""
        end = min(end, self.end)
        if end <= start:
            return ""
        if end - start > out.chars_left:  # what the text budget holds
            end = start + max(out.chars_left, 0)
            out.truncated = True
        chunks = []
        for cp_start, cp_end, offset, compressed in self.pieces:
            a, b = max(start, cp_start), min(end, cp_end)
            if a >= b:
                continue
            out.check_time()
            if compressed:
                chunks.append(self.word[offset + a - cp_start : offset + b - cp_start].decode("cp1252", "replace"))
            else:
                raw = self.word[offset + 2 * (a - cp_start) : offset + 2 * (b - cp_start)]
                chunks.append(raw[: len(raw) // 2 * 2].decode("utf-16-le", "replace"))
        return "".join(chunks)


def paragraphs(text: str) -> list[str]:
    """A story's text as paragraphs: field codes dropped, their results kept; control marks gone."""
    found, current, fields = [], [], []  # fields: for each open field, whether its code is being read
    in_code = 0  # how many of fields are True: counted, as scanning them per character is quadratic
    for ch in text:
        if ch == "\x13":
            fields.append(True)
            in_code += 1
        elif ch == "\x14":
            if fields and fields[-1]:
                fields[-1] = False
                in_code -= 1
        elif ch == "\x15":
            if fields and fields.pop():
                in_code -= 1
        elif in_code:
            continue
        elif ch in PARAGRAPH_ENDS:
            found.append("".join(current))
            current = []
        elif ch in REPLACED:
            current.append(REPLACED[ch])
        elif ch not in DROPPED:
            current.append(ch)
    found.append("".join(current))
    return found


def read_doc(ole: olefile.OleFileIO, out: Collector) -> None:
    head = read_stream(ole, "WordDocument", out, limit=FIB_BYTES)
    out.bytes_left += len(head)  # read again below: the budget counts them once
    fib = _Fib(head)
    if fib.flags & (F_ENCRYPTED | F_OBFUSCATED):
        raise Refused("encrypted")
    if fib.nfib < FIRST_WORD97_NFIB:
        raise Refused("word 6/95 document: its text is not read")
    # the table first: when the budget cuts WordDocument short, the pieces it holds are still found
    table = read_stream(ole, "1Table" if fib.flags & F_WHICH_TABLE else "0Table", out)
    word = read_stream(ole, "WordDocument", out)
    fc, lcb = fib.pair(CLX)
    pieces = _Pieces(table[fc : fc + lcb], word)
    lengths = fib.story_lengths() or [pieces.end]
    lengths += [0] * (8 - len(lengths))
    starts = [sum(lengths[:i]) for i in range(8)]
    text, ftn, hdd, _mcr, atn, edn, txbx, _hdr_txbx = range(8)

    bands: dict[str, list[str]] = {HEADER: [], FOOTER: []}
    for where, story in _header_stories(fib, table, starts[hdd], lengths[hdd]):
        bands[where] += paragraphs(pieces.text(*story, out))
    for where in (HEADER, FOOTER):
        for paragraph in bands[where]:
            out.add(where, paragraph)
    for story in (text, ftn, edn, atn, txbx):
        for paragraph in paragraphs(pieces.text(starts[story], starts[story] + lengths[story], out)):
            out.add(BODY, paragraph)


def _header_stories(fib: _Fib, table: bytes, start: int, length: int) -> list[tuple[str, tuple[int, int]]]:
    """(HEADER or FOOTER, (start, end)) of each header story; the whole header document as headers
    when there is no PlcfHdd."""
    if length <= 0:
        return []
    fc, lcb = fib.pair(PLCF_HDD)
    plc = table[fc : fc + lcb]
    cps = struct.unpack_from(f"<{len(plc) // 4}I", plc) if lcb else ()
    if len(cps) < 2:
        return [(HEADER, (start, start + length))]
    stories = []
    for i in range(6, len(cps) - 1):
        a, b = min(cps[i], length), min(cps[i + 1], length)
        if b > a:
            stories.append((HEADER_STORIES[(i - 6) % 6], (start + a, start + b)))
    return stories
