"""Text of Excel 97-2003 workbooks (.xls, and WPS Office's .et): BIFF8 records of the Workbook
stream (BIFF5's Book stream read the same way, its strings in the workbook's code page).

The shared string table (SST, continued over CONTINUE records, where a string's characters may
change width at each boundary) is read first; then each worksheet becomes one table-shaped part as
the xlsx reader makes it (rows as lines, cells tab-separated in their columns): LABELSST, LABEL
and RSTRING strings, NUMBER, RK and MULRK numbers written as the digits they hold (an integral
value without ".0"), and formula results (numbers and STRING records). Booleans and errors are not
text. Page headers and footers (HEADER, FOOTER records) are header and footer parts with their
&-codes removed, and shared strings no cell shows are body text, as in xlsx.
"""

from __future__ import annotations

import struct

import olefile

from agent.content.budget import Collector, Refused
from agent.content.document import BODY, FOOTER, HEADER
from agent.content.ole import decode_8bit, read_stream
from agent.content.ooxml import _SHEET_CODES as SHEET_CODES  # the same &L &C &R codes

BOF, EOF, CONTINUE, SST, LABELSST, LABEL, RSTRING = 0x0809, 0x000A, 0x003C, 0x00FC, 0x00FD, 0x0204, 0x00D6
NUMBER, RK, MULRK, FORMULA, STRING, FILEPASS, CODEPAGE = 0x0203, 0x027E, 0x00BD, 0x0006, 0x0207, 0x002F, 0x0042
HEADER_RECORD, FOOTER_RECORD = 0x0014, 0x0015
WORKSHEET = 0x0010
BIFF8 = 0x0600
MAX_COLUMN = 16383


class _Records:
    """(type, data) of each record; an SST's CONTINUE records are kept with it as its pieces."""

    def __init__(self, stream: bytes, out: Collector) -> None:
        self.stream, self.out = stream, out

    def __iter__(self):
        at, stream = 0, self.stream
        while at + 4 <= len(stream):
            kind, size = struct.unpack_from("<HH", stream, at)
            if at + 4 + size > len(stream) and not self.out.truncated:  # not a prefix the budget cut
                raise Refused("corrupt xls: a record runs past the end of the stream")
            data, at = stream[at + 4 : at + 4 + size], at + 4 + size
            if kind == SST:
                pieces = [data]
                while at + 4 <= len(stream) and struct.unpack_from("<H", stream, at)[0] == CONTINUE:
                    (size,) = struct.unpack_from("<H", stream, at + 2)
                    pieces.append(stream[at + 4 : at + 4 + size])
                    at += 4 + size
                yield kind, pieces
            else:
                yield kind, data


class _Reader:
    """A cursor over a record and its CONTINUE pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces, self.index, self.at = pieces, 0, 0

    def _next_piece(self) -> bool:
        if self.index + 1 >= len(self.pieces):
            return False
        self.index, self.at = self.index + 1, 0
        return True

    def take(self, n: int) -> bytes:
        """n bytes of structure (counts, runs, phonetics), which may span pieces."""
        got = bytearray()
        while len(got) < n:
            piece = self.pieces[self.index]
            chunk = piece[self.at : self.at + n - len(got)]
            got += chunk
            self.at += len(chunk)
            if len(got) < n and not self._next_piece():
                raise struct.error("record ends inside a string")
        return bytes(got)

    def characters(self, count: int, wide: bool) -> str:
        """count characters; at a piece boundary a new flags byte says their width from there."""
        chunks = []
        while count > 0:
            piece = self.pieces[self.index]
            if self.at >= len(piece):
                if not self._next_piece():
                    raise struct.error("record ends inside a string")
                wide = bool(self.take(1)[0] & 1)
                continue
            width = 2 if wide else 1
            n = min(count, (len(piece) - self.at) // width)
            if n == 0:
                raise struct.error("a character split over records")
            raw = piece[self.at : self.at + n * width]
            chunks.append(raw.decode("utf-16-le" if wide else "latin-1"))
            self.at += n * width
            count -= n
        return "".join(chunks)

    def unicode_string(self, count_bytes: int = 2) -> str:
        """An XLUnicodeRichExtendedString (or XLUnicodeString): rich runs and phonetics skipped."""
        count = int.from_bytes(self.take(count_bytes), "little")
        flags = self.take(1)[0]
        runs = int.from_bytes(self.take(2), "little") if flags & 0x08 else 0
        extra = int.from_bytes(self.take(4), "little") if flags & 0x04 else 0
        text = self.characters(count, bool(flags & 0x01))
        self.skip(4 * runs + extra)
        return text

    def skip(self, n: int) -> None:
        while n > 0:
            piece = self.pieces[self.index]
            step = min(n, len(piece) - self.at)
            self.at += step
            n -= step
            if n and not self._next_piece():
                return


def shared_strings(pieces: list[bytes], out: Collector) -> tuple[list[str], bool]:
    """The table's strings, and whether it held as many as it says."""
    reader = _Reader(pieces)
    _total, unique = struct.unpack("<II", reader.take(8))
    strings: list[str] = []
    chars = 0
    try:
        for _ in range(unique):
            text = reader.unicode_string()
            chars += len(text)
            out.check_chars(chars)
            strings.append(text)
            if len(strings) % 4096 == 0:
                out.check_time()
    except struct.error:  # a table cut short (or counted wrong) keeps the strings read
        return strings, False
    return strings, True


def number_text(value: float | int) -> str:
    """A cell's number as it holds it: 13800138000, not 13800138000.0; 0.5; 1.5e+20."""
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        return ""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def rk_number(rk: int) -> float:
    if rk & 2:
        value: float | int = rk >> 2 if rk < 0x80000000 else (rk >> 2) - (1 << 30)
    else:
        (value,) = struct.unpack("<d", struct.pack("<Q", (rk & 0xFFFFFFFC) << 32))
    return value / 100 if rk & 1 else value


class _Sheet:
    """A worksheet's cells, made into one table-shaped part when its EOF comes."""

    def __init__(self, out: Collector) -> None:
        self.out = out
        self.rows: dict[int, dict[int, str]] = {}
        self.chars = 0

    def put(self, row: int, column: int, value: str) -> None:
        value = " ".join(value.split())
        if not value:
            return
        self.chars += len(value) + 1
        self.out.check_chars(self.chars)
        self.rows.setdefault(row, {})[min(column, MAX_COLUMN)] = value

    def flush(self) -> None:
        lines = []
        for row in sorted(self.rows):
            cells = self.rows[row]
            line = [""] * (max(cells) + 1)
            for column, value in cells.items():
                line[column] = value
            lines.append("\t".join(line).rstrip("\t"))
        self.rows, self.chars = {}, 0
        text = "\n".join(lines)
        self.out.add(BODY, text[: max(self.out.chars_left, 0)])


def read_xls(ole: olefile.OleFileIO, out: Collector) -> None:
    stream = read_stream(ole, "Workbook", out) or read_stream(ole, "Book", out)
    strings: list[str] = []
    used: set[int] = set()
    sheet: _Sheet | None = None
    depth, biff8, codepage = 0, True, 1252
    pending: tuple[int, int] | None = None  # a formula cell whose string result follows
    bands: list[tuple[str, str]] = []
    complete = True
    try:
        for count, (kind, data) in enumerate(_Records(stream, out)):
            if count % 4096 == 0:
                out.check_time()
            if kind == SST:
                strings, complete = shared_strings(data, out)
            elif kind == BOF:
                depth += 1
                version, dt = struct.unpack_from("<HH", data) if len(data) >= 4 else (BIFF8, 0)
                if depth == 1:
                    biff8 = version == BIFF8
                    sheet = _Sheet(out) if dt == WORKSHEET else None
            elif kind == EOF:
                depth = max(depth - 1, 0)
                if depth == 0 and sheet is not None:
                    sheet.flush()
                    sheet = None
            elif kind == FILEPASS:
                raise Refused("encrypted")
            elif kind == CODEPAGE and len(data) >= 2:
                codepage = struct.unpack_from("<H", data)[0]
            elif kind in (HEADER_RECORD, FOOTER_RECORD) and data:
                text = _string(data, 0, biff8, codepage)
                text = SHEET_CODES.sub(lambda m: "&" if m.group() == "&&" else " ", text)
                if text.split():
                    bands.append((HEADER if kind == HEADER_RECORD else FOOTER, " ".join(text.split())))
            elif sheet is not None and depth == 1:
                pending = _cell(kind, data, sheet, strings, used, biff8, codepage, pending)
    except struct.error:
        if sheet is not None:
            sheet.flush()
        raise Refused("corrupt xls: a record ends early") from None
    finally:
        for where, text in bands:
            out.add(where, text)
    out.add(BODY, "\n".join(t for i, t in enumerate(strings) if i not in used))
    if not complete and not out.truncated:
        raise Refused("corrupt xls: the shared string table holds fewer strings than it says")


def _string(data: bytes, at: int, biff8: bool, codepage: int) -> str:
    if biff8:
        return _Reader([data[at:]]).unicode_string()
    (count,) = struct.unpack_from("<H", data, at)
    return decode_8bit(data[at + 2 : at + 2 + count], codepage)


def _cell(kind, data, sheet, strings, used, biff8, codepage, pending):
    """One cell record into sheet; the formula cell still waiting for its STRING record, if any."""
    if kind == STRING and pending is not None:
        sheet.put(*pending, _string(data, 0, biff8, codepage))
        return None
    if kind not in (LABELSST, LABEL, RSTRING, NUMBER, RK, MULRK, FORMULA):
        return pending if kind == CONTINUE else None
    row, column = struct.unpack_from("<HH", data)
    if kind == LABELSST:
        (index,) = struct.unpack_from("<I", data, 6)
        if index < len(strings):
            used.add(index)
            sheet.put(row, column, strings[index])
    elif kind in (LABEL, RSTRING):
        sheet.put(row, column, _string(data, 6, biff8, codepage))
    elif kind == NUMBER:
        sheet.put(row, column, number_text(struct.unpack_from("<d", data, 6)[0]))
    elif kind == RK:
        sheet.put(row, column, number_text(rk_number(struct.unpack_from("<I", data, 6)[0])))
    elif kind == MULRK:
        for i in range((len(data) - 6) // 6):
            (rk,) = struct.unpack_from("<I", data, 4 + 6 * i + 2)
            sheet.put(row, column + i, number_text(rk_number(rk)))
    elif kind == FORMULA:
        result = data[6:14]
        if result[6:8] != b"\xff\xff":
            sheet.put(row, column, number_text(struct.unpack("<d", result)[0]))
        elif result[0] == 0:
            return row, column  # a string result: its STRING record comes next
    return None
