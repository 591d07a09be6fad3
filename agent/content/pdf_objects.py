"""The objects of a PDF file as the common producers write them, for the fast text reader
(agent/content/pdf_text.py): the classic cross-reference table with its incremental updates
(/Prev), cross-reference streams and object streams (PDF 1.5), indirect lengths, FlateDecode with
the PNG predictors.

It is strict by design: anything it does not read exactly (a broken offset, an unknown filter,
encryption, a cycle, a count past its bounds) raises Unsure, and the caller hands the WHOLE document
to PDFium, which repairs what can be repaired. So the reader never has to guess, and never gives
less text than PDFium without saying so.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass


class Unsure(Exception):
    """Something this reader does not read exactly: the document goes to the reference reader."""


class Name(str):
    """A PDF name, without its slash (a str, so a dict's keys compare with plain strings)."""


@dataclass(frozen=True)
class Ref:
    number: int
    generation: int


@dataclass
class Stream:
    info: dict
    raw: bytes


MAX_OBJECTS = 2_000_000  # an xref claiming more is hostile or beyond what this reader is for
MAX_DEPTH = 64  # nested arrays and dicts
MAX_UPDATES = 64  # /Prev chain of incremental updates
MAX_STREAM_BYTES = 256 << 20  # one decoded stream, whatever the budget
WHITE = b"\x00\t\n\x0c\r "
_TOKEN = re.compile(
    rb"(?:[\x00\t\n\x0c\r ]++|%[^\r\n]*+)*+"  # white space and comments before the token
    rb"(?:(?P<num>[+-]?+(?>\d+\.?\d*|\.\d+))(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])"
    rb"|/(?P<name>[^\x00\t\n\x0c\r ()<>\[\]{}/%]*)"
    rb"|(?P<open><<|\[)|(?P<close>>>|\])"
    rb"|<(?P<hex>[0-9A-Fa-f\x00\t\n\x0c\r ]*)>"
    rb"|(?P<str>\()"
    rb"|(?P<kw>[A-Za-z]+))"
)
_STRING_PART = re.compile(rb"\\.|[()]", re.S)
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f",
            ord("("): b"(", ord(")"): b")", ord("\\"): b"\\"}  # fmt: skip
_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|(\r\n|[\r\n])|(.))", re.S)
_OBJ_HEAD = re.compile(
    rb"[\x00\t\n\x0c\r ]*(\d+)[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+obj(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])"
)
_STREAM_START = re.compile(rb"[\x00\t\n\x0c\r ]*stream(?:\r\n|\n)")
_END_STREAM = re.compile(rb"(?:\r\n|\n|\r)?endstream")


def literal_string(data: bytes, start: int) -> tuple[bytes, int]:
    """The string whose "(" is at start, and the offset after its ")": balanced parentheses and
    escapes as the PDF reference gives them."""
    depth, pos = 1, start + 1
    for m in _STRING_PART.finditer(data, pos):
        c = m.group()
        if len(c) == 2:  # an escaped character, parenthesis or not
            continue
        depth += 1 if c == b"(" else -1
        if depth == 0:
            body = data[start + 1 : m.start()]
            return (_ESCAPE.sub(_unescape, body) if b"\\" in body else body), m.end()
    raise Unsure("unterminated string")


def _unescape(m: re.Match) -> bytes:
    if m.group(1):
        return bytes((int(m.group(1), 8) & 0xFF,))
    if m.group(2):
        return b""
    return _ESCAPES.get(m.group(3)[0], m.group(3))


def hex_string(digits: bytes) -> bytes:
    digits = bytes(c for c in digits if c not in WHITE) if any(c in WHITE for c in digits) else digits
    if len(digits) % 2:
        digits += b"0"
    return bytes.fromhex(digits.decode("ascii"))


class Parser:
    """Objects from bytes at an offset; references stay Ref until the document resolves them."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def value(self, pos: int, depth: int = 0) -> tuple[object, int]:
        if depth > MAX_DEPTH:
            raise Unsure("nesting too deep")
        m = _TOKEN.match(self.data, pos)
        if m is None:
            raise Unsure(f"no object at {pos}")
        kind = m.lastgroup
        end = m.end()
        if kind == "num":
            text = m.group("num")
            if b"." not in text:
                number = int(text)
                ref = _ref_after(self.data, end)
                if ref is not None and number >= 0:
                    return Ref(number, ref[0]), ref[1]
                return number, end
            return float(text), end
        if kind == "name":
            return Name(_name(m.group("name"))), end
        if kind == "open":
            return self._dict(end, depth) if m.group("open") == b"<<" else self._array(end, depth)
        if kind == "hex":
            return hex_string(m.group("hex")), end
        if kind == "str":
            return literal_string(self.data, end - 1)
        if kind == "kw":
            word = m.group("kw")
            if word == b"true":
                return True, end
            if word == b"false":
                return False, end
            if word == b"null":
                return None, end
        raise Unsure(f"unexpected token at {pos}")

    def _array(self, pos: int, depth: int) -> tuple[list, int]:
        items: list = []
        while True:
            m = _TOKEN.match(self.data, pos)
            if m is not None and m.lastgroup == "close":
                if m.group("close") != b"]":
                    raise Unsure("mismatched array")
                return items, m.end()
            item, pos = self.value(pos, depth + 1)
            items.append(item)
            if len(items) > MAX_OBJECTS:
                raise Unsure("array too long")

    def _dict(self, pos: int, depth: int) -> tuple[dict, int]:
        out: dict = {}
        while True:
            m = _TOKEN.match(self.data, pos)
            if m is None:
                raise Unsure("broken dictionary")
            if m.lastgroup == "close":
                if m.group("close") != b">>":
                    raise Unsure("mismatched dictionary")
                return out, m.end()
            if m.lastgroup != "name":
                raise Unsure("dictionary key is not a name")
            key = _name(m.group("name"))
            value, pos = self.value(m.end(), depth + 1)
            out[key] = value


_REF_TAIL = re.compile(rb"[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+R(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])")


def _ref_after(data: bytes, pos: int) -> tuple[int, int] | None:
    m = _REF_TAIL.match(data, pos)
    return (int(m.group(1)), m.end()) if m else None


def _name(raw: bytes) -> str:
    if b"#" in raw:
        raw = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes((int(m.group(1), 16),)), raw)
    return raw.decode("latin-1")


def inflate(data: bytes, max_bytes: int) -> bytes:
    """zlib data inflated to at most max_bytes: more, or a broken stream, is Unsure (PDFium,
    the reference, reads what a truncated stream holds; this reader does not guess)."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, max_bytes + 1)
    except zlib.error as e:
        raise Unsure(f"bad deflate: {e}") from None
    if len(out) > max_bytes:
        raise Unsure("stream inflates past the budget")
    if not d.eof:
        raise Unsure("truncated deflate stream")
    return out


def unpredict(data: bytes, params: dict) -> bytes:
    """PNG predictors (10-15) as xref streams use them; TIFF and others are Unsure."""
    predictor = params.get("Predictor", 1)
    if predictor == 1:
        return data
    if not (isinstance(predictor, int) and 10 <= predictor <= 15):
        raise Unsure("predictor")
    columns, colors, bits = params.get("Columns", 1), params.get("Colors", 1), params.get("BitsPerComponent", 8)
    if not all(isinstance(v, int) and 0 < v < 1 << 16 for v in (columns, colors)) or bits != 8:
        raise Unsure("predictor parameters")
    bpp, width = colors, columns * colors
    if len(data) % (width + 1):
        raise Unsure("predictor row length")
    out = bytearray()
    previous = bytearray(width)
    for row_start in range(0, len(data), width + 1):
        kind = data[row_start]
        row = bytearray(data[row_start + 1 : row_start + 1 + width])
        if kind == 0:
            pass
        elif kind == 1:
            for i in range(bpp, width):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous, strict=False))
        else:
            raise Unsure("png filter")  # Average and Paeth: no xref stream writer here uses them
        out += row
        previous = row
    return bytes(out)
