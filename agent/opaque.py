"""Files no parser can read anything from: answered without a round-trip to an inspection worker.

Inspection runs parsers over hostile files, so it happens in unprivileged worker processes
(agent/inspector.py). But most of what a bulk copy carries is opaque to every parser: photos,
videos, programs, compressed blobs of unknown kind. For such a file the worker only finds that
its type is unknown and runs the detectors over its name; the handing over of the descriptor,
the request and the answer cost more than that (and a worker that had gone idle must first be
started again: half a CPU second).

A file is opaque when its first bytes (the lane read them while hashing) start with none of the
signatures the type detection knows and hold a NUL byte (no text has one, except UTF-16 with a
byte-order mark, which is ruled out too). Those are byte comparisons, not parsing; only then is
agent.content.filetype asked about the same bytes, as a guard should it learn a type that the
prefixes here do not list. The answer is the one a worker gives for an untyped file: the
inspection of its name alone, computed from the name without a byte of the file.
"""

from __future__ import annotations

import codecs
import io

from agent.content import filetype, ole
from agent.content.detectors import detect
from agent.content.document import NAME, Document, TextPart
from agent.content.inspect import Inspection

HEAD_BYTES = filetype.HEAD_BYTES  # what the type detection reads: the lane keeps as much while hashing

# the starts of every type agent.content.filetype.detect_file names; text has no NUL
_TYPED_STARTS = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    ole.SIGNATURE,
    b"\x7fELF",
    b"AutoCAD Binary DXF",
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
    *filetype._SIGNATURES,  # the signatures puremagic is asked about: the same tuple, never a copy
)


def is_opaque(head: bytes) -> bool:
    """Whether a file whose first HEAD_BYTES bytes are `head` has no type and no text: no parser
    would read anything from it. Empty files are opaque too."""
    if head and (
        b"\0" not in head or head.startswith(_TYPED_STARTS) or head[2:6] == b"%PDF" or head[257:262] == b"ustar"
    ):
        return False
    return filetype.detect_file(io.BytesIO(head)) is None


def name_only(name: str) -> Inspection:
    """The inspection of an opaque file called `name`: what a worker answers for it (no type, so
    no type mismatch, no text and no fingerprints; the detections of its name), from the name
    alone. agent.content.inspect.inspect_source gives the same for such a file (the tests compare
    them); built here without its text fingerprinting, which would load numpy into the agent."""
    found = detect(Document(None, (TextPart(NAME, name),)))
    return Inspection(None, None, tuple(sorted(found, key=lambda d: d.detector)))
