"""Winnowing fingerprints of a text (Schleimer, Wilkerson and Aiken, SIGMOD 2003).

A copy that keeps part of a classified document, edited, reordered or saved in another format,
shares long runs of text with it. Winnowing picks a small, position-independent sample of the
hashes of those runs, so the index can keep the sample (never the text) and a copy can be traced
by how many of its source's fingerprints it holds.

- Normalisation: NFKC, casefold, and only letters and digits are kept (CJK included), so spacing,
  punctuation, full-width forms, line breaks and layout changes between formats do not matter.
- Grams and windows are measured in UTF-8 bytes of the normalised text, starting at every
  character: a gram is the K bytes from a character's start, a window the grams starting within
  W bytes of one another. A Chinese character is three bytes, a Latin letter one, so one K and one
  W give both scripts the same fingerprint density per byte of text (and the index the same
  growth per byte of text it covers), and a gram holds about 8 Chinese characters or 4 English
  words: text of either language is equally distinctive per gram.
- Robust winnowing: in each window the gram with the rightmost smallest CRC-32 is chosen (a cheap,
  stable ranking). A chosen gram's fingerprint is its blake2b hash masked to 47 bits: stable across
  processes and machines, unlike Python's salted hash(). 47 bits fit SQLite's 6-byte integers
  (63 bits take 8, and the index 15% more room); with fifty million fingerprints indexed, a
  document of a thousand meets one by chance once in three thousand lookups, and a match needs
  several in one source.

The guarantee: two texts that share a normalised run of at least W + K + 3 bytes (W + K when it
is ASCII: the 3 bytes are the most by which a character start can miss the window's end) share
at least one fingerprint, also when the run ends one of the texts. With K = 24 and W = 180 that
is 207 bytes: 69 Chinese characters or about 35 English words (three pasted paragraphs hold
several such runs). Shorter runs are often found too,
but not always.
About 2 / (W / bytes per character + 1) of the grams become fingerprints: one per 100-115 bytes
of text (the formula gives one per 90). W was 360 until the same-genre corpus
(tests/agent/content/genre_corpus.py) showed that a short quotation then has five fingerprints
left once its boilerplate is out, too few to tell a copy from chance; a gram that is the
smallest of a 360-byte window is the smallest of the 180-byte windows within it, so what an
older agent stored is still found.
Text beyond its first MAX_TEXT_CHARS characters is not fingerprinted: a few seconds at most.

Two more things make the fingerprints a document's own (issue 15):
- Boilerplate never counts: a fingerprint whose gram lies inside an entry of the shipped list of
  common Chinese and English business text (agent/content/boilerplate/*.txt: payment and delivery
  terms, legal clauses, template headings, signature blocks) is dropped. Every gram of every
  entry is hashed once (about 7,000 hashes); only chosen grams are looked up in it. A
  competitor's quotation shares those clauses with the firm's, not its text.
- Tables by cell content: a table extracted row by row (xlsx, docx: cells joined by tabs) and the
  same table printed to PDF and read column by column or cell by cell (one short line each) give
  different running text. A block of table-like lines (cells split at tabs, "|" or two spaces, or
  lines of one short cell) is also fingerprinted as its distinct cells in sorted order: the same
  cells give the same stream whatever order they were extracted in; a cell wrapped onto two lines
  costs only the grams around it.
- Lines as anchors: a pasted paragraph, slide bullet, code line or table row of 40-100 bytes is
  shorter than the guarantee above and often yields no shared fingerprint, so three of them pasted
  into a mail left a source with one or two. Each line of 24-400 normalised bytes also gives one
  fingerprint, the hash of the whole normalised line (its leading clause number "第3条", "1.2",
  "（一）", "Article 4" taken off, so the same clause numbered otherwise is the same line), unless
  it is written in the boilerplate's words: a line with half or more of its tokens (Chinese
  character pairs, other words) in the shipped list's vocabulary is a standard clause as some firm
  reworded it ("任何一方因不可抗力不能履行合同的，应及时通知对方……"), which as an anchor traced
  competitors' contracts to ours; two of its first, middle and last grams inside an entry also
  make it boilerplate, and a line carrying a secrecy marking is the firm's header or footer,
  which all its documents hold. A line's hash has bit 47 set (a gram's never has), so the index
  can weigh lines as lines: three bullets of a 16-bullet deck are 3 of its 16 lines, but only 3
  of its 40-odd fingerprints (agent/index.py). At most MAX_ANCHORS a document, the smallest hashes (the same lines are
  kept whatever their order).
"""

from __future__ import annotations

import hashlib
import heapq
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterator
from functools import cache
from itertools import compress
from pathlib import Path
from zlib import crc32

from agent.content import marking_terms

GRAM_BYTES = 24  # K
WINDOW_BYTES = 90  # W (360, then 180 before: every gram chosen then is chosen now)
MAX_TEXT_CHARS = 2_000_000
HASH_BITS = 47  # SQLite stores an integer below 2**47 in 6 bytes (8 above)
HASH_MASK = (1 << HASH_BITS) - 1
CHUNK_WINDOWS = 256  # blocks of W bytes whose gram ranks are held at once (about 90 KB of text)

BOILERPLATE_DIR = Path(__file__).parent / "boilerplate"
MAX_CELL_CHARS = 40  # a longer piece of a line is prose, not a table cell
MIN_TABLE_CELLS = 8  # fewer table-like cells in a row of lines are a list or a signature block
MEDIAN_CELL_CHARS = 16  # table cells are short: wrapped prose lines are longer than this

MIN_ANCHOR_BYTES = (
    24  # shorter (8 Chinese characters) is a heading or a label; a table row of a model, a count and a price is longer
)
MAX_ANCHOR_BYTES = 400  # a longer paragraph holds several grams' guarantee runs of its own
MAX_ANCHORS = 4096
ANCHOR_SALT = b"\x00line\x00"
ANCHOR_BIT = 1 << HASH_BITS  # set in a line's hash (never in a gram's): the index tells them apart
MAX_GENERIC_SHARE = 0.5  # a line with half its words in the boilerplate's vocabulary is a reworded standard clause

_NOT_WORD = re.compile(r"[\W_]+")
_ENUMERATION = re.compile(
    r"^\s*(?:第[一二三四五六七八九十百零〇\d]+[条章节款项]|[\d一二三四五六七八九十]+(?:\.\d+)*(?:[.、．)）]|\s)"
    r"|[（(][\d一二三四五六七八九十]+[)）]|(?:article|section|clause)\s+\d+[.:]?)\s*",
    re.IGNORECASE,
)
_CELL_SPLIT = re.compile(r"\t|\||\s{2,}")
_IS_START = bytes(0 if b & 0xC0 == 0x80 else 1 for b in range(256))  # 1 where a UTF-8 character starts


def normalise(text: str) -> str:
    """NFKC, casefolded, letters and digits only (CJK included): what two copies have in common."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def gram_hash(gram: bytes) -> int:
    """A 47-bit hash that is the same in every process (it is stored in the index)."""
    return int.from_bytes(hashlib.blake2b(gram, digest_size=8).digest(), "little") & HASH_MASK


def fingerprints(text: str, gram_bytes: int = GRAM_BYTES, window_bytes: int = WINDOW_BYTES) -> frozenset[int]:
    """The winnowed fingerprints of the normalised text and of its tables' sorted cells, less
    the shipped boilerplate's; empty when the text is shorter than one gram.

    A text shorter than one window still gets one fingerprint, that of its smallest gram, so a
    short document is not invisible (it can only be found whole).

    Computed by winnow_fast.py (numpy, whole-text passes) when numpy is installed, else by
    reference_fingerprints: the same values either way.
    """
    try:
        from agent.content import winnow_fast  # imports this module: not at the top
    except ImportError:  # no numpy
        return reference_fingerprints(text, gram_bytes, window_bytes)
    return winnow_fast.fingerprints(text, gram_bytes, window_bytes)


def reference_fingerprints(text: str, gram_bytes: int = GRAM_BYTES, window_bytes: int = WINDOW_BYTES) -> frozenset[int]:
    """fingerprints(text) in pure Python, a line, a gram at a time: the reference (winnow_fast.py
    must give the same values; tests/agent/content/test_winnow_fast.py compares them)."""
    text = text[:MAX_TEXT_CHARS]
    found = set(_winnowed(normalise(text), gram_bytes, window_bytes))
    for cells in table_blocks(text):
        found.update(_winnowed("".join(cells), gram_bytes, window_bytes))
    boilerplate = boilerplate_hashes(gram_bytes)
    return frozenset((found - boilerplate) | line_anchors(text, gram_bytes, boilerplate))


def line_anchors(text: str, gram_bytes: int = GRAM_BYTES, boilerplate: frozenset[int] = frozenset()) -> set[int]:
    """The fingerprints of the text's specific lines as wholes (see the module's docstring)."""
    anchors = set()
    for line in text[:MAX_TEXT_CHARS].splitlines():
        line = _ENUMERATION.sub("", line, count=1)
        data = normalise(line).encode("utf-8")
        if not MIN_ANCHOR_BYTES <= len(data) <= MAX_ANCHOR_BYTES or _mostly_boilerplate(data, gram_bytes, boilerplate):
            continue
        if generic_share(line) >= MAX_GENERIC_SHARE or _is_template_line(line):
            continue
        anchors.add(ANCHOR_BIT | gram_hash(ANCHOR_SALT + data))
    return anchors if len(anchors) <= MAX_ANCHORS else set(heapq.nsmallest(MAX_ANCHORS, anchors))


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+")


# English words every sentence has, clause or not: they tell nothing about a line's register
_FUNCTION_WORDS = frozenset(
    "a an the of to in on at by for from with and or but as is are was were be been being it its this that"
    " these those which who whom whose not no shall will would should may can could must has have had do does"
    " did all any each other such than then there their they them we our you your he she his her i".split()
)


def _tokens(text: str) -> list[str]:
    """Chinese as character pairs, other scripts as words (letters and digits) less function words."""
    norm = unicodedata.normalize("NFKC", text).casefold()
    tokens = []
    for run in _CJK.findall(norm):
        tokens += [run[i : i + 2] for i in range(max(1, len(run) - 1))]
    tokens += [w for w in _WORD.findall(_CJK.sub(" ", norm)) if w not in _FUNCTION_WORDS]
    return tokens


@cache
def boilerplate_tokens() -> frozenset[str]:
    """The vocabulary of the shipped boilerplate: its Chinese character pairs and its words."""
    return frozenset(t for entry in boilerplate_entries() for t in _tokens(entry))


def is_anchor(fingerprint: int) -> bool:
    """A whole line's fingerprint, not a gram's."""
    return fingerprint >= ANCHOR_BIT


def _is_template_line(line: str) -> bool:
    """A line carrying a secrecy marking is the firm's header, footer or banner: every document of
    the firm holds it, and a small register cannot tell it is common."""
    norm = unicodedata.normalize("NFKC", line)
    return bool(marking_terms.TERMS_RE.search(norm) or marking_terms.STATE_RE.search(norm))


def generic_share(line: str) -> float:
    """The share of the line's tokens found in the shipped boilerplate's vocabulary."""
    tokens = _tokens(line)
    vocabulary = boilerplate_tokens()
    return sum(t in vocabulary for t in tokens) / len(tokens) if tokens else 1.0


def _mostly_boilerplate(data: bytes, gram_bytes: int, boilerplate: frozenset[int]) -> bool:
    """Two of the line's first, middle and last grams are grams of a boilerplate entry."""
    starts = _starts(data, gram_bytes)
    if not starts or not boilerplate:
        return False
    probes = {starts[0], starts[len(starts) // 2], starts[-1]}
    return sum(gram_hash(data[o : o + gram_bytes]) in boilerplate for o in probes) >= min(2, len(probes))


def _winnowed(normalised: str, gram_bytes: int, window_bytes: int) -> Iterator[int]:
    data = normalised.encode("utf-8")
    return (gram_hash(data[o : o + gram_bytes]) for o in _chosen(data, gram_bytes, window_bytes))


def table_blocks(text: str) -> list[list[str]]:
    """The tables of a text, each as its distinct normalised cells in sorted order: runs of lines
    that are all table-like (cells split at tabs, "|" or two or more spaces, each at most
    MAX_CELL_CHARS, or one short cell alone) holding at least MIN_TABLE_CELLS cells of median
    length at most MEDIAN_CELL_CHARS (prose wrapped into short lines, a narrow PDF column, has
    lines of near equal length above that: it is not a table)."""
    blocks: list[list[str]] = []
    run: list[str] = []
    for line in text.splitlines():
        pieces = [p for p in _CELL_SPLIT.split(line.strip()) if p]
        if not pieces:  # a blank line between rows or cells does not end a table
            continue
        if all(len(p) <= MAX_CELL_CHARS for p in pieces):
            run += pieces
            continue
        _close(run, blocks)
        run = []
    _close(run, blocks)
    return blocks


def _close(run: list[str], blocks: list[list[str]]) -> None:
    if len(run) >= MIN_TABLE_CELLS and sorted(map(len, run))[len(run) // 2] <= MEDIAN_CELL_CHARS:
        blocks.append(sorted({c for c in map(normalise, run) if c}))


@cache
def boilerplate_hashes(gram_bytes: int = GRAM_BYTES) -> frozenset[int]:
    """The hash of every gram (from every character start) of every shipped boilerplate entry."""
    hashes: set[int] = set()
    for entry in boilerplate_entries():
        data = normalise(entry).encode("utf-8")
        hashes.update(gram_hash(data[o : o + gram_bytes]) for o in _starts(data, gram_bytes))
    return frozenset(hashes)


def boilerplate_entries() -> list[str]:
    """The shipped boilerplate: one entry a line in BOILERPLATE_DIR/*.txt ("#" starts a comment)."""
    entries = []
    for path in sorted(BOILERPLATE_DIR.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                entries.append(line)
    return entries


def _starts(data: bytes, gram_bytes: int) -> list[int]:
    """Offsets of the whole grams of data that start at a character."""
    return [o for o in range(len(data) - gram_bytes + 1) if data[o] & 0xC0 != 0x80]


def _rightmost_min(ranks: list[int], lo: int, hi: int) -> int:
    """The index of the rightmost smallest of ranks[lo:hi] (not empty)."""
    block = ranks[lo:hi]
    return hi - 1 - block[::-1].index(min(block))


def _chosen(data: bytes, gram_bytes: int, window_bytes: int) -> set[int]:
    """Offsets of the chosen grams: the rightmost minimum of every complete window (one whose grams
    reach W bytes on). Grams are ranked by a CRC-32 (cheap; only the chosen few get the stored
    blake2b hash).

    Computed block by block (van Herk / Gil-Werman): the windows starting in a block of W bytes
    hold a tail of that block and a head of the next, so their minima are among the block's
    suffix minima and the next block's prefix minima, about ln(W) of each, found with min() over
    list slices. The per-gram work left in Python is the CRC-32 of each gram (most of the time);
    the result is the same as sliding a monotonic queue over every gram (tests/agent/content/
    test_winnow_blocks.py keeps that version to compare with), 1.5-3 times faster. The ranks are
    kept for CHUNK_WINDOWS blocks at a time, so memory stays bounded (a few MB) whatever the text."""
    n = len(data) - gram_bytes + 1
    if n <= 0:
        return set()
    w = window_bytes
    is_ascii = data.isascii()
    starts = None if is_ascii else data[:n].translate(_IS_START)
    last = n - 1 if starts is None else starts.rfind(1)  # the last gram's offset
    m = last - w + 1  # the windows starting before byte m are complete: a gram starts W bytes on
    chosen: set[int] = set()
    step = w * CHUNK_WINDOWS
    for c0 in range(0, max(m, 0), step):
        hi = min(c0 + step + w, n)  # the windows starting in this chunk need grams up to W bytes on
        offsets = range(c0, hi) if starts is None else list(compress(range(c0, hi), starts[c0:hi]))
        if offsets:
            ranks = [crc32(data[o : o + gram_bytes]) for o in offsets]
            _window_minima(offsets, ranks, c0, min(c0 + step, m), m, w, chosen)
    if not chosen and last >= 0:  # no complete window: a short text still gets its leftmost smallest gram
        grams = range(n) if starts is None else compress(range(n), starts)
        chosen.add(min((crc32(data[o : o + gram_bytes]), o) for o in grams)[1])
    return chosen


def _window_minima(offsets, ranks: list[int], start: int, end: int, m: int, w: int, chosen: set[int]) -> None:
    """Add the rightmost minimum of every window starting at a gram in [start, end) (blocks of w
    bytes from start, a multiple of w) to chosen; offsets and ranks hold the grams from start to
    w bytes past end."""
    last_start = bisect_left(offsets, m)  # windows start at grams before this one
    for b0 in range(start, end, w):
        i0 = bisect_left(offsets, b0)
        i1 = bisect_left(offsets, b0 + w)  # the first gram of the next block
        iend = min(i1, last_start)  # windows starting in this block: grams i0 .. iend - 1
        if i0 >= iend:
            continue
        # a window starting at gram k of the block holds the block's grams k..i1-1 (its tail) and
        # the next block's grams i1..j-1 with offsets[j-1] < offsets[k] + W (its head)
        points = []
        tails = []
        k = i0
        while k < iend:
            q = _rightmost_min(ranks, k, i1)
            tails.append((k, q))
            points.append(k)
            k = q + 1
        heads = []
        hi = bisect_left(offsets, offsets[iend - 1] + w)
        while hi > i1:
            r = _rightmost_min(ranks, i1, hi)
            first = bisect_left(offsets, offsets[r] - w + 1, i0, iend)  # the first window holding r
            heads.append((first, r))
            points.append(first)
            hi = r
        heads.reverse()
        ti = hj = 0
        t = h = -1
        for p in sorted(set(points)):
            if p >= iend:
                break
            while ti < len(tails) and tails[ti][0] <= p:
                t = tails[ti][1]
                ti += 1
            while hj < len(heads) and heads[hj][0] <= p:
                h = heads[hj][1]
                hj += 1
            chosen.add(offsets[h] if h >= 0 and ranks[h] <= ranks[t] else offsets[t])
