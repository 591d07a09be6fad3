"""A file's text as inspection sees it: extract(path, name) -> Document, bounded and never raising.

The type comes from the content (filetype.py), never the name. Each format's reader adds parts to
a Collector that enforces the byte and time budget; running out marks the Document truncated, and
input that cannot be parsed becomes Document.problem. The file name is always the first part.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import BinaryIO

from loguru import logger

from agent.content import filetype
from agent.content.budget import Collector, OutOfBudget, Refused
from agent.content.document import NAME, Document, TextPart
from agent.content.mime import read_email
from agent.content.odf import read_odf
from agent.content.ole import SIGNATURE as OLE_SIGNATURE
from agent.content.ole import ole_reader
from agent.content.ole_doc import read_doc
from agent.content.ole_msg import read_msg
from agent.content.ole_ppt import read_ppt
from agent.content.ole_xls import read_xls
from agent.content.ooxml import READERS as OOXML_READERS
from agent.content.pdf import read_pdf
from agent.content.text import open_source, read_text
from agent.content.textruns import read_runs
from agent.content.zipread import BoundedZip
from agent.walk import open_file

MB = 1024 * 1024


Source = str | BinaryIO  # a path, or a file object in memory (a member of an archive)


def _zipped(read: Callable[[BoundedZip, Collector], None]) -> Callable[[Source, Collector], None]:
    def read_zip(source: Source | BoundedZip, out: Collector) -> None:
        if isinstance(source, BoundedZip):
            read(source, out)  # the zip detection opened on the file (its directory read and checked)
            return
        with open_source(source) as f:
            read(BoundedZip(f), out)

    return read_zip


FAST_OPENED = True  # False: extraction reads the zip's directory again (the reference)


def _no_text(z: BoundedZip, out: Collector) -> None:
    """A plain zip holds no text of its own; opening it still tells a corrupt one (a cut docx)."""


def _no_text_of_its_own(source: Source, out: Collector) -> None:
    """A mailbox (mbox) or a winmail.dat: its messages, or its attachments and text, are archive
    members, each read once; read as text here too, an identifier would count twice (and a
    mailbox may be gigabytes)."""


READERS: dict[str, Callable[[Source, Collector], None]] = {
    "zip": _zipped(_no_text),
    "text": read_text,
    "dxf": read_text,  # DXF is text; its first lines are headers, not markings, but strings count
    "eml": read_email,  # its Subject and text parts (its attachments are archive members: archive.py)
    "emlx": read_email,
    "mbox": _no_text_of_its_own,
    "tnef": _no_text_of_its_own,  # its message's text is a member (tnef.BODY_NAME), as its attachments are
    "pdf": read_pdf,
    "docx": _zipped(OOXML_READERS["docx"]),
    "xlsx": _zipped(OOXML_READERS["xlsx"]),
    "pptx": _zipped(OOXML_READERS["pptx"]),
    "odt": _zipped(read_odf),
    "ods": _zipped(read_odf),
    "odp": _zipped(read_odf),
    "doc": ole_reader(read_doc),
    "xls": ole_reader(read_xls),
    "ppt": ole_reader(read_ppt),
    # other compound files: their summary and custom properties (a title or label may mark them),
    # and a corrupt container is a parse problem
    **{kind: ole_reader(None) for kind in ("ole2", "msi", "vsd", "pcbdoc", "schdoc", "pcblib", "schlib")},
    "msg": ole_reader(read_msg),  # its subject and body (its attachments are archive members: archive.py)
    "ooxml_encrypted": ole_reader(lambda ole, out: _encrypted()),
}


ZIPPED = frozenset({"zip", "docx", "xlsx", "pptx", "odt", "ods", "odp"})  # READERS that read a BoundedZip


def _encrypted() -> None:
    raise Refused("encrypted")


def may_have_text(head: bytes) -> bool:
    """Whether a file starting with `head` (its first filetype.HEAD_BYTES, or all of it) may hold
    text that extract() reads. False only when the head alone proves a type without a reader (a
    drawing, an image, an archive, an unknown binary): the index then stores the content without
    fingerprints and does not open it again. A zip is told apart by its central directory, at the
    end of the file, and an OLE2 file by its directory, anywhere in it: both may hold text."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", OLE_SIGNATURE)):
        return True
    try:
        return filetype.detect_file(io.BytesIO(head)) in READERS
    except (ValueError, OverflowError):
        return True  # let extract() say what is wrong with it


def extract(path: str, name: str, max_bytes: int = 20 * MB, max_seconds: float = 10.0) -> Document:
    """The Document of the file at path; name is what it is called (the first, NAME, part). The
    file is opened once, as the agent opens every file (no link followed, a FIFO refused)."""
    try:
        fd = open_file(path)
    except OSError as e:
        return Document(None, (TextPart(NAME, name),), problem=f"unreadable: {e.strerror or e}")
    with os.fdopen(fd, "rb", buffering=0) as f:
        return extract_file(f, name, max_bytes, max_seconds)


def extract_file(
    f: BinaryIO, name: str, max_bytes: int = 20 * MB, max_seconds: float = 10.0, *, runs: bool = False
) -> Document:
    """The Document of a seekable file object: the agent's one descriptor of a file, or an archive
    member held in memory (never on disk). `runs`: a file of a type no reader reads (none, a
    program, an image ...) gives its runs of text as `strings` shows them (textruns.py): junk put
    before a text must not hide it from inspection. Without it such a file gives its name alone
    (the index's fingerprints of classified files: two programs sharing a library's strings are
    no copy of each other)."""
    try:
        f.seek(0)
        file_type, opened = filetype.detect_opened(f)
    except OSError as e:
        return Document(None, (TextPart(NAME, name),), problem=f"unreadable: {e.strerror or e}")
    except (ValueError, OverflowError) as e:  # numbers in a crafted header that fit no file
        return Document(None, (TextPart(NAME, name),), problem=f"corrupt: {type(e).__name__}")
    if opened is not None and FAST_OPENED and file_type in ZIPPED:
        return _extract(opened, file_type, name, max_bytes, max_seconds)
    return _extract(f, file_type, name, max_bytes, max_seconds, runs)


def _extract(
    source: Source | BoundedZip,
    file_type: str | None,
    name: str,
    max_bytes: int,
    max_seconds: float,
    runs: bool = False,
) -> Document:
    name_part = TextPart(NAME, name)
    read = READERS.get(file_type or "") or (read_runs if runs else None)
    if read is None:
        return Document(file_type, (name_part,))
    out = Collector(max_bytes, max_seconds)
    problem = None
    try:
        read(source, out)
    except OutOfBudget:
        out.truncated = True
    except Refused as e:
        problem = str(e)
    except (OSError, MemoryError, RecursionError, UnicodeError) as e:
        problem = f"{type(e).__name__}: {e}"[:300]
    except Exception as e:  # noqa: BLE001 - a reader's bug must not stop monitoring; it is logged
        logger.exception("content extraction failed type={}", file_type)
        problem = f"internal error: {type(e).__name__}"
    if problem:
        logger.debug("content not extracted type={} problem={!r}", file_type, problem)
    return Document(file_type, (name_part, *out.parts), truncated=out.truncated, problem=problem, markup=out.markup)
