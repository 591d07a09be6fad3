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
from agent.content.mime import html_text
from agent.content.ole import read_stream
from agent.content.text import decode

SUBJECT, BODY_TEXT, HTML = 0x0037, 0x1000, 0x1013
ATTACH_DATA, LONG_FILENAME, FILENAME, DISPLAY_NAME = 0x3701, 0x3707, 0x3704, 0x3001
UNICODE, STRING8, BINARY, OBJECT = "001F", "001E", "0102", "000D"
ATTACHMENT_PREFIX = "__attach_version1.0_#"
MAX_NAME_BYTES = 2048  # of a name's stream read (a name is cut to MAX_NAME_CHARS)
MAX_NAME_CHARS = 255


@dataclass(frozen=True)
class Attachment:
    name: str  # as the message names it; "(attachment N)" when it names none
    stream: str | None  # the path of its bytes' stream (None: none, an OLE object)
    message: str | None  # the path of the storage of a message attached to it
    size: int  # of its bytes' stream


def _tag(storage: str, prop: int, kind: str) -> str:
    return f"{storage}__substg1.0_{prop:04X}{kind}"


def _string(ole: olefile.OleFileIO, storage: str, prop: int, out: Collector, limit: int | None = None) -> str:
    """A string property: UTF-16LE (001F), else 8-bit (001E, read as a text file is); "" when absent."""
    data = read_stream(ole, _tag(storage, prop, UNICODE), out, limit)
    if data:
        return data.decode("utf-16-le", "replace").rstrip("\0")
    data = read_stream(ole, _tag(storage, prop, STRING8), out, limit)
    return decode(data).rstrip("\0") if data else ""


def read_msg(ole: olefile.OleFileIO, out: Collector) -> None:
    """extract.READERS' reader of a .msg (after its summary properties, as every OLE2 file's): the
    subject as the title, the plain body, or the HTML body without its tags when it has none."""
    subject = _string(ole, "", SUBJECT, out)
    if subject.strip():
        out.add_all(TITLE, [subject])
    body = _string(ole, "", BODY_TEXT, out)
    if not body.strip():
        html = read_stream(ole, _tag("", HTML, BINARY), out) or _string(ole, "", HTML, out).encode()
        body = html_text(decode(html)) if html else ""
    out.add_all(BODY, body.splitlines())


def attachments(ole: olefile.OleFileIO, storage: str, out: Collector) -> Iterator[Attachment]:
    """The attachments of the message at storage ("" for the file's own, else "path/"), in order."""
    depth = storage.count("/")
    found = sorted(
        {
            path[depth]
            for path in ole.listdir(streams=True, storages=True)
            if len(path) > depth + 1 and "/".join(path[:depth]) + ("/" if depth else "") == storage
            and path[depth].startswith(ATTACHMENT_PREFIX)
        }
    )  # fmt: skip
    for number, folder in enumerate(found, 1):
        out.check_time()
        place = f"{storage}{folder}/"
        name = ""
        for prop in (LONG_FILENAME, FILENAME, DISPLAY_NAME):
            name = _string(ole, place, prop, out, MAX_NAME_BYTES).replace("\0", "").strip()
            if name:
                break
        name = name[:MAX_NAME_CHARS] or f"(attachment {number})"
        data = _tag(place, ATTACH_DATA, BINARY)
        embedded = _tag(place, ATTACH_DATA, OBJECT)
        if ole.exists(data) and ole.get_type(data) == olefile.STGTY_STREAM:
            yield Attachment(name, data, None, ole.get_size(data))
        elif ole.exists(embedded) and ole.get_type(embedded) == olefile.STGTY_STORAGE and _is_message(ole, embedded):
            yield Attachment(name, None, embedded + "/", 0)
        else:
            yield Attachment(name, None, None, 0)


def _is_message(ole: olefile.OleFileIO, storage: str) -> bool:
    """Whether the storage is laid out as a message (its properties stream, or a property of one)."""
    depth = storage.count("/") + 1
    return any(
        len(path) == depth + 1 and "/".join(path[:depth]) == storage
        and (path[depth] == "__properties_version1.0" or path[depth].startswith("__substg1.0_"))
        for path in ole.listdir(streams=True, storages=True)
    )  # fmt: skip
