"""Inspect one file: its true type, whether its name fits, and what its text carries.

Extraction is bounded in bytes and time and never raises; a file that cannot be parsed gives a
`parse_error` detection (with the reason as its sample) instead, and a file whose budget ran out
gives `inspection_truncated`, so rules and people can see that the answer is partial.

The same extraction gives the winnowing fingerprints of the document's text (every part but the
file name), which the pipeline looks up in the index to trace a partial copy to its source.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from typing import BinaryIO

from loguru import logger

from agent.content import winnow
from agent.content.archive import (
    ARCHIVE_TYPES,
    EMBEDDING_TYPES,
    NOT_INSPECTED,
    TEXT_SEARCHED_TYPES,
    UNREAD_ARCHIVE_TYPES,
    Limits,
    Member,
    split_volume,
    walk_archive,
    walk_carried,
    walk_embedded,
)
from agent.content.budget import Refused
from agent.content.detectors import detect
from agent.content.document import NAME, PLACES, Document
from agent.content.extract import extract_file
from agent.content.filetype import type_mismatch
from agent.content.sevenzip import embedded_at
from agent.content.text import decode
from agent.content.zipread import Window, appended, local_zip
from agent.walk import open_file
from rules.events import Detection

MAX_BYTES = 20 * 1024 * 1024
MAX_SECONDS = 10.0
TEXT_PLACES = tuple(p for p in PLACES if p != NAME)  # a copy's name is not its content
_TEXT_PLACE_SET = frozenset(TEXT_PLACES)


@dataclass(frozen=True)
class Inspection:
    file_type: str | None
    type_mismatch: bool | None
    detections: tuple[Detection, ...] = ()
    members: tuple[Member, ...] = ()  # an archive's members, hashed (the pipeline looks them up)
    fingerprints: frozenset[int] = frozenset()  # of the text, for partial matches (never in events)

    def event_fields(self) -> dict:
        return dict(file_type=self.file_type, type_mismatch=self.type_mismatch, detections=self.detections)


def inspect_file(path: str, max_bytes: int = MAX_BYTES, max_seconds: float = MAX_SECONDS) -> Inspection:
    """Inspect the regular file at path, opened once without following links or blocking (a FIFO
    or a device put in its place is refused, never read)."""
    try:
        fd = open_file(path)
    except OSError as exc:
        kind = "not_regular" if exc.errno == errno.EINVAL else "unreadable"
        return Inspection(None, None, (Detection(kind, 1, exc.strerror or type(exc).__name__),))
    with os.fdopen(fd, "rb", buffering=0) as f:
        return inspect_source(f, os.path.basename(path), max_bytes, max_seconds)


def inspect_source(
    f: BinaryIO, name: str, max_bytes: int = MAX_BYTES, max_seconds: float = MAX_SECONDS
) -> Inspection:
    """Inspect an open, seekable file (the agent's one descriptor of it); `name` is what it is
    called. Never raises: what could not be read becomes a detection."""
    started = time.monotonic()
    try:
        document = extract_file(f, name, max_bytes=max_bytes, max_seconds=max_seconds, runs=True)
        found = list(detect(document))
    except Exception as exc:  # contain: one odd file must not stop the pipeline
        logger.exception("inspection failed name={!r}", name)
        return Inspection(None, None, (Detection("parse_error", 1, f"internal error: {type(exc).__name__}"),))
    if document.problem:
        found.append(Detection("parse_error", 1, document.problem[:200]))
    if document.truncated:
        found.append(Detection("inspection_truncated", 1))
    members: tuple[Member, ...] = ()
    # an archive behind a prefix (_embedded) is walked whatever its start makes the file
    archive, source = (document.file_type, f) if document.file_type in ARCHIVE_TYPES else _embedded(f)
    if archive == NOT_INSPECTED:  # one was there, and was not read
        found = _summed([*found, Detection(NOT_INSPECTED, 1, str(source)[:200])])
    elif archive is not None:  # members summed in; problems become archive_* detections
        # one clock for the whole file: a saved email is parsed for its text, then for its attachments
        listing = walk_archive(source, archive, Limits(max_seconds=_left(started, max_seconds)))
        members = tuple(listing.members)
        found = _summed([*found, *listing.detections()])
    elif document.file_type in UNREAD_ARCHIVE_TYPES:  # an archive nothing here reads: fail closed
        found.append(Detection(NOT_INSPECTED, 1, document.file_type))
    text = fingerprinted_text(document)
    listings = []  # files embedded in it (an office document's objects, a PDF's attachments)
    if document.file_type in EMBEDDING_TYPES:
        listings.append(walk_embedded(f, document.file_type, Limits(max_seconds=_left(started, max_seconds))))
    # files written out in its text (base64, a hex dump), whatever is appended to it (a zip put
    # after the base64 must not stop the search); a saved email's walk reads its text parts itself
    if document.file_type not in ARCHIVE_TYPES or document.file_type in TEXT_SEARCHED_TYPES:
        listings.append(walk_carried(searched_text(f, document, text, max_bytes), Limits(max_seconds=_left(started, max_seconds))))
    if listings:
        members = (*members, *(m for listing in listings for m in listing.members))
        found = _summed([*found, *(d for listing in listings for d in listing.detections())])
    if document.file_type is None and (why := split_volume(name)) is not None:
        found = _summed([*found, Detection(NOT_INSPECTED, 1, why)])  # no reader types a piece past the first
    extension = os.path.splitext(name)[1][1:].lower()
    return Inspection(
        document.file_type,
        type_mismatch(document.file_type, extension),
        tuple(sorted(found, key=lambda d: d.detector)),
        members,
        winnow.fingerprints(text),
    )


def searched_text(f: BinaryIO, document: Document, text: str, max_bytes: int) -> str:
    """The text searched for files written out in it: the document's text, but for a plain text
    file whose extraction was cut short (at its count of parts: an xxd of a 12 MB drawing is
    800,000 lines) its own bytes, as UTF-8 (what is written out is ASCII, whatever the rest is),
    unless they hold NULs (UTF-16: its text is the better read); for a web page or an RTF
    document, its markup too (a picture inlined as a data: URI is in a tag, an object's bytes are
    in hex in a group its text leaves out). A file's or an archive member's (agent/content/archive.py)."""
    if document.file_type != "text" or not (document.truncated or document.markup):
        return text
    try:
        f.seek(0)
        raw = f.read(max_bytes)
    except OSError:
        return text
    if document.markup:
        return decode(raw, complete=False) + "\n" + text
    return text if b"\0" in raw[:4096] else raw.decode("utf-8", "replace")


def _left(started: float, max_seconds: float) -> float:
    """What is left of a file's clock of max_seconds that started at `started`."""
    return max(max_seconds - (time.monotonic() - started), 0.0)


def text_fingerprints(document: Document) -> frozenset[int]:
    """Winnowing fingerprints of the document's text: body, headers, footers, title, properties."""
    return winnow.fingerprints(fingerprinted_text(document))


FAST_TEXT = True  # False: document.text_of(*TEXT_PLACES) always (the reference fingerprinted_text is held to)
_WHERE, _TEXT = itemgetter(0), itemgetter(1)  # a TextPart's where and text (a tuple's items)


def fingerprinted_text(document: Document) -> str:
    """document.text_of(*TEXT_PLACES): every part's text but the file name's, joined by "\n". When
    the name is the first part and no other part is named or out of PLACES (extraction's way), the
    rest joined by mapping: some 10,000 parts a MB, each asked in a Python loop whether its place
    is one of five, cost 1.3-2 times as much."""
    parts = document.parts
    if FAST_TEXT and parts and parts[0][0] == NAME and set(map(_WHERE, islice(parts, 1, None))) <= _TEXT_PLACE_SET:
        return "\n".join(map(_TEXT, islice(parts, 1, None)))
    return document.text_of(*TEXT_PLACES)


def file_fingerprints(path: str, max_bytes: int = MAX_BYTES, max_seconds: float = MAX_SECONDS) -> frozenset[int]:
    """The fingerprints of a classified file's text (empty when it has none, e.g. a drawing).
    Opened once, as every file is: no link followed, no blocking on a FIFO renamed in its place,
    any path length."""
    try:
        fd = open_file(path)
    except OSError:
        return frozenset()
    with os.fdopen(fd, "rb", buffering=0) as f:
        return text_fingerprints(extract_file(f, os.path.basename(path), max_bytes=max_bytes, max_seconds=max_seconds))


def _embedded(f: BinaryIO) -> tuple[str, BinaryIO | str] | tuple[None, None]:
    """An archive behind a prefix, as unzip and 7-Zip find one in a self-extractor or behind any
    bytes: a zip by its end record (zipread.appended), else a zip by its local headers where no
    directory was found (zipread.local_zip, as 7-Zip reads one), else a 7z by its start header
    (sevenzip.embedded_at), read from where it starts; (None, None) when there is none, and
    (NOT_INSPECTED, why) when one may be there that was not read."""
    try:
        f.seek(0)
        if f.read(4) in (b"PK\x03\x04", b"PK\x05\x06"):
            return None, None  # a zip from its start (docx, xlsx ...): read as what it is
        zipped = appended(f)
        if zipped is not None:
            return "zip", zipped
        try:
            zipped = local_zip(f)
        except Refused as e:
            return NOT_INSPECTED, str(e)
        if zipped is not None:
            return "zip", zipped
        at = embedded_at(f)
    except OSError:
        return None, None  # the extraction read it: a file that cannot be read again here says nothing more
    return ("7z", Window(f, at)) if at is not None else (None, None)


def _summed(found: list[Detection]) -> list[Detection]:
    """One detection per detector: counts added, the first sample kept."""
    by_id: dict[str, Detection] = {}
    for d in found:
        first = by_id.get(d.detector)
        by_id[d.detector] = (
            d if first is None else Detection(d.detector, first.count + d.count, first.sample or d.sample)
        )
    return list(by_id.values())
