"""A small, bounded reader of IPP attribute messages: what a CUPS job control file holds.

cupsd keeps each job's attributes in /var/spool/cups/cNNNNN as one IPP message (RFC 8010
section 3: version, operation or status, request id, then attribute groups of tag, name length,
name, value length, value). The agent reads the few attributes a print event names (user, title,
printer, format, pages). Nothing in the file is trusted: every length is checked against what is
left, the number of attributes and values is capped, collections are skipped whole, and a
malformed message raises IppError with where it broke.
"""

from __future__ import annotations

import struct

MAX_MESSAGE_BYTES = 1024 * 1024  # a control file is a few KiB; more is not read
MAX_VALUES = 4096  # attribute values read from one message
MAX_TEXT_CHARS = 1024  # a text value longer than this is cut

END_OF_ATTRIBUTES = 0x03
INTEGER, BOOLEAN, ENUM = 0x21, 0x22, 0x23
BEGIN_COLLECTION, END_COLLECTION, MEMBER_NAME = 0x34, 0x37, 0x4A
EXTENSION = 0x7F
MAX_DEPTH = 16  # nested collections (cupsd writes 2 or 3 deep)

Value = int | bool | str | bytes
Attributes = dict[str, list[Value]]


class IppError(ValueError):
    """The message is not well-formed IPP (truncated, a length past its end, too many values)."""


def parse_attributes(data: bytes) -> Attributes:
    """Every top-level attribute of an IPP message, by name (a name seen again, e.g. in another
    group, adds its values). Integers and enums as int, booleans as bool, text and names as str
    (UTF-8, bad bytes replaced), other values as bytes. Members of collections are not returned."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise IppError(f"message of {len(data)} bytes is over {MAX_MESSAGE_BYTES}")
    if len(data) < 9:
        raise IppError("shorter than an IPP header")
    if data[0] not in (1, 2):
        raise IppError(f"unknown IPP version {data[0]}.{data[1]}")
    attrs: Attributes = {}
    pos, depth, name, values = 8, 0, "", 0
    while True:
        tag = _byte(data, pos)
        pos += 1
        if tag == END_OF_ATTRIBUTES:
            if depth:
                raise IppError("end of attributes inside a collection")
            return attrs
        if tag < 0x10:  # a group delimiter: operation, job, printer, ... attributes
            if depth:
                raise IppError(f"group tag inside a collection at byte {pos - 1}")
            continue
        if tag == EXTENSION:
            raise IppError(f"extension tag at byte {pos - 1}")
        name_len, pos = _length(data, pos)
        raw_name, pos = _take(data, pos, name_len)
        value_len, pos = _length(data, pos)
        raw_value, pos = _take(data, pos, value_len)
        values += 1
        if values > MAX_VALUES:
            raise IppError(f"more than {MAX_VALUES} values")
        if name_len:
            if depth:  # a named attribute inside a collection: not IPP
                raise IppError(f"named attribute inside a collection at byte {pos}")
            name = raw_name.decode("utf-8", "replace")[:MAX_TEXT_CHARS]
        elif not name and not depth:
            raise IppError(f"additional value without an attribute at byte {pos}")
        if tag == BEGIN_COLLECTION:
            depth += 1
            if depth > MAX_DEPTH:
                raise IppError("collections nested too deep")
            if depth == 1:
                attrs.setdefault(name, []).append(b"")  # present, its members not read
            continue
        if tag == END_COLLECTION:
            if not depth:
                raise IppError(f"end of a collection never begun at byte {pos}")
            depth -= 1
            continue
        if depth:  # a member's name or value
            continue
        attrs.setdefault(name, []).append(_value(tag, raw_value))


def _value(tag: int, raw: bytes) -> Value:
    if tag in (INTEGER, ENUM) and len(raw) == 4:
        return struct.unpack(">i", raw)[0]
    if tag == BOOLEAN and len(raw) == 1:
        return raw != b"\0"
    if 0x40 <= tag <= 0x4F or 0x35 <= tag <= 0x36:  # text, name, keyword, uri, charset, language, mime type
        if tag in (0x35, 0x36):  # text or name with language: language length, language, text length, text
            raw = _with_language(raw)
        return raw.decode("utf-8", "replace")[:MAX_TEXT_CHARS]
    return raw


def _with_language(raw: bytes) -> bytes:
    lang_len, pos = _length(raw, 0)
    _, pos = _take(raw, pos, lang_len)
    text_len, pos = _length(raw, pos)
    text, _ = _take(raw, pos, text_len)
    return text


def _byte(data: bytes, pos: int) -> int:
    if pos >= len(data):
        raise IppError(f"truncated at byte {pos} (no end-of-attributes tag)")
    return data[pos]


def _length(data: bytes, pos: int) -> tuple[int, int]:
    if pos + 2 > len(data):
        raise IppError(f"truncated length at byte {pos}")
    return struct.unpack_from(">H", data, pos)[0], pos + 2


def _take(data: bytes, pos: int, n: int) -> tuple[bytes, int]:
    if pos + n > len(data):
        raise IppError(f"a length of {n} at byte {pos} runs past the end ({len(data)} bytes)")
    return data[pos : pos + n], pos + n


def first(attrs: Attributes, *names: str) -> Value | None:
    """The first value of the first of `names` present (None when none is)."""
    for name in names:
        if attrs.get(name):
            return attrs[name][0]
    return None
