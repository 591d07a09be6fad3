"""OLE2 compound files (legacy Office, Outlook, Altium, installers): their true type, bounded
stream reads and document properties.

olefile parses the container (header, FAT, directory); the formats' own streams are read by the
small readers in ole_doc.py, ole_xls.py and ole_ppt.py. A container is typed by the streams it
holds (and its root CLSID where that is what identifies it), never by its name, so a .doc named
holiday.jpg or a .PcbDoc named notes.txt shows a type mismatch. olefile raises many kinds of
exception on a crafted file; every one becomes Refused (a parse problem) at this boundary. A
stream is read only up to the byte budget: olefile reads a whole stream into memory, so its size
is checked before it is opened, and a larger one is read as a prefix (the Document truncated).
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

import olefile

from agent.content.budget import Collector, OutOfBudget, Refused
from agent.content.document import PROPERTIES, TITLE
from agent.content.text import open_source

SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OUTLOOK_CLSID = "00020D0B-0000-0000-C000-000000000046"
MSI_CLSIDS = {"000C1084-0000-0000-C000-000000000046", "000C1086-0000-0000-C000-000000000046"}
FILE_HEADER_BYTES = 512  # Altium's FileHeader signature sits in its first record
# Altium's FileHeader: "|HEADER=Protel for Windows - Schematic Capture Binary File Version 5.0"
# (python-altium's format notes); PCB documents hold "PCB 6.0 Binary File" or, in newer files,
# the length 19 and "PCB 5.0 Bi" in UTF-16 (KiCad's importer and other public readers). Not
# checked against files saved by Altium Designer itself: a FileHeader with neither is plain ole2.
_ALTIUM = (
    ("Schematic Capture", "schdoc"),
    ("Schematic Library", "schlib"),
    ("PCB 6.0 Binary Library", "pcblib"),
    ("PCB 5.0 Binary Library", "pcblib"),
    ("PCB 6.0 Binary File", "pcbdoc"),
    ("PCB 5.0 Bi", "pcbdoc"),
)
# the summary fields the OOXML reader reads from core.xml and app.xml, in its places; the author
# is a person's name, not the document's content, and docx text leaves it out too
# (stream, property id, field, place): the summary fields, by their ids in the first section of
# each summary stream (MS-OLEPS: SummaryInformation, DocumentSummaryInformation)
_SUMMARY = "\x05SummaryInformation"
_DOC_SUMMARY = "\x05DocumentSummaryInformation"
_SUMMARY_FIELDS = (
    (_SUMMARY, 2, "title", TITLE),
    (_SUMMARY, 3, "subject", PROPERTIES),
    (_SUMMARY, 5, "keywords", PROPERTIES),
    (_SUMMARY, 6, "comments", PROPERTIES),
    (_DOC_SUMMARY, 2, "category", PROPERTIES),
    (_DOC_SUMMARY, 26, "content_status", PROPERTIES),
    (_DOC_SUMMARY, 15, "company", PROPERTIES),
    (_DOC_SUMMARY, 14, "manager", PROPERTIES),
)
MAX_PROPERTY_STREAM = 1 << 20  # bytes of a summary stream read; a larger one is not a real summary
MAX_CUSTOM_PROPERTIES = 1000
VT_LPSTR, VT_LPWSTR = 0x1E, 0x1F


@contextmanager
def opened(source: str | BinaryIO) -> Iterator[olefile.OleFileIO]:
    """The container of source; any failure of olefile to parse it is Refused."""
    with open_source(source) as f:
        try:
            ole = olefile.OleFileIO(f)
        except (OutOfBudget, Refused):
            raise
        except Exception as e:  # noqa: BLE001 - olefile raises OSError, struct.error, IndexError ...
            raise Refused(f"corrupt ole2: {type(e).__name__}: {e}"[:300]) from e
        try:
            yield ole
        except (OutOfBudget, Refused):
            raise
        except (MemoryError, AttributeError, NameError):
            raise  # a bug of ours, not of the file: extract logs it as an internal error
        except Exception as e:  # noqa: BLE001 - a crafted directory or sector chain
            raise Refused(f"corrupt ole2: {type(e).__name__}: {e}"[:300]) from e
        finally:
            ole.close()  # leaves f open: olefile closes only what it opened


def container_type(f: BinaryIO) -> str:
    """doc, xls, ppt, msg, msi, vsd, ooxml_encrypted, pcbdoc, schdoc, pcblib, schlib, or ole2 for
    any other (or corrupt) compound file."""
    try:
        with opened(f) as ole:
            return _type_of(ole)
    except (Refused, OutOfBudget, RecursionError):
        return "ole2"


def _type_of(ole: olefile.OleFileIO) -> str:
    names = {"/".join(path).lower() for path in ole.listdir(streams=True, storages=True)}
    clsid = (ole.root.clsid or "").upper() if ole.root is not None else ""
    if clsid == OUTLOOK_CLSID or "__properties_version1.0" in names:
        return "msg"  # first: a Book or WordDocument stream added to a message must not hide it
    if "worddocument" in names:
        return "doc"
    if "workbook" in names or "book" in names:
        return "xls"
    if "powerpoint document" in names:
        return "ppt"
    if "encryptedpackage" in names and "encryptioninfo" in names:
        return "ooxml_encrypted"  # a docx, xlsx or pptx saved with a password
    if clsid == OUTLOOK_CLSID or any(n.startswith("__substg1.0_") for n in names):
        return "msg"
    if clsid in MSI_CLSIDS:
        return "msi"
    if "visiodocument" in names:
        return "vsd"
    if "fileheader" in names:
        return _altium_type(ole) or "ole2"
    return "ole2"


def _altium_type(ole: olefile.OleFileIO) -> str | None:
    if ole.get_size("FileHeader") > 1 << 24:
        return None
    head = ole.openstream("FileHeader").read(FILE_HEADER_BYTES)
    text = head.decode("latin-1") + head.decode("utf-16-le", "replace") + head[1:].decode("utf-16-le", "replace")
    for signature, kind in _ALTIUM:
        if signature in text:
            return kind
    return None


# the streams an object embedded in a document keeps its file in: an OLE Package (a file inserted
# as an object, "\x01Ole10Native"), an Office 2007+ document ("Package"), a PDF ("CONTENTS")
OBJECT_STREAMS = frozenset({"\x01ole10native", "package", "contents"})
PACKAGE_STREAM = "\x01ole10native"


def packaged_file(data: bytes) -> tuple[str, bytes] | None:
    """(label, bytes) of the file an OLE Package stream holds (Insert > Object > from file: its
    size, a version, the label and the source path each ending in a NUL, two words, the temporary
    path with its length, then the file with its length); None when data is no such stream."""
    at = 6  # the stream's size, then a version
    try:
        label_end = data.index(b"\0", at, at + 1024)
        path_end = data.index(b"\0", label_end + 1, label_end + 1 + 4096)
        at = path_end + 1 + 4  # two words (0, and the kind: 3 for a file)
        (command_bytes,) = struct.unpack_from("<I", data, at)
        at += 4 + command_bytes
        (size,) = struct.unpack_from("<I", data, at)
    except (ValueError, struct.error):
        return None
    at += 4
    if size > len(data) - at:
        return None
    return decode_8bit(data[6:label_end], None), data[at : at + size]  # (the label in the ANSI code page)


def read_stream(ole: olefile.OleFileIO, name: str, out: Collector, limit: int | None = None) -> bytes:
    """The stream's bytes (its first `limit` if given), as many as the byte budget allows (a
    prefix the budget cut marks the Document truncated); b"" when there is no such stream."""
    if not ole.exists(name) or ole.get_type(name) != olefile.STGTY_STREAM:
        return b""
    out.check_time()
    size = ole.get_size(name)
    wanted = size if limit is None else min(size, limit)
    take = min(wanted, max(out.bytes_left, 0))
    out.take_bytes(take)
    if take == size:
        return ole.openstream(name).read()
    out.truncated = out.truncated or take < wanted
    entry = ole.direntries[ole._find(name)]
    # olefile reads a stream whole; a prefix is read through its sector reader, from the FAT when
    # the stream is large enough to live there (it is: it exceeds the budget's prefix)
    return ole._open(entry.isectStart, take, force_FAT=size >= ole.minisectorcutoff).read(take)


def read_properties(ole: olefile.OleFileIO, out: Collector) -> None:
    """Title, subject, keywords, comments, category, status, company and manager from the summary
    streams, then the custom properties ("name: value"), which is where classification labels
    are kept.

    Read by this module's own parser of the property sets, which takes only the strings it
    wants: olefile's get_metadata parses every property, and a vector property's count is read
    from the file and looped over unchecked, each element of an unknown type taking no bytes, so
    one edited count in an .xls (found by fuzzing) ran 4 billion turns and filled memory before
    the body was read: a worker killed at its deadline (the body never inspected), and on Windows,
    where inspection runs in the agent's own process, the agent itself."""
    streams = {}
    for stream in (_SUMMARY, _DOC_SUMMARY):
        if ole.exists(stream) and ole.get_size(stream) <= MAX_PROPERTY_STREAM:
            streams[stream] = ole.openstream(stream).read()
    wanted: dict[str, set[int]] = {}
    for stream, pid, _field, _where in _SUMMARY_FIELDS:
        wanted.setdefault(stream, set()).add(pid)
    found = {stream: section_strings(data, 0, wanted[stream]) for stream, data in streams.items()}
    for stream, pid, _field, where in _SUMMARY_FIELDS:
        value = found.get(stream, {}).get(pid)
        if value is not None:
            out.add(where, value.rstrip("\0"))
    if _DOC_SUMMARY in streams:
        for name, value in custom_properties(streams[_DOC_SUMMARY]):
            out.add(PROPERTIES, f"{name}: {value}")


def section_strings(data: bytes, section: int, pids: set[int]) -> dict[int, str]:
    """The string properties (VT_LPSTR in the section's code page, VT_LPWSTR) of these ids in a
    property set stream's section (0: the first). Malformed input gives what was read before it."""
    found: dict[int, str] = {}
    try:
        offset, pairs, codepage = _section(data, section)
        for pid, at in pairs:
            if pid in pids and pid not in found:
                value = _string_value(data, offset + at, codepage)
                if value is not None:
                    found[pid] = value
    except (struct.error, KeyError, UnicodeError):
        pass
    return found


def _section(data: bytes, section: int) -> tuple[int, list[tuple[int, int]], int | None]:
    """A property set stream's section (0 or 1; MS-OLEPS): where it starts, its (property id,
    offset) pairs (at most MAX_CUSTOM_PROPERTIES) and its code page. KeyError: no such section."""
    (sections,) = struct.unpack_from("<I", data, 24)
    if section >= min(sections, 2):
        raise KeyError(section)
    (offset,) = struct.unpack_from("<I", data, 28 + 20 * section + 16)  # after the section's FMTID
    _size, count = struct.unpack_from("<II", data, offset)
    pairs = [struct.unpack_from("<II", data, offset + 8 + 8 * i) for i in range(min(count, MAX_CUSTOM_PROPERTIES))]
    codepage = None
    for pid, at in pairs:
        if pid == 1:
            _vt, codepage = struct.unpack_from("<IH", data, offset + at)
            break
    return offset, pairs, codepage


def decode_8bit(data: bytes, codepage: int | None) -> str:
    """Text in a property's or record's code page (Chinese Windows: 936); unknown pages as GB18030,
    which reads ASCII and GBK."""
    codepage = (codepage or 0) & 0xFFFF  # stored as a signed 16-bit number: UTF-8 is -535
    if codepage == 1200:  # UTF-16: its end is a NUL character, not the first NUL byte of "A\0"
        return data.decode("utf-16-le", "replace").split("\0", 1)[0]
    data = data.split(b"\0", 1)[0]
    name = {65001: "utf-8", 936: "gb18030"}.get(codepage, f"cp{codepage}")
    try:
        codecs.lookup(name)
    except LookupError:
        name = "gb18030"
    return data.decode(name, "replace")


def custom_properties(data: bytes) -> list[tuple[str, str]]:
    """The user-defined section of a DocumentSummaryInformation stream (MS-OLEPS): its dictionary
    of names and its string values. Malformed input gives what was read before it."""
    found: list[tuple[str, str]] = []
    try:
        offset, pairs, codepage = _section(data, 1)
        where = dict(pairs)
        names = _dictionary(data, offset + where[0], codepage) if 0 in where else {}
        for pid, at in pairs:
            if pid in (0, 1) or pid not in names:
                continue
            value = _string_value(data, offset + at, codepage)
            if value is not None and value.strip():
                found.append((names[pid], value))
    except (struct.error, KeyError, UnicodeError):
        pass
    return found


def _dictionary(data: bytes, at: int, codepage: int | None) -> dict[int, str]:
    (count,) = struct.unpack_from("<I", data, at)
    at += 4
    names: dict[int, str] = {}
    for _ in range(min(count, MAX_CUSTOM_PROPERTIES)):
        pid, length = struct.unpack_from("<II", data, at)
        at += 8
        if codepage == 1200:
            names[pid] = data[at : at + 2 * length].decode("utf-16-le", "replace").split("\0", 1)[0]
            at += 2 * length + (-2 * length % 4)
        else:
            names[pid] = decode_8bit(data[at : at + length], codepage)
            at += length
    return names


def _string_value(data: bytes, at: int, codepage: int | None) -> str | None:
    vt, length = struct.unpack_from("<II", data, at)
    if vt == VT_LPSTR:
        return decode_8bit(data[at + 8 : at + 8 + length], codepage)
    if vt == VT_LPWSTR:
        return data[at + 8 : at + 8 + 2 * length].decode("utf-16-le", "replace").split("\0", 1)[0]
    return None


def ole_reader(
    read: Callable[[olefile.OleFileIO, Collector], None] | None,
) -> Callable[[str | BinaryIO, Collector], None]:
    """A READERS entry: the container's properties, then its format's own text (if it has a reader)."""

    def read_ole(source: str | BinaryIO, out: Collector) -> None:
        with opened(source) as ole:
            try:
                read_properties(ole, out)
            except (OutOfBudget, Refused, MemoryError):
                raise
            except Exception:  # noqa: BLE001 - broken summary streams do not hide the body
                pass
            if read is not None:
                read(ole, out)

    return read_ole
