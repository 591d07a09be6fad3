"""A minimal writer of OLE2 compound files (MS-CFB version 3), for samples and for documents
embedded in others, in memory; never to write a user's file.

olefile only reads. The inspection worker must inspect one sample of each legacy format before it
drops its privileges (worker.py), and the tests need small .doc, .xls and .ppt files that do not
depend on LibreOffice; both build them here. A document embedded in a legacy one as a storage of
its own (archive._read_document: an Excel object in a .doc) is put in a compound file of its own
here, to be read as the file it is (up to some 7 MB: one header's FAT). Streams under 4096 bytes go to the mini stream, as the
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


def package(label: str, data: bytes, path: str = "C:\\Users\\li\\Desktop\\") -> bytes:
    """An OLE Package stream ("\x01Ole10Native") holding data, as Office writes one for a file
    inserted as an object (agent/content/ole.py packaged_file reads it)."""
    name, source = label.encode("gb18030") + b"\0", (path + label).encode("gb18030") + b"\0"
    body = struct.pack("<H", 2) + name + source + struct.pack("<HHI", 0, 3, len(source)) + source
    body += struct.pack("<I", len(data)) + data
    return struct.pack("<I", len(body)) + body


def sample_doc(paragraphs: tuple[str, ...], header: str = "", footer: str = "", objects: dict[str, bytes] | None = None) -> bytes:
    """A Word 97 document: a FIB, UTF-16 text in one piece, the CLX and PlcfHdd in 1Table; `objects`:
    streams added under ObjectPool (embedded objects: "_1234/\x01Ole10Native")."""
    main = "".join(p + "\r" for p in paragraphs)
    bands = (header + "\r" if header else "") + (footer + "\r" if footer else "")
    headers = bands + "\r" if bands else ""
    text = (main + headers).encode("utf-16-le")
    text_at = 0x800
    counts = [0] * 22
    counts[3], counts[5] = len(main), len(headers)  # ccpText, ccpHdd
    pairs = [0] * (2 * 93)
    table = bytearray()
    if headers:
        h, f = len(header) + 1 if header else 0, len(footer) + 1 if footer else 0
        cps = [0] * 6 + [0, 0, h, h, h + f, h + f, h + f, len(headers)]  # separators; even/odd/first
        pairs[22], pairs[23] = len(table), 4 * len(cps)  # PlcfHdd
        table += struct.pack(f"<{len(cps)}I", *cps)
    plc = struct.pack("<II", 0, len(main) + len(headers)) + struct.pack("<HIH", 0, text_at, 0)
    pairs[66], pairs[67] = len(table), 5 + len(plc)  # Clx
    table += b"\x02" + struct.pack("<I", len(plc)) + plc
    fib = struct.pack("<HHHHHH", 0xA5EC, 0xC1, 0, 0x0804, 0, 0x0200).ljust(32, b"\0")
    fib += struct.pack("<H", 14) + bytes(28) + struct.pack("<H22i", 22, *counts)
    fib += struct.pack(f"<H{2 * 93}I", 93, *pairs) + struct.pack("<H", 0)
    word = fib.ljust(text_at, b"\0") + text
    pool = {f"ObjectPool/{name}": data for name, data in (objects or {}).items()}
    return compound_file({"WordDocument": word, "1Table": bytes(table), **pool})


def _record(kind: int, data: bytes) -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def sample_xls(rows: tuple[tuple[str | float, ...], ...], header: str = "") -> bytes:
    """An Excel 97 workbook: strings in the SST (LABELSST), numbers as NUMBER records."""
    strings = sorted({v for row in rows for v in row if isinstance(v, str)})
    sst = struct.pack("<II", len(strings), len(strings))
    sst += b"".join(struct.pack("<HB", len(s), 1) + s.encode("utf-16-le") for s in strings)
    bof = struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 6)
    stream = _record(0x0809, bof) + _record(0x00FC, sst) + _record(0x000A, b"")
    stream += _record(0x0809, struct.pack("<HHHHII", 0x0600, 0x0010, 0x0DBB, 0x07CC, 0, 6))
    if header:
        stream += _record(0x0014, struct.pack("<HB", len(header), 1) + header.encode("utf-16-le"))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, str):
                stream += _record(0x00FD, struct.pack("<HHHI", r, c, 15, strings.index(value)))
            else:
                stream += _record(0x0203, struct.pack("<HHHd", r, c, 15, value))
    stream += _record(0x000A, b"")
    return compound_file({"Workbook": stream})


def _atom(kind: int, data: bytes, instance: int = 0) -> bytes:
    return struct.pack("<HHI", instance << 4, kind, len(data)) + data


def _container(kind: int, *children: bytes, instance: int = 0) -> bytes:
    data = b"".join(children)
    return struct.pack("<HHI", 0x0F | instance << 4, kind, len(data)) + data


def sample_ppt(slides: tuple[tuple[str, ...], ...], footer: str = "") -> bytes:
    """A PowerPoint 97 stream: a master (whose template text is not the deck's), then each slide's
    paragraphs in one TextCharsAtom, and the footer in a HeadersFooters container."""
    master = _container(0x03F8, _atom(0x0FA0, "Click to edit Master title style".encode("utf-16-le")))
    document = _container(0x03E8, _container(0x0FD9, _atom(0x0FBA, footer.encode("utf-16-le"), instance=2)))
    stream = document + master
    for lines in slides:
        stream += _container(0x03EE, _atom(0x0FA0, "\r".join(lines).encode("utf-16-le")))
    return compound_file({"PowerPoint Document": stream, "Current User": b""})


def sample_msg(subject: str, body: str, attachments: dict[str, bytes], forwarded: dict[str, bytes] | None = None) -> bytes:
    """An Outlook message (.msg) laid out as Outlook lays one out: its subject and body in UTF-16,
    each attachment's long name and bytes, and a message attached to it holding `forwarded`
    (their short names 8-bit), then an OLE object attached (another program's storage)."""
    def utf16(text: str) -> bytes:
        return text.encode("utf-16-le")

    def attach(number: int) -> str:
        return f"__attach_version1.0_#{number:08X}/"

    streams = {
        "__properties_version1.0": bytes(32),
        "__substg1.0_0037001F": utf16(subject),
        "__substg1.0_1000001F": utf16(body),
    }
    for number, (name, data) in enumerate(attachments.items()):
        streams[attach(number) + "__substg1.0_3707001F"] = utf16(name)
        streams[attach(number) + "__substg1.0_37010102"] = data
    number = len(attachments)
    if forwarded is not None:
        inner = attach(number) + "__substg1.0_3701000D/"
        streams[attach(number) + "__substg1.0_3001001F"] = utf16("fwd: " + subject)
        streams[inner + "__properties_version1.0"] = bytes(24)
        streams[inner + "__substg1.0_0037001F"] = utf16(subject)
        for inner_number, (name, data) in enumerate(forwarded.items()):
            streams[inner + attach(inner_number) + "__substg1.0_3704001E"] = name.encode("utf-8")
            streams[inner + attach(inner_number) + "__substg1.0_37010102"] = data
        number += 1
    streams[attach(number) + "__substg1.0_3707001F"] = utf16("chart.xls")
    streams[attach(number) + "__substg1.0_3701000D/CONTENTS"] = b"another program's object"
    return compound_file(streams)
