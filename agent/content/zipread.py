"""Reading zip containers (OOXML, ODF) without trusting anything they say about themselves.

The central directory is sized from the end record before zipfile parses it; members are read in
chunks, at most MAX_MEMBER_BYTES each and within the Collector's byte budget, and a member that
inflates more than MAX_RATIO times its compressed size is refused as a zip bomb.
"""

from __future__ import annotations

import io
import os
import struct
import types
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from agent.content.budget import Collector, OutOfBudget, Refused

try:  # zlib-ng: the same deflate streams inflated some 2-3 times faster, and CRC-32 by carry-less multiplication
    from zlib_ng import zlib_ng as _zlib_ng
except ImportError:  # a platform with no wheel: stdlib zlib reads everything
    _zlib_ng = None

KB, MB = 1024, 1024 * 1024
MAX_ENTRIES = 10_000
MAX_DIRECTORY_BYTES = 4 * MB
MAX_MEMBER_BYTES = 16 * MB
MAX_RATIO = 200  # real XML rarely passes 50:1; a zip bomb is ~1000:1
RATIO_FLOOR_BYTES = 2 * MB  # tiny members may compress absurdly well and harmlessly
CHUNK_BYTES = 64 * KB

FAST_ONE_READ = True  # False: _whole reads a member's header, name and data apart (the reference)
ONE_READ_SLACK = 512  # bytes read past the data for the local header's name and extra field
WINDOW_BYTES = 128 * KB  # one_chunk reads at least this much, and slices the members after from it
FAST_MEMBERS = True  # False: every member through zipfile's reader (the reference the tests compare)
FAST_ONE_CHUNK = True  # False: one_chunk by getinfo and _whole (the reference _one_chunk_reference)
FAST_DIRECTORY = True  # False: zipfile parses every central directory (the reference _plain_directory is held to)
# zipfile refuses a whole archive one of whose central directory entries says it needs a version
# of the format past 6.3 to extract (NotImplementedError: an internal error, nothing inspected),
# while 7-Zip and Office read past that byte: one byte an employee edits would hide every member.
# The byte promises nothing zipfile relies on (each member's compression and encryption are
# checked when it is opened), so it is not read here either; zipfile reads the limit at each open.
zipfile.MAX_EXTRACT_VERSION = 0xFF
_EOCD = struct.Struct("<4s4H2LH")
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader: 30 bytes
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_LOCAL_FIELDS = struct.Struct("<4s2xH18x2H")  # of _LOCAL_HEADER: signature, flags, name and extra lengths
# zipfile's structCentralDir (46 bytes): signature, flags, method, CRC-32, sizes, name, extra and
# comment lengths, local header offset (versions, times, disk and attributes skipped)
_CENTRAL_FIELDS = struct.Struct("<4s4xHH4xLLLHHH8xL")
# True: members inflated and checked through zlib-ng where it is installed (the same bytes, the same
# chunks and refusals: tests/agent/content/test_zip_inflate.py); False: stdlib zlib and zipfile's own
# decompressor everywhere (the reference)
FAST_INFLATE = True
_ZLIB_DECOMPRESS = type(zlib.decompressobj(-15))
# what a corrupt deflate stream raises, whichever library inflated it
INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error,) if _zlib_ng is None else (zlib.error, _zlib_ng.error)
# what zipfile's reader of a member raises on a corrupt one
_MEMBER_ERRORS = (zipfile.BadZipFile, *INFLATE_ERRORS, NotImplementedError, RuntimeError, EOFError, OSError, ValueError)


def _inflater() -> types.ModuleType:
    """The module whose decompressobj and crc32 read members now."""
    return _zlib_ng if FAST_INFLATE and _zlib_ng is not None else zlib


def _inflating(member: zipfile.ZipExtFile) -> zipfile.ZipExtFile:
    """zipfile's reader of a deflated member, inflating and checking its CRC-32 through zlib-ng.

    The decompressor and the CRC step are swapped before anything is read, so zipfile's reads,
    sizes, end of data, the point where it checks the CRC-32 and its messages stay its own; only
    the inflating and the CRC are faster. Both are private to ZipExtFile (3.6 to 3.13 at least):
    where they are not there as expected, the member is read as zipfile reads it."""
    inflater = _inflater()
    if (
        inflater is zlib
        or getattr(member, "_compress_type", None) != zipfile.ZIP_DEFLATED
        or type(getattr(member, "_decompressor", None)) is not _ZLIB_DECOMPRESS
        or getattr(member, "_readbuffer", None) != b""
        or not isinstance(getattr(member, "_expected_crc", None), int)
        or getattr(member, "_running_crc", None) != 0
        or not callable(getattr(member, "_update_crc", None))
    ):
        return member
    member._decompressor = inflater.decompressobj(-15)
    member._update_crc = _crc_step(member, inflater.crc32, member._expected_crc)
    return member


def _crc_step(member: zipfile.ZipExtFile, crc32: Callable[[bytes, int], int], expected: int) -> Callable[[bytes], None]:
    """ZipExtFile's CRC step (each piece it inflates, checked once its data has ended) by crc32."""
    running = 0

    def update_crc(data: bytes) -> None:
        nonlocal running
        running = crc32(data, running)
        if member._eof and running != expected:
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {member.name!r}")

    return update_crc


END_SIGNATURE = b"PK\x05\x06"  # the end of central directory record's
# where zipfile, unzip and 7-Zip look for the end record: the last 22 bytes and the longest comment
TAIL_BYTES = _EOCD.size + 65535
try:  # a search some ten times quicker than `in` for a few bytes (agent/content/_zipend.c)
    from agent.content._zipend import contains as _contains
except ImportError:  # built without the optional extension: `in`, the reference
    _contains = None
FAST_SEARCH = True  # False: `needle in data` (the reference the C search is held to)


def holds(data, needle: bytes) -> bool:
    """`needle in data` (data any bytes-like object, needle 1 to 64 bytes), by the C search where it is built."""
    if FAST_SEARCH and _contains is not None:
        return _contains(data, needle)
    return needle in bytes(data)


MAX_END_CANDIDATES = 16  # end records tried from the last one back (a false one may follow the real one)


def appended(f: BinaryIO) -> BinaryIO | None:
    """The zip at the end of a file that does not start as one, as a file of its own (a Window
    of f ending at its end record), or None.

    zipfile, unzip and 7-Zip find a zip by its end record, wherever the zip starts: behind a
    self-extractor's program, a text, or 64 NULs put in front of it, its members still come out
    whole. Such a file is typed by its start (a program, a text, nothing), so its members are
    walked only when this finds them: an end record's signature in the last TAIL_BYTES, and a
    directory that BoundedZip accepts (bytes that only happen to hold the signature are refused
    there, and are no zip). zipfile takes the last signature; 7-Zip reads past a false one put
    after the real record, so each of the last MAX_END_CANDIDATES is tried, the file cut after it."""
    f.seek(0)
    if f.read(4) in (b"PK\x03\x04", END_SIGNATURE):
        return None  # a zip from its start: typed as one already
    size = f.seek(0, os.SEEK_END)
    length = min(size, TAIL_BYTES)
    f.seek(size - length)
    tail = f.read(length)
    if not holds(tail, END_SIGNATURE):
        return None
    at = len(tail)
    for _ in range(MAX_END_CANDIDATES):
        at = tail.rfind(END_SIGNATURE, 0, at)
        if at < 0:
            break
        end = min(size, size - length + at + _EOCD.size)
        view = f if end == size else Window(f, 0, end)
        try:
            if BoundedZip(view).names():
                return view
        except Refused:
            pass
        if at == 0:
            break
    return None


class Window(io.RawIOBase):
    """The bytes of f from `start` to `end` (its end: None), as a file of their own: an archive
    found inside a file is read with every offset it holds counted from its own start, and its
    end where its end record is, as 7-Zip reads it."""

    def __init__(self, f: BinaryIO, start: int, end: int | None = None) -> None:
        super().__init__()
        self._f, self._start, self._end = f, start, end
        self._at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def _length(self) -> int:
        end = self._f.seek(0, os.SEEK_END) if self._end is None else self._end
        return max(end - self._start, 0)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._at, os.SEEK_END: self._length()}[whence]
        self._at = max(base + offset, 0)
        return self._at

    def tell(self) -> int:
        return self._at

    def readinto(self, buffer) -> int:
        want = max(min(len(buffer), self._length() - self._at), 0)
        if not want:
            return 0
        self._f.seek(self._start + self._at)
        data = self._f.read(want)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)


def directory_extent(f: BinaryIO) -> tuple[int, int]:
    """(entries, central directory bytes) from the end record; Refused when there is none."""
    size = f.seek(0, os.SEEK_END)
    tail_len = min(size, _EOCD.size + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        raise Refused("corrupt zip: no end of central directory")
    _, _, _, _, entries, cd_bytes, _, _ = _EOCD.unpack_from(tail, at)
    if entries != 0xFFFF and cd_bytes != 0xFFFFFFFF:
        return entries, cd_bytes
    locator_at = at - _ZIP64_LOCATOR.size
    if locator_at < 0 or tail[locator_at : locator_at + 4] != b"PK\x06\x07":
        raise Refused("corrupt zip: zip64 locator missing")
    _, _, eocd64_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, locator_at)
    if eocd64_offset > size - _ZIP64_EOCD.size:  # an offset from the file: never seek where it says blindly
        raise Refused("corrupt zip: zip64 end record outside the file")
    f.seek(eocd64_offset)
    record = f.read(_ZIP64_EOCD.size)
    if len(record) < _ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
        raise Refused("corrupt zip: zip64 end record missing")
    fields = _ZIP64_EOCD.unpack(record)
    return fields[7], fields[8]


class _Member:
    """A member's fields as _plain_directory read them: what one_chunk, chunks and _whole read of
    a ZipInfo (the zipfile's own is made only when a member goes zipfile's way)."""

    __slots__ = ("filename", "orig_filename", "flag_bits", "compress_type", "CRC", "compress_size", "file_size",
                 "header_offset")  # fmt: skip

    def __init__(self, name: str, fields: tuple[int, int, int, int, int, int]) -> None:
        self.filename = self.orig_filename = name
        self.flag_bits, self.compress_type, self.CRC, self.compress_size, self.file_size, self.header_offset = fields


def _plain_directory(f: BinaryIO, entries: int, cd_bytes: int) -> dict[str, tuple[int, int, int, int, int, int]] | None:
    """The central directory of a plain zip, each name's (flags, method, CRC-32, compressed size,
    size, local header offset), read as zipfile reads it; None for anything else, which zipfile
    then parses. Plain: the end record the file's last 22 bytes (no archive comment, whose bytes
    may hold a second end record), no zip64 locator before it, the directory right before it (no
    bytes prepended to the zip: zipfile would shift every offset), exactly `entries` entries
    filling exactly cd_bytes, each with its signature, no extra field and no comment (zip64
    sizes, and the fields zipfile decodes from extras, live there), a name of ASCII without a NUL
    or a backslash (read alike as cp437 and UTF-8, not cut or rewritten by zipfile on any system)
    that no other entry has. zipfile reads
    such a directory into ZipInfos of exactly these fields, one a name (tests/agent/content/
    test_zip_directory.py holds it to zipfile on hostile zips). Some 800 slides a MB of text cost
    zipfile 2.4 µs an entry (a ZipInfo, its extra decoded, a cp437 decode by a Python codec)."""
    size = f.seek(0, os.SEEK_END)
    start = size - _EOCD.size - cd_bytes
    if start < _ZIP64_LOCATOR.size or entries == 0:
        return None
    f.seek(start - _ZIP64_LOCATOR.size)
    data = f.read(_ZIP64_LOCATOR.size + cd_bytes + _EOCD.size)
    if len(data) != _ZIP64_LOCATOR.size + cd_bytes + _EOCD.size:
        return None
    if data[cd_bytes : cd_bytes + 4] == b"PK\x06\x07":
        return None  # where zipfile looks for a zip64 locator: the directory's last 20 bytes (a name's, perhaps)
    signature, disk, disk_of_directory, disk_entries, total, directory_bytes, offset, comment = _EOCD.unpack_from(
        data, len(data) - _EOCD.size
    )
    if (
        signature != b"PK\x05\x06"
        or comment != 0
        or offset != start
        or total != entries
        or directory_bytes != cd_bytes
        or disk_entries != entries
        or disk != 0
        or disk_of_directory != 0
    ):
        return None
    found: dict[str, tuple[int, int, int, int, int, int]] = {}
    at, end, unpack = _ZIP64_LOCATOR.size, _ZIP64_LOCATOR.size + cd_bytes, _CENTRAL_FIELDS.unpack_from
    fixed = _CENTRAL_FIELDS.size
    for _ in range(entries):
        if at + fixed > end:  # zipfile would stop here (no bytes left) or raise (an entry cut short)
            return None
        signature, flags, method, crc, compressed, file_size, name_length, extra, note, header_at = unpack(data, at)
        name_at = at + fixed
        at = name_at + name_length
        raw = data[name_at:at]
        if (
            signature != b"PK\x01\x02"
            or extra
            or note
            or at > end
            or not raw.isascii()
            or b"\x00" in raw
            or b"\\" in raw  # zipfile makes it "/" where that is os.sep (Windows) and keeps it elsewhere
        ):
            return None
        name = raw.decode("ascii")
        if name in found:
            return None  # zipfile keeps both, getinfo the last: its way
        found[name] = (flags, method, crc, compressed, file_size, header_at)
    return found if at == end else None  # zipfile reads entries while bytes are left


class BoundedZip:
    """A zip whose directory is known to be small, read member by member within a budget."""

    def __init__(self, f: BinaryIO) -> None:
        entries, cd_bytes = directory_extent(f)
        if entries > MAX_ENTRIES or cd_bytes > MAX_DIRECTORY_BYTES:
            raise Refused(f"zip directory too large: entries={entries} bytes={cd_bytes}")
        self._file = f
        self._zipfile: zipfile.ZipFile | None = None
        plain = _plain_directory(f, entries, cd_bytes) if FAST_DIRECTORY else None
        if plain is not None:  # entries is at most MAX_ENTRIES, and plain holds entries of them
            self._names = set(plain)
            self._infos: dict[str, zipfile.ZipInfo | _Member] = {
                name: _Member(name, fields) for name, fields in plain.items()
            }
        else:
            self._open_zipfile()
            self._names = set(self._zip.namelist())
            self._infos = self._zip.NameToInfo  # getinfo's dict: the last member of each name
        # one_chunk's last read of the file, from _window_at on: the next slides' headers and data
        # are sliced from it (a seek and a read each cost more than the slice)
        self._window, self._window_at, self._window_ends_file = b"", 0, False
        self.member_truncated = False  # the last member read stopped at MAX_MEMBER_BYTES

    @property
    def _zip(self) -> zipfile.ZipFile:
        """zipfile's reader of the file, made the first time a member goes its way (a plain
        directory, as _plain_directory reads it, is not parsed again until then)."""
        if self._zipfile is None:
            self._open_zipfile()
        return self._zipfile

    def _open_zipfile(self) -> None:
        f = self._file
        f.seek(0)
        try:
            self._zipfile = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, struct.error) as e:
            raise Refused(f"corrupt zip: {e}") from e
        if len(self._zipfile.infolist()) > MAX_ENTRIES:  # the end record's count is only a claim
            raise Refused(f"zip directory too large: entries={len(self._zipfile.infolist())}")

    def names(self) -> set[str]:
        return self._names

    def head(self, name: str, max_bytes: int) -> bytes:
        """At most max_bytes of a small member (the ODF mimetype); b"" when unreadable."""
        try:
            with self._zip.open(name) as member:
                return member.read(max_bytes)
        except (KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError):
            return b""

    def infos(self) -> list[zipfile.ZipInfo]:
        return self._zip.infolist()

    def chunks(
        self, member: str | zipfile.ZipInfo, out: Collector, max_bytes: int = MAX_MEMBER_BYTES
    ) -> Iterator[bytes]:
        """The member's bytes in chunks; stops at max_bytes (marking out.truncated). Give the ZipInfo
        when names may repeat: a name finds only the last member of that name."""
        info = member if isinstance(member, zipfile.ZipInfo) else self._info(member)
        name = info.filename
        if info.flag_bits & 0x1:
            raise Refused(f"encrypted member: {name}")
        self.member_truncated = False
        whole = self._whole(info, out, max_bytes) if FAST_MEMBERS else None
        if whole is not None:  # the loop below without its reads: the same clock checks and chunks
            for at in range(0, len(whole), CHUNK_BYTES):
                out.check_time()
                chunk = whole[at : at + CHUNK_BYTES]
                out.take_bytes(len(chunk))
                yield chunk
            out.check_time()
            return
        read = 0
        if isinstance(info, _Member):
            info = self._zip.getinfo(name)  # zipfile's reader: its ZipInfo (one of this name: a plain directory)
        try:
            with self._zip.open(info) as opened:
                member = _inflating(opened)
                while True:
                    out.check_time()
                    if read >= max_bytes:
                        self.member_truncated = out.truncated = True
                        return
                    if out.bytes_left <= 0:
                        raise OutOfBudget("bytes")
                    chunk = member.read(min(CHUNK_BYTES, max_bytes - read, out.bytes_left))
                    if not chunk:
                        return
                    read += len(chunk)
                    out.take_bytes(len(chunk))
                    if read > RATIO_FLOOR_BYTES and read > MAX_RATIO * _compressed_so_far(member, info):
                        raise Refused(f"compression ratio over {MAX_RATIO}: {name}")
                    yield chunk
        except _MEMBER_ERRORS as e:
            # bad CRC, unsupported compression, data cut short, corrupt deflate stream
            raise Refused(f"corrupt zip member {name}: {e}") from e

    def one_chunk(self, name: str, out: Collector) -> bytes | None:
        """A member chunks() would give as one chunk read whole (not empty, at most CHUNK_BYTES,
        read by _whole), with chunks()'s effects up to that chunk: its encryption refused, its
        clock check, its bytes taken. The clock check chunks() makes after it is the caller's (a
        deadline there leaves the chunk to the reader of what was read). None, nothing taken: read
        it by chunks(). A slide's generator and loop cost more than its C scan.

        What _one_chunk_reference and _whole do, written out in one function with the member's
        fields read once (some 800 slides a MB of text paid two calls, a tuple of twelve header
        fields and a dozen attribute lookups each), and the member sliced from the window of the
        file the last read took (WINDOW_BYTES or more) when it lies inside it; anything out of the
        common case (a guess of the read too short for the data, a name not in ASCII) goes the
        reference's way. The window is the file as it was when read: a member written since is
        read as it was then, whole and CRC-checked, as a read a moment earlier would read it."""
        if not (FAST_ONE_CHUNK and FAST_MEMBERS and FAST_ONE_READ and FAST_ASCII_NAMES):
            return self._one_chunk_reference(name, out)
        info = self._infos.get(name)
        if info is None:
            return self._one_chunk_reference(name, out)  # KeyError, as getinfo raises it
        flags = info.flag_bits
        if flags & 0x1:
            raise Refused(f"encrypted member: {name}")
        self.member_truncated = False
        size = info.file_size
        compressed = info.compress_size
        method = info.compress_type
        if (
            not 0 < size <= CHUNK_BYTES
            or flags & 0x61
            or (method != zipfile.ZIP_DEFLATED and method != zipfile.ZIP_STORED)
            or size >= out.bytes_left
            or size >= MAX_MEMBER_BYTES
            or size > RATIO_FLOOR_BYTES
            or compressed > MAX_MEMBER_BYTES
        ):
            return None  # what _whole answers for these (its max_bytes: MAX_MEMBER_BYTES)
        need = _LOCAL_HEADER.size + compressed + ONE_READ_SLACK
        inflater = _inflater()
        try:
            at = info.header_offset - self._window_at
            window = self._window
            if not (0 <= at and (at + need <= len(window) or self._window_ends_file)):
                f = self._file
                f.seek(info.header_offset)
                window = f.read(max(need, WINDOW_BYTES))
                self._window, self._window_at = window, info.header_offset
                self._window_ends_file = len(window) < max(need, WINDOW_BYTES)
                at = 0
            # window[at : at + need] is what a seek there and a read of need bytes would give;
            # read in place (the slide's bytes are not copied twice)
            head_end = min(at + need, len(window))
            if head_end - at < _LOCAL_HEADER.size:
                return None
            signature, local_flags, name_length, extra_length = _LOCAL_FIELDS.unpack_from(window, at)
            name_at = at + _LOCAL_HEADER.size
            start = name_at + name_length + extra_length
            local_name = window[name_at : name_at + name_length]
            if start + compressed > head_end or not local_name.isascii():
                return self._one_chunk_reference(name, out)  # read apart, or the name by its codec
            if signature != b"PK\x03\x04" or local_name.decode("ascii") != info.orig_filename:
                return None
            raw = window[start : start + compressed]
            data = raw if method == zipfile.ZIP_STORED else inflater.decompressobj(-15).decompress(raw, size + 1)
        except (OSError, ValueError, *INFLATE_ERRORS):
            return None
        if len(data) != size or inflater.crc32(data) != info.CRC:
            return None
        out.check_time()
        out.take_bytes(size)
        return data

    def _info(self, name: str) -> zipfile.ZipInfo | _Member:
        """getinfo's answer (KeyError for a name not there), from the plain directory when it was read."""
        if self._zipfile is None:
            return self._infos[name]
        return self._zip.getinfo(name)

    def _one_chunk_reference(self, name: str, out: Collector) -> bytes | None:
        """one_chunk by getinfo and _whole (the reference one_chunk is held to)."""
        info = self._info(name)
        if info.flag_bits & 0x1:
            raise Refused(f"encrypted member: {name}")
        self.member_truncated = False
        if not FAST_MEMBERS or not 0 < info.file_size <= CHUNK_BYTES:
            return None
        whole = self._whole(info, out, MAX_MEMBER_BYTES)
        if whole is None:
            return None
        out.check_time()
        out.take_bytes(len(whole))
        return whole

    def _whole(self, info: zipfile.ZipInfo, out: Collector, max_bytes: int) -> bytes | None:
        """A small stored or deflated member in one read and one inflate, when nothing about it
        would make zipfile's reader refuse it or chunks() stop early: smaller than max_bytes, the
        bytes left and the ratio check's floor, its local header what zipfile checks (signature,
        name), the deflate stream giving exactly its size, its CRC-32 right. None: read it
        through zipfile (which then raises, truncates or refuses as before). Some 400 slides of a
        deck cost a ZipExtFile, its shared file and 64 KiB reads each otherwise."""
        size = info.file_size
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x61:
            return None  # encrypted, patched or strongly encrypted: zipfile's messages
        if size >= min(max_bytes, out.bytes_left) or size > RATIO_FLOOR_BYTES or info.compress_size > MAX_MEMBER_BYTES:
            return None
        inflater = _inflater()
        try:
            self._file.seek(info.header_offset)
            if FAST_ONE_READ:  # header, name, extra field and data in one read when the guess holds them
                head = self._file.read(_LOCAL_HEADER.size + info.compress_size + ONE_READ_SLACK)
            else:
                head = self._file.read(_LOCAL_HEADER.size)
            if len(head) < _LOCAL_HEADER.size:
                return None
            signature, _, _, flags, _, _, _, _, _, _, name_length, extra_length = _LOCAL_HEADER.unpack_from(head)
            start = _LOCAL_HEADER.size + name_length + extra_length
            if FAST_ONE_READ and start + info.compress_size <= len(head):
                name = head[_LOCAL_HEADER.size : _LOCAL_HEADER.size + name_length]
                raw = head[start : start + info.compress_size]
            else:  # the reference: the name, then the data, each read where the header says
                self._file.seek(info.header_offset + _LOCAL_HEADER.size)
                name = self._file.read(name_length)
                self._file.seek(info.header_offset + start)
                raw = self._file.read(info.compress_size)
            if signature != b"PK\x03\x04" or _name(name, flags) != info.orig_filename:
                return None
            if len(raw) != info.compress_size:
                return None
            if info.compress_type == zipfile.ZIP_STORED:
                data = raw
            else:
                # one byte more than its size: a longer stream goes to zipfile (which cuts it at its
                # size), and inflating that byte meets what zipfile's larger reads would meet
                data = inflater.decompressobj(-15).decompress(raw, size + 1)
        except (OSError, ValueError, *INFLATE_ERRORS):  # ValueError: a name that does not decode
            return None
        if len(data) != size or inflater.crc32(data) != info.CRC:
            return None
        return data


FAST_ASCII_NAMES = True  # False: every local header's name by its codec (the reference _name is held to)


def _name(raw: bytes, flags: int) -> str:
    """A local header's name as zipfile reads it (UTF-8 when flag 0x800 says so, else cp437).
    An ASCII name reads the same in both, by the ascii codec in C: cp437's is a Python function,
    some 2 µs a slide member."""
    if FAST_ASCII_NAMES and raw.isascii():
        return raw.decode("ascii")
    return raw.decode("utf-8" if flags & 0x800 else "cp437")


def _compressed_so_far(member: zipfile.ZipExtFile, info: zipfile.ZipInfo) -> int:
    """Compressed bytes consumed so far, so a bomb is caught after MAX_RATIO * that, not at the end.

    zipfile does not expose this; its private _compress_left (3.6 to 3.13 at least) does. Without
    it, the whole member's compressed size is used: weaker, but the byte caps still hold.
    """
    left = getattr(member, "_compress_left", None)
    if isinstance(left, int) and 0 <= left <= info.compress_size:
        return max(info.compress_size - left, 1)
    return max(info.compress_size, 1)


LOCAL_SIGNATURE = b"PK\x03\x04"  # a member's local header's
# how far into a file a zip without its directory is looked for (as a 7z: sevenzip.SEARCH_BYTES)
LOCAL_SEARCH_BYTES = 4 * MB
MAX_LOCAL_STARTS = 16  # local header signatures tried as a zip's first member
MAX_NAME_BYTES = 1024
# stored, deflate, deflate64, bzip2, LZMA, zstd, MP3, xz, PPMd, AES: a member of another is no member
_KNOWN_METHODS = frozenset({0, 8, 9, 12, 14, 93, 95, 98, 99})
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # zipfile's structCentralDir
_DESCRIPTOR = struct.Struct("<3L")  # CRC-32, compressed and uncompressed sizes, after an optional signature
DESCRIPTOR_SIGNATURE = b"PK\x07\x08"


def local_zip(f: BinaryIO) -> BinaryIO | None:
    """A zip found by its members' local headers, where no end record leads to a directory, as a
    file of its own with the directory those headers give (a Joined), or None.

    7-Zip reads a zip whose central directory is gone (cut off, or never written) or not found
    (false end records after the zip's own): it walks the local headers from the first, as the
    zip was written. So does this, behind any prefix within LOCAL_SEARCH_BYTES: each of the first
    MAX_LOCAL_STARTS signatures is tried as the first member, which must be well formed (a name,
    a known method, sizes inside the file) and, when small and not encrypted, have its CRC-32
    right: the signature alone turns up in programs that read zips. Members follow while their
    headers do. Refused when more signatures were there than were tried: the zip may be past
    them, so the file is said not inspected rather than found empty."""
    f.seek(0)
    head = f.read(LOCAL_SEARCH_BYTES + len(LOCAL_SIGNATURE) - 1)
    if head.startswith((LOCAL_SIGNATURE, END_SIGNATURE)) or not holds(head, LOCAL_SIGNATURE):
        return None  # a zip from its start is typed as one; a file without the signature holds none
    size = f.seek(0, os.SEEK_END)
    at = head.find(LOCAL_SIGNATURE)
    for _ in range(MAX_LOCAL_STARTS):
        members, end = _local_members(f, at, size)
        if members:
            return Joined(Window(f, at, end), _directory(members, end - at))
        at = head.find(LOCAL_SIGNATURE, at + 1)
        if at < 0:
            return None
    raise Refused(f"zip without a directory: more than {MAX_LOCAL_STARTS} local headers tried")


class _Local:
    """A member as its local header (and data descriptor) gives it."""

    __slots__ = ("offset", "flags", "method", "time", "date", "crc", "compressed", "size", "name")

    def __init__(self, offset: int, fields: tuple, crc: int, compressed: int, size: int, name: bytes) -> None:
        self.offset, self.name = offset, name
        _, _, _, self.flags, self.method, self.time, self.date, _, _, _, _, _ = fields
        self.crc, self.compressed, self.size = crc, compressed, size


def _local_members(f: BinaryIO, start: int, size: int) -> tuple[list[_Local], int]:
    """The members whose local headers follow one another from `start`, and where the last ends;
    none when the first is not a well-formed member."""
    members: list[_Local] = []
    at = start
    while len(members) < MAX_ENTRIES:
        f.seek(at)
        header = f.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or not header.startswith(LOCAL_SIGNATURE):
            break
        fields = _LOCAL_HEADER.unpack(header)
        flags, method, crc, compressed, file_size, name_length, extra_length = fields[3], fields[4], *fields[7:]
        name = f.read(name_length)
        data_at = at + _LOCAL_HEADER.size + name_length + extra_length
        if (
            not 0 < name_length <= MAX_NAME_BYTES
            or len(name) != name_length
            or any(c < 0x20 for c in name)
            or method not in _KNOWN_METHODS
            or 0xFFFFFFFF in (compressed, file_size)  # zip64: its sizes are in the extra field
        ):
            break
        ends = at
        if flags & 0x8:  # sizes after the data: found by inflating it (a stored one has no end to find)
            found = _inflated_extent(f, data_at, size) if method == zipfile.ZIP_DEFLATED else None
            if found is None:
                break
            compressed, file_size, crc, ends = found
        else:
            ends = data_at + compressed
            if ends > size or (method == zipfile.ZIP_STORED and not flags & 0x1 and compressed != file_size):
                break
        if not members and not _first_checks(f, data_at, method, flags, crc, compressed, file_size):
            break
        members.append(_Local(at - start, fields, crc, compressed, file_size, name))
        at = ends
    return members, at


def _first_checks(f: BinaryIO, data_at: int, method: int, flags: int, crc: int, compressed: int, size: int) -> bool:
    """Whether the first member's data is what its header says: its CRC-32, where it is small,
    stored or deflated, and not encrypted (any other is taken on its header's word)."""
    if flags & 0x1 or method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return True
    if compressed > MB or size > RATIO_FLOOR_BYTES:
        return True
    f.seek(data_at)
    raw = f.read(compressed)
    try:
        data = raw if method == zipfile.ZIP_STORED else zlib.decompressobj(-15).decompress(raw, size + 1)
    except zlib.error:
        return False
    return len(data) == size and zlib.crc32(data) == crc


def _inflated_extent(f: BinaryIO, data_at: int, size: int) -> tuple[int, int, int, int] | None:
    """(compressed size, size, CRC-32, where the data descriptor ends) of a deflated member whose
    header leaves them to the descriptor after its data, by inflating it (at most MAX_MEMBER_BYTES
    out, MAX_RATIO times what went in past RATIO_FLOOR_BYTES); None where that fails."""
    inflater = zlib.decompressobj(-15)
    f.seek(data_at)
    read = produced = crc = 0
    while not inflater.eof:
        chunk = f.read(CHUNK_BYTES)
        if not chunk:
            return None
        try:
            out = inflater.decompress(chunk, MAX_MEMBER_BYTES - produced + 1)
        except zlib.error:
            return None
        read += len(chunk) - len(inflater.unused_data)
        produced += len(out)
        crc = zlib.crc32(out, crc)
        bomb = produced > RATIO_FLOOR_BYTES and produced > MAX_RATIO * read
        if inflater.unconsumed_tail or produced > MAX_MEMBER_BYTES or bomb:
            return None
    ends = data_at + read
    f.seek(ends)
    descriptor = f.read(len(DESCRIPTOR_SIGNATURE) + _DESCRIPTOR.size)
    if descriptor.startswith(DESCRIPTOR_SIGNATURE):
        descriptor, ends = descriptor[len(DESCRIPTOR_SIGNATURE) :], ends + len(DESCRIPTOR_SIGNATURE)
    if len(descriptor) < _DESCRIPTOR.size or _DESCRIPTOR.unpack_from(descriptor) != (crc, read, produced):
        return None
    return read, produced, crc, min(ends + _DESCRIPTOR.size, size)


def _directory(members: list[_Local], directory_at: int) -> bytes:
    """The central directory and end record of the members, the directory at directory_at."""
    entries = [
        _CENTRAL.pack(
            b"PK\x01\x02", 20, 0, 20, 0, m.flags, m.method, m.time, m.date, m.crc, m.compressed, m.size,
            len(m.name), 0, 0, 0, 0, 0, m.offset,
        ) + m.name
        for m in members
    ]  # fmt: skip
    directory = b"".join(entries)
    end = _EOCD.pack(END_SIGNATURE, 0, 0, len(members), len(members), len(directory), directory_at, 0)
    return directory + end


class Joined(io.RawIOBase):
    """A file's window followed by bytes made here (a zip's members as they are in the file, then
    the directory their local headers give): read as one file."""

    def __init__(self, head: Window, tail: bytes) -> None:
        super().__init__()
        self._head, self._tail = head, tail
        self._head_length = head.seek(0, os.SEEK_END)
        self._at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._at, os.SEEK_END: self._head_length + len(self._tail)}[whence]
        self._at = max(base + offset, 0)
        return self._at

    def tell(self) -> int:
        return self._at

    def readinto(self, buffer) -> int:
        """As much as asked, across the two parts (the readers here take a short read for the end)."""
        view, filled = memoryview(buffer).cast("B"), 0
        while filled < len(view):
            if self._at < self._head_length:
                self._head.seek(self._at)
                n = self._head.readinto(view[filled : filled + self._head_length - self._at])
            else:
                piece = self._tail[self._at - self._head_length : self._at - self._head_length + len(view) - filled]
                view[filled : filled + len(piece)] = piece
                n = len(piece)
            if not n:
                break
            self._at += n
            filled += n
        return filled
