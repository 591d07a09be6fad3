"""A minimal writer of OLE2 compound files (MS-CFB version 3), for samples, never for users' files.

olefile only reads. The inspection worker must inspect one sample of each legacy format before it
drops its privileges (worker.py), and the tests need small .doc, .xls and .ppt files that do not
depend on LibreOffice; both build them here. Streams under 4096 bytes go to the mini stream, as the
specification requires (readers look for them there); the directory is a balanced tree of each
storage's children, ordered as the specification orders them (shorter names first).
"""

from __future__ import annotations

import struct

SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
FREE, END_OF_CHAIN, FAT_SECTOR = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
NO_STREAM = 0xFFFFFFFF
SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
STORAGE, STREAM, ROOT = 1, 2, 5


class _Entry:
    def __init__(self, name: str, kind: int, data: bytes = b"", clsid: bytes = bytes(16)) -> None:
        self.name, self.kind, self.data, self.clsid = name, kind, data, clsid
        self.children: dict[str, _Entry] = {}
        self.left = self.right = self.child = NO_STREAM
        self.start, self.size = END_OF_CHAIN, 0
        self.sid = 0


def _order(name: str) -> tuple[int, str]:
    return len(name), name.upper()


def _tree(entries: list[_Entry]) -> int:
    """Link entries (sorted) as a balanced binary tree; the sid of its root."""
    if not entries:
        return NO_STREAM
    middle = len(entries) // 2
    top = entries[middle]
    top.left, top.right = _tree(entries[:middle]), _tree(entries[middle + 1 :])
    return top.sid


def _chain(fat: list[int], first: int, count: int) -> None:
    for i in range(count):
        fat[first + i] = first + i + 1 if i < count - 1 else END_OF_CHAIN


def compound_file(streams: dict[str, bytes], root_clsid: bytes = bytes(16)) -> bytes:
    """The bytes of a compound file holding streams; a name "A/B" is stream B in storage A."""
    root = _Entry("Root Entry", ROOT, clsid=root_clsid)
    for path, data in streams.items():
        node = root
        *storages, leaf = path.split("/")
        for part in storages:
            node = node.children.setdefault(part, _Entry(part, STORAGE))
        node.children[leaf] = _Entry(leaf, STREAM, data)
    entries: list[_Entry] = []

    def number(entry: _Entry) -> None:
        entry.sid = len(entries)
        entries.append(entry)
        for child in sorted(entry.children.values(), key=lambda e: _order(e.name)):
            number(child)

    number(root)
    for entry in entries:
        entry.child = _tree(sorted(entry.children.values(), key=lambda e: _order(e.name)))

    small = [e for e in entries if e.kind == STREAM and len(e.data) < MINI_CUTOFF]
    big = [e for e in entries if e.kind == STREAM and len(e.data) >= MINI_CUTOFF]
    mini = bytearray()
    minifat: list[int] = []
    for e in small:
        count = -(-len(e.data) // MINI_SECTOR)
        e.start, e.size = (len(minifat) if count else END_OF_CHAIN), len(e.data)
        minifat.extend([FREE] * count)
        _chain(minifat, e.start, count)
        mini += e.data.ljust(count * MINI_SECTOR, b"\0")

    body = bytearray()  # regular sectors, in order: big streams, mini stream, minifat, directory
    fat: list[int] = []

    def place(data: bytes) -> tuple[int, int]:
        count = -(-len(data) // SECTOR)
        first = len(fat) if count else END_OF_CHAIN
        fat.extend([FREE] * count)
        if count:
            _chain(fat, first, count)
        body.extend(data.ljust(count * SECTOR, b"\0"))
        return first, count

    for e in big:
        e.start, _ = place(e.data)
        e.size = len(e.data)
    root.start, _ = place(bytes(mini))
    root.size = len(mini)
    minifat_start, minifat_count = place(struct.pack(f"<{len(minifat)}I", *minifat)) if minifat else (END_OF_CHAIN, 0)
    directory = b"".join(_direntry(e) for e in entries)
    directory += _direntry(None) * (-len(entries) % (SECTOR // 128))
    dir_start, _ = place(directory)

    fat_count = 1
    while (len(fat) + fat_count) > fat_count * (SECTOR // 4):
        fat_count += 1
    if fat_count > 109:
        raise ValueError("sample too large for a header-only DIFAT")
    fat_start = len(fat)
    fat.extend([FAT_SECTOR] * fat_count)
    fat.extend([FREE] * (fat_count * (SECTOR // 4) - len(fat)))
    difat = [fat_start + i for i in range(fat_count)] + [FREE] * (109 - fat_count)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII109I",
        SIGNATURE, bytes(16), 0x3E, 3, 0xFFFE, 9, 6, bytes(6), 0, fat_count, dir_start, 0,
        MINI_CUTOFF, minifat_start, minifat_count, END_OF_CHAIN, 0, *difat,
    )  # fmt: skip
    return header + bytes(body) + struct.pack(f"<{len(fat)}I", *fat)


def _direntry(e: _Entry | None) -> bytes:
    if e is None:
        return struct.pack(
            "<64sHBBIII16sIQQIQ", b"", 0, 0, 0, NO_STREAM, NO_STREAM, NO_STREAM, bytes(16), 0, 0, 0, 0, 0
        )
    name = e.name.encode("utf-16-le")[:62] + b"\0\0"
    return struct.pack(
        "<64sHBBIII16sIQQIQ", name, len(name), e.kind, 1, e.left, e.right, e.child, e.clsid, 0, 0, 0, e.start, e.size
    )
