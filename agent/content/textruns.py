"""The runs of text in a file no reader types, read as `strings` reads a binary.

Junk put before a text (one byte that is neither UTF-8 nor GB18030, a page of control bytes, 8 KiB
of NULs) makes the type detection give up on it, while an editor, `less` or `strings` still show
the text. Moving the text test's thresholds only lets the next prefix past; so a file of no type,
or of a type no reader reads (a program, an image), is read for its runs of text instead, and its
fingerprints and detectors see them.

A run is a stretch of characters, each one of:
- UTF-8 runs: a text byte of ASCII (printable, tab, line feed, carriage return) or a well-formed
  UTF-8 character past U+009F (no overlong forms, no surrogates, nothing past U+10FFFF, no C1
  control); at least MIN_UTF8_BYTES bytes.
- GB runs: a text byte of ASCII or a pair of GB2312's rows (lead A1-F7, trail A1-FE), holding at
  least one pair; at least MIN_GB_BYTES bytes. GB18030 reads nearly any two bytes as a Chinese
  character (lead 81-FE, trail 40-7E or 80-FE: half of all random pairs), so random or compressed
  data reads as pages of Chinese in which a term such as 机密 turns up. GB2312's rows are an
  eighth of random pairs, and a run of 96 bytes of them and ASCII comes by chance about once in
  10**21 positions; the simplified Chinese of real documents is nearly all GB2312.
Each is found by a greedy scan from the start of the data: a character where one starts, else
the byte ends the run and the next begins after it. Where a UTF-8 run and a GB run overlap, the
longer is read (UTF-8 at a tie): a GB text read as UTF-8 breaks at nearly every character, and a
UTF-8 one read as GB at most of them.

Reading every byte of a 20 MB video in Python would cost seconds, so the scans are C
(`agent/content/_zipend.c`, `text_runs`); the loops here are the reference (FAST_RUNS = False),
which tests/agent/content/test_textruns.py holds the C to. `may_hold_runs` is what the lane asks
of an opaque file's bytes as it hashes them (agent/opaque.py): whether some window of
MIN_UTF8_BYTES (MIN_GB_BYTES) bytes has every two neighbouring bytes a pair that can stand side by
side in a UTF-8 (GB) run. Every run holds such a window, so a file it says False of has no run.
The C looks at the last pair of a window first and skips past the first pair that cannot be in a
run, so it reads a few bytes of every 60 to 90: some 7 µs for 130 KB of random bytes here (with
runs of 48 and 64 bytes, 10-14 µs; the lane hashes 130 KB in about 90). Runs this long are what
lineage needs anyway (two texts are sure to share a fingerprint only past 117 bytes in common);
a word or two between junk bytes is not read.
"""

from __future__ import annotations

import bisect

from agent.content.budget import Collector, OutOfBudget
from agent.content.document import BODY

MIN_UTF8_BYTES = 64
MIN_GB_BYTES = 96
UTF8, GB = 1, 2  # a run's encoding
FAST_RUNS = True  # False: the Python scans below (the reference the C is held to)
READ_BYTES = 1024 * 1024  # read and scanned at a time

_ASCII_TEXT = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def _utf8_second(lead: int) -> range:
    """The bytes that may follow a UTF-8 lead byte in a text character (empty: not a lead)."""
    if lead == 0xC2:
        return range(0xA0, 0xC0)  # U+0080-U+009F are C1 controls
    if 0xC3 <= lead <= 0xDF or 0xE1 <= lead <= 0xEC or 0xEE <= lead <= 0xEF or 0xF1 <= lead <= 0xF3:
        return range(0x80, 0xC0)
    return {0xE0: range(0xA0, 0xC0), 0xED: range(0x80, 0xA0), 0xF0: range(0x90, 0xC0), 0xF4: range(0x80, 0x90)}.get(
        lead, range(0)
    )


def _utf8_length(lead: int) -> int:
    return 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


def _utf8_char(data: bytes, i: int) -> int:
    """The length of the text character of a UTF-8 run starting at data[i], 0 when none does."""
    b = data[i]
    if b in _ASCII_TEXT:
        return 1
    second = _utf8_second(b)
    if not second:
        return 0
    length = _utf8_length(b)
    if i + length > len(data) or data[i + 1] not in second:
        return 0
    return length if all(0x80 <= c <= 0xBF for c in data[i + 2 : i + length]) else 0


def _gb_char(data: bytes, i: int) -> int:
    """The length of the text character of a GB run starting at data[i], 0 when none does."""
    b = data[i]
    if b in _ASCII_TEXT:
        return 1
    return 2 if 0xA1 <= b <= 0xF7 and i + 1 < len(data) and 0xA1 <= data[i + 1] <= 0xFE else 0


def _scan(data: bytes, char, min_bytes: int) -> list[tuple[int, int]]:
    runs, start, i, n = [], 0, 0, len(data)
    while i < n:
        k = char(data, i)
        if k:
            i += k
            continue
        if i - start >= min_bytes:
            runs.append((start, i))
        i += 1
        start = i
    if n - start >= min_bytes:
        runs.append((start, n))
    return runs


def utf8_runs_reference(data: bytes, min_bytes: int = MIN_UTF8_BYTES) -> list[tuple[int, int]]:
    return _scan(data, _utf8_char, min_bytes)


def gb_runs_reference(data: bytes, min_bytes: int = MIN_GB_BYTES) -> list[tuple[int, int]]:
    """GB runs holding a pair (one of ASCII alone lies inside a UTF-8 run at least as long)."""
    return [(a, b) for a, b in _scan(data, _gb_char, min_bytes) if not data[a:b].isascii()]


def _bits(*ranges: range) -> int:
    """The bytes of the ranges as a 256-bit mask (bit b: byte b)."""
    return sum((1 << r.stop) - (1 << r.start) for r in ranges)


def _rows() -> tuple[list[int], list[int]]:
    """For each byte a, the bytes b that may follow it in a UTF-8 run (inside one character, or the
    last byte of one and the first of the next), as a 256-bit mask; and likewise in a GB run."""
    ascii_text = _bits(range(0x20, 0x7F), range(0x09, 0x0B), range(0x0D, 0x0E))
    continuation = _bits(range(0x80, 0xC0))
    utf8_first = ascii_text | sum(1 << b for b in range(256) if _utf8_second(b))
    utf8 = [0] * 256
    for a in range(256):
        if ascii_text >> a & 1 or continuation >> a & 1:  # the last byte of a character
            utf8[a] |= utf8_first
        if continuation >> a & 1:  # the second or third byte of a long character, before the next
            utf8[a] |= continuation
        utf8[a] |= _bits(_utf8_second(a))  # a lead byte, before its second
    gb_lead, gb_trail = _bits(range(0xA1, 0xF8)), _bits(range(0xA1, 0xFF))
    gb = [0] * 256
    for a in range(256):
        if ascii_text >> a & 1 or gb_trail >> a & 1:  # the last byte of a character
            gb[a] |= ascii_text | gb_lead
        if gb_lead >> a & 1:
            gb[a] |= gb_trail
    return utf8, gb


UTF8_ROWS, GB_ROWS = _rows()


def _table(rows: list[int], value: int) -> int:
    """The rows as 65536 bytes (pair a, b at 256 * a + b), value where a row's bit is set, read as
    one integer (a Python loop over the pairs cost the agent's start 40 ms)."""
    ones = bytes.maketrans(b"01", bytes([0, value]))
    return int.from_bytes(b"".join(format(row, "0256b")[::-1].encode().translate(ones) for row in rows), "big")


# the rows as the C reads them: a byte for each pair a, b at 256 * a + b, UTF8 | GB where it may
# stand in a run of that encoding
PAIRS = (_table(UTF8_ROWS, UTF8) | _table(GB_ROWS, GB)).to_bytes(65536, "big")


def may_hold_runs_reference(data: bytes, utf8_bytes: int = MIN_UTF8_BYTES, gb_bytes: int = MIN_GB_BYTES) -> bool:
    """Whether some utf8_bytes (gb_bytes) bytes in a row have every neighbouring pair one that may
    stand in a UTF-8 (GB) run (utf8_bytes, gb_bytes: 2 or more)."""
    for rows, want in ((UTF8_ROWS, utf8_bytes), (GB_ROWS, gb_bytes)):
        streak = 1  # bytes in a row ending at data[i] whose neighbouring pairs may all stand in a run
        for i in range(1, len(data)):
            streak = streak + 1 if rows[data[i - 1]] >> data[i] & 1 else 1
            if streak >= want:
                return True
    return False


try:  # the scans in C (agent/content/_zipend.c)
    from agent.content._zipend import may_hold_runs as _may_hold_runs_c
    from agent.content._zipend import text_runs as _text_runs_c
except ImportError:  # built without the optional extension: the Python scans
    _may_hold_runs_c = _text_runs_c = None


def may_hold_runs(data) -> bool:
    """False only when data (any bytes-like object) holds no run (see the module's docstring)."""
    if FAST_RUNS and _may_hold_runs_c is not None:
        return _may_hold_runs_c(data, PAIRS, MIN_UTF8_BYTES, MIN_GB_BYTES)
    return may_hold_runs_reference(bytes(data))


def encoded_runs(data: bytes) -> list[tuple[int, int, int]]:
    """The UTF-8 and GB runs of data, as (start, end, encoding), each byte read by one at most."""
    if FAST_RUNS and _text_runs_c is not None:
        utf8, gb = _text_runs_c(data, PAIRS, MIN_UTF8_BYTES, MIN_GB_BYTES)
    else:
        utf8, gb = utf8_runs_reference(data), gb_runs_reference(data)
    return _untangled(utf8, gb)


def _untangled(utf8: list[tuple[int, int]], gb: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """The runs kept where a UTF-8 and a GB run overlap: longer first, UTF-8 first at a tie, each
    kept when it overlaps no run of the other encoding kept before. Runs of one encoding never
    overlap each other, so those kept of each stay sorted and one bisect finds a neighbour."""
    if not gb:
        return [(a, b, UTF8) for a, b in utf8]
    kept: dict[int, list[tuple[int, int]]] = {UTF8: [], GB: []}
    candidates = sorted(
        [(a, b, UTF8) for a, b in utf8] + [(a, b, GB) for a, b in gb], key=lambda r: (r[0] - r[1], r[2], r[0])
    )
    for a, b, kind in candidates:
        other = kept[GB if kind == UTF8 else UTF8]
        at = bisect.bisect_left(other, (a, b))
        if (at < len(other) and other[at][0] < b) or (at > 0 and other[at - 1][1] > a):
            continue
        bisect.insort(kept[kind], (a, b))
    return sorted([(a, b, UTF8) for a, b in kept[UTF8]] + [(a, b, GB) for a, b in kept[GB]])


def runs_text(data: bytes) -> list[str]:
    """The text of each run of data, decoded by its encoding."""
    return [data[a:b].decode("utf-8" if kind == UTF8 else "gb18030") for a, b, kind in encoded_runs(data)]


def read_runs(source, out: Collector) -> None:
    """Each line of each run of text is a body part: what `strings` shows of a file no reader types.

    Its first bytes within the byte budget are read, READ_BYTES at a time (a run cut at a read's
    end is cut). A budget running out ends the reading without marking the document truncated:
    every video past 20 MB would otherwise be said uninspectable (the fail-closed rules count
    inspection_truncated), where before this nothing of such a file was read at all."""
    from agent.content.text import open_source  # text.py's, imported where it is used

    try:
        with open_source(source) as f:
            while True:
                out.check_time()
                chunk = f.read(min(READ_BYTES, out.bytes_left))
                if not chunk:
                    return
                out.take_bytes(len(chunk))
                if may_hold_runs(chunk):
                    for text in runs_text(chunk):
                        out.add_all(BODY, text.splitlines(), decoded=True)
    except OutOfBudget:
        return
