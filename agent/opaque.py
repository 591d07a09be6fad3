"""Files no parser can read anything from: answered without a round-trip to an inspection worker.

Inspection runs parsers over hostile files, so it happens in unprivileged worker processes
(agent/inspector.py). But most of what a bulk copy carries is opaque to every parser: photos,
videos, programs, compressed blobs of unknown kind. For such a file the worker only finds that
its type is unknown and runs the detectors over its name; the handing over of the descriptor,
the request and the answer cost more than that (and a worker that had gone idle must first be
started again: half a CPU second).

A file is opaque when its first bytes (the lane read them while hashing) start with none of the
signatures the type detection knows and hold a NUL byte (a text holds none unless NULs were put
in it, and UTF-16 with a byte-order mark is ruled out too). Those are byte comparisons, not
parsing; only then is agent.content.filetype asked about the same bytes: it types a text with
NULs put in it as text (its reader leaves them out), and it guards against a type that the
prefixes here do not list. The lane also looks at the file's end (zip_at_end) and, as it hashes,
at its first 4 MB for a 7z's signature: a zip or 7z put behind bytes like these is read whole by
unzip or 7-Zip, so such a file goes to a worker. The answer is the one a
worker gives for an untyped file: the inspection of its name alone, computed from the name
without a byte of the file.

Most names hold nothing a detector looks for, and running the seven detectors over one costs some
40 µs (the lane's largest cost per file of a burst). `may_detect` rules a name out by what every
finding needs: an identifier a group of 11 ASCII digits (single spaces or dashes between them) or
a run of 18 ASCII letters and digits; a marking one of the English words or CJK characters every
term holds (a state mark's level holds 密). Those are read from the NFKC form of the name, as the
detectors read it. The detectors stay the reference (FAST_NAMES = False, or a vocabulary or
detector set this check was not written for); tests/agent/test_opaque.py holds the two equal.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
import unicodedata

from agent.content import detectors, filetype, identifiers, marking_terms, markings, ole, sevenzip, tnef
from agent.content.archive import NOT_INSPECTED, split_volume
from agent.content.detectors import detect
from agent.content.document import NAME, Document, TextPart
from agent.content.inspect import Inspection
from agent.content.textruns import MIN_GB_BYTES, MIN_UTF8_BYTES, may_hold_runs
from agent.content.zipread import END_SIGNATURE, LOCAL_SEARCH_BYTES, LOCAL_SIGNATURE, TAIL_BYTES, holds
from rules.events import Detection

HEAD_BYTES = filetype.HEAD_BYTES  # what the type detection reads: the lane keeps as much while hashing
# a 7z behind a prefix is opened by 7-Zip at its offset: the lane looks for its signature in the
# bytes it hashes, as far in as a worker looks for it (sevenzip.embedded_at), and a file holding
# it goes to a worker, which checks the start header's CRC
SEVEN_ZIP_SIGNATURE = sevenzip.SIGNATURE
EMBEDDED_7Z_WITHIN = sevenzip.SEARCH_BYTES + len(sevenzip.SIGNATURE)

# the starts of every type agent.content.filetype.detect_file names (text is told by filetype)
_TYPED_STARTS = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    ole.SIGNATURE,
    b"\x7fELF",
    b"AutoCAD Binary DXF",
    tnef.SIGNATURE,
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


def zip_at_end(fd: int, size: int) -> bool:
    """Whether the file of `size` bytes open at fd may be a zip behind a prefix that its head does
    not show (64 NULs before a zip of a drawing: unzip reads it whole): the end record's
    signature in its last zipread.TAIL_BYTES. Then a worker decides (zipread.appended); this
    costs an opaque file a read of its tail, already in the page cache, and one search of it."""
    length = min(size, TAIL_BYTES)
    return holds(os.pread(fd, length, size - length), END_SIGNATURE)


# the bytes of a window of text (textruns.may_hold_runs) or a signature that may lie across two chunks
_EDGE_BYTES = max(MIN_UTF8_BYTES, MIN_GB_BYTES, len(LOCAL_SIGNATURE)) - 1
LOCAL_WITHIN = LOCAL_SEARCH_BYTES + len(LOCAL_SIGNATURE) - 1  # what zipread.local_zip searches


class Looker:
    """What a worker would read in an opaque file, looked for in its bytes as the lane hashes them
    (hashing.Hasher.digest_fd's `look`, called with each chunk in order): a run of text anywhere
    (textruns.may_hold_runs: a worker reads the runs of a file no reader types; a text behind 8
    KiB of NULs is no less a text), or a zip's local header in its first LOCAL_WITHIN bytes (a zip
    without its directory behind a prefix: zipread.local_zip reads it, as 7-Zip does). `found`
    once either may be there: the file then goes to a worker. Both looks answer False only where
    the worker's would find nothing; on random bytes, some 7 µs and 4 µs for 130 KB.
    What may lie across two chunks is looked for in the last _EDGE_BYTES of the one before and
    the first of the next."""

    __slots__ = ("found", "_at", "_edge")

    def __init__(self) -> None:
        self.found = False
        self._at = 0  # bytes seen so far
        self._edge = b""  # the last _EDGE_BYTES of them

    def __call__(self, chunk: memoryview) -> None:
        if self.found or not chunk:
            return
        edge = self._edge  # none before the first chunk (most files are one): nothing lies across
        across = edge + bytes(chunk[:_EDGE_BYTES]) if edge else b""
        self.found = (edge and may_hold_runs(across)) or may_hold_runs(chunk)
        if not self.found and self._at < LOCAL_WITHIN:
            reach = min(len(chunk), LOCAL_WITHIN - self._at)
            within = across[: len(edge) + reach]
            self.found = (edge and holds(within, LOCAL_SIGNATURE)) or holds(chunk[:reach], LOCAL_SIGNATURE)
        self._edge = (self._edge + bytes(chunk[-_EDGE_BYTES:]))[-_EDGE_BYTES:]
        self._at += len(chunk)


def looked_at(data: bytes) -> bool:
    """Looker's answer for a file of these bytes, read at once (the reference the lane's chunked
    looks are held to)."""
    return may_hold_runs(data) or holds(data[:LOCAL_WITHIN], LOCAL_SIGNATURE)


def name_only(name: str) -> Inspection:
    """The inspection of an opaque file called `name`: what a worker answers for it (no type, so
    no type mismatch, no text and no fingerprints; the detections of its name), from the name
    alone. agent.content.inspect.inspect_source gives the same for such a file (the tests compare
    them); built here without its text fingerprinting, which would load numpy into the agent.
    A name no detector can find anything in (may_detect) is answered without running them."""
    if FAST_NAMES and not may_detect(name) and split_volume(name) is None:
        return _NOTHING_FOUND
    return name_only_reference(name)


def name_only_reference(name: str) -> Inspection:
    """name_only by running every detector over the name: the reference of its shortcut. A name
    of a split archive's volume is flagged, as a worker flags an untyped file of that name."""
    found = list(detect(Document(None, (TextPart(NAME, name),))))
    if (why := split_volume(name)) is not None:
        found.append(Detection(NOT_INSPECTED, 1, why))
    return Inspection(None, None, tuple(sorted(found, key=lambda d: d.detector)))


FAST_NAMES = True  # False: every name goes through the detectors (the reference)
_NOTHING_FOUND = Inspection(None, None, ())

# What may_detect was written for: the registered detectors, and a digest of the patterns that
# find identifiers and markings. A detector, term or pattern changed and every name goes to the
# detectors until this check is reviewed against it (a test fails meanwhile).
_DETECTORS_KNOWN = {
    "bank_card": identifiers.BankCardDetector,
    "cn_mobile": identifiers.MobileDetector,
    "cn_resident_id": identifiers.ResidentIdDetector,
    "cn_uscc": identifiers.UsccDetector,
    "state_secret_marking": markings.StateSecretMarkingDetector,
    "state_secret_mention": markings.StateSecretMentionDetector,
    "trade_secret_marking": markings.TradeSecretMarkingDetector,
}
_PATTERNS_KNOWN = "1b58fbe1f2eca768"


def _patterns_digest() -> str:
    patterns = (
        marking_terms.TERMS_RE.pattern,
        marking_terms.STATE_RE.pattern,
        identifiers._DIGIT_GROUP.pattern,
        identifiers._ALNUM_18.pattern,
        identifiers._ALNUM_WITH_DIGITS.pattern,
    )
    return hashlib.sha256("\0".join(patterns).encode()).hexdigest()[:16]


_PATTERNS_AS_WRITTEN_FOR = _patterns_digest() == _PATTERNS_KNOWN
# Every identifier is 11 digits or more in one group (a mobile; IDs and cards are longer), digits
# joined by at most one space or dash (identifiers._DIGIT_GROUP), or a USCC of 18 alphanumerics
_IDENTIFIER_SHAPE = re.compile(r"[0-9](?:[ -]?[0-9]){10}|[0-9A-Za-z]{18}")
# a mandatory word of each English term (EN_TERMS); a character of each CJK term (CJK_TERMS) and
# state mark (the 密 of its level: STATE_LEVEL); and the two characters RE2's (?i) takes for an
# ASCII letter (ſ for s, the Kelvin sign for k; found by trying every code point: NFKC turns both
# into the letter anyway)
_MARK_WORDS = ("confidential", "internal", "proprietary", "trade", "distribute")
_MARK_CHARS = frozenset("密内传制\u017f\u212a")


def _written_for_these_detectors() -> bool:
    return _PATTERNS_AS_WRITTEN_FOR and detectors.DETECTORS == _DETECTORS_KNOWN


def may_detect(name: str) -> bool:
    """False only when no detector can find anything in the name (then detect() finds nothing);
    True whenever one might, or when this check cannot tell."""
    if not _written_for_these_detectors():
        return True
    if name.isascii():
        text = name  # NFKC leaves ASCII as it is
    else:
        text = unicodedata.normalize("NFKC", name)
        if not _MARK_CHARS.isdisjoint(text):
            return True
    if _IDENTIFIER_SHAPE.search(text):
        return True
    lowered = text.lower()
    return any(word in lowered for word in _MARK_WORDS)
