"""The 7z header, parsed by hand: every number it holds is checked before it is used.

A header is a tree of numbered properties (7-Zip's 7zFormat.txt). Counts are held to the entry cap
and to the bytes left (even a bit vector needs a bit per item), so no list is made at a count's
say-so; offsets and packed sizes are held to the file; property lists are held to _MAX_PROPERTIES.
Unpacked sizes are not trusted here either: they only say where a member ends in its folder's
stream, and the reader (sevenzip.py) holds the stream to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from agent.content.budget import Refused
from agent.content.sevenzip_coders import Coder

START_BYTES = 32  # the signature header; packed streams are placed from its end
MAX_CODERS = 8  # in one folder, and streams per coder; 7-Zip writes at most 5 (BCJ2, 3 LZMA, AES)
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
class Streams:
    pack_pos: int = 0
    pack_sizes: list[int] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    substreams: list[tuple[int, int, int, int | None]] = field(default_factory=list)  # folder, offset, size, crc


class Reader:
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


def parse_header(r: Reader, cap: int, file_size: int) -> tuple[Streams, list[Entry]]:
    prop = r.number()
    if prop == K_ARCHIVE_PROPERTIES:
        for _ in _properties():
            if r.number() == K_END:
                break
            r.take(r.number())
        prop = r.number()
    if prop == K_ADDITIONAL_STREAMS:  # nothing reads them; parsed to get past them
        parse_streams(r, cap, file_size)
        prop = r.number()
    streams = Streams()
    if prop == K_MAIN_STREAMS:
        streams = parse_streams(r, cap, file_size)
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


def parse_streams(r: Reader, cap: int, file_size: int) -> Streams:
    s = Streams()
    prop = r.number()
    if prop == K_PACK_INFO:
        s.pack_pos, s.pack_sizes = _parse_pack_info(r, cap)
        if s.pack_pos + sum(s.pack_sizes) > file_size - START_BYTES:
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


def _parse_pack_info(r: Reader, cap: int) -> tuple[int, list[int]]:
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


def _parse_unpack_info(r: Reader, cap: int, pack_streams: int) -> list[Folder]:
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


def _parse_folder(r: Reader) -> tuple[tuple[Coder, ...], list[int] | None, int, int]:
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


def _parse_substreams(r: Reader, cap: int, folders: list[Folder]) -> list[tuple[int, int, int, int | None]]:
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


def _parse_files(r: Reader, cap: int, streams: Streams) -> list[Entry]:
    n = r.count(cap, "entries")
    empty_stream, empty_file, names = [False] * n, [], [f"[{i}]" for i in range(n)]
    for _ in _properties():
        if (prop := r.number()) == K_END:
            break
        blob = Reader(r.take(r.number()))
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


def _names(blob: Reader, n: int) -> list[str]:
    if blob.byte():
        raise Refused("corrupt 7z header: names stored elsewhere")
    raw = blob.take(blob.left())
    if len(raw) % 2:
        raise Refused("corrupt 7z header: names of odd length")
    text = raw.decode("utf-16-le", "replace")
    if text.count("\x00") != n or not text.endswith("\x00"):  # counted before a list is made
        raise Refused("corrupt 7z header: names do not match the entries")
    return text.split("\x00")[:n]
