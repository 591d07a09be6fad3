"""Reading 7z archives with the standard library, trusting nothing the archive says about itself.

The agent runs on every PC, so there is no py7zr here: the header is parsed by hand and the coders
decoded by lzma, zlib and bz2 (sevenzip_coders.py). Every number in a header is checked before it
is used: counts against the entry cap and the bytes left, offsets and packed sizes against the file,
and nothing is allocated by a header's say-so. Unpacked sizes are only where a member ends in its
folder's stream: a stream that ends before them, or runs past them, is corrupt, and every unpacked
byte is paid for from the walk's budget and held to the compression ratio as it is read.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from agent.content.budget import Collector, Refused
from agent.content.sevenzip_coders import AES, Coder, Encrypted, Packed, Source, Unsupported, chain, coder_name
from agent.content.zipread import MAX_RATIO, RATIO_FLOOR_BYTES

__all__ = ["Encrypted", "Entry", "SevenZip", "Unsupported"]

MB = 1024 * 1024
CHUNK_BYTES = 64 * 1024
SIGNATURE = b"7z\xbc\xaf\x27\x1c"
MAX_HEADER_BYTES = 16 * MB  # 10,000 entries with long names and times need a few MB
MAX_CODERS = 8  # in one folder, and streams per coder; 7-Zip writes at most 5 (BCJ2, 3 LZMA, AES)
_START = struct.Struct("<6s2BL2QL")  # signature, version, start CRC, next header offset, size, CRC
_MAX_ENCODINGS = 4  # an encoded header holding an encoded header holding...
_MAX_PROPERTIES = 64  # per list of properties; 7-Zip writes about ten, a crafted header millions

# property ids of the 7z header
(K_END, K_HEADER, K_ARCHIVE_PROPERTIES, K_ADDITIONAL_STREAMS, K_MAIN_STREAMS, K_FILES, K_PACK_INFO,
 K_UNPACK_INFO, K_SUBSTREAMS, K_SIZE, K_CRC, K_FOLDER, K_UNPACK_SIZE, K_NUM_UNPACK_STREAM, K_EMPTY_STREAM,
 K_EMPTY_FILE, _, K_NAME) = range(18)  # fmt: skip
K_ENCODED_HEADER = 0x17


@dataclass(frozen=True)
class Entry:
    name: str
    is_dir: bool
    folder: int | None = None  # None: no data (an empty file or a directory)
    offset: int = 0  # where the member starts in its folder's unpacked stream
    size: int = 0  # as the header says: where it ends, no more
    crc: int | None = None
    last_in_folder: bool = False


@dataclass(frozen=True)
class Folder:
    coders: tuple[Coder, ...]  # a simple chain's from the one giving the folder's bytes to the packed end
    out_sizes: tuple[int, ...]  # one per coder's out stream
    first_pack: int  # index of its packed stream
    size: int  # unpacked
    crc: int | None
    simple: bool  # one coder after another, one packed stream: all this reader decodes


@dataclass
class _Streams:
    pack_pos: int = 0
    pack_sizes: list[int] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    substreams: list[tuple[int, int, int, int | None]] = field(default_factory=list)  # folder, offset, size, crc


class _Reader:
    """A header's bytes; every count and length is checked against what is left before use."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def left(self) -> int:
        return len(self.data) - self.at

    def take(self, n: int) -> bytes:
        if n > self.left():
            raise Refused("corrupt 7z header: cut short")
        self.at += n
        return self.data[self.at - n : self.at]

    def byte(self) -> int:
        return self.take(1)[0]

    def number(self) -> int:
        """7z's variable-length number: leading 1 bits in the first byte say how many bytes follow."""
        first = self.byte()
        mask, value = 0x80, 0
        for i in range(8):
            if not first & mask:
                return value | ((first & (mask - 1)) << (8 * i))
            value |= self.byte() << (8 * i)
            mask >>= 1
        return value

    def count(self, cap: int, what: str) -> int:
        n = self.number()
        if n > self.left() * 8:  # even a bit vector needs a bit per item; lists wait for this
            raise Refused(f"corrupt 7z header: {n} {what} in {self.left()} bytes")
        if n > cap:
            raise Refused(f"7z header: {n} {what}, more than {cap} allowed")
        return n

    def expect(self, prop: int) -> None:
        if (got := self.number()) != prop:
            raise Refused(f"corrupt 7z header: property {got} where {prop} belongs")

    def bits(self, n: int) -> list[bool]:
        data = self.take((n + 7) // 8)
        return [bool(data[i >> 3] & (0x80 >> (i & 7))) for i in range(n)]

    def crcs(self, n: int) -> list[int | None]:
        defined = [True] * n if self.byte() else self.bits(n)
        return [int.from_bytes(self.take(4), "little") if d else None for d in defined]


class SevenZip:
    """A 7z archive's entries, and each one's bytes in turn, read through f and never to disk."""

    def __init__(self, f: BinaryIO, out: Collector, max_entries: int) -> None:
        self._f, self._out, self._cap = f, out, max_entries
        self._size = f.seek(0, os.SEEK_END)
        f.seek(0)
        start = f.read(_START.size)
        if len(start) < _START.size or not start.startswith(SIGNATURE):
            raise Refused("corrupt 7z: no signature header")
        _, major, _, start_crc, offset, size, crc = _START.unpack(start)
        if major != 0:
            raise Unsupported(f"7z format version {major}")
        if zlib.crc32(start[12:]) != start_crc:
            raise Refused("corrupt 7z: start header CRC mismatch")
        self._streams, self.entries = _Streams(), []
        self._cursor: _Cursor | None = None
        self._broken: dict[int, str] = {}  # folder -> why its decoder was lost
        if size == 0:
            return  # an empty archive
        if offset > self._size - _START.size or size > self._size - _START.size - offset:
            raise Refused("corrupt 7z: header outside the file")
        if size > MAX_HEADER_BYTES:
            raise Refused(f"7z header too large: {size} bytes")
        f.seek(_START.size + offset)
        header = f.read(size)
        if zlib.crc32(header) != crc:
            raise Refused("corrupt 7z: header CRC mismatch")
        self._streams, self.entries = self._parse(_Reader(header))

    def _parse(self, r: _Reader) -> tuple[_Streams, list[Entry]]:
        for _ in range(_MAX_ENCODINGS):
            prop = r.number()
            if prop == K_HEADER:
                return _parse_header(r, self._cap, self._size)
            if prop != K_ENCODED_HEADER:
                raise Refused(f"corrupt 7z header: starts with property {prop}")
            r = _Reader(self._decoded_header(_parse_streams(r, self._cap, self._size)))
        raise Refused("corrupt 7z header: encoded too many times")

    def _decoded_header(self, streams: _Streams) -> bytes:
        """The packed header, unpacked within MAX_HEADER_BYTES and the budget, its CRC checked."""
        if len(streams.folders) != 1:
            raise Refused("corrupt 7z header: encoded header without exactly one folder")
        folder = streams.folders[0]
        if folder.size > MAX_HEADER_BYTES:
            raise Refused(f"7z header too large: {folder.size} bytes")
        cursor = _Cursor(self._f, streams, 0, self._out)
        data = bytearray()
        while len(data) < folder.size:
            piece = cursor.read(folder.size - len(data))
            if not piece:
                raise Refused("corrupt 7z: encoded header cut short")
            data += piece
        if folder.crc is not None and zlib.crc32(data) != folder.crc:
            raise Refused("corrupt 7z: encoded header CRC mismatch")
        return bytes(data)

    def chunks(self, entry: Entry, max_bytes: int) -> Iterator[bytes]:
        """The entry's bytes, at most max_bytes of them. Raises Encrypted or Unsupported (for its whole
        folder) before the first byte; Refused when its folder cannot be read, at its end for a bad CRC."""
        if entry.folder is None:
            return iter(())
        if entry.folder in self._broken:
            raise Refused(f"7z folder unreadable after an earlier error: {self._broken[entry.folder]}")
        cursor = self._cursor
        if cursor is None or cursor.folder_index != entry.folder or cursor.unpacked > entry.offset:
            cursor = self._cursor = None  # the old one is dropped before the new one allocates
            cursor = self._cursor = _Cursor(self._f, self._streams, entry.folder, self._out)
        return self._read(cursor, entry, max_bytes)

    def _read(self, cursor: _Cursor, entry: Entry, max_bytes: int) -> Iterator[bytes]:
        try:
            cursor.skip_to(entry.offset)
            crc, read = 0, 0
            while read < entry.size:
                if read >= max_bytes:
                    return  # the caller stops here; the CRC cannot be checked on part of a member
                piece = cursor.read(min(CHUNK_BYTES, entry.size - read, max_bytes - read))
                if not piece:
                    raise Refused("corrupt 7z: stream ends before the member does")
                crc = zlib.crc32(piece, crc)
                read += len(piece)
                yield piece
            if entry.last_in_folder:
                cursor.check_end()
        except Refused as e:  # the decoder is lost: the rest of its folder is unreadable
            if "ratio" not in str(e):
                self._broken[entry.folder] = str(e)[:100]
            raise
        except Exception as e:
            self._broken[entry.folder] = f"{type(e).__name__}"  # type: ignore[index]
            raise
        if entry.crc is not None and crc != entry.crc:
            raise Refused("corrupt 7z member: CRC mismatch")


class _Cursor:
    """One folder's unpacked stream, read forwards only, paid for from the budget as it comes."""

    def __init__(self, f: BinaryIO, streams: _Streams, index: int, out: Collector) -> None:
        folder = streams.folders[index]
        if any(c.method == AES for c in folder.coders):
            raise Encrypted("7z AES")
        if not folder.simple:
            raise Unsupported(_layout_why(folder))
        offset = _START.size + streams.pack_pos + sum(streams.pack_sizes[: folder.first_pack])
        self._packed = Packed(f, offset, streams.pack_sizes[folder.first_pack], out.check_time)
        max_out = max(out.bytes_left, 0) + 2 * CHUNK_BYTES  # a piece may pass the budget before it is taken
        self._stream: Source = chain(folder.coders, folder.out_sizes, self._packed, max_out)
        self._out = out
        self.folder_index, self.size, self.unpacked = index, folder.size, 0

    def read(self, n: int) -> bytes:
        self._out.check_time()
        n = min(n, self.size - self.unpacked)
        if n <= 0:
            return b""
        piece = self._stream.read(n)
        self.unpacked += len(piece)
        self._out.take_bytes(len(piece))
        if self.unpacked > RATIO_FLOOR_BYTES and self.unpacked > MAX_RATIO * max(self._packed.count, 1):
            raise Refused(f"compression ratio over {MAX_RATIO}")
        return piece

    def skip_to(self, offset: int) -> None:
        """Skipped bytes (the rest of a member the caller stopped reading) are decoded and paid for."""
        while self.unpacked < offset:
            if not self.read(min(CHUNK_BYTES, offset - self.unpacked)):
                raise Refused("corrupt 7z: stream ends before the member starts")

    def check_end(self) -> None:
        if self.unpacked == self.size and self._stream.read(1):
            raise Refused("corrupt 7z: stream runs past the size its header gives")


def _layout_why(folder: Folder) -> str:
    names = "+".join(coder_name(c.method) for c in folder.coders if c.in_streams != 1 or c.out_streams != 1)
    return f"7z coder {names}" if names else "7z coder layout with several streams"


# --- the header ----------------------------------------------------------------------------------


def _parse_header(r: _Reader, cap: int, file_size: int) -> tuple[_Streams, list[Entry]]:
    prop = r.number()
    if prop == K_ARCHIVE_PROPERTIES:
        for _ in _properties():
            if r.number() == K_END:
                break
            r.take(r.number())
        prop = r.number()
    if prop == K_ADDITIONAL_STREAMS:  # nothing reads them; parsed to get past them
        _parse_streams(r, cap, file_size)
        prop = r.number()
    streams = _Streams()
    if prop == K_MAIN_STREAMS:
        streams = _parse_streams(r, cap, file_size)
        prop = r.number()
    entries: list[Entry] = []
    if prop == K_FILES:
        entries = _parse_files(r, cap, streams)
        prop = r.number()
    elif streams.substreams:
        raise Refused("corrupt 7z header: streams without files")
    if prop != K_END:
        raise Refused(f"corrupt 7z header: property {prop} where the end belongs")
    return streams, entries


def _parse_streams(r: _Reader, cap: int, file_size: int) -> _Streams:
    s = _Streams()
    prop = r.number()
    if prop == K_PACK_INFO:
        s.pack_pos, s.pack_sizes = _parse_pack_info(r, cap)
        if s.pack_pos + sum(s.pack_sizes) > file_size - _START.size:
            raise Refused("corrupt 7z header: packed streams beyond the end of the file")
        prop = r.number()
    if prop == K_UNPACK_INFO:
        s.folders = _parse_unpack_info(r, cap, len(s.pack_sizes))
        prop = r.number()
    s.substreams = [(i, 0, f.size, f.crc) for i, f in enumerate(s.folders)]
    if prop == K_SUBSTREAMS:
        s.substreams = _parse_substreams(r, cap, s.folders)
        prop = r.number()
    if prop != K_END:
        raise Refused(f"corrupt 7z header: property {prop} in streams info")
    return s


def _parse_pack_info(r: _Reader, cap: int) -> tuple[int, list[int]]:
    pos = r.number()
    n = r.count(cap, "packed streams (entries)")
    prop = r.number()
    if prop != K_SIZE:
        raise Refused("corrupt 7z header: packed streams without sizes")
    sizes = [r.number() for _ in range(n)]
    prop = r.number()
    if prop == K_CRC:
        r.crcs(n)  # the unpacked CRCs are what is checked
        prop = r.number()
    if prop != K_END:
        raise Refused(f"corrupt 7z header: property {prop} in pack info")
    return pos, sizes


def _parse_unpack_info(r: _Reader, cap: int, pack_streams: int) -> list[Folder]:
    r.expect(K_FOLDER)
    n = r.count(cap, "folders (entries)")
    if r.byte():
        raise Refused("corrupt 7z header: folders stored elsewhere")
    layouts = [_parse_folder(r) for _ in range(n)]
    r.expect(K_UNPACK_SIZE)
    sizes = [[r.number() for _ in range(sum(c.out_streams for c in coders))] for coders, *_ in layouts]
    crcs: list[int | None] = [None] * n
    prop = r.number()
    if prop == K_CRC:
        crcs = r.crcs(n)
        prop = r.number()
    if prop != K_END:
        raise Refused(f"corrupt 7z header: property {prop} in unpack info")
    folders, first_pack = [], 0
    for (coders, order, main_out, packed), out_sizes, crc in zip(layouts, sizes, crcs, strict=True):
        if first_pack + packed > pack_streams:
            raise Refused("corrupt 7z header: folders need more packed streams than there are")
        if order is not None:  # a chain: coders (and their out sizes) put in the order they run
            coders, out_sizes = tuple(coders[i] for i in order), [out_sizes[i] for i in order]
        folders.append(
            Folder(
                coders,
                tuple(out_sizes),
                first_pack,
                out_sizes[main_out if order is None else 0],
                crc,
                order is not None,
            )
        )
        first_pack += packed
    return folders


def _parse_folder(r: _Reader) -> tuple[tuple[Coder, ...], list[int] | None, int, int]:
    """(coders, their order when they form one chain, the unpacked out stream, packed stream count)."""
    coders = []
    for _ in range(r.count(MAX_CODERS, "coders")):
        flags = r.byte()
        if flags & 0x80:
            raise Refused("corrupt 7z header: alternative coder methods")
        method = r.take(flags & 0x0F)
        ins, outs = (1, 1)
        if flags & 0x10:  # a complex coder (BCJ2 has four inputs)
            ins, outs = r.count(MAX_CODERS, "coder streams"), r.count(MAX_CODERS, "coder streams")
        properties = r.take(r.number()) if flags & 0x20 else b""
        coders.append(Coder(method, properties, ins, outs))
    total_in, total_out = sum(c.in_streams for c in coders), sum(c.out_streams for c in coders)
    if total_out == 0 or total_in < total_out - 1:
        raise Refused("corrupt 7z header: a folder without streams")
    pairs = [(r.number(), r.number()) for _ in range(total_out - 1)]
    if any(i >= total_in or o >= total_out for i, o in pairs):
        raise Refused("corrupt 7z header: bind pair out of range")
    unbound_out = [o for o in range(total_out) if o not in {o for _, o in pairs}]
    unbound_in = [i for i in range(total_in) if i not in {i for i, _ in pairs}]
    if len(unbound_out) != 1:
        raise Refused("corrupt 7z header: a folder with no single output")
    packed = unbound_in
    if len(unbound_in) > 1:
        packed = [r.number() for _ in unbound_in]
    if not packed or any(i >= total_in for i in packed):
        raise Refused("corrupt 7z header: packed stream out of range")
    return tuple(coders), _chain_order(coders, pairs, unbound_out[0], packed), unbound_out[0], len(packed)


def _chain_order(coders: list[Coder], pairs: list[tuple[int, int]], out: int, packed: list[int]) -> list[int] | None:
    """Coder indexes from the one giving the folder's bytes to the one reading the packed stream, when
    the folder is one chain of single-stream coders (7-Zip lists them in that order, py7zr in reverse);
    None otherwise. With one stream per coder, a coder's index is also its streams' index."""
    if not all(c.in_streams == c.out_streams == 1 for c in coders) or len(packed) != 1:
        return None
    fed_by = dict(pairs)  # in stream -> the out stream bound to it
    order = [out]
    while order[-1] in fed_by and len(order) <= len(coders):
        order.append(fed_by[order[-1]])
    if len(order) != len(coders) or len(set(order)) != len(order) or order[-1] != packed[0]:
        return None
    return order


def _parse_substreams(r: _Reader, cap: int, folders: list[Folder]) -> list[tuple[int, int, int, int | None]]:
    counts = [1] * len(folders)
    prop = r.number()
    if prop == K_NUM_UNPACK_STREAM:
        counts = [r.count(cap, "streams (entries)") for _ in folders]
        if sum(counts) > cap:
            raise Refused(f"7z header: more than {cap} streams (entries)")
        prop = r.number()
    sizes: list[list[int]] = []
    for folder, n in zip(folders, counts, strict=True):
        given = [r.number() for _ in range(n - 1)] if prop == K_SIZE else []
        if sum(given) > folder.size:
            raise Refused("corrupt 7z header: members larger than their folder")
        sizes.append([*given, folder.size - sum(given)] if n else [])
    if prop == K_SIZE:
        prop = r.number()
    known = [n == 1 and f.crc is not None for f, n in zip(folders, counts, strict=True)]
    crcs: list[int | None] = []
    if prop == K_CRC:
        crcs = r.crcs(sum(n for n, k in zip(counts, known, strict=True) if not k))
        prop = r.number()
    if prop != K_END:
        raise Refused(f"corrupt 7z header: property {prop} in substreams info")
    out, at = [], 0
    for index, (folder, folder_sizes, is_known) in enumerate(zip(folders, sizes, known, strict=True)):
        offset = 0
        for size in folder_sizes:
            crc = folder.crc if is_known else (crcs[at] if at < len(crcs) else None)
            at += not is_known
            out.append((index, offset, size, crc))
            offset += size
    return out


def _parse_files(r: _Reader, cap: int, streams: _Streams) -> list[Entry]:
    n = r.count(cap, "entries")
    empty_stream, empty_file, names = [False] * n, [], [f"[{i}]" for i in range(n)]
    for _ in _properties():
        if (prop := r.number()) == K_END:
            break
        blob = _Reader(r.take(r.number()))
        if prop == K_EMPTY_STREAM:
            empty_stream = blob.bits(n)
        elif prop == K_EMPTY_FILE:
            empty_file = blob.bits(sum(empty_stream))
        elif prop == K_NAME:
            names = _names(blob, n)
        # attributes, times, anti items, start positions, padding: nothing here needs them
    if sum(not e for e in empty_stream) != len(streams.substreams):
        raise Refused("corrupt 7z header: files and streams do not match")
    entries, substreams, empties = [], iter(streams.substreams), iter(empty_file)
    last = {s[0]: s for s in streams.substreams}  # each folder's last stream
    for i in range(n):
        if empty_stream[i]:
            entries.append(Entry(names[i], is_dir=not next(empties, False)))
            continue
        folder, offset, size, crc = s = next(substreams)
        entries.append(Entry(names[i], False, folder, offset, size, crc, last[folder] is s))
    return entries


def _properties() -> Iterator[int]:
    yield from range(_MAX_PROPERTIES)
    raise Refused("corrupt 7z header: too many properties")


def _names(blob: _Reader, n: int) -> list[str]:
    if blob.byte():
        raise Refused("corrupt 7z header: names stored elsewhere")
    raw = blob.take(blob.left())
    if len(raw) % 2:
        raise Refused("corrupt 7z header: names of odd length")
    text = raw.decode("utf-16-le", "replace")
    if text.count("\x00") != n or not text.endswith("\x00"):  # counted before a list is made
        raise Refused("corrupt 7z header: names do not match the entries")
    return text.split("\x00")[:n]
