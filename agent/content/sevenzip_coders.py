"""The coders of a 7z folder, decoded with the standard library a piece at a time.

A folder is a chain of coders; the packed bytes go in at the last one and the member bytes come out
of the first. LZMA, LZMA2, delta and the BCJ filters liblzma knows run through lzma's raw decoder,
Deflate through zlib, BZip2 through bz2, Copy is nothing at all. Every decoder is asked for at most
the bytes wanted (max_length), so a bomb never inflates more than one piece past the caps.

liblzma runs a filter (BCJ, delta) only in front of LZMA1/2, and holds back a filter's last few
bytes until the stream below says it has ended, which LZMA1 in 7z (no end marker) never says. So
a filter is merged into the LZMA2 decoder beneath it, and anywhere else its input is wrapped in
LZMA2 "uncompressed" chunks and closed with LZMA2's end byte, which flushes those last bytes.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from agent.content.budget import Refused

KB, MB = 1024, 1024 * 1024
CHUNK_BYTES = 64 * KB
MAX_DICT_BYTES = 64 * MB  # the most allocated for a window (7-Zip's Ultra asks for up to 256 MB)
_LZMA2_CHUNK_BYTES = 64 * KB  # the most an LZMA2 uncompressed chunk holds
_MIN_DICT_BYTES = 4 * KB  # liblzma's minimum
_MAX_IDLE_CALLS = 16  # a decoder that neither takes input nor gives output is stuck

COPY, LZMA, LZMA2 = bytes.fromhex("00"), bytes.fromhex("030101"), bytes.fromhex("21")
DEFLATE, BZIP2, AES = bytes.fromhex("040108"), bytes.fromhex("040202"), bytes.fromhex("06f10701")
_FILTERS = {  # 7z method id -> liblzma filter (7-Zip has an old long id and a new short one)
    bytes.fromhex("03"): lzma.FILTER_DELTA,
    **dict.fromkeys((bytes.fromhex("03030103"), bytes.fromhex("04")), lzma.FILTER_X86),
    **dict.fromkeys((bytes.fromhex("03030205"), bytes.fromhex("05")), lzma.FILTER_POWERPC),
    **dict.fromkeys((bytes.fromhex("03030401"), bytes.fromhex("06")), lzma.FILTER_IA64),
    **dict.fromkeys((bytes.fromhex("03030501"), bytes.fromhex("07")), lzma.FILTER_ARM),
    **dict.fromkeys((bytes.fromhex("03030701"), bytes.fromhex("08")), lzma.FILTER_ARMTHUMB),
    **dict.fromkeys((bytes.fromhex("03030805"), bytes.fromhex("09")), lzma.FILTER_SPARC),
}
_UNREAD_NAMES = {  # coders we do not decode, named for the archive_not_inspected sample
    "030401": "PPMd",
    "0303011b": "BCJ2",
    "0a": "ARM64",
    "0b": "RISC-V",
    "040109": "Deflate64",
    "040106": "Implode",
    "04f71101": "zstd",
    "04f71102": "Brotli",
    "04f71104": "LZ4",
    "04f71105": "LZ5",
    "04f71106": "Lizard",
}


class Encrypted(Exception):
    """The folder (or the archive's header) is AES-encrypted: it can be listed, not read."""


class Unsupported(Exception):
    """A coder or layout this reader does not decode; why names it (it becomes a detection sample)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class Coder:
    method: bytes
    properties: bytes
    in_streams: int = 1
    out_streams: int = 1


def coder_name(method: bytes) -> str:
    return _UNREAD_NAMES.get(method.hex(), f"0x{method.hex() or '-'}")


class Source(Protocol):
    def read(self, n: int) -> bytes: ...


class Packed:
    """The packed bytes of a folder, read from the archive file at its offset; counted for the ratio.
    The clock is checked on every read: a stream can be long and give nothing (empty deflate blocks)."""

    def __init__(self, f, offset: int, size: int, check_time: Callable[[], None]) -> None:
        self._f, self._offset, self._left, self._check_time = f, offset, size, check_time
        self.size, self.count = size, 0

    def read(self, n: int) -> bytes:
        n = min(n, self._left)
        if n <= 0:
            return b""
        self._check_time()
        self._f.seek(self._offset + self.count)
        data = self._f.read(n)
        self.count += len(data)
        self._left = 0 if len(data) < n else self._left - len(data)  # a short read: the file ended
        return data


def chain(coders: tuple[Coder, ...], out_sizes: tuple[int, ...], source: Source, max_out: int) -> tuple[Source, bool]:
    """The folder's unpacked bytes from its packed ones (coders[0] gives them, coders[-1] reads
    source), and whether an LZMA window was cut to MAX_DICT_BYTES. max_out: the most the caller will
    take (its budget), so no window need be larger. A cut window decodes everything that does not
    reach back further than it; what does raises LZMAError (liblzma checks every distance), never
    wrong bytes.

    Raises Encrypted or Unsupported before anything is read, Refused for impossible properties.
    """
    if any(c.method == AES for c in coders):
        raise Encrypted("7z AES")
    for c in coders:
        if c.method not in (COPY, LZMA, LZMA2, DEFLATE, BZIP2) and c.method not in _FILTERS:
            raise Unsupported(f"7z coder {coder_name(c.method)}")
    stages: list[tuple[bytes, dict | None, list[dict]]] = []  # (base method, its filter, filters above it)
    short = False
    for coder, out_size in reversed(list(zip(coders, out_sizes, strict=True))):  # the packed end first
        if coder.method == COPY:
            continue
        if coder.method in _FILTERS:
            if not stages or stages[-1][0] not in (LZMA2, b""):
                stages.append((b"", None, []))
            stages[-1][2].insert(0, _filter(coder))
        else:
            base, cut = _base(coder, min(out_size, max_out))
            short = short or cut
            stages.append((coder.method, base, []))
    for method, base, filters in stages:
        if method in (LZMA, LZMA2):  # filters are only ever merged into LZMA2
            source = Stage(source, Native(lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[*filters, base])))
        elif method == DEFLATE:
            source = Stage(source, Inflate())
        elif method == BZIP2:
            source = Stage(source, Native(bz2.BZ2Decompressor()))
        else:
            source = Stage(source, _Filtered(filters))
    return source, short


def _base(coder: Coder, out_size: int) -> tuple[dict | None, bool]:
    """The lzma filter of an LZMA or LZMA2 coder, and whether its window was cut to MAX_DICT_BYTES.
    The window is never larger than what it may unpack: no match reaches back past the output's start."""
    p = coder.properties
    if coder.method == LZMA:
        if len(p) < 5 or p[0] >= 9 * 5 * 5:
            raise Refused("7z LZMA properties invalid")
        pb, rest = divmod(p[0], 9 * 5)
        lp, lc = divmod(rest, 9)
        window, cut = _window(int.from_bytes(p[1:5], "little"), out_size)
        return {"id": lzma.FILTER_LZMA1, "dict_size": window, "lc": lc, "lp": lp, "pb": pb}, cut
    if coder.method == LZMA2:
        if len(p) < 1 or p[0] > 40:
            raise Refused("7z LZMA2 properties invalid")
        declared = 0xFFFFFFFF if p[0] == 40 else (2 | (p[0] & 1)) << (p[0] // 2 + 11)
        window, cut = _window(declared, out_size)
        return {"id": lzma.FILTER_LZMA2, "dict_size": window}, cut
    return None, False


def _window(declared: int, out_size: int) -> tuple[int, bool]:
    wanted = min(declared, out_size)
    return max(min(wanted, MAX_DICT_BYTES), _MIN_DICT_BYTES), wanted > MAX_DICT_BYTES


def _filter(coder: Coder) -> dict:
    spec = {"id": _FILTERS[coder.method]}
    p = coder.properties
    if spec["id"] == lzma.FILTER_DELTA:
        spec["dist"] = (p[0] + 1) if p else 1
    elif len(p) == 4:
        spec["start_offset"] = int.from_bytes(p, "little")
    elif p:
        raise Refused("7z filter properties invalid")
    return spec


class Stage:
    """One decoder reading from the stage beneath it, never asked for more than n bytes at once."""

    def __init__(self, source: Source, decoder: Native | Inflate | _Filtered) -> None:
        self._source, self._decoder = source, decoder

    def read(self, n: int) -> bytes:
        """Up to n (>= 1) decoded bytes; b"" once the stream ends or its input runs out."""
        d = self._decoder
        idle = 0
        while not d.eof:
            if d.needs_input:
                data = self._source.read(CHUNK_BYTES)
                out = d.decompress(data, n) if data else d.finish(n)
                if not data and not out and not d.eof:
                    return b""  # the input ended first; whoever counts the bytes says if that is short
                idle = 0 if data else idle + 1
            else:
                out = d.decompress(b"", n)
                idle += 1
            if out:
                return out
            if idle > _MAX_IDLE_CALLS:
                raise Refused("7z decoder made no progress")
        return b""


class Native:
    """lzma's and bz2's decompressors already take max_length and say when they need input."""

    def __init__(self, d: lzma.LZMADecompressor | bz2.BZ2Decompressor) -> None:
        self._d = d

    @property
    def needs_input(self) -> bool:
        return self._d.needs_input

    @property
    def eof(self) -> bool:
        return self._d.eof

    def decompress(self, data: bytes, n: int) -> bytes:
        return self._d.decompress(data, n)

    def finish(self, n: int) -> bytes:
        return self._d.decompress(b"", n)


class Inflate:
    """zlib's raw inflate behind the same face: input it could not use yet waits in unconsumed_tail."""

    def __init__(self, wbits: int = -15) -> None:  # raw deflate; zlib.MAX_WBITS: a zlib stream, its header and checksum
        self._z = zlib.decompressobj(wbits)

    @property
    def needs_input(self) -> bool:
        return not self._z.unconsumed_tail

    @property
    def eof(self) -> bool:
        return self._z.eof

    def decompress(self, data: bytes, n: int) -> bytes:
        return self._z.decompress(self._z.unconsumed_tail + data, n)

    def finish(self, n: int) -> bytes:
        return self._z.decompress(b"", n)  # output inflate still owes, if any


class _Filtered:
    """BCJ or delta filters over bytes that are not LZMA2: fed as LZMA2 uncompressed chunks."""

    def __init__(self, filters: list[dict]) -> None:
        chain = [*filters, {"id": lzma.FILTER_LZMA2, "dict_size": _MIN_DICT_BYTES}]
        self._d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=chain)
        self._started = self._ended = False

    @property
    def needs_input(self) -> bool:
        return self._d.needs_input

    @property
    def eof(self) -> bool:
        return self._d.eof

    def decompress(self, data: bytes, n: int) -> bytes:
        wrapped = bytearray()
        for at in range(0, len(data), _LZMA2_CHUNK_BYTES):
            piece = data[at : at + _LZMA2_CHUNK_BYTES]
            wrapped += bytes((2 if self._started else 1,)) + (len(piece) - 1).to_bytes(2, "big") + piece
            self._started = True  # the first chunk resets the dictionary, the others keep it
        return self._d.decompress(bytes(wrapped), n)

    def finish(self, n: int) -> bytes:
        if self._ended:
            return self._d.decompress(b"", n)
        self._ended = True
        return self._d.decompress(b"\x00", n)  # LZMA2's end: the filter hands over its last bytes
