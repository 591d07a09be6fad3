"""Reading 7z archives with the standard library, trusting nothing the archive says about itself.

The agent runs on every PC, so there is no py7zr here: the header is parsed by hand
(sevenzip_header.py, every number in it checked before use) and the coders decoded by lzma, zlib
and bz2 (sevenzip_coders.py). The start header and the header are checked against their CRCs
before anything is parsed, and the header's place and size against the file before it is read.
Unpacked sizes are only where a member ends in its folder's stream: a stream that ends before them,
or runs past them, is corrupt, and every unpacked byte is paid for from the walk's budget and held
to the compression ratio as it is read. Members' CRCs are checked.
"""

from __future__ import annotations

import lzma
import os
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from agent.content.budget import Collector, Refused
from agent.content.sevenzip_coders import (
    AES,
    LZMA,
    MAX_DICT_BYTES,
    Encrypted,
    Packed,
    Unsupported,
    chain,
    coder_name,
)
from agent.content.sevenzip_header import (
    K_ENCODED_HEADER,
    K_HEADER,
    START_BYTES,
    Entry,
    Folder,
    Reader,
    Streams,
    parse_header,
    parse_streams,
)
from agent.content.zipread import MAX_RATIO, RATIO_FLOOR_BYTES

__all__ = ["FOLDER_LOST", "Encrypted", "Entry", "SevenZip", "Unsupported"]

MB = 1024 * 1024
CHUNK_BYTES = 64 * 1024
SIGNATURE = b"7z\xbc\xaf\x27\x1c"
MAX_HEADER_BYTES = 16 * MB  # 10,000 entries with long names and times need a few MB
_START = struct.Struct("<6s2BL2QL")  # signature, version, start CRC, next header offset, size, CRC
_MAX_ENCODINGS = 4  # an encoded header holding an encoded header holding...
FOLDER_LOST = "7z folder unreadable after an earlier error"  # how a member behind a lost decoder is refused


SEARCH_BYTES = 4 * MB  # how far into a file a 7z behind a prefix is looked for (a self-extractor's stub is far less)


def embedded_at(f: BinaryIO) -> int | None:
    """Where a 7z archive starts behind a prefix, or None: 7-Zip opens one at any offset (a
    self-extractor is a program with the archive after it; 64 NULs or a text before one hide it
    from a test of the first bytes alone). A candidate must have its signature and the CRC of its
    start header: the signature alone turns up in programs that read 7z (7-Zip's own)."""
    f.seek(0)
    data = f.read(SEARCH_BYTES + START_BYTES)
    at = data.find(SIGNATURE, 1)
    while at >= 0 and at <= SEARCH_BYTES:
        start = data[at : at + START_BYTES]
        if len(start) == START_BYTES and zlib.crc32(start[12:]) == _START.unpack(start)[3]:
            return at
        at = data.find(SIGNATURE, at + 1)
    return None


class SevenZip:
    """A 7z archive's entries, and each one's bytes in turn, read through f and never to disk."""

    def __init__(self, f: BinaryIO, out: Collector, max_entries: int) -> None:
        self._f, self._out, self._cap = f, out, max_entries
        self._size = f.seek(0, os.SEEK_END)
        f.seek(0)
        start = f.read(START_BYTES)
        if len(start) < START_BYTES or not start.startswith(SIGNATURE):
            raise Refused("corrupt 7z: no signature header")
        _, major, _, start_crc, offset, size, crc = _START.unpack(start)
        if major != 0:
            raise Unsupported(f"7z format version {major}")
        if zlib.crc32(start[12:]) != start_crc:
            raise Refused("corrupt 7z: start header CRC mismatch")
        self._streams, self.entries = Streams(), []
        self._cursor: _Cursor | None = None
        self._broken: dict[int, Exception] = {}  # folder -> what lost its decoder
        if size == 0:
            return  # an empty archive
        if offset > self._size - START_BYTES or size > self._size - START_BYTES - offset:
            raise Refused("corrupt 7z: header outside the file")
        if size > MAX_HEADER_BYTES:
            raise Refused(f"7z header too large: {size} bytes")
        f.seek(START_BYTES + offset)
        header = f.read(size)
        if zlib.crc32(header) != crc:
            raise Refused("corrupt 7z: header CRC mismatch")
        self._streams, self.entries = self._parse(Reader(header))

    def _parse(self, r: Reader) -> tuple[Streams, list[Entry]]:
        for _ in range(_MAX_ENCODINGS):
            prop = r.number()
            if prop == K_HEADER:
                return parse_header(r, self._cap, self._size)
            if prop != K_ENCODED_HEADER:
                raise Refused(f"corrupt 7z header: starts with property {prop}")
            r = Reader(self._decoded_header(parse_streams(r, self._cap, self._size)))
        raise Refused("corrupt 7z header: encoded too many times")

    def _decoded_header(self, streams: Streams) -> bytes:
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

    def packed_bytes(self, entry: Entry) -> int:
        """The compressed size of the entry's folder (the most its bytes can have been packed into)."""
        if entry.folder is None:
            return 0
        return self._streams.pack_sizes[self._streams.folders[entry.folder].first_pack]

    def chunks(self, entry: Entry, max_bytes: int) -> Iterator[bytes]:
        """The entry's bytes, at most max_bytes of them. Raises Encrypted or Unsupported (for its whole
        folder) before the first byte; Refused when its folder cannot be read, at its end for a bad CRC."""
        if entry.folder is None:
            return iter(())
        if (lost := self._broken.get(entry.folder)) is not None:
            if isinstance(lost, Unsupported):
                raise Unsupported(lost.why)
            raise Refused(f"{FOLDER_LOST}: {str(lost)[:100] or type(lost).__name__}")
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
        except lzma.LZMAError as e:
            if not cursor.window_cut:
                self._broken[entry.folder] = e
                raise
            cut = Unsupported(f"7z dictionary over {MAX_DICT_BYTES // MB} MB")  # reached back past the cut
            self._broken[entry.folder] = cut
            raise cut from e
        except Exception as e:  # the decoder is lost: the rest of its folder is unreadable
            self._broken[entry.folder] = e
            raise
        if entry.crc is not None and crc != entry.crc:
            raise Refused("corrupt 7z member: CRC mismatch")


class _Cursor:
    """One folder's unpacked stream, read forwards only, paid for from the budget as it comes."""

    def __init__(self, f: BinaryIO, streams: Streams, index: int, out: Collector) -> None:
        folder = streams.folders[index]
        if any(c.method == AES for c in folder.coders):
            raise Encrypted("7z AES")
        if not folder.simple:
            raise Unsupported(_layout_why(folder))
        offset = START_BYTES + streams.pack_pos + sum(streams.pack_sizes[: folder.first_pack])
        self._packed = Packed(f, offset, streams.pack_sizes[folder.first_pack], out.check_time)
        # no window need be larger than what may be read: the budget, and the ratio times the packed
        # size (a header's huge size cannot make a 10-byte stream allocate one); a piece may pass either
        packed_bound = max(RATIO_FLOOR_BYTES, MAX_RATIO * self._packed.size)
        max_out = min(max(out.bytes_left, 0), packed_bound) + 2 * CHUNK_BYTES
        self._stream, self.window_cut = chain(folder.coders, folder.out_sizes, self._packed, max_out)
        self._out = out
        self.folder_index, self.size, self.unpacked = index, folder.size, 0
        # an LZMA (not LZMA2) stream in a 7z has no end marker: decoded past the folder's size, its
        # range coder's last bytes give a few more (7-Zip stops at the size, as this does)
        self._unbounded = any(c.method == LZMA for c in folder.coders)

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
        if self.unpacked == self.size and not self._unbounded and self._stream.read(1):
            raise Refused("corrupt 7z: stream runs past the size its header gives")


def _layout_why(folder: Folder) -> str:
    names = "+".join(coder_name(c.method) for c in folder.coders if c.in_streams != 1 or c.out_streams != 1)
    return f"7z coder {names}" if names else "7z coder layout with several streams"
