"""The fingerprints of winnow.py in whole-text passes (numpy), without a Python loop per byte, gram
or line: inspection's hot path (issue 21: 20 MB/s of text per core).

winnow.py is the reference and says what the fingerprints are; this module computes the same
values (tests/agent/content/test_winnow_fast.py compares the two on random and realistic texts),
so an index built by either is the same. The text's lines are read CHUNK_CHARS at a time (a
table's run of lines carried from one chunk to the next, the anchors capped over all chunks, the
grams chosen from one normalised text), so memory stays some 30 MB for the longest text. How each
step is done in one pass over a chunk:

- Normalisation: the lines are joined by "\\n", NFKC-normalised and casefolded once; a table
  of the characters `[\\W_]` does not match (built from that very regex) keeps the letters and
  digits. "\\n" is kept where lines are needed, so each line's normalised text is a slice of one
  array (NFKC never composes across a line break, which is a starter).
- Ranks: the CRC-32 of a 24-byte gram is an affine function of its bytes, so the CRC-32 of every
  gram is the XOR of 12 lookups of its byte pairs in precomputed tables (one numpy gather per
  pair position). The rightmost smallest rank of each window is a sliding minimum of
  rank << 32 | ~offset, from minima over doubled spans (log2 W passes), CHUNK_BYTES of grams at a
  time.
- Stored hashes: blake2b of the chosen grams only (about one per 45 bytes), each a copy of one
  prepared hasher (cheaper than the constructor with its keyword).
- Tables: cell boundaries of `\\t|\\||\\s{2,}` after strip() from character classes (a white-space
  run splits unless it is one non-tab character after tabs only), long cells per line by
  bincount, the cells of the runs between prose lines normalised in one pass.
- Lines as anchors: clause numbers stripped by one regex pass from each line break (the chunk
  given one in front, so re jumps from break to break); lengths per line from the offsets of
  the line breaks in the normalised text; the boilerplate probes prefiltered by
  their CRC-32 against the boilerplate grams' (a probe whose CRC matches is then hashed exactly);
  the generic share from CJK pairs looked up in a sorted array and words through one dict;
  marking lines from one RE2 pass per pattern over the chunk's UTF-8 (the star forms' only where
  the chunk has a star), each match's line counted from the match before.

Native path: where the C extension agent.content._winnow was built (setup.py, optional), these
steps run in it instead: the grams chosen (a rolling CRC-32 of every gram, two table lookups a
byte in four independent chains, and the windows' rightmost minima over blocks of W keys),
blake2b of the chosen grams and lines (no Python object per hash, four messages side by side in
vector lanes), the boilerplate probes' CRC-32 looked up in a hash set, NFKC of a chunk whose
every character is in a table built here from unicodedata (characters whose compatibility
decomposition holds no character that can compose with another; a combining mark, Hangul jamo or
a character beyond the BMP sends the chunk to unicodedata), casefold and the letters-and-digits
mask by table, the table cells' cuts, each line's normalised UTF-8 with its size and
boilerplate probes (the grams' bytes are those lines without their breaks), each line's generic
share, whether any line may start with a clause number and which lines a marking term may match
in (only those are searched, unless there are many: then one pass over the chunk), and the
boilerplate's grams dropped from the result by a mask (the frozenset made once). NFKC gives the
text itself back when no character changes; fold takes one pass when every character folds to one.
Without it the numpy passes below run, with the same values (tests/agent/content/
test_winnow_native.py compares the three paths; test_winnow_fast.py runs on both).

The only way the two can differ is a 47-bit blake2b collision between a probe gram that is not in
the boilerplate and one that is (about 5e-11 a probe): the reference would call that line
boilerplate.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import unicodedata
import zlib
from collections.abc import Callable
from functools import cache, partial
from itertools import accumulate, repeat

import numpy as np
from loguru import logger

from agent.content import marking_terms, winnow

try:
    from agent.content import _winnow as _native  # the C loops (setup.py); optional
except ImportError:
    _native = None
logger.debug("winnowing path={}", "native" if _native is not None else "numpy")

CHUNK_BYTES = 1 << 18  # window starts per chunk: ranks and keys of about 2 MB held at once
CHUNK_CHARS = 1 << 18  # characters of lines per pass for the rest: arrays of some 10 MB at most
_NEWLINE = 10
_MAX_KEY = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_LOW32 = np.uint64(0xFFFF_FFFF)
_CJK_SHIFT = 21  # a CJK token's key: first character << 21 | second (0 for a single character)

# a line's clause number, found after the "\n" that starts its line (the text is given one more in
# front): a literal first character lets re skip to the line breaks instead of trying every position
_ENUMERATION_LINES = re.compile(
    "\n" + winnow._ENUMERATION.pattern.removeprefix("^").replace(r"\s", r"[^\S\n]"), winnow._ENUMERATION.flags
)


def fingerprints(
    text: str, gram_bytes: int = winnow.GRAM_BYTES, window_bytes: int = winnow.WINDOW_BYTES
) -> frozenset[int]:
    """winnow.fingerprints(text), computed in whole-text passes over CHUNK_CHARS of lines at a time."""
    boilerplate = winnow.boilerplate_hashes(gram_bytes)
    normalised: list[bytes] = []
    anchors: list[np.ndarray] = []
    tables = _Tables()
    for chunk in _chunks(text[: winnow.MAX_TEXT_CHARS]):
        nfkc = _nfkc(chunk)
        folded, word = _casefolded(nfkc)
        words: list[bytes] = []
        anchors.append(_line_hashes(chunk, gram_bytes, boilerplate, (nfkc, folded, word), words))
        normalised.append(words[0] if words else _utf8(folded[word]))
        tables.add(chunk)
    grams = [_winnowed_array(b"".join(normalised), gram_bytes, window_bytes)]
    for cells in tables.blocks():
        grams.append(_winnowed_array("".join(cells).encode("utf-8"), gram_bytes, window_bytes))
    return _result(np.concatenate(grams), gram_bytes, _capped_array(anchors))


def _result(grams: np.ndarray, gram_bytes: int, anchors: np.ndarray) -> frozenset[int]:
    """The grams' hashes but the boilerplate's, and the anchors (never a gram's: ANCHOR_BIT). By
    the native path: the boilerplate's grams dropped by a mask and the set made once from one list
    (no set a step, no copy into the frozenset); else one set changed in place (the reference)."""
    if _native is not None:
        kept = grams[np.frombuffer(_native.absent(grams, _boilerplate_hash_keys(gram_bytes)), dtype=bool)]
        return frozenset(np.concatenate((kept, anchors)).tolist())
    found = set(grams.tolist())
    found -= winnow.boilerplate_hashes(gram_bytes)
    found.update(anchors.tolist())
    return frozenset(found)


@cache
def _boilerplate_hash_keys(gram_bytes: int) -> np.ndarray:
    """winnow.boilerplate_hashes(gram_bytes) as int64, for _winnow.absent."""
    return np.array(sorted(winnow.boilerplate_hashes(gram_bytes)), dtype=np.int64)


def line_anchors(text: str, gram_bytes: int = winnow.GRAM_BYTES, boilerplate: frozenset[int] = frozenset()) -> set[int]:
    """winnow.line_anchors(text, gram_bytes, boilerplate)."""
    chunks = _chunks(text[: winnow.MAX_TEXT_CHARS])
    return _capped([_line_hashes(chunk, gram_bytes, boilerplate, None) for chunk in chunks])


def table_blocks(text: str) -> list[list[str]]:
    """winnow.table_blocks(text)."""
    tables = _Tables()
    for chunk in _chunks(text):
        tables.add(chunk)
    return tables.blocks()


# what str.splitlines() breaks a line at besides "\n"
_OTHER_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # each looked for by `in` (a memchr-like scan)


def _chunks(text: str) -> list[str]:
    """The text's lines (str.splitlines) joined by "\\n", about CHUNK_CHARS at a time: every step
    below is done a chunk at a time, so its arrays take tens of bytes a character of one chunk,
    not of the text (a line longer than a chunk is a chunk of its own). A text whose only breaks
    are "\\n" (extraction's parts joined) is cut by slices, with no string a line."""
    if not any(char in text for char in _OTHER_BREAKS):
        return _chunks_of_newlines(text)
    return _chunks_of_lines(text)


def _chunks_of_newlines(text: str) -> list[str]:
    """_chunks_of_lines(text) for a text whose only line break is "\\n": a chunk holds the lines
    whose lengths, one more each, stay below CHUNK_CHARS (at least one line); the last line ends
    at the text's end or at a final "\\n" (which ends a line, not starts one)."""
    chunks, done, end = [], 0, len(text) - text.endswith("\n")
    while text and done <= end:
        limit = done + CHUNK_CHARS - 1  # a line breaking before this fits
        if end < limit:
            chunks.append(text[done:end])
            break
        cut = text.rfind("\n", done, limit)
        if cut < 0:  # the first line alone is longer
            cut = text.find("\n", done, end)
            cut = end if cut < 0 else cut
        chunks.append(text[done:cut])
        done = cut + 1
    return chunks


def _chunks_of_lines(text: str) -> list[str]:
    """_chunks by str.splitlines, the lines gathered by their lengths: the reference, and the way
    for a text with other line breaks."""
    lines = text.splitlines()
    ends = list(accumulate(map((1).__add__, map(len, lines))))
    chunks, first = [], 0
    while first < len(lines):
        done = ends[first - 1] if first else 0
        last = max(bisect.bisect_left(ends, done + CHUNK_CHARS), first + 1)
        chunks.append("\n".join(lines[first:last]))
        first = last
    return chunks


def _capped(hashes: list[np.ndarray]) -> set[int]:
    """The MAX_ANCHORS smallest distinct line hashes."""
    return set(_capped_array(hashes).tolist())


def _capped_array(hashes: list[np.ndarray]) -> np.ndarray:
    """np.unique(hashes)[:MAX_ANCHORS] by a sort and the neighbours compared (np.unique hashes
    first: three times as long for the lines of a text)."""
    if not hashes:
        return np.empty(0, dtype=np.uint64)
    ordered = np.sort(np.concatenate(hashes))
    if len(ordered):
        ordered = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
    return ordered[: winnow.MAX_ANCHORS]


# --- characters --------------------------------------------------------------------------------


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


def _text(codepoints: np.ndarray) -> str:
    return codepoints.astype("<u4", copy=False).tobytes().decode("utf-32-le")


def _utf8(codepoints: np.ndarray) -> bytes:
    return _text(codepoints).encode("utf-8")


def _fold(text: str) -> np.ndarray:
    return _codepoints(_nfkc(text).casefold())


def _nfkc(text: str) -> str:
    """unicodedata.normalize("NFKC", text): by the native table when every character is in it."""
    if _native is not None:
        done = _native.nfkc(text, *_nfkc_table())
        if done is not None:
            return done
    return unicodedata.normalize("NFKC", text)


def _casefolded(nfkc: str) -> tuple[np.ndarray, np.ndarray]:
    """The code points of nfkc.casefold() and which of them are letters or digits (_is_word): by the
    native tables when every character and its folding are in the BMP."""
    if _native is not None:
        done = _native.fold(nfkc, *_casefold_table())
        if done is not None:
            return np.frombuffer(done[0], dtype=np.uint32), np.frombuffer(done[1], dtype=bool)
    folded = _codepoints(nfkc.casefold())
    return folded, _is_word(folded)


@cache
def _casefold_table() -> tuple[bytes, bytes, bytes]:
    """str.casefold of every BMP character (a character at a time: case folding has no context),
    laid out as _nfkc_table's, and _bmp_table("word") as one byte a code point, for _winnow.fold."""
    entries = np.full(0x10000, -1, dtype="<i4")
    pool: list[int] = []
    for code in range(0x10000):
        if 0xD800 <= code < 0xE000:
            continue
        folded = chr(code).casefold()
        if folded == chr(code):
            entries[code] = -2
        else:
            entries[code] = len(pool) << 8 | len(folded)
            pool.extend(map(ord, folded))
    words = _bmp_table("word").astype(np.uint8).tobytes()
    return entries.tobytes(), np.array(pool, dtype="=u4").tobytes(), words


@cache
def _nfkc_table() -> tuple[bytes, bytes]:
    """For every BMP character, its NFKC where a text of such characters is normalised character by
    character: no character of its compatibility decomposition has a combining class or is the
    second of a canonical pair (so nothing composes; Hangul vowels and trailing consonants count as
    seconds). As _winnow.nfkc reads it: int32 entries (-1: not in the table, -2: NFKC keeps it,
    else offset << 8 | length into the pool of UCS-4 code points)."""
    seconds = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))  # Hangul V and T jamo
    for code in range(0x2FA20):  # no character above has a decomposition
        decomposition = unicodedata.decomposition(chr(code)).split()
        if len(decomposition) == 2 and not decomposition[0].startswith("<"):
            seconds.add(int(decomposition[1], 16))
    entries = np.full(0x10000, -1, dtype="<i4")
    pool: list[int] = []
    for code in range(0x10000):
        char = chr(code)
        if 0xD800 <= code < 0xE000:
            continue
        decomposed = unicodedata.normalize("NFKD", char)
        if any(unicodedata.combining(c) or ord(c) in seconds for c in decomposed):
            continue
        if unicodedata.normalize("NFKC", char) != decomposed:
            continue
        if decomposed == char:
            entries[code] = -2
        else:
            entries[code] = len(pool) << 8 | len(decomposed)
            pool.extend(map(ord, decomposed))
    return entries.tobytes(), np.array(pool, dtype="=u4").tobytes()


@cache
def _bmp_table(kind: str) -> np.ndarray:
    """For every BMP code point: whether normalise() keeps it ("word", the complement of the
    reference's [\\W_]) or str.strip() and re's \\s take it for white space ("space")."""
    chars = "".join(map(chr, range(0x10000)))
    if kind == "word":
        marked = re.sub(r"[\W_]", "\x00", chars)  # NUL itself is \W: it stays NUL
        return _codepoints(marked) != 0
    return np.array([c.isspace() for c in chars], dtype=bool)


def _classify(codepoints: np.ndarray, kind: str, predicate: Callable[[str], bool]) -> np.ndarray:
    table = _bmp_table(kind)
    astral = codepoints >= 0x10000
    if not astral.any():
        return table[codepoints]
    out = table[np.minimum(codepoints, 0xFFFF)]
    values, where = np.unique(codepoints[astral], return_inverse=True)
    out[astral] = np.array([predicate(chr(v)) for v in values.tolist()], dtype=bool)[where]
    return out


_WORD_CHAR = re.compile(r"[^\W_]")


def _is_word(codepoints: np.ndarray) -> np.ndarray:
    return _classify(codepoints, "word", lambda c: _WORD_CHAR.match(c) is not None)


def _is_space(codepoints: np.ndarray) -> np.ndarray:
    return _classify(codepoints, "space", str.isspace)


def _is_cjk(codepoints: np.ndarray) -> np.ndarray:
    """winnow._CJK's ranges."""
    return ((codepoints >= 0x3400) & (codepoints <= 0x9FFF)) | ((codepoints >= 0xF900) & (codepoints <= 0xFAFF))


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the runs of True in mask."""
    edges = np.diff(np.concatenate(([False], mask, [False])).view(np.int8))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


# --- grams -------------------------------------------------------------------------------------


@cache
def _crc_tables(gram_bytes: int) -> tuple[int, tuple[np.ndarray, ...], np.ndarray | None]:
    """crc32(gram) = base ^ XOR of pair_tables[j][gram[2j] | gram[2j+1] << 8] (^ last[gram[-1]]
    for an odd length): CRC-32 is affine in its input for a fixed length."""
    zero = bytes(gram_bytes)
    base = zlib.crc32(zero)
    single = np.array(
        [[zlib.crc32(bytes(i) + bytes([v]) + bytes(gram_bytes - 1 - i)) ^ base for v in range(256)]
         for i in range(gram_bytes)],
        dtype=np.uint32,
    )  # fmt: skip
    pairs = tuple((single[2 * j + 1][:, None] ^ single[2 * j][None, :]).ravel() for j in range(gram_bytes // 2))
    return base, pairs, single[-1] if gram_bytes % 2 else None


def _crc_ranks(data: np.ndarray, lo: int, hi: int, gram_bytes: int) -> np.ndarray:
    """zlib.crc32 of the grams starting at offsets lo..hi-1 of data (uint8)."""
    base, pairs, last = _crc_tables(gram_bytes)
    count = hi - lo
    segment = data[lo : hi + gram_bytes - 1]
    ranks = np.full(count, base, dtype=np.uint32)
    looked_up = np.empty(count, dtype=np.uint32)
    if pairs:
        pair = segment[:-1].astype(np.uint16) | (segment[1:].astype(np.uint16) << 8)
        for j, table in enumerate(pairs):
            np.take(table, pair[2 * j : 2 * j + count], out=looked_up)
            ranks ^= looked_up
    if last is not None:
        np.take(last, segment[gram_bytes - 1 : gram_bytes - 1 + count], out=looked_up)
        ranks ^= looked_up
    return ranks


def _crc_at(data: np.ndarray, offsets: np.ndarray, gram_bytes: int) -> np.ndarray:
    """zlib.crc32 of the grams at the given offsets (any order)."""
    if _native is not None and gram_bytes >= 1:
        return np.frombuffer(_native.crcs(data, offsets.astype(np.int64), gram_bytes), dtype=np.uint32)
    base, pairs, last = _crc_tables(gram_bytes)
    ranks = np.full(len(offsets), base, dtype=np.uint32)
    for j, table in enumerate(pairs):
        ranks ^= table[data[offsets + 2 * j].astype(np.uint32) | (data[offsets + 2 * j + 1].astype(np.uint32) << 8)]
    if last is not None:
        ranks ^= last[data[offsets + gram_bytes - 1]]
    return ranks


def _sliding_min(keys: np.ndarray, width: int) -> np.ndarray:
    """min(keys[b : b + width]) for every b with a whole window: minima over spans doubled up to
    the largest power of two within width, then two overlapping spans a window (log2(W) passes)."""
    count = len(keys) - width + 1
    minima, span = keys, 1
    while span * 2 <= width:
        minima = np.minimum(minima[:-span], minima[span:])
        span *= 2
    return np.minimum(minima[:count], minima[width - span : width - span + count])


def chosen(data: bytes, gram_bytes: int, window_bytes: int) -> set[int]:
    """winnow._chosen(data, gram_bytes, window_bytes): the offsets of the chosen grams."""
    return set(_chosen(data, gram_bytes, window_bytes).tolist())


def _chosen(data: bytes, gram_bytes: int, window_bytes: int) -> np.ndarray:
    if _native is not None and gram_bytes >= 1 and window_bytes >= 1:
        return np.frombuffer(_native.chosen(data, gram_bytes, window_bytes), dtype=np.int64)
    return _numpy_chosen(data, gram_bytes, window_bytes)


def _numpy_chosen(data: bytes, gram_bytes: int, window_bytes: int) -> np.ndarray:
    n = len(data) - gram_bytes + 1
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    array = np.frombuffer(data, dtype=np.uint8)
    starts = (array[:n] & 0xC0) != 0x80
    if not starts.any():
        return np.empty(0, dtype=np.int64)
    m = n - 1 - int(np.argmax(starts[::-1])) - window_bytes + 1  # windows starting before m are complete
    picked = []
    for c0 in range(0, max(m, 0), CHUNK_BYTES):
        c1 = min(c0 + CHUNK_BYTES, m)
        hi = c1 - 1 + window_bytes  # the grams of the windows starting in [c0, c1)
        ranks = _crc_ranks(array, c0, hi, gram_bytes).astype(np.uint64)
        # smaller rank first, then the larger offset (the rightmost of equal ranks)
        keys = (ranks << np.uint64(32)) | (_LOW32 - np.arange(c0, hi, dtype=np.uint64))
        keys[~starts[c0:hi]] = _MAX_KEY
        minima = _sliding_min(keys, window_bytes)[starts[c0:c1]]
        if len(minima):
            picked.append(minima[np.concatenate(([True], minima[1:] != minima[:-1]))])
    if picked:
        keys = np.unique(np.concatenate(picked))
        return np.unique((_LOW32 - (keys & _LOW32)).astype(np.int64))
    # no complete window: the leftmost smallest gram
    ranks = _crc_ranks(array, 0, n, gram_bytes).astype(np.uint64)
    ranks[~starts] = np.uint64(1 << 32)
    return np.array([int(np.argmin(ranks))], dtype=np.int64)


def _hashes(data: bytes, offsets: np.ndarray, length: int) -> np.ndarray:
    """winnow.gram_hash of data[o : o + length] for each offset, as uint64."""
    if not len(offsets):
        return np.empty(0, dtype=np.uint64)
    return _span_hashes(data, offsets, offsets + length, _GRAM_HASH)


def _span_hashes(data: bytes, begins: np.ndarray, ends: np.ndarray, start) -> np.ndarray:
    """winnow.gram_hash of data[b:e] for each span (ANCHOR_SALT first when start is _LINE_HASH)."""
    if _native is not None:
        prefix = winnow.ANCHOR_SALT if start is _LINE_HASH else b""
        digests = _native.hashes(data, begins.astype(np.int64), ends.astype(np.int64), prefix)
        return np.frombuffer(digests, dtype="<u8") & np.uint64(winnow.HASH_MASK)
    return _hash_all(map(data.__getitem__, map(slice, begins.tolist(), ends.tolist())), start)


_GRAM_HASH = hashlib.blake2b(digest_size=8)  # copied, never updated: a copy costs less than the
_LINE_HASH = hashlib.blake2b(winnow.ANCHOR_SALT, digest_size=8)  # constructor's keyword parsing


def _hash_all(pieces, start=_GRAM_HASH) -> np.ndarray:
    """winnow.gram_hash of each piece (ANCHOR_SALT first when start is _LINE_HASH), as uint64."""
    digests = []
    for piece in pieces:
        h = start.copy()
        h.update(piece)
        digests.append(h.digest())
    return np.frombuffer(b"".join(digests), dtype="<u8") & np.uint64(winnow.HASH_MASK)


def _winnowed_array(data: bytes, gram_bytes: int, window_bytes: int) -> np.ndarray:
    return _hashes(data, _chosen(data, gram_bytes, window_bytes), gram_bytes)


# --- tables ------------------------------------------------------------------------------------


def _normalised_lines(texts: str) -> list[str]:
    """winnow.normalise of each "\\n"-separated line of texts."""
    folded = _fold(texts)
    return _text(folded[_is_word(folded) | (folded == _NEWLINE)]).split("\n")


class _Tables:
    """table_blocks over chunks of lines: the run of table lines open at a chunk's end goes on in
    the next one (the reference's run is closed only by a line with a long cell)."""

    def __init__(self) -> None:
        self._closed: list[tuple[list[int], list[str]]] = []
        self._open: tuple[list[int], list[str]] = ([], [])

    def add(self, chunk: str) -> None:
        runs = _table_runs(chunk)
        self._open[0].extend(runs[0][0])
        self._open[1].extend(runs[0][1])
        for run in runs[1:]:  # each after a line with a long cell
            self._closed.append(self._open)
            self._open = run

    def blocks(self) -> list[list[str]]:
        blocks = []
        for lengths, cells in [*self._closed, self._open]:
            if (
                len(lengths) >= winnow.MIN_TABLE_CELLS
                and sorted(lengths)[len(lengths) // 2] <= winnow.MEDIAN_CELL_CHARS
            ):
                blocks.append(sorted({c for c in cells if c}))
        return blocks


def _split_runs(counts: np.ndarray, lengths: list[int], normalised: list[str]) -> list[tuple[list[int], list[str]]]:
    """The runs of cells, counts[i] in run i: the first and the last (they go on from and into the
    chunks around) and those between of MIN_TABLE_CELLS cells or more (_Tables.blocks drops a
    shorter one: prose has an empty run after each line, thousands a chunk)."""
    ends = np.cumsum(counts)
    kept = np.flatnonzero(counts >= winnow.MIN_TABLE_CELLS)
    kept = np.unique(np.concatenate(([0], kept, [len(counts) - 1]))).tolist()
    ends, counts = ends.tolist(), counts.tolist()
    return [(lengths[ends[i] - counts[i] : ends[i]], normalised[ends[i] - counts[i] : ends[i]]) for i in kept]


def _table_runs(joined: str) -> list[tuple[list[int], list[str]]]:
    """The cells (lengths, normalised) of the table-like lines of joined, as runs between the
    lines with a long cell (prose), as _split_runs keeps them: the first, the last and those
    between that may be a table."""
    if _native is not None:
        return _native_table_runs(joined)
    codepoints = np.concatenate(([_NEWLINE], _codepoints(joined), [_NEWLINE])).astype(np.uint32)
    space, newline = _is_space(codepoints), codepoints == _NEWLINE
    tab, bar = codepoints == 9, codepoints == 124
    # a white-space run is cut out (a split, or strip() at a line's ends) unless it is tabs then one
    # other white-space character before a non-space one: "a\t b" is "a" and " b"
    run_starts, run_ends = _runs(space)
    last = run_ends - 1
    others = np.cumsum(space & ~tab, dtype=np.int32)  # white space that is not a tab, up to each position
    kept = ~tab[last] & ~newline[last] & (others[last] - others[run_starts] + (space & ~tab)[run_starts] == 1)
    in_cell = ~space & ~bar
    del others, run_starts, run_ends, space, tab, bar
    in_cell[last[kept]] = True
    cell_starts, cell_ends = _runs(in_cell)
    del in_cell, last, kept
    if not len(cell_starts):
        return [([], [])]
    line_of = (np.cumsum(newline, dtype=np.int32) - 1)[cell_starts]
    lengths = cell_ends - cell_starts
    lines = int(newline.sum()) - 1
    long_cells = np.bincount(line_of[lengths > winnow.MAX_CELL_CHARS], minlength=lines) > 0
    run_of_line = np.cumsum(long_cells)  # a line with a long cell ends the run of table lines
    in_run = ~long_cells[line_of]
    starts, ends = cell_starts[in_run], cell_ends[in_run]
    counts = np.bincount(run_of_line[line_of[in_run]], minlength=int(run_of_line[-1]) + 1)
    lengths = lengths[in_run].tolist()
    # the cells' characters, each cell followed by "\n" (in place of the character after it)
    marks = np.zeros(len(codepoints) + 1, dtype=np.int8)
    marks[starts] = 1
    marks[ends] = -1  # cells never touch: a start is never another's end
    keep = np.cumsum(marks[:-1], dtype=np.int8) > 0
    values = codepoints.copy()
    values[ends] = _NEWLINE
    keep[ends] = True
    normalised = _normalised_lines(_text(values[keep]))[:-1] if len(starts) else []
    return _split_runs(counts, lengths, normalised)


def _native_table_runs(joined: str) -> list[tuple[list[int], list[str]]]:
    """_table_runs with the cells cut by _winnow.cells (one pass, the same rules) and their text
    taken by slices: no array as long as the text."""
    starts_raw, ends_raw, lines_raw, lines = _native.cells(joined, _space_table())
    cell_starts, cell_ends = np.frombuffer(starts_raw, dtype=np.int64), np.frombuffer(ends_raw, dtype=np.int64)
    if not len(cell_starts):
        return [([], [])]
    line_of = np.frombuffer(lines_raw, dtype=np.int32)
    lengths = cell_ends - cell_starts
    long_cells = np.bincount(line_of[lengths > winnow.MAX_CELL_CHARS], minlength=lines) > 0
    run_of_line = np.cumsum(long_cells)  # a line with a long cell ends the run of table lines
    in_run = ~long_cells[line_of]
    starts, ends = cell_starts[in_run], cell_ends[in_run]
    counts = np.bincount(run_of_line[line_of[in_run]], minlength=int(run_of_line[-1]) + 1)
    lengths = lengths[in_run].tolist()
    # the offsets are into "\n" + joined + "\n", whose ends are never in a cell: one less into joined
    # (the padded copy of a chunk, two strings of some 0.5 MB, cost a third as much as the cuts)
    cells = "\n".join(map(joined.__getitem__, map(slice, (starts - 1).tolist(), (ends - 1).tolist())))
    normalised = _normalised_lines(cells) if len(starts) else []
    return _split_runs(counts, lengths, normalised)


@cache
def _space_table() -> bytes:
    return _bmp_table("space").astype(np.uint8).tobytes()


# --- lines as anchors --------------------------------------------------------------------------


@cache
def _boilerplate_crcs(gram_bytes: int) -> np.ndarray:
    """The sorted CRC-32s of every gram of the shipped boilerplate (winnow.boilerplate_hashes)."""
    crcs: set[int] = set()
    for entry in winnow.boilerplate_entries():
        data = winnow.normalise(entry).encode("utf-8")
        crcs.update(zlib.crc32(data[o : o + gram_bytes]) for o in winnow._starts(data, gram_bytes))
    return np.array(sorted(crcs), dtype=np.uint32)


@cache
def _boilerplate_keys(gram_bytes: int) -> np.ndarray:
    """_boilerplate_crcs as int64, for _winnow.crcs_in."""
    return _boilerplate_crcs(gram_bytes).astype(np.int64)


@cache
def _vocabulary() -> tuple[np.ndarray, dict[str, int]]:
    """The boilerplate's vocabulary: CJK tokens as sorted keys; words as 1, function words as 2."""
    cjk, words = [], {w: 2 for w in winnow._FUNCTION_WORDS}
    for token in winnow.boilerplate_tokens():
        if winnow._CJK.fullmatch(token):
            cjk.append(ord(token[0]) << _CJK_SHIFT | (ord(token[1]) if len(token) > 1 else 0))
        else:
            words[token] = 1
    return np.array(sorted(cjk), dtype=np.int64), words


def _member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


# what a clause number can start with (_ENUMERATION_LINES after its "\n" and white space): a
# character of the first, or a first and second letter of "article", "section" or "clause"
_NUMBER_HEAD = re.compile(r"[\d第一二三四五六七八九十（(]")
_WORD_FIRST = re.compile(r"[acs]", re.IGNORECASE)  # case folded as the pattern's (e.g. "ſ" for "s")
_WORD_SECOND = re.compile(r"[elr]", re.IGNORECASE)


@cache
def _heads_table() -> bytes:
    """For _winnow.heads, a byte a BMP character: 1 when a clause number can start with it, 3 when
    a word the pattern names can (then 4 for a character that can be the word's second), 2 when
    re's \\s takes it (a line's leading white space, "\\n" aside), else 0."""
    chars = "".join(map(chr, range(0x10000)))
    table = bytearray(0x10000)
    for value, pattern in ((2, re.compile(r"[^\S\n]")), (4, _WORD_SECOND), (3, _WORD_FIRST), (1, _NUMBER_HEAD)):
        for m in pattern.finditer(chars):
            table[m.start()] = value
    return bytes(table)


def _may_be_numbered(joined: str) -> bool:
    """Whether a line of joined may start with a clause number: False only when none does (the
    regex is then skipped; it finds none in a text of prose or rows, some 0.4 ms a chunk)."""
    if _native is None:
        return True
    return _native.heads(joined, _heads_table())


def _line_hashes(
    joined: str, gram_bytes: int, boilerplate: frozenset[int], known: tuple[str, np.ndarray, np.ndarray] | None,
    words: list[bytes] | None = None,
) -> np.ndarray:  # fmt: skip
    """The anchors of joined's lines, not capped (winnow.line_anchors); known is joined's NFKC, its
    casefolded code points and which are letters or digits, when the caller has them. When its
    lines had no clause number (the normalised lines are then known's), the UTF-8 of known's
    letters and digits is appended to words: the lines' without their "\n" (a byte no other
    character's UTF-8 holds), which the caller would otherwise encode again."""
    if _may_be_numbered(joined):
        stripped, numbered = _ENUMERATION_LINES.subn("\n", "\n" + joined)  # no match holds a line break
        stripped = stripped[1:]
    else:
        stripped, numbered = joined, 0
    if numbered or known is None:
        marked = _nfkc(stripped)
        folded, word = _casefolded(marked)
    else:
        marked, folded, word = known
    if _native is not None and gram_bytes >= 1:
        data, *layout = _native.lines(
            np.ascontiguousarray(folded, dtype=np.uint32),
            np.ascontiguousarray(word, dtype=bool).view(np.uint8),
            gram_bytes,
        )
        line_starts, sizes, grams, probes = (np.frombuffer(raw, dtype=np.int64) for raw in layout)
        array, line_of, lines = np.frombuffer(data, dtype=np.uint8), None, len(line_starts)
        probes = probes.reshape(-1, 3)
    else:
        newline = folded == _NEWLINE
        line_of = np.cumsum(newline, dtype=np.int32)
        lines = int(line_of[-1]) + 1 if len(line_of) else 1
        data = _utf8(folded[word | newline])  # each line's normalised text, "\n" between
        array = np.frombuffer(data, dtype=np.uint8)
        line_starts = np.concatenate(([0], np.flatnonzero(array == _NEWLINE) + 1))
        sizes = np.diff(np.append(line_starts, len(data) + 1)) - 1  # in UTF-8 bytes
        grams = probes = None
    if words is not None and known is not None and not numbered:
        words.append(data.replace(b"\n", b""))
    candidate = (sizes >= winnow.MIN_ANCHOR_BYTES) & (sizes <= winnow.MAX_ANCHOR_BYTES)
    if not candidate.any():
        return np.empty(0, dtype=np.uint64)
    if boilerplate:
        candidate &= ~_mostly_boilerplate(
            data, array, line_starts, sizes, candidate, gram_bytes, boilerplate, (grams, probes)
        )
    candidate &= ~_generic(folded, word, line_of, lines)
    candidate &= ~_marking_lines(marked, lines)
    chosen = np.flatnonzero(candidate)
    begin = line_starts[chosen]
    return _span_hashes(data, begin, begin + sizes[chosen], _LINE_HASH) | np.uint64(winnow.ANCHOR_BIT)


def _mostly_boilerplate(
    data: bytes, array: np.ndarray, line_starts: np.ndarray, sizes: np.ndarray, candidate: np.ndarray,
    gram_bytes: int, boilerplate: frozenset[int], known: tuple[np.ndarray | None, np.ndarray | None],
) -> np.ndarray:  # fmt: skip
    """winnow._mostly_boilerplate of each candidate line: two of its first, middle and last grams
    (one when it has one) are boilerplate grams. known: each line's count of grams and its three
    probes (_winnow.lines), or (None, None) to find them here."""
    lines = np.flatnonzero(candidate & (sizes >= gram_bytes))
    found = np.zeros(len(sizes), dtype=bool)
    if not len(lines):
        return found
    if known[0] is not None:
        count, probes = known[0][lines], known[1][lines]
    else:
        char_starts = np.flatnonzero((array & 0xC0) != 0x80)
        begin, end = line_starts[lines], line_starts[lines] + sizes[lines]
        first = np.searchsorted(char_starts, begin)
        count = np.searchsorted(char_starts, end - gram_bytes, side="right") - first
        probes = np.stack(
            (char_starts[first], char_starts[first + count // 2], char_starts[first + count - 1]), axis=1
        )  # fmt: skip
    flat = probes.ravel()
    if boilerplate is winnow.boilerplate_hashes(gram_bytes) and _native is not None and gram_bytes >= 1:
        keys = _boilerplate_keys(gram_bytes)
        maybe = np.frombuffer(_native.crcs_in(array, flat.astype(np.int64), gram_bytes, keys), dtype=bool)
    elif boilerplate is winnow.boilerplate_hashes(gram_bytes):
        maybe = _member(
            _boilerplate_crcs(gram_bytes).astype(np.int64), _crc_at(array, flat, gram_bytes).astype(np.int64)
        )
    else:
        maybe = np.ones(len(flat), dtype=bool)
    hit = np.zeros(len(flat), dtype=bool)
    where = np.flatnonzero(maybe)
    if len(where):
        hashes = _hashes(data, flat[where], gram_bytes).tolist()
        hit[where] = [h in boilerplate for h in hashes]
    hit = hit.reshape(-1, 3)
    # distinct probes: one gram (all three the same), two (middle = last), or three
    score = np.where(count == 1, hit[:, 0] * 2, np.where(count == 2, hit[:, 0] + hit[:, 2], hit.sum(axis=1)))
    found[lines] = score >= 2
    return found


@cache
def _word_table() -> tuple[bytes, bytes, bytes, bytes]:
    """_vocabulary()'s words for _winnow.generic: an open-addressing table (int32 word numbers, -1
    empty; FNV-1a of the code points, linear probing), the words' int32 offsets into a pool of
    UCS-4 code points, and their classes (1 vocabulary, 2 function word)."""
    words = _vocabulary()[1]
    size = 1 << max(4, (4 * len(words)).bit_length())
    slots = np.full(size, -1, dtype=np.int32)
    offsets, pool, classes = [0], [], []
    for number, (text, kind) in enumerate(words.items()):
        codes = [ord(c) for c in text]
        h = 2166136261
        for code in codes:
            h = ((h ^ code) * 16777619) & 0xFFFF_FFFF
        while slots[h & (size - 1)] >= 0:
            h += 1
        slots[h & (size - 1)] = number
        pool += codes
        offsets.append(len(pool))
        classes.append(kind)
    return (
        slots.tobytes(), np.array(offsets, dtype=np.int32).tobytes(), np.array(pool, dtype=np.uint32).tobytes(),
        np.array(classes, dtype=np.int8).tobytes(),
    )  # fmt: skip


def _generic(folded: np.ndarray, word: np.ndarray, line_of: np.ndarray | None, lines: int) -> np.ndarray:
    """winnow.generic_share(line) >= MAX_GENERIC_SHARE for each line (no tokens: True); line_of
    (each code point's line) only on the numpy path."""
    keys, words_class = _vocabulary()
    if _native is not None:
        codes = np.ascontiguousarray(folded, dtype=np.uint32)
        found = _native.generic(codes, np.ascontiguousarray(word, dtype=bool), keys, lines, *_word_table())
        return np.frombuffer(found, dtype=bool)
    if line_of is None:
        line_of = np.cumsum(folded == _NEWLINE, dtype=np.int32)
    cjk = _is_cjk(folded)
    after = np.concatenate((cjk[1:], [False]))
    before = np.concatenate(([False], cjk[:-1]))
    pairs = np.flatnonzero(cjk & after)
    singles = np.flatnonzero(cjk & ~before & ~after)
    tokens_at = np.concatenate((pairs, singles))
    token_keys = np.concatenate(
        ((folded[pairs].astype(np.int64) << _CJK_SHIFT) | folded[pairs + 1], folded[singles].astype(np.int64) << _CJK_SHIFT)
    )  # fmt: skip
    known = _member(keys, token_keys)
    total = np.bincount(line_of[tokens_at], minlength=lines)
    generic = np.bincount(line_of[tokens_at[known]], minlength=lines)
    letters = word & ~cjk
    starts, _ = _runs(letters)
    if len(starts):
        spaced = _text(np.where(letters, folded, np.uint32(32)))
        words = spaced.split()
        kinds = np.fromiter(map(words_class.get, words, repeat(0)), dtype=np.int8, count=len(words))
        word_lines = line_of[starts]
        total += np.bincount(word_lines[kinds != 2], minlength=lines)
        generic += np.bincount(word_lines[kinds == 1], minlength=lines)
    return (total == 0) | (2 * generic >= total)


_MARKING_PATTERNS = (marking_terms.TERMS_RE, marking_terms.STATE_RE)
# a word of each English term, outside any optional part: a match holds it (test_winnow_marks.py)
_MARK_WORDS = ("confidential", "internal", "proprietary", "trade", "do")


@cache
def _marks_table() -> bytes | None:
    """For _winnow.marks, a byte a BMP character: 1 for the last character of each CJK term, an
    ASCII letter's lowercase for that letter, 2 for another character with an ASCII letter in its
    lower, upper or casefold (RE2's (?i) takes "ſ" for "s", "K" for "k": any letter). None when a
    CJK term does not end with a CJK character (the terms' RE2 pass then always runs)."""
    table = bytearray(0x10000)
    for code in range(0x10000):
        char = chr(code)
        if char.isascii() and char.isalpha():
            table[code] = ord(char.lower())
        elif any(c.isascii() and c.isalpha() for c in char.lower() + char.upper() + char.casefold()):
            table[code] = 2
    for term in marking_terms.CJK_TERMS:
        if not _is_cjk(np.array([ord(term[-1])])).all():
            return None
        table[ord(term[-1])] = 1
    return bytes(table)


def _may_be_marked(marked: str) -> bool:
    """Whether a marking term (TERMS_RE) may match in marked: False only when none can (the last
    character of no CJK term, the word of no English term), which saves its RE2 pass and UTF-8."""
    table = _marks_table() if _native is not None else None
    if table is None:
        return True
    return _native.marks(marked, table, _mark_words())


@cache
def _mark_words() -> bytes:
    return "".join(w + "\n" for w in _MARK_WORDS).encode("ascii")


# the lines holding a place of a term (_winnow.marks_lines) searched one by one up to this many
# distinct lines; with more (English prose: "do" starts many a word) one RE2 pass over the whole
# chunk costs less
MAX_MARKED_LINES = 64
MARKS_BY_LINE = True  # False: the terms' RE2 pass over each chunk a term may match in (the reference)
# more places than MAX_MARKED_LINES are walked, up to this many, when the first of them lie in few
# distinct lines: a deck's footer (内部资料 on every slide) costs a line's search once, where the
# whole pass paid some 5 µs of the RE2 wrapper for each of its matches
MAX_PLACES = 2048
REPEATED_LINES = True  # False: more than MAX_MARKED_LINES places always send the chunk to the whole pass
FEW_DISTINCT = MAX_MARKED_LINES // 4  # the first places' distinct lines at most this many: they repeat


def term_places(text: str, limit: int) -> list[int] | None:
    """The first place a marking term can be in each line of text holding one (_winnow.marks_lines:
    the last character of a CJK term, the first letter of a word of an English term; a line with
    none holds no term), at most limit + 1 of them; None without the native table."""
    table = _marks_table() if _native is not None else None
    return None if table is None else _native.marks_lines(text, table, _mark_words(), limit)


def _marked_by_line(marked: str, found: np.ndarray) -> bool:
    """The terms' part of _marking_lines by searching only the lines _winnow.marks_lines lists, each
    alone as the reference searches it (a line with no place of a term can hold none:
    test_winnow_marks.py) and each distinct line once, the lines' numbers counted from the place
    before. False, found left as it was, when there is no table, or more than MAX_MARKED_LINES
    places are listed and their lines do not repeat (more than MAX_MARKED_LINES distinct lines,
    or more than MAX_PLACES places): the caller then makes the whole pass."""
    places = term_places(marked, MAX_MARKED_LINES)
    if places is None:
        return False
    if len(places) > MAX_MARKED_LINES:
        if not REPEATED_LINES or len(set(map(partial(_line_at, marked), places))) > FEW_DISTINCT:
            return False
        places = term_places(marked, MAX_PLACES)
        if places is None or len(places) > MAX_PLACES:
            return False
    marked_lines: list[int] = []
    searched: dict[str, bool] = {}  # a line's text: whether a term matches in it
    line, counted = 0, 0
    for place in places:
        line += marked.count("\n", counted, place)
        counted = place
        piece = _line_at(marked, place)
        hit = searched.get(piece)
        if hit is None:
            if len(searched) == MAX_MARKED_LINES:
                return False
            hit = searched[piece] = marking_terms.TERMS_RE.search(piece) is not None
        if hit:
            marked_lines.append(line)
    found[marked_lines] = True
    return True


def _line_at(text: str, place: int) -> str:
    """The line of text ("\n"-separated) holding the character at place."""
    end = text.find("\n", place)
    return text[text.rfind("\n", 0, place) + 1 : len(text) if end < 0 else end]


def _marking_lines(marked: str, lines: int) -> np.ndarray:
    """winnow._is_template_line of each line of marked (NFKC, "\\n"-joined): one RE2 pass per
    pattern over marked's UTF-8 (encoded here once, not by the wrapper a pattern), each match's
    line counted from the line breaks since the match before; a match across a line break (\\s
    matches one) sends its lines to the line-by-line test. The terms' pass is left out where
    _marked_by_line searched the few lines that can hold a term instead."""
    found = np.zeros(lines, dtype=bool)
    data = None
    for pattern in _MARKING_PATTERNS:
        if pattern is marking_terms.STATE_RE and "★" not in marked:
            continue  # each of its forms holds a star: no RE2 pass
        if pattern is marking_terms.TERMS_RE and MARKS_BY_LINE and _marked_by_line(marked, found):
            continue
        if pattern is marking_terms.TERMS_RE and not _may_be_marked(marked):
            continue
        if data is None:
            data = marked.encode("utf-8")
        counted, breaks = 0, 0  # breaks: the line breaks in data[:counted]
        for m in pattern.finditer(data):
            start, end = m.start(), m.end()  # byte offsets; a match is never empty
            breaks += data.count(b"\n", counted, start + 1)  # the lines before its first character's
            counted = start + 1
            first = breaks
            if data.find(b"\n", start, end) < 0:
                found[first] = True
                continue
            breaks += data.count(b"\n", counted, end)
            counted = end
            begin = data.rfind(b"\n", 0, start) + 1
            for line in range(first, breaks + 1):
                stop = data.find(b"\n", begin)
                stop = len(data) if stop < 0 else stop
                piece = data[begin:stop]
                found[line] |= any(p.search(piece) is not None for p in _MARKING_PATTERNS)
                begin = stop + 1
    return found
