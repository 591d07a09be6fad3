"""Outlook messages saved as .msg (MS-OXMSG: an OLE2 compound file, what dragging a message out of
Outlook makes): their subject and body for the detectors and text lineage, and their attachments
for archive.py, which hashes, sketches and inspects each as a member, as it does a zip's.

A message's properties are streams named __substg1.0_PPPPTTTT (PPPP the property, TTTT its type:
001F UTF-16LE, 001E 8-bit, 0102 binary); each attachment is a storage __attach_version1.0_#N
holding its bytes (PidTagAttachDataBinary, 3701/0102) and names, or, for a message attached to
the message, a storage (3701/000D) laid out as a message of its own. Any other attachment (an OLE
object, method 6: its data a storage of another program's) is listed with no bytes, and the walk
says it was not read. Names and text are read through ole.read_stream's budget; an attachment's
bytes are read only once the walk's allowance for its size is checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import olefile

from agent.content.budget import Collector
from agent.content.document import BODY, TITLE
from agent.content.mime import clean_name, html_text
from agent.content.ole import read_stream
from agent.content.text import decode

SUBJECT, BODY_TEXT, HTML = 0x0037, 0x1000, 0x1013
ATTACH_DATA, LONG_FILENAME, FILENAME, DISPLAY_NAME = 0x3701, 0x3707, 0x3704, 0x3001
UNICODE, STRING8, BINARY, OBJECT = "001F", "001E", "0102", "000D"
ATTACHMENT_PREFIX = "__attach_version1.0_#"
MAX_NAME_BYTES = 2048  # of a name's stream read (a name is cut to mime.MAX_NAME_CHARS)
MAX_DEPTH = 3  # messages attached inside messages read for their text (archive.Limits.max_depth)


@dataclass(frozen=True)
class Attachment:
    name: str  # as the message names it (mime.clean_name); "(attachment N)" when it names none
    stream: str | None  # the path of its bytes' stream (None: none, an OLE object)
    message: str | None  # the path of the storage of a message attached to it
    size: int  # of its bytes' stream


class Layout:
    """Which storages and streams a compound file holds under each storage, listed once (a file of
    3,000 attached messages listed again for each took seconds). Names compare in lower case, as
    compound files name them (__ATTACH_VERSION1.0_#0 is the same storage to Outlook)."""

    def __init__(self, ole: olefile.OleFileIO) -> None:
        listed = ole.listdir(streams=True, storages=True)
        self.paths = frozenset("/".join(path).lower() for path in listed)
        children: dict[str, set[str]] = {}
        for path in listed:
            for depth in range(len(path)):
                children.setdefault("".join(f"{p}/" for p in path[:depth]).lower(), set()).add(path[depth])
        self.children = {parent: sorted(names) for parent, names in children.items()}

    def below(self, storage: str) -> list[str]:
        return self.children.get(storage.lower(), [])

    def has(self, path: str) -> bool:
        """Whether the file holds path: asked before olefile is (its look-up walks every sibling)."""
        return path.lower() in self.paths


def _tag(storage: str, prop: int, kind: str) -> str:
    return f"{storage}__substg1.0_{prop:04X}{kind}"


def _string(
    ole: olefile.OleFileIO, layout: Layout, storage: str, prop: int, out: Collector, limit: int | None = None
) -> str:
    """A string property: UTF-16LE (001F), else 8-bit (001E, read as a text file is); "" when absent."""
    unicode, string8 = _tag(storage, prop, UNICODE), _tag(storage, prop, STRING8)
    data = read_stream(ole, unicode, out, limit) if layout.has(unicode) else b""
    if data:
        return data.decode("utf-16-le", "replace").rstrip("\0")
    data = read_stream(ole, string8, out, limit) if layout.has(string8) else b""
    return decode(data).rstrip("\0") if data else ""


def read_msg(ole: olefile.OleFileIO, out: Collector) -> None:
    """extract.READERS' reader of a .msg (after its summary properties, as every OLE2 file's): the
    subject as the title, the plain body, or the HTML body without its tags when it has none;
    then the subject and body of each message attached to it (Outlook's "forward as attachment"),
    as deep as archive.py walks them."""
    layout = Layout(ole)
    _read_message(ole, layout, "", out, TITLE, 1)


def _read_message(ole: olefile.OleFileIO, layout: Layout, storage: str, out: Collector, title: str, depth: int) -> None:
    subject = _string(ole, layout, storage, SUBJECT, out)
    if subject.strip():
        out.add_all(title, [subject])
    body = _string(ole, layout, storage, BODY_TEXT, out)
    if not body.strip():
        binary = _tag(storage, HTML, BINARY)
        html = (read_stream(ole, binary, out) if layout.has(binary) else b"") or _string(ole, layout, storage, HTML, out).encode()
        body = html_text(decode(html)) if html else ""
    out.add_all(BODY, body.splitlines())
    if depth < MAX_DEPTH:
        for place in _attachment_places(layout, storage):  # (their names and bytes are the walk's)
            inner = None if layout.has(_tag(place, ATTACH_DATA, BINARY)) else _attached_message(ole, layout, place)
            if inner is not None:
                _read_message(ole, layout, inner, out, BODY, depth + 1)


def attachments(ole: olefile.OleFileIO, layout: Layout, storage: str, out: Collector) -> Iterator[Attachment]:
    """The attachments of the message at storage ("" for the file's own, else "path/"), in order."""
    for number, place in enumerate(_attachment_places(layout, storage), 1):
        out.check_time()
        name = ""
        for prop in (LONG_FILENAME, FILENAME, DISPLAY_NAME):
            name = clean_name(_string(ole, layout, place, prop, out, MAX_NAME_BYTES))
            if name:
                break
        name = name or f"(attachment {number})"
        data = _tag(place, ATTACH_DATA, BINARY)
        if layout.has(data) and ole.get_type(data) == olefile.STGTY_STREAM:
            yield Attachment(name, data, None, ole.get_size(data))
        else:
            yield Attachment(name, None, _attached_message(ole, layout, place), 0)


def _attachment_places(layout: Layout, storage: str) -> list[str]:
    """The storage path ("…/") of each attachment of the message at storage, in order."""
    return [f"{storage}{name}/" for name in layout.below(storage) if name.lower().startswith(ATTACHMENT_PREFIX)]


def _attached_message(ole: olefile.OleFileIO, layout: Layout, place: str) -> str | None:
    """The storage path of the message attached at place, or None when it is no message."""
    embedded = _tag(place, ATTACH_DATA, OBJECT)
    if layout.has(embedded) and ole.get_type(embedded) == olefile.STGTY_STORAGE and _is_message(layout, embedded + "/"):
        return embedded + "/"
    return None


def _is_message(layout: Layout, storage: str) -> bool:
    """Whether the storage is laid out as a message (its properties stream, or a property of one)."""
    return any(n.lower() == "__properties_version1.0" or n.lower().startswith("__substg1.0_") for n in layout.below(storage))
