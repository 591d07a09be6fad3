"""Byte lineage: the content-defined chunks of a file without text, and their fingerprints.

A drawing, a CAD model or a firmware image has no text to winnow (agent/content/winnow.py), so
until this module it was traced by its exact bytes only: one byte put in front of it, appended or
changed, and its copy on a stick was a stranger. Here its bytes are cut into chunks where the bytes
themselves say (content-defined chunking, as rsync and backup tools dedupe with), so such an edit
changes the one or two chunks it touches and leaves every other chunk, and its fingerprint, as it
was. A file whose chunks are mostly a classified file's is traced to it (agent/index.py,
`lookup_bytes`).

- A gear hash rolls over every byte: h = (h << 1) + GEAR[byte] (mod 2**64), h = 0 where a chunk
  begins. GEAR is 256 numbers of splitmix64 from GEAR_SEED. A bit of h depends on the last 64
  bytes only, so where a chunk ends depends on the bytes just before, not on where they stand.
- A chunk ends after the byte where the top MASK_BITS bits of h are zero, once it holds MIN_BYTES,
  or at MAX_BYTES: on random bytes some 1.3 KiB on average, so a 24 KiB file has about 18.
- A chunk whose first LOW_BYTES hold fewer than MIN_DISTINCT distinct byte values (padding, a
  fill, a short repeated pattern, a table of small integers) has no fingerprint: such chunks
  recur in unrelated files. The others' fingerprint is a 47-bit hash of their bytes (`chunk_hash`).
- The index keeps a sketch of each classified file without text: its KEEP least fingerprints
  (bottom-k, as MinHash does), so a 2 GB model costs the index what a 170 KB one does. A copy's
  share of them estimates the share of the file it keeps.

The C extension agent.content._chunks (setup.py, optional) does the same in one pass at some 2 GB/s;
the Python here is the reference it is tested against. It runs at some 3 MB a second, too slow for
an agent (a burst, an index of drawings, an archive's members), so where the extension was not
built (`NATIVE` false: the aarch64 and Windows wheels) byte lineage is off: the index sketches
nothing, so the lanes chunk nothing, and archive members are not sketched. `_PureChunker` (the
first PURE_MAX_BYTES of a file) stays for the tests that hold the C loop to it.
"""

from __future__ import annotations

import bisect
import sys
from array import array
from collections.abc import Callable, Iterable

try:
    from agent.content import _chunks
except ImportError:  # built without the C extension (MIWEI_PURE_WHEEL): the reference below
    _chunks = None

NATIVE = _chunks is not None
MIN_BYTES = 256
MAX_BYTES = 8192
MASK_BITS = 10
LOW_BYTES = 256
MIN_DISTINCT = 16
HASH_BITS = 47
KEEP = 128  # fingerprints the index keeps of one classified file (its least)
GEAR_SEED = 0x4D6957656943  # "MiWeiC"
HEAD_BYTES = 8192  # agent.content.filetype.HEAD_BYTES: what tells a text from a binary
PURE_MAX_BYTES = 1 << 20  # what _PureChunker keeps of a file
M64 = (1 << 64) - 1
_MASK = ((1 << MASK_BITS) - 1) << (64 - MASK_BITS)


def _splitmix64(seed: int, count: int) -> list[int]:
    out, state = [], seed
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        out.append(z ^ (z >> 31))
    return out


GEAR = tuple(_splitmix64(GEAR_SEED, 256))


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & M64


def _mix(h: int, w: int) -> int:
    return (_rotl(h ^ ((w * 0x9E3779B97F4A7C15) & M64), 27) * 0xC2B2AE3D27D4EB4F) & M64


def chunk_hash(chunk: bytes) -> int:
    """The 47-bit fingerprint of a chunk: its 8-byte little-endian words (the last zero-padded),
    the even ones mixed in order into one lane and the odd ones into another (the C loop runs the
    two side by side), the lanes and the length combined, then murmur3's finaliser."""
    lanes = [0x243F6A8885A308D3, 0x13198A2E03707344]
    for k, i in enumerate(range(0, len(chunk), 8)):
        lanes[k % 2] = _mix(lanes[k % 2], int.from_bytes(chunk[i : i + 8], "little"))
    h = lanes[0] ^ _rotl(lanes[1], 31) ^ len(chunk)
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    h ^= h >> 33
    return h >> (64 - HASH_BITS)


def chunks(data: bytes) -> list[bytes]:
    """The content-defined chunks of data (the reference: a loop a byte)."""
    out, start, h = [], 0, 0
    for i, byte in enumerate(data):
        h = ((h << 1) + GEAR[byte]) & M64
        size = i + 1 - start
        if (size >= MIN_BYTES and not h & _MASK) or size >= MAX_BYTES:
            out.append(data[start : i + 1])
            start, h = i + 1, 0
    if start < len(data):
        out.append(data[start:])
    return out


def varied(chunk: bytes) -> bool:
    """Whether a chunk has a fingerprint: MIN_DISTINCT byte values in its first LOW_BYTES."""
    return len(set(chunk[:LOW_BYTES])) >= MIN_DISTINCT


def reference_fingerprints(data: bytes) -> list[int]:
    """Every chunk's fingerprint in order, repeats kept (the reference the C loop is held to)."""
    return [chunk_hash(c) for c in chunks(data) if varied(c)]


class _PureChunker:
    """The reference fed in pieces (what Chunker gives where the C extension was not built, which
    the agent then does not ask for): the first PURE_MAX_BYTES of a file are kept until finish()
    and the rest is not looked at."""

    def __init__(self, filter: array | None = None, keep: int = 0) -> None:
        self._filter = filter
        self._keep = keep
        self._data = bytearray()

    def feed(self, data) -> None:
        room = PURE_MAX_BYTES - len(self._data)
        if room > 0:
            self._data += data[:room]

    def finish(self):
        made = reference_fingerprints(bytes(self._data))
        if self._filter is not None:
            return len(made), sorted({fp for fp in made if _holds(self._filter, fp)})
        least = sorted(set(made))
        return least[: self._keep] if self._keep else least


def _holds(sorted_values: array, value: int) -> bool:
    at = bisect.bisect_left(sorted_values, value)
    return at < len(sorted_values) and sorted_values[at] == value


def Chunker(filter: array | None = None, keep: int = 0):  # noqa: N802 (a class where the C module is built)
    """A chunker fed a file's bytes in order (`feed`), then asked `finish()`: with `filter` (a
    Prefilter's values), (fingerprints made, sorted list of those in the filter); else the sorted
    distinct fingerprints, the `keep` least when keep > 0."""
    if _chunks is not None:
        return _chunks.Chunker(filter, keep)
    return _PureChunker(filter, keep)


def sketch(path: str, read_bytes: int = 1 << 20) -> list[int]:  # the index's `sketch` where NATIVE
    """The index's sketch of the file at path: its KEEP least fingerprints (sorted)."""
    chunker = Chunker(keep=KEEP)
    with open(path, "rb", buffering=0) as f:
        while data := f.read(read_bytes):
            chunker.feed(data)
    return chunker.finish()


class SketchLook:
    """A sketch taken as a file is hashed (hashing.Hasher.digest_fd's `look`, fed each chunk
    read in order), unless its first bytes may hold text (`may_hold_text(head)`: the index
    fingerprints a text's words instead). `packed()`: the sketch as the index stores it, or None
    for a text. The index's builds take it in the same read as the hash (agent/hashpool.py)."""

    __slots__ = ("_chunker", "_may_hold_text", "_first", "text")

    def __init__(self, may_hold_text: Callable[[bytes], bool]) -> None:
        self._chunker = Chunker(keep=KEEP) if NATIVE else None  # no byte lineage without the C loop
        self._may_hold_text = may_hold_text
        self._first = True
        self.text: bool | None = None  # may_hold_text's answer for the head, once asked

    def __call__(self, view: memoryview) -> None:
        if self._chunker is None:
            return
        if self._first:
            self._first = False
            self.text = self._may_hold_text(bytes(view[:HEAD_BYTES]))
            if self.text:
                self._chunker = None
                return
        self._chunker.feed(view)

    def packed(self) -> bytes | None:
        if self._chunker is None:
            return None
        if NATIVE:
            return self._chunker.finish_packed()  # no Python int a fingerprint (a build sketches 100,000 files)
        return packed(self._chunker.finish())


def packed(fingerprints: list[int]) -> bytes:
    """A sketch as the index stores it: sorted, 8 bytes each, little-endian."""
    return array_le(sorted(fingerprints)).tobytes()


def array_le(values: Iterable[int]) -> array:
    made = array("Q", values)
    if sys.byteorder == "big":
        made.byteswap()
    return made


class Prefilter:
    """The fingerprints of every sketch the index holds, sorted in one array of 8-byte integers
    (`values`, which the lane's chunker looks each chunk's fingerprint up in without the GIL),
    with the sketch holding each beside it (`owners`: a fingerprint two sketches hold is there
    twice). Only a chunk found here is looked up further, so a burst of unrelated files asks the
    database nothing. 16 bytes a fingerprint: 2 KB a drawing of 170 KB or more (KEEP), 20 MB for
    10,000 of them, and some 50 MB more while the array is sorted.
    Built without numpy: importing it in the agent started a thread of its own that took some
    30 µs of CPU a file of a burst (a sort of 1,000,000 fingerprints takes about a second)."""

    __slots__ = ("values", "owners")

    def __init__(self, values: array, owners: array) -> None:
        self.values, self.owners = values, owners

    @classmethod
    def of(cls, sketches: Iterable[tuple[int, bytes]]) -> Prefilter:
        """From the index's (sketch id, packed hashes) rows."""
        ids: list[int] = []
        keys: list[int] = []  # fingerprint << 32 | the sketch's place in ids: one int sort, no tuples
        for sketch, hashes in sketches:
            if len(hashes) % 8:  # not what the index writes (a damaged file): that sketch is left out
                continue
            part = array("Q", hashes)
            if sys.byteorder == "big":
                part.byteswap()
            place = len(ids)
            ids.append(sketch)
            keys += [h << 32 | place for h in part]
        keys.sort()
        return cls(array("Q", [k >> 32 for k in keys]), array("q", [ids[k & 0xFFFFFFFF] for k in keys]))

    def __len__(self) -> int:
        return len(self.values)

    def holders(self, fingerprint: int) -> list[int]:
        """The sketches holding this fingerprint."""
        lo = bisect.bisect_left(self.values, fingerprint)
        hi = bisect.bisect_right(self.values, fingerprint, lo)
        return self.owners[lo:hi].tolist()
