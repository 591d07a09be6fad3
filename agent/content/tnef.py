"""Outlook's winmail.dat (TNEF, MS-OXTNEF): the attachments Outlook wraps in it when it sends a
message in its rich text format, for archive.py, which hashes, sketches and inspects each as a
member, as it does a zip's.

A TNEF stream is a signature and a key, then attributes one after another: a level (message or
attachment), an id (its low 16 bits the attribute, its high 16 its type), a length, the data and a
checksum. An attachment starts with attAttachRendData; its name is attAttachTitle (8-bit, as the
sender's code page wrote it) and its bytes attAttachData. The message's own text (attBody) is
given as a member too, so it is inspected once. Every length is checked against what is left; a
stream that breaks off ends the listing where it breaks, said as corrupt by the caller.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from agent.content.budget import Refused
from agent.content.mime import clean_name
from agent.content.text import decode

SIGNATURE = b"\x78\x9f\x3e\x22"  # 0x223E9F78, little-endian
ATT_BODY = 0x0002800C
ATT_ATTACH_REND_DATA = 0x00069002
ATT_ATTACH_TITLE = 0x00018010
ATT_ATTACH_DATA = 0x0006800F
LEVEL_MESSAGE, LEVEL_ATTACHMENT = 1, 2
_ATTRIBUTE = struct.Struct("<BII")  # level, id, length (the data and a 16-bit checksum follow)
BODY_NAME = "(message text).txt"


def attachments(data: bytes, check_time: Callable[[], None]) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each attachment in a TNEF stream, in order, and of the message's text."""
    if not data.startswith(SIGNATURE) or len(data) < 6:
        raise Refused("corrupt tnef: no signature")
    at, number = 6, 0
    name: str | None = None
    content: bytes | None = None
    while at < len(data):
        check_time()
        if at + _ATTRIBUTE.size > len(data):
            raise Refused("corrupt tnef: an attribute cut short")
        level, attribute, length = _ATTRIBUTE.unpack_from(data, at)
        start = at + _ATTRIBUTE.size
        if length > len(data) - start - 2:
            raise Refused("corrupt tnef: an attribute longer than the stream")
        value = data[start : start + length]
        at = start + length + 2
        if level == LEVEL_MESSAGE and attribute == ATT_BODY and value.strip(b"\0 \r\n"):
            yield BODY_NAME, value.rstrip(b"\0")
        elif level == LEVEL_ATTACHMENT and attribute == ATT_ATTACH_REND_DATA:
            if content is not None:
                yield name or f"(attachment {number})", content
            number, name, content = number + 1, None, None
        elif level == LEVEL_ATTACHMENT and attribute == ATT_ATTACH_TITLE:
            name = clean_name(decode(value.split(b"\0", 1)[0])) or None
        elif level == LEVEL_ATTACHMENT and attribute == ATT_ATTACH_DATA:
            content = value
    if content is not None:
        yield name or f"(attachment {number})", content
