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
at least one fingerprint, also when the run ends one of the texts. With K = 24 and W = 360 that
is 387 bytes: 129 Chinese characters or about 65 English words. Shorter runs are often found too,
but not always.
About 2 / (W / bytes per character + 1) of the grams become fingerprints: one per 200-225 bytes
of text measured on the generated corpus (the formula gives one per 180).
Text beyond its first MAX_TEXT_CHARS characters is not fingerprinted: a few seconds at most.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import deque
from zlib import crc32

GRAM_BYTES = 24  # K
WINDOW_BYTES = 360  # W
MAX_TEXT_CHARS = 2_000_000
HASH_BITS = 47  # SQLite stores an integer below 2**47 in 6 bytes (8 above)
HASH_MASK = (1 << HASH_BITS) - 1

_NOT_WORD = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    """NFKC, casefolded, letters and digits only (CJK included): what two copies have in common."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def gram_hash(gram: bytes) -> int:
    """A 47-bit hash that is the same in every process (it is stored in the index)."""
    return int.from_bytes(hashlib.blake2b(gram, digest_size=8).digest(), "little") & HASH_MASK


def fingerprints(text: str, gram_bytes: int = GRAM_BYTES, window_bytes: int = WINDOW_BYTES) -> frozenset[int]:
    """The winnowed fingerprints of the normalised text; empty when it is shorter than one gram.

    A text shorter than one window still gets one fingerprint, that of its smallest gram, so a
    short document is not invisible (it can only be found whole).
    """
    data = normalise(text[:MAX_TEXT_CHARS]).encode("utf-8")
    return frozenset(gram_hash(data[o : o + gram_bytes]) for o in _chosen(data, gram_bytes, window_bytes))


def _chosen(data: bytes, gram_bytes: int, window_bytes: int) -> set[int]:
    """Offsets of the chosen grams: the rightmost minimum of every complete window (one whose grams
    reach W bytes on). Grams are ranked by a CRC-32 (cheap; only the chosen few get the stored
    blake2b hash). Memory stays bounded by one window, whatever the length of the text."""
    chosen: set[int] = set()
    window: deque[tuple[int, int]] = deque()  # (rank, offset), ranks increasing: window[0] is the minimum
    opened: deque[int] = deque()  # offsets of the windows not closed yet
    smallest: tuple[int, int] | None = None  # (rank, offset), the leftmost smallest: for a short text
    for offset in range(len(data) - gram_bytes + 1):
        if data[offset] & 0xC0 == 0x80:  # inside a character: grams start where characters do
            continue
        while opened and opened[0] + window_bytes <= offset:  # this gram lies past that window: close it
            start = opened.popleft()
            while window[0][1] < start:
                window.popleft()
            chosen.add(window[0][1])
        rank = crc32(data[offset : offset + gram_bytes])
        while window and window[-1][0] >= rank:  # ties go to the rightmost
            window.pop()
        window.append((rank, offset))
        opened.append(offset)
        if smallest is None or rank < smallest[0]:
            smallest = (rank, offset)
    if not chosen and smallest is not None:
        chosen.add(smallest[1])
    return chosen
