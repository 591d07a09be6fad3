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
import struct
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from loguru import logger

from agent.content import filetype
from agent.content.budget import Collector, OutOfBudget, Refused
from agent.content.detectors import detect
from agent.content.extract import extract_file
from agent.content.sevenzip import Encrypted, SevenZip, Unsupported
from agent.content.zipread import MAX_RATIO, RATIO_FLOOR_BYTES, BoundedZip
from rules.events import Detection

MB = 1024 * 1024
CHUNK_BYTES = 64 * 1024
ARCHIVE_TYPES = frozenset({"zip", "tar", "gzip", "bzip2", "xz", "7z"})
_DECOMPRESSORS: dict[str, Callable[[BinaryIO], BinaryIO]] = {
    "gzip": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    "bzip2": lambda f: bz2.BZ2File(f, mode="rb"),
    "xz": lambda f: lzma.LZMAFile(f, mode="rb"),
}
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")

# problem kinds, each the detector id it becomes in an event
ENCRYPTED, BOMB, TOO_DEEP, NOT_INSPECTED = (
    "archive_encrypted",
    "archive_bomb",
    "archive_too_deep",
    "archive_not_inspected",
)
TRUNCATED, CORRUPT = "inspection_truncated", "parse_error"


@dataclass(frozen=True)
class Limits:
    max_depth: int = 3
    max_entries: int = 10_000  # over every level together
    max_total_bytes: int = 200 * MB  # decompressed, over every level together
    max_member_bytes: int = 100 * MB  # a bigger member is not hashed (its hash would be wrong)
    max_held_bytes: int = 16 * MB  # a member kept in memory to be inspected or opened as an archive
    max_seconds: float = 10.0


@dataclass(frozen=True)
class Member:
    name: str  # inside the archive; nested levels joined with "!/": drawings.zip!/rev3/pump.dwg
    depth: int  # 1: a member of the archive itself
    size: int  # bytes actually read, not what a header said
    sha256: str
    detections: tuple[Detection, ...] = ()


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
            # Only an uninspected format's name (e.g. "7z") is ours, not the file's.
            samples.setdefault(p.kind, p.why if p.kind == NOT_INSPECTED else "")
        return tuple(Detection(k, counts[k], samples[k]) for k in sorted(counts))


class _Walk:
    """One walk's shared budget: entries, decompressed bytes and time over every level."""

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.budget = Collector(limits.max_total_bytes, limits.max_seconds, clock)
        self.deadline = clock() + limits.max_seconds
        self.clock = clock
        self.entries = 0
        self.listing = Listing()

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise Refused(f"more than {self.limits.max_entries} entries")


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


def _walk(walk: _Walk, f: BinaryIO, file_type: str, prefix: str, depth: int) -> None:
    """One level; a problem stops this level only, except an exhausted budget, which stops all."""
    where = prefix.removesuffix("!/")
    try:
        if file_type == "7z":
            _walk_7z(walk, f, prefix, depth)
        elif file_type == "zip":
            _walk_zip(walk, f, prefix, depth)
        else:
            _walk_tar(walk, f, file_type, prefix, depth)
    except _Skip as e:
        walk.listing.problems.append(Problem(e.kind, where, e.why))
    except OutOfBudget as e:
        if depth > 1:
            raise  # the whole walk stops; the outermost level says so, once
        walk.listing.problems.append(Problem(TRUNCATED, where, f"archive budget ran out: {e}"))
    except Refused as e:
        walk.listing.problems.append(Problem(BOMB if _is_bomb(str(e)) else CORRUPT, where, str(e)[:200]))
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError, struct.error) as e:
        walk.listing.problems.append(Problem(CORRUPT, where, f"corrupt archive: {type(e).__name__}: {e}"[:200]))
    except Exception as e:  # noqa: BLE001 - a reader's bug must not stop monitoring; it is logged
        logger.exception("archive walk failed type={}", file_type)
        walk.listing.problems.append(Problem(CORRUPT, where, f"internal error: {type(e).__name__}"))


class _Skip(Exception):
    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind, self.why = kind, why


def _is_bomb(why: str) -> bool:
    return any(w in why for w in ("ratio", "overlap", "entries", "too large"))


# --- zip --------------------------------------------------------------------------------------


def _walk_zip(walk: _Walk, f: BinaryIO, prefix: str, depth: int) -> None:
    z = BoundedZip(f)
    infos = z.infos()
    _refuse_overlaps(f, infos)
    for info in infos:
        walk.entry()
        walk.budget.check_time()
        if info.is_dir():
            continue
        name = prefix + info.filename
        if info.flag_bits & 0x1:
            walk.listing.problems.append(Problem(ENCRYPTED, name))
            continue
        try:
            _member(walk, z.chunks(info.filename, walk.budget, walk.limits.max_member_bytes + 1), name, depth)
        except Refused as e:
            if _is_bomb(str(e)):
                raise
            walk.listing.problems.append(Problem(CORRUPT, name, str(e)[:200]))


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
    try:
        archive = SevenZip(f, walk.budget, walk.limits.max_entries)
    except Encrypted as e:  # the header itself: not even the names can be read
        raise _Skip(ENCRYPTED, "header") from e
    except Unsupported as e:
        raise _Skip(NOT_INSPECTED, e.why) from e
    for entry in archive.entries:
        walk.entry()
        walk.budget.check_time()
        if entry.is_dir:
            continue
        name = prefix + entry.name
        try:
            _member(walk, archive.chunks(entry, walk.limits.max_member_bytes + 1), name, depth)
        except Encrypted:
            walk.listing.problems.append(Problem(ENCRYPTED, name))
        except Unsupported as e:
            walk.listing.problems.append(Problem(NOT_INSPECTED, name, e.why))
        except Refused as e:
            if _is_bomb(str(e)):
                raise
            walk.listing.problems.append(Problem(CORRUPT, name, str(e)[:200]))
        except (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError) as e:  # a decoder choked on its input
            walk.listing.problems.append(Problem(CORRUPT, name, f"corrupt 7z member: {type(e).__name__}: {e}"[:200]))


# --- tar --------------------------------------------------------------------------------------


class _Counted(io.RawIOBase):
    """A stream whose reads are counted: raw (compressed) bytes, or decompressed ones against the
    walk's budget and ratio, so that even what tarfile skips over is paid for."""

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
            self.walk.budget.check_time()
            self.walk.budget.take_bytes(n)
            if (
                self.raw is not None
                and self.count > RATIO_FLOOR_BYTES
                and self.count > MAX_RATIO * max(self.raw.count, 1)
            ):
                raise Refused(f"compression ratio over {MAX_RATIO}")
        return n


def _walk_tar(walk: _Walk, f: BinaryIO, file_type: str, prefix: str, depth: int) -> None:
    f.seek(0)
    raw = _Counted(f)
    if file_type == "tar":
        stream: BinaryIO = io.BufferedReader(_Counted(f, walk), CHUNK_BYTES)
    else:
        inner = _DECOMPRESSORS[file_type](io.BufferedReader(raw, CHUNK_BYTES))
        stream = io.BufferedReader(_Counted(inner, walk, raw), CHUNK_BYTES)
    with tarfile.open(fileobj=stream, mode="r|") as tar:  # streaming: no seeks, members in order
        for info in tar:
            walk.entry()
            if not info.isreg():
                continue
            member = tar.extractfile(info)
            if member is not None:
                _member(walk, _chunks(member, walk), prefix + info.name, depth)


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


# --- members ----------------------------------------------------------------------------------


def _member(walk: _Walk, chunks: Iterator[bytes], name: str, depth: int) -> None:
    """Hash the member; hold it in memory when small, to inspect it or open it as an archive."""
    limits = walk.limits
    digest = hashlib.sha256()
    held: list[bytes] = []
    holding = True
    size = 0
    for chunk in chunks:
        walk.budget.check_time()
        size += len(chunk)
        if size > limits.max_member_bytes:
            walk.listing.problems.append(Problem(TRUNCATED, name, f"member over {limits.max_member_bytes} bytes"))
            return
        digest.update(chunk)
        holding = holding and size <= limits.max_held_bytes
        if holding:
            held.append(chunk)
        elif held:
            held.clear()
    if not holding:
        walk.listing.members.append(Member(name, depth, size, digest.hexdigest()))
        return
    data = io.BytesIO(b"".join(held))
    held.clear()
    try:
        inner_type = filetype.detect_file(data)
    except (ValueError, OverflowError):  # a crafted member must not end the walk of its siblings
        inner_type = None
    if inner_type not in ARCHIVE_TYPES:
        seconds_left = max(walk.deadline - walk.clock(), 0.0)
        document = extract_file(
            data, name.rsplit("/", 1)[-1], max_bytes=limits.max_held_bytes, max_seconds=seconds_left
        )
        walk.listing.members.append(Member(name, depth, size, digest.hexdigest(), detect(document)))
        return
    walk.listing.members.append(Member(name, depth, size, digest.hexdigest()))
    if depth >= limits.max_depth:
        walk.listing.problems.append(Problem(TOO_DEEP, name, f"nested deeper than {limits.max_depth}"))
    else:
        _walk(walk, data, inner_type, name + "!/", depth + 1)
