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
About 2 / (W / bytes per character + 1) of the grams become fingerprints: one per ~180 bytes.
Text beyond MAX_TEXT_BYTES of normalised text is not fingerprinted (the cost is bounded).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import deque
from zlib import crc32

GRAM_BYTES = 24  # K
WINDOW_BYTES = 360  # W
MAX_TEXT_BYTES = 2 * 1024 * 1024
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
    data = normalise(text).encode("utf-8")[:MAX_TEXT_BYTES]
    starts = _char_starts(data, gram_bytes)
    if not starts:
        return frozenset()
    order = [crc32(data[o : o + gram_bytes]) for o in starts]
    chosen = _winnow(starts, order, window_bytes) or [order.index(min(order))]
    return frozenset(gram_hash(data[starts[j] : starts[j] + gram_bytes]) for j in set(chosen))


def _char_starts(data: bytes, gram_bytes: int) -> list[int]:
    """Byte offsets where a character starts and a whole gram follows."""
    return [o for o in range(len(data) - gram_bytes + 1) if data[o] & 0xC0 != 0x80]


def _winnow(starts: list[int], order: list[int], window_bytes: int) -> list[int]:
    """The grams chosen: the rightmost minimum of every complete window (one whose grams reach
    W bytes on). `order` ranks the grams (a CRC-32 of each: only the chosen few get the stored
    blake2b hash, which keeps fingerprinting near 1 µs a character)."""
    chosen: list[int] = []
    window: deque[int] = deque()  # gram numbers, ranks increasing: window[0] is the minimum
    push, pop, popleft, choose = window.append, window.pop, window.popleft, chosen.append
    first = 0  # the gram that starts the oldest window not yet closed
    for j, offset in enumerate(starts):
        while starts[first] + window_bytes <= offset:  # gram j lies past that window: close it
            while window[0] < first:
                popleft()
            choose(window[0])
            first += 1
        rank = order[j]
        while window and order[window[-1]] >= rank:  # ties go to the rightmost
            pop()
        push(j)
    return chosen
