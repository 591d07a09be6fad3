"""The members of an archive (zip, tar, tar.gz/bz2/xz, 7z), hashed and inspected without touching disk.

Nested archives are opened up to MAX_DEPTH (the egress file is depth 1). Nothing an archive says
about itself is trusted: bytes are counted as they are read, against a per-member cap, a total cap,
a compression ratio and a clock; a zip whose members' local ranges overlap (Fifield's overlapping
and quoted-overlap bombs) is refused before any member is read. Encrypted zip members are listed
(without a hash) and flagged. 7z is read by sevenzip.py on the standard library, within the same
caps: AES-encrypted members (or headers) are flagged, coders it does not decode (PPMd, BCJ2,
zstd...) are named in an archive_not_inspected problem. Whatever goes wrong becomes a Problem; walk_archive never raises.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import re
import struct
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

import olefile
from loguru import logger

from agent.content import encoded, filetype, mime, ole, ole_msg, tnef, zipread
from agent.content.budget import Collector, OutOfBudget, Refused
from agent.content.chunks import KEEP, NATIVE, Chunker
from agent.content.detectors import detect
from agent.content.extract import extract_file
from agent.content.sevenzip import FOLDER_LOST, Encrypted, Entry, SevenZip, Unsupported
from agent.content.sevenzip_coders import Inflate, Native, Stage
from agent.content.zipread import MAX_RATIO, RATIO_FLOOR_BYTES, BoundedZip
from rules.events import Detection

MB = 1024 * 1024
CHUNK_BYTES = 64 * 1024
SKETCH_MIN_BYTES = 4096  # a member smaller has too few chunks to be traced by them (index.MIN_BYTES_MATCHED)
MAX_ENCODED = 3  # files written out in a text written out in a text ...: levels read (_carried_in)
SKETCHED_MEMBERS = 256  # members sketched in one archive (128 fingerprints each in the worker's answer)
# text fingerprints kept over an archive's members (the worker's answer, and the index's look-ups
# one member at a time): some 50 documents of 30 pages; the members after them are traced by hash only
TEXT_TRACED_FINGERPRINTS = 200_000
# saved mail: a message's attachments (eml, emlx: mime.py; msg: ole_msg.py; Outlook's winmail.dat:
# tnef.py), a mailbox's messages (mbox)
try:  # Zstandard: in the standard library from Python 3.14, its backport before
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    try:
        from backports import zstd  # type: ignore[no-redef]
    except ImportError:
        zstd = None
_ZSTD_ERRORS: tuple[type[Exception], ...] = (zstd.ZstdError,) if zstd is not None else ()
# one compressed stream: a tar in it is read member by member, anything else is its one member
STREAM_TYPES = frozenset({"gzip", "bzip2", "xz", "lzma", "zlib"} | ({"zstd"} if zstd is not None else set()))
ARCHIVE_TYPES = frozenset({"zip", "tar", "7z", "eml", "emlx", "msg", "mbox", "tnef"}) | STREAM_TYPES
MESSAGE_TYPES = frozenset({"eml", "emlx", "msg"})  # containers with text of their own, read as a member too
# archives whose own text is searched for files written out in it (agent/content/encoded.py): an
# Outlook message's body (a saved email's text parts are searched by its walk: mime.py)
TEXT_SEARCHED_TYPES = frozenset({"msg"})
# archives the type detection names but nothing here reads (RAR's compression has no open
# decoder): such a file, or member, is an archive_not_inspected problem, not a file with nothing in
# it. WinRAR is a common way to pack files; a drawing packed by it must not leave in silence.
# LZ4 has no decoder in the standard library either; nor has Zstandard before 3.14 (the agent's
# install brings its backport).
UNREAD_ARCHIVE_TYPES = frozenset({"rar", "lz4"} | ({"zstd"} if zstd is None else set()))
_DECOMPRESSORS: dict[str, Callable[[BinaryIO], BinaryIO]] = {
    "gzip": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    "bzip2": lambda f: bz2.BZ2File(f, mode="rb"),
    "xz": lambda f: lzma.LZMAFile(f, mode="rb"),
    # (its decoder takes its dictionary's size at once: a header may ask 1.5 GB)
    "lzma": lambda f: Stage(f, Native(lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=MAX_LZMA_DECODER_BYTES))),
    "zlib": lambda f: _GitObject(Stage(f, Inflate(zlib.MAX_WBITS))),
    **({"zstd": lambda f: zstd.ZstdFile(f, mode="rb")} if zstd is not None else {}),
}
# the names 7-Zip, WinRAR, zip and HaoZip give the volumes of an archive split in pieces (分卷压缩):
# a piece past the first starts in the middle of a stream, so no reader types it, and its content
# is read only when the pieces are joined
_VOLUME_NAME = re.compile(
    r"(?i)(?:\.(?:7z|zip|rar|tar|tgz|gz|bz2|xz|zst|cab|iso|wim)\.\d{2,4}|\.z\d{2,3}|\.part\d{1,4}\.rar|\.r\d{2,3}|\.\d{3})$"
)


def split_volume(name: str) -> str | None:
    """Why a file of no type called `name` is flagged, when its name is a split archive volume's."""
    if _VOLUME_NAME.search(name) is None:
        return None
    return "a volume of a split archive: what it holds is read only when its volumes are joined"


MAX_LZMA_DECODER_BYTES = 200 * MB  # an lzma file's dictionary and its decoder (xz -9e: 64 MB): more is refused
_GIT_HEADER = re.compile(rb"(?:blob|tree|commit|tag) \d{1,20}\0")  # a loose object's, before its content
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")

# documents that embed other files (walk_embedded): the zip-based office formats, under these
# parts, and the OLE2 ones in their object streams
OFFICE_ZIP_TYPES = frozenset({"docx", "xlsx", "pptx", "odt", "ods", "odp"})
_EMBEDDED_PART = re.compile(r"(?i)(?:word|xl|ppt)/embeddings/[^/]+|Object [^/]+")  # (part names: any case)
OLE_DOCUMENT_TYPES = frozenset({"doc", "xls", "ppt", "vsd", "ole2"})
EMBEDDING_TYPES = OFFICE_ZIP_TYPES | OLE_DOCUMENT_TYPES | {"pdf"}  # and a PDF's attachments

# problem kinds, each the detector id it becomes in an event
ENCRYPTED, BOMB, TOO_DEEP, NOT_INSPECTED = (
    "archive_encrypted",
    "archive_bomb",
    "archive_too_deep",
    "archive_not_inspected",
)
TRUNCATED, CORRUPT = "inspection_truncated", "parse_error"
SKIPPED = "archive_member_skipped"  # a member over its own allowance, or not reached; where names it
_TAR_TAIL_BYTES = 64 * 1024  # read after a tar's last header: all zeros, or a header tarfile gave up on
# the member a compressed file holding no tar is read as (bzip2, xz, or gzip -n keep no name)
STREAM_MEMBER = "(content)"
_GZIP_NAME_BYTES = 1024  # the gzip header read for the name it kept (a longer name is not used)


@dataclass(frozen=True)
class Limits:
    max_depth: int = 3
    max_entries: int = 10_000  # over every level together
    max_total_bytes: int = 200 * MB  # hashed, over every level together
    max_decoded_bytes: int = 1024 * MB  # decompressed to reach members (a solid 7z, a tar.gz), hashed or not
    max_member_bytes: int = 100 * MB  # one member's allowance: a bigger one is skipped, named, not hashed
    max_member_seconds: float = 3.0  # one member's allowance of the clock, reading and inspecting it
    max_held_bytes: int = 16 * MB  # a member kept in memory to be inspected or opened as an archive
    max_seconds: float = 10.0


@dataclass(frozen=True)
class Member:
    name: str  # inside the archive; nested levels joined with "!/": drawings.zip!/rev3/pump.dwg
    depth: int  # 1: a member of the archive itself
    size: int  # bytes actually read, not what a header said
    sha256: str
    detections: tuple[Detection, ...] = ()
    # its bytes' sketch (agent/content/chunks.py: the KEEP least chunk fingerprints), so an edited
    # drawing zipped is traced by its bytes as one on its own is; () for one of under SKETCH_MIN_BYTES
    sketch: tuple[int, ...] = ()
    # its text's winnowing fingerprints, as a file's (inspect.text_fingerprints), so an edited
    # document zipped or attached to a message is traced by its text as one on its own is; empty
    # for one without text, and past TEXT_TRACED_FINGERPRINTS in one archive
    fingerprints: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Problem:
    kind: str  # one of the kinds above
    where: str  # the member or nested archive concerned ("" for the archive itself)
    why: str = ""


@dataclass
class Listing:
    members: list[Member] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def detections(self) -> tuple[Detection, ...]:
        """Members' detections summed per detector, then one detection per kind of problem."""
        counts: dict[str, int] = {}
        samples: dict[str, str] = {}
        for d in [d for m in self.members for d in m.detections]:
            counts[d.detector] = counts.get(d.detector, 0) + d.count
            samples.setdefault(d.detector, d.sample)
        for p in self.problems:
            counts[p.kind] = counts.get(p.kind, 0) + 1
            # the kind says enough; member names can hold personal data (张三_身份证号.xlsx).
            # Only an uninspected format's name (e.g. "7z") is ours, not the file's, and a skipped
            # member is named on purpose: an officer must know which member went unread.
            samples.setdefault(p.kind, p.why if p.kind == NOT_INSPECTED else p.where if p.kind == SKIPPED else "")
        return tuple(Detection(k, counts[k], samples[k]) for k in sorted(counts))


class _Walk:
    """One walk's shared budgets over every level: entries, bytes hashed, bytes decoded, time."""

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.budget = Collector(limits.max_total_bytes, limits.max_seconds, clock)  # bytes hashed
        self.decode = Collector(limits.max_decoded_bytes, limits.max_seconds, clock)  # bytes decompressed
        self.deadline = clock() + limits.max_seconds
        self.clock = clock
        self.entries = 0
        self.fingerprints_left = TEXT_TRACED_FINGERPRINTS
        self.encoded = 0  # levels of files written out in a text being read (_carried_in)
        self.listing = Listing()

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise Refused(f"more than {self.limits.max_entries} entries")

    def answers(self) -> int:
        """How many members and problems so far: grows when a member is answered for."""
        return len(self.listing.members) + len(self.listing.problems)

    def problem(self, kind: str, where: str, why: str = "") -> None:
        self.listing.problems.append(Problem(kind, where, why))

    def truncated(self, where: str, why: str) -> None:
        """The walk's budget ran out; said once, however many members it cost."""
        if all(p.kind != TRUNCATED for p in self.listing.problems):
            self.problem(TRUNCATED, where, why)

    def fits(self, name: str, declared_bytes: int) -> bool:
        """Whether a member may be read: within its own allowance and what is left of the walk's. The
        declared size is one its reader stops at (zip, 7z and tar all do), so a lie cannot pass."""
        limits = self.limits
        if declared_bytes > limits.max_member_bytes:
            self.problem(SKIPPED, name, f"{declared_bytes} bytes, over the {limits.max_member_bytes} a member may have")
            return False
        if declared_bytes > self.budget.bytes_left:
            self.truncated("", "archive budget ran out: bytes")
            self.problem(
                SKIPPED, name, f"{declared_bytes} bytes, over the {self.budget.bytes_left} left to the archive"
            )
            return False
        return True


def _in_turn(walk: _Walk, names: list[str], read: Callable[[int], None]) -> None:
    """Read the members in turn; when the walk's clock or decoding budget runs out, each member not
    yet answered for (the one being read, and every one after it) is named before the walk stops."""
    for i in range(len(names)):
        answered = walk.answers()
        try:
            walk.budget.check_time()
            read(i)
        except OutOfBudget as e:
            for name in names[i + (walk.answers() > answered) :]:
                walk.problem(SKIPPED, name, f"not reached: archive budget ran out: {e}")
            raise


def walk_archive(
    source: str | BinaryIO,
    file_type: str,
    limits: Limits = Limits(),
    clock: Callable[[], float] = time.monotonic,
) -> Listing:
    """Every member of the archive, and what could not be read; never raises.

    source is a path, or a seekable binary file already open (the pipeline opens each file once
    and hands the same descriptor to every reader): it is read from offset 0 and left open, at
    whatever offset the walk ended on.
    """
    walk = _Walk(limits, clock)
    try:
        if isinstance(source, str):
            with open(source, "rb") as f:
                _walk(walk, f, file_type, prefix="", depth=1)
        else:
            source.seek(0)
            _walk(walk, source, file_type, prefix="", depth=1)
    except OSError as e:
        walk.listing.problems.append(Problem(CORRUPT, "", f"unreadable: {e.strerror or e}"))
    return walk.listing


def walk_embedded(
    f: BinaryIO, file_type: str, limits: Limits = Limits(), clock: Callable[[], float] = time.monotonic
) -> Listing:
    """The files embedded in an office document or attached to a PDF, each a member as an archive's
    is; never raises.
    A docx, xlsx or pptx keeps them under word/, xl/ or ppt/embeddings/ (a workbook as it is, a
    file inserted as an object in an OLE Package), an ODF document as "Object N"; a legacy doc or
    xls in its storages (_walk_objects). Before, a classified workbook embedded in a presentation,
    or a specification inserted into a memo as an object, left with it unseen: the document's
    text is its own, and a compressible file deflated inside it shares no bytes with its source."""
    walk = _Walk(limits, clock)
    try:
        f.seek(0)
        with _level(walk, "", file_type):
            if file_type in OFFICE_ZIP_TYPES:
                if _may_embed(f):
                    _walk_zip(walk, f, "", 1, only=_EMBEDDED_PART)
            elif file_type in OLE_DOCUMENT_TYPES:
                with ole.opened(f) as container:
                    _walk_objects(walk, container, "", 1)
            elif file_type == "pdf":
                _walk_pdf(walk, f)
    except OSError as e:
        walk.problem(CORRUPT, "", f"unreadable: {e.strerror or e}")
    return walk.listing


_DIRECTORY_TAIL = 4 * MB  # a directory read raw to look for embedded parts' names; a larger one is parsed


def _may_embed(f: BinaryIO) -> bool:
    """Whether the zip's central directory, read raw, holds a name an embedded part has
    ("embeddings/", ODF's "Object "): a deck of hundreds of slides embedding nothing is not
    parsed again (1 ms)."""
    try:
        _, directory_bytes = zipread.directory_extent(f)
    except Refused:
        return True  # (the walk says what is wrong with it)
    if directory_bytes > _DIRECTORY_TAIL:
        return True
    size = f.seek(0, io.SEEK_END)
    f.seek(max(size - directory_bytes - 65_557, 0))  # the directory, then at most the end record and its comment
    tail = f.read(directory_bytes + 65_557).lower()
    return b"embeddings/" in tail or b"object " in tail


def _walk_pdf(walk: _Walk, f: BinaryIO, prefix: str = "", depth: int = 1) -> None:
    """A PDF's attachments (pdf.attachments), each a member named as the PDF names it; one over its
    allowance, or a bomb, named as such."""
    from agent.content import pdf  # (its readers load only when a PDF is read)

    found, problems = pdf.attachments(f, walk.budget.bytes_left, walk.limits.max_member_bytes, walk.budget.check_time)
    for name, why, bomb in problems:
        walk.problem(BOMB if bomb else SKIPPED, prefix + (mime.clean_name(name) or "(attachment)"), why)
    found = [(prefix + (mime.clean_name(name) or "(attachment)"), data) for name, data in found]
    for _ in found:
        walk.entry()
    _in_turn(walk, [name for name, _ in found], lambda i: _member(walk, _pieces(found[i][1]), found[i][0], depth))


def _walk_objects(walk: _Walk, container: olefile.OleFileIO, prefix: str, depth: int) -> None:
    """The files in an OLE2 file's object streams (ole.OBJECT_STREAMS), each a member named by its
    storage and, for a package, the label it was inserted under ("ObjectPool/_1234/pump.dwg")."""
    streams = container.listdir(streams=True, storages=False)
    found = [path for path in streams if path[-1].lower() in ole.OBJECT_STREAMS]
    documents = _embedded_documents(container, streams)
    for _ in (*found, *documents):
        walk.entry()
    names = [prefix + _shown(path) for path in found]

    whole = getattr(container, "_filesize", None)  # a stream is never larger than the file holding it

    def read(i: int) -> None:
        path, name = "/".join(found[i]), names[i]
        try:
            size = container.get_size(path)
            if whole is not None and size > whole:  # a sector chain looping on itself: 100 MB from a few KB
                walk.problem(CORRUPT, name, f"a stream of {size} bytes in a file of {whole}")
                return
            if not walk.fits(name, size):
                return
            data = container.openstream(path).read()
        except (OSError, ValueError, IndexError, struct.error) as e:  # this object's; its siblings are read
            walk.problem(CORRUPT, name, f"corrupt object: {type(e).__name__}"[:200])
            return
        if found[i][-1].lower() == ole.PACKAGE_STREAM:
            packaged = ole.packaged_file(data)
            if packaged is not None:
                label, data = packaged
                name = prefix + _shown([*found[i][:-1], label or "(package)"])
            else:  # an OLE1 object's own data (a Paint picture pasted in): read as it is
                data, name = data[4:], prefix + _shown([*found[i][:-1], "(object)"])
        _member(walk, _pieces(data), name, depth)

    _in_turn(walk, names, read)
    _in_turn(walk, [prefix + name for name, _, _ in documents], lambda i: _read_document(walk, container, *documents[i], prefix, depth))


def member_name(name: str) -> str:
    """An archive member's path as an officer reads it: "/" between its folders as the archive
    keeps them, characters that are not printable (controls, bidirectional overrides) as "?", NULs
    left out, and a folder ending in "!" followed by "_" ("!/" joins a member to the archive it is
    in: a zip's "notes.txt!/pump.dwg" is a member, not pump.dwg inside notes.txt)."""
    if name.isascii() and name.isprintable() and "!/" not in name:
        return name  # nearly every name: nothing to change
    return mime.printable(name.replace("\0", "")).replace("!/", "!_/")


def _shown(path: list[str]) -> str:
    """An OLE2 path as a member is named: each storage's or stream's name made printable as an
    attachment's is (mime.clean_name: no control characters, overrides, "/" or "!/"), "/" between."""
    parts = [mime.clean_name(part) or "_" for part in path]
    return "/".join(part[:-1] + "_" if part.endswith("!") else part for part in parts)  # ("x!" then "/" would be "!/")


# the stream an OLE2 document keeps its content in, and the extension its type is named by
_DOCUMENT_STREAMS = {"worddocument": "doc", "workbook": "xls", "book": "xls", "powerpoint document": "ppt"}


def _embedded_documents(container: olefile.OleFileIO, streams: list[list[str]]) -> list[tuple[str, int, list[list[str]]]]:
    """(name, the storage's depth, its streams) of each document embedded as a storage of its own
    (Word keeps an Excel object as ObjectPool/_1234 holding a Workbook stream): named by the
    storage and its type."""
    found = []
    for storage in container.listdir(streams=False, storages=True):
        depth = len(storage)
        inside = [path for path in streams if len(path) > depth and path[:depth] == storage]
        kinds = [_DOCUMENT_STREAMS[path[-1].lower()] for path in inside if len(path) == depth + 1 and path[-1].lower() in _DOCUMENT_STREAMS]
        if kinds:
            found.append((_shown(storage) + "." + kinds[0], depth, inside))
    return found


def _read_document(
    walk: _Walk, container: olefile.OleFileIO, name: str, below: int, streams: list[list[str]], prefix: str, depth: int
) -> None:
    """A document embedded as a storage, read as a file of its own: its streams put in a compound
    file (agent/content/olewrite.py, up to some 7 MB), so its text is read and traced."""
    from agent.content.olewrite import compound_file

    name = prefix + name
    whole = getattr(container, "_filesize", None)
    try:
        sizes = [container.get_size("/".join(path)) for path in streams]
        if whole is not None and any(size > whole for size in sizes):
            walk.problem(CORRUPT, name, "a stream larger than its file")
            return
        if not walk.fits(name, sum(sizes)):
            return
        rebuilt = compound_file({"/".join(path[below:]): container.openstream("/".join(path)).read() for path in streams})
    except ValueError as e:  # over what a compound file of one header's FAT holds
        walk.problem(NOT_INSPECTED, name, f"an embedded document: {e}"[:200])
        return
    except (OSError, IndexError, struct.error) as e:
        walk.problem(CORRUPT, name, f"corrupt object: {type(e).__name__}"[:200])
        return
    _member(walk, _pieces(rebuilt), name, depth)


def walk_carried(text: str, limits: Limits = Limits(), clock: Callable[[], float] = time.monotonic) -> Listing:
    """The files written out as text in a document's text (agent/content/encoded.py: base64, hex
    dumps, uuencode), each a member as an archive's is; never raises."""
    walk = _Walk(limits, clock)
    _walk_carried(walk, text, "", 1)
    return walk.listing


def _walk_carried(walk: _Walk, text: str, prefix: str, depth: int) -> None:
    """One level of files written out in a text, named by how: "(base64 1)", "(hex 2)", or the
    name a uuencoded block gives ("drawing.dwg (uuencoded)"), the longest first."""
    with _level(walk, prefix.removesuffix("!/"), "text", depth):
        found = []
        for number, piece in enumerate(encoded.carried(text, walk.budget.check_time), 1):
            walk.entry()
            found.append((prefix + carried_name(piece, number), piece.data))

        def read(i: int) -> None:
            name, data = found[i]
            if walk.fits(name, len(data)):
                problems = len(walk.listing.problems)
                _member(walk, _pieces(data), name, depth)
                # a zip or gzip cut short (a log keeps the first KB of an upload's base64) is what
                # the text holds, not a file that could not be read: only its other problems count
                walk.listing.problems[problems:] = [p for p in walk.listing.problems[problems:] if p.kind != CORRUPT]

        _in_turn(walk, [name for name, _ in found], read)


def carried_name(piece: encoded.Carried, number: int) -> str:
    """A file written out in a text, as a member is named: by its encoding and place in turn (the
    explanations tell these names from an archive's by their form: rules/explain_zh.py)."""
    if piece.kind == encoded.UUENCODE and piece.name and (name := mime.clean_name(piece.name)):
        return f"{name} ({encoded.UUENCODE}d)"
    return f"({piece.kind} {number})"


def _walk(walk: _Walk, f: BinaryIO, file_type: str, prefix: str, depth: int) -> None:
    """One level; a problem stops this level only, except an exhausted budget, which stops all."""
    with _level(walk, prefix.removesuffix("!/"), file_type, depth):
        if file_type == "7z":
            _walk_7z(walk, f, prefix, depth)
        elif file_type == "zip":
            _walk_zip(walk, f, prefix, depth)
        elif file_type == "tar":
            _walk_plain_tar(walk, f, prefix, depth)
        elif file_type in ("eml", "emlx"):
            _walk_email(walk, mime.message_window(f, file_type), prefix, depth)
        elif file_type == "mbox":
            _walk_mbox(walk, mime.message_window(f, file_type), prefix, depth)
        elif file_type == "tnef":
            _walk_tnef(walk, f, prefix, depth)
        elif file_type == "msg":
            with ole.opened(f) as container:
                _walk_msg(walk, container, ole_msg.Layout(container), "", prefix, depth)
        else:
            _walk_tar_stream(walk, f, file_type, prefix, depth)


@contextmanager
def _level(walk: _Walk, where: str, file_type: str, depth: int = 1) -> Iterator[None]:
    """Reading one level of an archive: what goes wrong becomes a Problem there and stops that level
    only, except an exhausted budget, which stops the whole walk (said once, at the outermost level)."""
    try:
        yield
    except _Skip as e:
        walk.problem(e.kind, where, e.why)
    except OutOfBudget as e:
        if depth > 1:
            raise  # the whole walk stops; the outermost level says so, once
        walk.truncated(where, f"archive budget ran out: {e}")
    except Refused as e:
        walk.problem(BOMB if _is_bomb(str(e)) else CORRUPT, where, str(e)[:200])
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError, struct.error, *_ZSTD_ERRORS) as e:
        walk.problem(CORRUPT, where, f"corrupt archive: {type(e).__name__}: {e}"[:200])
    except Exception as e:  # noqa: BLE001 - a reader's bug must not stop monitoring; it is logged
        logger.exception("archive walk failed type={}", file_type)
        walk.problem(CORRUPT, where, f"internal error: {type(e).__name__}")


class _Skip(Exception):
    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind, self.why = kind, why


def _is_bomb(why: str) -> bool:
    return any(w in why for w in ("ratio", "overlap", "entries", "too large"))


# --- zip --------------------------------------------------------------------------------------


def _walk_zip(walk: _Walk, f: BinaryIO, prefix: str, depth: int, only: re.Pattern | None = None) -> None:
    """Members smallest first (the central directory gives every size before a byte is read), each
    read on its own: one that is encrypted, corrupt, a bomb or over its allowance is named and the
    walk goes on. `only`: the members whose names it matches whole, the others left alone (a
    document's embedded objects)."""
    z = BoundedZip(f)
    if only is not None and not any(map(only.fullmatch, z.names())):
        return  # (the directory as read plain: zipfile's parse of a deck's hundreds of slides is some 4 ms)
    infos = z.infos()
    if only is not None:  # (what is not read need not be checked for overlaps)
        infos = [i for i in infos if only.fullmatch(i.filename)]
    _refuse_overlaps(f, infos)
    for _ in infos:
        walk.entry()
    # a "directory" is only a name ending in "/": one that holds bytes is read like any member
    # (not ZipInfo.is_dir(), which raises IndexError on an empty name: the whole walk ended there)
    files = sorted((i for i in infos if not i.filename.endswith("/") or i.file_size), key=lambda i: (i.file_size, i.header_offset))

    def read(i: int) -> None:
        info, name = files[i], prefix + member_name(files[i].filename)
        if info.flag_bits & 0x1:
            walk.problem(ENCRYPTED, name)
        elif info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            walk.problem(BOMB, name, f"declares a compression ratio over {MAX_RATIO}")  # not read at all
        elif walk.fits(name, info.file_size):
            try:
                _member(walk, z.chunks(info, walk.decode, walk.limits.max_member_bytes + 1), name, depth)
            except Refused as e:
                walk.problem(BOMB if _is_bomb(str(e)) else CORRUPT, name, str(e)[:200])

    _in_turn(walk, [prefix + member_name(i.filename) for i in files], read)


def _refuse_overlaps(f: BinaryIO, infos: list) -> None:
    """Each member's local header and data must stand apart: shared or quoted ranges are a bomb."""
    end_of_previous = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        f.seek(info.header_offset)
        header = f.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise Refused(f"corrupt zip: no local header for {info.filename}")
        name_len, extra_len = _LOCAL_HEADER.unpack(header)[-2:]
        if info.header_offset < end_of_previous:
            raise Refused(f"overlapping members (zip bomb): {info.filename}")
        end_of_previous = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size


# --- 7z ---------------------------------------------------------------------------------------


def _walk_7z(walk: _Walk, f: BinaryIO, prefix: str, depth: int) -> None:
    """Folders smallest first, each one's members in its order (see _seven_zip_order)."""
    try:
        archive = SevenZip(f, walk.decode, walk.limits.max_entries)
    except Encrypted as e:  # the header itself: not even the names can be read
        raise _Skip(ENCRYPTED, "header") from e
    except Unsupported as e:
        raise _Skip(NOT_INSPECTED, e.why) from e
    for _ in archive.entries:
        walk.entry()
    files = _seven_zip_order([e for e in archive.entries if not e.is_dir])

    def read(i: int) -> None:
        entry, name = files[i], prefix + member_name(files[i].name)
        if entry.size > RATIO_FLOOR_BYTES and entry.size > MAX_RATIO * max(archive.packed_bytes(entry), 1):
            walk.problem(BOMB, name, f"declares a compression ratio over {MAX_RATIO}")  # not read at all
            return
        if not walk.fits(name, entry.size):
            return
        try:
            _member(walk, archive.chunks(entry, walk.limits.max_member_bytes + 1), name, depth)
        except Encrypted:
            walk.problem(ENCRYPTED, name)
        except Unsupported as e:
            walk.problem(NOT_INSPECTED, name, e.why)
        except Refused as e:
            if str(e).startswith(FOLDER_LOST):  # its solid block was lost on an earlier member
                walk.problem(SKIPPED, name, str(e)[:200])
            else:
                walk.problem(BOMB if _is_bomb(str(e)) else CORRUPT, name, str(e)[:200])
        except (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError) as e:  # a decoder choked on its input
            walk.problem(CORRUPT, name, f"corrupt 7z member: {type(e).__name__}: {e}"[:200])

    _in_turn(walk, [prefix + member_name(e.name) for e in files], read)


def _seven_zip_order(entries: list[Entry]) -> list[Entry]:
    """Empty members, then folders by unpacked size, smallest first; within a folder, its order.

    A folder is one compressed stream (a solid block): reaching a member means decoding every one
    before it, so a small member behind padding in the same folder costs the padding's decoding
    (paid from the decoding budget and the clock, not from the bytes hashed). Without solid blocks
    each member is its own folder and this is simply smallest first.
    """
    ends: dict[int, int] = {}
    for e in entries:
        if e.folder is not None:
            ends[e.folder] = max(ends.get(e.folder, 0), e.offset + e.size)
    return sorted(entries, key=lambda e: (-1, -1, 0) if e.folder is None else (ends[e.folder], e.folder, e.offset))


# --- tar --------------------------------------------------------------------------------------


class _GitObject:
    """A zlib stream's content, less the header git puts before a loose object's (`blob 1234\\0`):
    a drawing committed to a repository copied to a stick is its content, not the header and it."""

    def __init__(self, stream: Stage) -> None:
        self._stream, self._head = stream, None

    def read(self, n: int) -> bytes:
        if self._head is None:
            head = b""
            while len(head) < 32 and (piece := self._stream.read(32 - len(head))):
                head += piece
            found = _GIT_HEADER.match(head)
            self._head = head[found.end() :] if found else head
        if self._head:
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._stream.read(n)


class _Counted(io.RawIOBase):
    """A stream whose reads are counted: raw (compressed) bytes, or decompressed ones against the
    walk's decoding budget and ratio, so that even what tarfile skips over is paid for."""

    def __init__(self, inner: BinaryIO, walk: _Walk | None = None, raw: _Counted | None = None) -> None:
        self.inner, self.walk, self.raw = inner, walk, raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        if self.walk is not None:
            self.walk.decode.check_time()
            self.walk.decode.take_bytes(n)
            if (
                self.raw is not None
                and self.count > RATIO_FLOOR_BYTES
                and self.count > MAX_RATIO * max(self.raw.count, 1)
            ):
                raise Refused(f"compression ratio over {MAX_RATIO}")
        return n


def _walk_plain_tar(walk: _Walk, f: BinaryIO, prefix: str, depth: int) -> None:
    """An uncompressed tar is read by seeking: every header first (512 bytes each, the data passed
    over unread), then the members smallest first, as in a zip."""
    f.seek(0)
    with tarfile.open(fileobj=f, mode="r:") as tar:
        files = []
        while (info := tar.next()) is not None:
            walk.entry()
            walk.budget.check_time()
            if info.isreg():
                files.append(info)
        end = tar.offset  # where tarfile stopped reading headers
        files.sort(key=lambda i: (i.size, i.offset))

        def read(i: int) -> None:
            name = prefix + member_name(files[i].name)
            member = tar.extractfile(files[i])
            if member is not None and walk.fits(name, files[i].size):
                _member(walk, _chunks(member, walk), name, depth)

        _in_turn(walk, [prefix + member_name(i.name) for i in files], read)
        f.seek(end)
        _check_tar_end(end, f.read(_TAR_TAIL_BYTES))  # after the members listed before it are read


def _walk_tar_stream(walk: _Walk, f: BinaryIO, file_type: str, prefix: str, depth: int) -> None:
    """A compressed tar is one stream: members in their order, each header's size deciding before
    its data is read whether it fits; a member passed over is still decompressed (paid from the
    decoding budget and the clock). Members after the point the budget ran out are not known, so
    they cannot be named: the inspection_truncated problem says where the walk stopped."""
    stream = _decompressed(walk, f, file_type)
    name = ""
    try:
        opened = tarfile.open(fileobj=stream, mode="r|")  # streaming: no seeks, members in order
    except tarfile.ReadError:  # no tar header at the start: one compressed file (pump.dwg.gz)
        _one_stream(walk, f, file_type, prefix, depth)
        return
    entries = walk.entries
    with opened as tar:
        try:
            for info in tar:
                walk.entry()
                if not info.isreg():
                    continue
                name, answered = prefix + member_name(info.name), walk.answers()
                member = tar.extractfile(info)
                if member is not None and walk.fits(name, info.size):
                    _member(walk, _chunks(member, walk), name, depth)
                name = ""
        except OutOfBudget as e:
            if name and walk.answers() == answered:
                walk.problem(SKIPPED, name, f"not reached: archive budget ran out: {e}")
            raise
        if walk.entries == entries:  # zeros at the start read as a tar's end: its content is the member
            _one_stream(walk, f, file_type, prefix, depth)
            return
        _check_tar_end(tar.offset, tar.fileobj.read(_TAR_TAIL_BYTES))  # tarfile's stream: it holds a buffer


def _one_stream(walk: _Walk, f: BinaryIO, file_type: str, prefix: str, depth: int) -> None:
    """A compressed file that holds no tar: its decompressed content is its one member, named as
    gzip kept it (_stream_name), hashed and inspected as any member."""
    walk.entry()
    name = prefix + _stream_name(f, file_type)  # (reads f's head: before the stream reads f)
    _member(walk, _chunks(_decompressed(walk, f, file_type), walk), name, depth)


def _decompressed(walk: _Walk, f: BinaryIO, file_type: str) -> io.BufferedReader:
    """The decompressed stream of f from its start, paid from the walk's decoding budget."""
    f.seek(0)
    raw = _Counted(f)
    inner = _DECOMPRESSORS[file_type](io.BufferedReader(raw, CHUNK_BYTES))
    return io.BufferedReader(_Counted(inner, walk, raw), CHUNK_BYTES)


def _stream_name(f: BinaryIO, file_type: str) -> str:
    """The member name of a compressed file that holds no tar: the name gzip kept of the file it
    compressed (its header's FNAME, written unless `gzip -n`), without any folders, else
    STREAM_MEMBER. gzip writes it in ISO 8859-1; bzip2 and xz keep no name."""
    if file_type == "gzip":
        f.seek(0)
        head = f.read(_GZIP_NAME_BYTES)
        if len(head) > 10 and head[3] & 0x08:  # FNAME
            at = 10
            if head[3] & 0x04:  # FEXTRA: its length, then its bytes
                at += 2 + int.from_bytes(head[10:12], "little")
            end = head.find(b"\0", at)
            name = head[at:end].decode("latin-1").replace("\\", "/").rsplit("/", 1)[-1] if end > at else ""
            if name.isprintable() and name not in ("", ".", ".."):
                return name
    return STREAM_MEMBER


def _check_tar_end(offset: int, tail: bytes) -> None:
    """tarfile ends quietly at the first header it cannot read; anything but zeros there is refused,
    or a damaged header would hide every member after it."""
    if tail.strip(b"\0"):
        raise Refused(f"corrupt tar: unreadable header at offset {offset}: what follows is not inspected")


def _chunks(member: BinaryIO, walk: _Walk) -> Iterator[bytes]:
    """The member's bytes; the header's size is only an upper bound tarfile stops at."""
    limit = walk.limits.max_member_bytes + 1
    read = 0
    while read < limit:
        chunk = member.read(min(CHUNK_BYTES, limit - read))
        if not chunk:
            return
        read += len(chunk)
        yield chunk


# --- a saved email ----------------------------------------------------------------------------


def _pieces(data: bytes) -> Iterator[bytes]:
    """A member held whole (an attachment decoded), as _member takes its bytes: CHUNK_BYTES at a time."""
    return (data[at : at + CHUNK_BYTES] for at in range(0, len(data), CHUNK_BYTES))


def _walk_email(walk: _Walk, f: BinaryIO, prefix: str, depth: int) -> None:
    """A saved email's attachments (mime.attachments), each a member in the message's order: the
    message is parsed whole first (at most mime.MAX_MESSAGE_BYTES, paid from the decoding budget),
    so every attachment's size is known before it is hashed."""
    message, whole = mime.parse(f, walk.budget.check_time)
    walk.decode.take_bytes(min(f.tell(), walk.decode.bytes_left))
    where = prefix.removesuffix("!/")
    if not whole:
        walk.truncated(where, f"a message over {mime.MAX_MESSAGE_BYTES} bytes: the rest not read")
    for encrypted, why in mime.protections(message):
        walk.problem(ENCRYPTED if encrypted else NOT_INSPECTED, where, why)
    found = []
    for attachment in mime.attachments(message, walk.budget.check_time):
        walk.entry()
        found.append(attachment)
    del message

    def read(i: int) -> None:
        name, data = prefix + found[i].name, found[i].data
        if walk.fits(name, len(data)):
            _member(walk, _pieces(data), name, depth)

    _in_turn(walk, [prefix + a.name for a in found], read)


def _walk_mbox(walk: _Walk, f: BinaryIO, prefix: str, depth: int) -> None:
    """A mailbox's messages in order, each a member ("message-0001.eml", no name from the message:
    a subject may hold personal data) read as a saved email is: its text and, a level down, its
    attachments. A message over mime.MAX_MESSAGE_BYTES is named as skipped past that."""
    for number, (data, whole) in enumerate(mime.messages(f, walk.budget.check_time), 1):
        walk.entry()
        name = f"{prefix}message-{number:04}.eml"
        if not whole:
            walk.problem(SKIPPED, name, f"read to its first {mime.MAX_MESSAGE_BYTES} bytes only")
        if walk.fits(name, len(data)):
            _member(walk, _pieces(data), name, depth)


def _walk_tnef(walk: _Walk, f: BinaryIO, prefix: str, depth: int) -> None:
    """Outlook's winmail.dat: its attachments (tnef.attachments), and its message's text, each a
    member in order; the stream is read whole first (at most mime.MAX_MESSAGE_BYTES)."""
    f.seek(0)
    data = f.read(mime.MAX_MESSAGE_BYTES + 1)
    walk.decode.take_bytes(min(len(data), walk.decode.bytes_left))
    if len(data) > mime.MAX_MESSAGE_BYTES:
        walk.truncated(prefix.removesuffix("!/"), f"a winmail.dat over {mime.MAX_MESSAGE_BYTES} bytes: the rest not read")
        data = data[: mime.MAX_MESSAGE_BYTES]
    found = []
    try:
        for name, content in tnef.attachments(data, walk.budget.check_time):
            walk.entry()
            found.append((name, content))
    except Refused as e:  # what came before the break is read
        walk.problem(CORRUPT, prefix.removesuffix("!/"), str(e))
    del data

    def read(i: int) -> None:
        name, content = prefix + found[i][0], found[i][1]
        if walk.fits(name, len(content)):
            _member(walk, _pieces(content), name, depth)

    _in_turn(walk, [prefix + name for name, _ in found], read)


def _walk_msg(
    walk: _Walk, container: olefile.OleFileIO, layout: ole_msg.Layout, storage: str, prefix: str, depth: int
) -> None:
    """An Outlook message's attachments (ole_msg.attachments), smallest first; a message attached
    to it is walked one level down, its attachments named under its own ("fwd.msg!/pump.dwg"); an
    attachment that is another program's object is named as not inspected."""
    found = list(ole_msg.attachments(container, layout, storage, walk.budget))
    for _ in found:
        walk.entry()
    found.sort(key=lambda a: a.size)

    def read(i: int) -> None:
        attachment, name = found[i], prefix + found[i].name
        if attachment.message is not None:
            if depth >= walk.limits.max_depth:
                walk.problem(TOO_DEEP, name, f"nested deeper than {walk.limits.max_depth}")
            else:
                _walk_msg(walk, container, layout, attachment.message, name + "!/", depth + 1)
        elif attachment.stream is None:
            walk.problem(NOT_INSPECTED, name, "an object of another program attached to a message")
        elif walk.fits(name, attachment.size):
            data = container.openstream(attachment.stream).read()
            _member(walk, _pieces(data), name, depth)

    _in_turn(walk, [prefix + a.name for a in found], read)


# --- members ----------------------------------------------------------------------------------


def _text_fingerprints(walk: _Walk, document, text: str) -> frozenset[int]:
    """The member document's text fingerprints (of `text`, inspect.fingerprinted_text's) while the
    archive's allowance of them lasts."""
    from agent.content import winnow

    if walk.fingerprints_left <= 0 or len(document.parts) <= 1:  # (the first part is the name)
        return frozenset()
    found = winnow.fingerprints(text)
    if len(found) > walk.fingerprints_left:
        return frozenset()
    walk.fingerprints_left -= len(found)
    return found


def _carried_in(walk: _Walk, text: str, name: str, depth: int) -> None:
    """The files written out in a member's text (base64 in a .txt zipped), named under it. An
    encoding is no level of archive: they are at the member's depth, so a text at the deepest
    level is read for them (a zipped HTML page's inline image was said too deep), and a file
    written out in a text written out (a Helm release's base64 of base64) is read up to
    MAX_ENCODED levels."""
    if walk.encoded >= MAX_ENCODED:  # deeper still: said, not passed over
        if next(encoded.carried(text, walk.budget.check_time), None) is not None:
            walk.problem(TOO_DEEP, name, f"a file written out in a text more than {MAX_ENCODED} times over")
        return
    walk.encoded += 1
    try:
        _walk_carried(walk, text, name + "!/", depth)
    finally:
        walk.encoded -= 1


def _embedded_in(walk: _Walk, data: BinaryIO, file_type: str, name: str, depth: int) -> None:
    """The files a member document embeds or a member PDF has attached (a memo zipped or mailed), a
    level down; named as too deep past the deepest level when there are any."""
    from agent.content import pdf

    data.seek(0)
    with _level(walk, name, file_type, depth + 1):
        if file_type == "pdf":
            if depth < walk.limits.max_depth:
                _walk_pdf(walk, data, name + "!/", depth + 1)
            elif pdf.attachments(data, walk.budget.bytes_left, walk.limits.max_member_bytes, walk.budget.check_time)[0]:
                walk.problem(TOO_DEEP, name, f"nested deeper than {walk.limits.max_depth}")
            return
        if not _may_embed(data):  # (a raw look at its directory, as for a document on its own)
            return
        if depth < walk.limits.max_depth:
            _walk_zip(walk, data, name + "!/", depth + 1, only=_EMBEDDED_PART)  # (it parses the names once)
        elif any(map(_EMBEDDED_PART.fullmatch, BoundedZip(data).names())):
            walk.problem(TOO_DEEP, name, f"nested deeper than {walk.limits.max_depth}")


def _objects_in(walk: _Walk, data: BinaryIO, name: str, depth: int) -> None:
    """The files in a member's object streams (a docx's oleObject1.bin), a level down."""
    data.seek(0)
    with _level(walk, name, "ole2", depth + 1), ole.opened(data) as container:
        streams = container.listdir(streams=True, storages=False)
        if not any(path[-1].lower() in ole.OBJECT_STREAMS for path in streams) and not _embedded_documents(container, streams):
            return
        if depth >= walk.limits.max_depth:
            walk.problem(TOO_DEEP, name, f"nested deeper than {walk.limits.max_depth}")
            return
        _walk_objects(walk, container, name + "!/", depth + 1)


def _member(walk: _Walk, chunks: Iterator[bytes], name: str, depth: int) -> None:
    """Hash the member within its own allowance of bytes and time, and what is left of the walk's
    (over either, it is named as skipped); hold it in memory when small, to inspect it or open it
    as an archive."""
    limits = walk.limits
    started = walk.clock()
    digest = hashlib.sha256()
    chunker = Chunker(keep=KEEP) if NATIVE and len(walk.listing.members) < SKETCHED_MEMBERS else None
    held: list[bytes] = []
    holding = True
    size = 0
    for chunk in chunks:
        walk.budget.check_time()
        size += len(chunk)
        if size > limits.max_member_bytes:
            walk.problem(SKIPPED, name, f"over the {limits.max_member_bytes} bytes a member may have")
            return
        if walk.clock() - started > limits.max_member_seconds:
            walk.problem(SKIPPED, name, f"over the {limits.max_member_seconds:g} s a member may take")
            return
        if len(chunk) > walk.budget.bytes_left:
            walk.truncated("", "archive budget ran out: bytes")
            walk.problem(SKIPPED, name, "over what is left of the archive budget")
            return
        walk.budget.take_bytes(len(chunk))
        digest.update(chunk)
        if chunker is not None:
            chunker.feed(chunk)
        holding = holding and size <= limits.max_held_bytes
        if holding:
            held.append(chunk)
        elif held:
            held.clear()
    sketch = tuple(chunker.finish()) if chunker is not None and size >= SKETCH_MIN_BYTES else ()
    if not holding:
        walk.listing.members.append(Member(name, depth, size, digest.hexdigest(), sketch=sketch))
        return
    data = io.BytesIO(b"".join(held))
    held.clear()
    try:
        inner_type = filetype.detect_file(data)
    except (ValueError, OverflowError):  # a crafted member must not end the walk of its siblings
        inner_type = None
    if inner_type not in ARCHIVE_TYPES or inner_type in MESSAGE_TYPES:  # a message: its text, then its attachments
        now = walk.clock()
        seconds_left = max(min(walk.deadline - now, limits.max_member_seconds - (now - started)), 0.0)
        document = extract_file(
            data, name.rsplit("/", 1)[-1], max_bytes=limits.max_held_bytes, max_seconds=seconds_left
        )
        from agent.content.inspect import fingerprinted_text, searched_text  # (inspect walks archives with this module)

        text = fingerprinted_text(document)  # (joined once: fingerprinted, then searched for files written out)
        fingerprints = _text_fingerprints(walk, document, text)
        walk.listing.members.append(Member(name, depth, size, digest.hexdigest(), detect(document), sketch, fingerprints))
        if document.problem:  # a member its reader could not read is said, as the file alone is (before: a
            # password-protected docx zipped left with no word of it)
            walk.problem(ENCRYPTED if document.problem == "encrypted" else CORRUPT, name, document.problem[:200])
        if inner_type in UNREAD_ARCHIVE_TYPES:
            walk.problem(NOT_INSPECTED, name, inner_type)
        if inner_type not in MESSAGE_TYPES or inner_type in TEXT_SEARCHED_TYPES:  # (an .eml's walk reads its text for them)
            _carried_in(walk, searched_text(data, document, text, limits.max_held_bytes), name, depth)
        if inner_type not in MESSAGE_TYPES:
            if inner_type in OLE_DOCUMENT_TYPES:  # an object embedded in a document: the file it holds
                _objects_in(walk, data, name, depth)
            elif inner_type in OFFICE_ZIP_TYPES or inner_type == "pdf":  # a memo zipped: what it embeds
                _embedded_in(walk, data, inner_type, name, depth)
            return
        data.seek(0)
    else:
        walk.listing.members.append(Member(name, depth, size, digest.hexdigest()))
    if depth >= limits.max_depth:
        walk.problem(TOO_DEEP, name, f"nested deeper than {limits.max_depth}")
    else:
        _walk(walk, data, inner_type, name + "!/", depth + 1)
