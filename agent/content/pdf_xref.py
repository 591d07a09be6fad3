"""A PDF document's objects by number, for the fast text reader: the cross-reference sections
from the last startxref back through /Prev (classic tables and xref streams), objects read at
their offsets or out of object streams, streams decoded (FlateDecode, PNG predictors) within a
byte budget. Strict: a wrong offset, a cycle, a hybrid file or an encrypted one is Unsure.
"""

from __future__ import annotations

import re

from agent.content.pdf_objects import (
    _END_STREAM,
    _OBJ_HEAD,
    _STREAM_START,
    MAX_OBJECTS,
    MAX_STREAM_BYTES,
    MAX_UPDATES,
    Parser,
    Ref,
    Stream,
    Unsure,
    inflate,
    unpredict,
)  # fmt: skip

_STARTXREF = re.compile(rb"startxref[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+%%EOF")
_XREF_HEAD = re.compile(rb"xref[\x00\t\n\x0c\r ]*")
_SUBSECTION = re.compile(rb"(\d+) (\d+)[\x00\t\x0c\r ]*\r?\n")
_ENTRY = re.compile(rb"(\d{10}) (\d{5}) ([nf])(?: \r| \n|\r\n)")
_TRAILER = re.compile(rb"[\x00\t\n\x0c\r ]*trailer[\x00\t\n\x0c\r ]*")
MAX_RESOLVE_DEPTH = 32  # a reference chain (a /Length pointing at a reference...)


class Document:
    def __init__(self, data: bytes, max_bytes: int) -> None:
        self.data = data
        self.parser = Parser(data)
        self.budget = min(max_bytes, MAX_STREAM_BYTES * 4)
        self.offsets: dict[int, tuple[int, int]] = {}  # number -> (offset, generation)
        self.in_streams: dict[int, tuple[int, int]] = {}  # number -> (object stream number, index)
        self.cache: dict[int, object] = {}
        self._resolving: set[int] = set()
        self._object_streams: dict[int, tuple[bytes, list[tuple[int, int]], int]] = {}
        if not data.startswith(b"%PDF-"):
            raise Unsure("no %PDF header at the start")  # PDFium refuses it, or counts offsets from a later one
        tail = data[-2048:]
        last = tail.rfind(b"startxref")
        found = _STARTXREF.match(tail, last) if last >= 0 else None
        if found is None:
            raise Unsure("no startxref, or a damaged one")  # PDFium may find the newest revision anyway
        self.trailer = self._read_sections(int(found.group(1)))
        if "Encrypt" in self.trailer:
            raise Unsure("encrypted")  # PDFium opens the empty user password

    # the cross-reference sections ------------------------------------------------------------
    def _read_sections(self, offset: int) -> dict:
        trailer: dict = {}
        seen: set[int] = set()
        self._sections = 0
        while offset is not None:
            if offset in seen or len(seen) >= MAX_UPDATES or not 0 <= offset < len(self.data):
                raise Unsure("xref chain")
            seen.add(offset)
            m = _XREF_HEAD.match(self.data, offset)
            self._section_numbers: set[int] = set()
            section = self._table(m.end()) if m else self._xref_stream(offset)
            self._sections += 1
            for key, value in section.items():  # PDFium merges the trailers, the newest first
                trailer.setdefault(key, value)
            if "XRefStm" in section:
                raise Unsure("hybrid xref")
            prev = section.get("Prev")
            if prev is not None and not isinstance(prev, int):
                raise Unsure("Prev")
            offset = prev
        if len(self.offsets) + len(self.in_streams) > MAX_OBJECTS:
            raise Unsure("too many objects")
        return trailer

    def _add(self, number: int, offset: int, generation: int) -> None:
        if number in self._section_numbers:
            raise Unsure("an object listed twice in one xref section")
        self._section_numbers.add(number)
        if self.offsets.get(number, (0, 0))[0] < 0:
            raise Unsure("an update frees an object an older revision has")  # PDFium may read the older one
        if number not in self.offsets and number not in self.in_streams:  # the newest section wins
            self.offsets[number] = (offset, generation)

    def _free(self, number: int) -> None:
        if number in self._section_numbers:
            raise Unsure("an object listed twice in one xref section")
        self._section_numbers.add(number)
        if number not in self.offsets and number not in self.in_streams:
            self.offsets[number] = (-1, 0)

    def _table(self, pos: int) -> dict:
        data = self.data
        while True:
            m = _SUBSECTION.match(data, pos)
            if not m:
                break
            first, count = int(m.group(1)), int(m.group(2))
            if count > MAX_OBJECTS or first > MAX_OBJECTS:
                raise Unsure("xref count")
            pos = m.end()
            for number in range(first, first + count):
                e = _ENTRY.match(data, pos)
                if not e:
                    raise Unsure("xref entry")
                pos = e.end()
                if e.group(3) == b"n":
                    self._add(number, int(e.group(1)), int(e.group(2)))
                elif number:
                    self._free(number)
        t = _TRAILER.match(data, pos)
        if not t:
            raise Unsure("no trailer")
        trailer, _ = self.parser.value(t.end())
        if not isinstance(trailer, dict):
            raise Unsure("trailer")
        return trailer

    def _xref_stream(self, offset: int) -> dict:
        number, value = self._object_at(offset, None)
        if not isinstance(value, Stream) or value.info.get("Type") != "XRef":
            raise Unsure("not an xref stream")
        info = value.info
        widths, size = info.get("W"), info.get("Size")
        if not (
            isinstance(widths, list) and len(widths) == 3 and all(isinstance(w, int) and 0 <= w <= 8 for w in widths)
        ):
            raise Unsure("xref W")
        if not isinstance(size, int) or not 0 <= size <= MAX_OBJECTS:
            raise Unsure("xref Size")
        index = info.get("Index", [0, size])
        if not (
            isinstance(index, list)
            and len(index) % 2 == 0
            and all(isinstance(i, int) and 0 <= i <= MAX_OBJECTS for i in index)
        ):
            raise Unsure("xref Index")
        rows = self._decode(value)
        row = sum(widths)
        if row == 0:
            raise Unsure("xref W")
        pos = 0
        for first, count in zip(index[::2], index[1::2], strict=False):
            for number in range(first, first + count):
                if pos + row > len(rows):
                    raise Unsure("xref stream short")
                fields = []
                for w in widths:
                    fields.append(int.from_bytes(rows[pos : pos + w], "big") if w else None)
                    pos += w
                kind = 1 if widths[0] == 0 else fields[0]
                if kind == 0:
                    if number:
                        self._free(number)
                elif kind == 1:
                    self._add(number, fields[1], fields[2] or 0)
                elif kind == 2:
                    if number in self._section_numbers:
                        raise Unsure("an object listed twice in one xref section")
                    self._section_numbers.add(number)
                    if self.offsets.get(number, (0, 0))[0] < 0:
                        raise Unsure("an update frees an object an older revision has")
                    if number not in self.offsets and number not in self.in_streams:
                        self.in_streams[number] = (fields[1], fields[2] or 0)
                else:
                    raise Unsure("xref entry type")
        return info

    # objects ---------------------------------------------------------------------------------
    def _object_at(self, offset: int, expected: int | None) -> tuple[int, object]:
        m = _OBJ_HEAD.match(self.data, offset)
        if not m:
            raise Unsure(f"no object at offset {offset}")
        number = int(m.group(1))
        if expected is not None and number != expected:
            raise Unsure("xref offset points at another object")
        value, pos = self.parser.value(m.end())
        if isinstance(value, dict):
            s = _STREAM_START.match(self.data, pos)
            if s:
                length = value.get("Length")
                if isinstance(length, Ref):
                    length = self.resolve(length)
                if not isinstance(length, int) or length < 0 or s.end() + length > len(self.data):
                    raise Unsure("stream length")
                raw = self.data[s.end() : s.end() + length]
                if not _END_STREAM.match(self.data, s.end() + length):
                    raise Unsure("stream length does not reach endstream")
                value = Stream(value, raw)
        return number, value

    def resolve(self, value):
        if not isinstance(value, Ref):
            return value
        number = value.number
        if number in self.cache:
            return self.cache[number]
        if number in self._resolving or len(self._resolving) > MAX_RESOLVE_DEPTH:
            raise Unsure("reference cycle")
        self._resolving.add(number)
        try:
            if number in self.in_streams:
                result = self._from_object_stream(number, *self.in_streams[number])
            else:
                offset, generation = self.offsets.get(number, (None, None))
                if offset is None or generation != value.generation:
                    raise Unsure("reference to an object not in the xref")
                result = None if offset < 0 else self._object_at(offset, number)[1]
        finally:
            self._resolving.discard(number)
        self.cache[number] = result
        return result

    def get(self, info, key: str, default=None):
        if not isinstance(info, dict):
            raise Unsure("not a dictionary")
        value = self.resolve(info.get(key, default))
        return default if value is None else value

    def _from_object_stream(self, number: int, stream_number: int, index: int):
        if stream_number not in self._object_streams:
            stream = self.resolve(Ref(stream_number, 0))
            if not isinstance(stream, Stream) or stream.info.get("Type") != "ObjStm":
                raise Unsure("object stream")
            count, first = stream.info.get("N"), stream.info.get("First")
            if not isinstance(count, int) or not isinstance(first, int) or not 0 <= count <= MAX_OBJECTS or first < 0:
                raise Unsure("object stream header")
            data = self._decode(stream)
            header = Parser(data[:first])
            pairs, pos = [], 0
            for _ in range(count):
                n, pos = header.value(pos)
                off, pos = header.value(pos)
                if not isinstance(n, int) or not isinstance(off, int) or off < 0:
                    raise Unsure("object stream pair")
                pairs.append((n, off))
            self._object_streams[stream_number] = (data, pairs, first)
        data, pairs, first = self._object_streams[stream_number]
        if index >= len(pairs) or pairs[index][0] != number:
            raise Unsure("object stream index")
        value, _ = Parser(data).value(first + pairs[index][1])
        return value

    # streams ---------------------------------------------------------------------------------
    def _decode(self, stream: Stream) -> bytes:
        filters = self.resolve(stream.info.get("Filter"))
        params = self.resolve(stream.info.get("DecodeParms"))
        if isinstance(filters, list):
            if len(filters) > 1:
                raise Unsure("filter chain")
            filters = self.resolve(filters[0]) if filters else None
            params = self.resolve(params[0]) if isinstance(params, list) and params else params
        if filters is None:
            data = stream.raw
        elif filters in ("FlateDecode", "Fl"):
            data = inflate(stream.raw, min(self.budget, MAX_STREAM_BYTES))
            if isinstance(params, dict):
                data = unpredict(data, {k: self.resolve(v) for k, v in params.items()})
            elif params is not None:
                raise Unsure("decode parameters")
        else:
            raise Unsure(f"filter {filters}")
        self.budget -= len(data)
        if self.budget < 0:
            raise Unsure("streams past the budget")
        return data

    def stream_data(self, value) -> bytes:
        stream = self.resolve(value)
        if not isinstance(stream, Stream):
            raise Unsure("not a stream")
        return self._decode(stream)
