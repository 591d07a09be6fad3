"""IPP messages built byte by byte for the tests, as cupsd writes a job's control file."""

from __future__ import annotations

import struct

JOB_GROUP = 0x02


def attr(tag: int, name: str, *values: bytes) -> bytes:
    """One attribute: the first value with its name, the others with an empty name (RFC 8010)."""
    out = b""
    for i, value in enumerate(values):
        encoded = name.encode() if i == 0 else b""
        out += bytes([tag]) + struct.pack(">H", len(encoded)) + encoded + struct.pack(">H", len(value)) + value
    return out


def text(tag: int, name: str, *values: str) -> bytes:
    return attr(tag, name, *(v.encode() for v in values))


def integer(name: str, value: int, tag: int = 0x21) -> bytes:
    return attr(tag, name, struct.pack(">i", value))


def message(*attributes: bytes, group: int = JOB_GROUP) -> bytes:
    return b"\x02\x00\x00\x05\x00\x00\x00\x04" + bytes([group]) + b"".join(attributes) + b"\x03"


def control_file(user: str, title: str, printer: str, fmt: str, pages: int = 0) -> bytes:
    """A job's attributes as cupsd keeps them (the ones the agent reads, and a collection)."""
    media_col = (
        attr(0x34, "media-col", b"")
        + attr(0x4A, "", b"media-size")
        + attr(0x34, "", b"")
        + attr(0x4A, "", b"x-dimension")
        + integer("", 21000)
        + attr(0x37, "", b"")
        + attr(0x37, "", b"")
    )
    return message(
        text(0x45, "printer-uri", "ipp://localhost/printers/" + printer),
        text(0x42, "job-originating-user-name", user),
        text(0x42, "job-name", title),
        media_col,
        integer("job-id", 7),
        integer("job-impressions-completed", pages),
        text(0x45, "job-printer-uri", f"ipp://pc/printers/{printer}"),
        text(0x49, "document-format", fmt),
    )
