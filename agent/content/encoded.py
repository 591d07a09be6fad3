"""Files written out as text inside a text: base64, hex dumps and uuencode.

`base64 drawing.dwg > notes.txt`, `xxd drawing.dwg`, a key pasted into a chat, a file inlined in a
JSON string: the text holds every byte of the file, and nothing of it is the file's. Its hash, its
chunks and its text all differ from the file's, so a copy written out this way would leave unseen.
carried() finds such blocks in a text and decodes them; the inspection walks each as a member of
an archive (agent/content/archive.py), so the file written out is hashed, traced by its bytes and
its text, and inspected as a zipped one is.

What is found, each block at least MIN_BYTES once decoded:
- base64: lines of the base64 alphabet of MIN_WIDTH or more, every one as long as the first but
  the last (`base64` wraps at 76, PEM, openssl and Windows' `certutil -encode` at 64; blank lines
  between them are passed over, as an HTML message's text has them), or one run of at least
  RUN_CHARS anywhere in a line (a JSON string, a data: URI, `base64 -w0`);
- hex: the same lines or runs of hex digits only (`xxd -p`, `bytes.hex()`), and the dumps of xxd,
  `hexdump -C`, `certutil -encodehex`, `od -tx1` (with or without its offsets) and `xxd -i` (a C
  array); a dump's offset back at zero starts another;
- uuencode: "begin 644 NAME" to "end" (mail programs attach a file this way too).
Not read: base64 wrapped at fewer than MIN_WIDTH characters or cut into spaced groups, dumps of
16-bit words (`od -x`, hexdump's default), and any other encoding (a cipher, a format of one's own).
A run of base64 or hex that decodes to nothing in particular (a hash, a serial number, a word
of code) becomes a member like any other, one no lookup finds; its cost is a hash and a look.

The patterns are anchored (a line's start, or a run's start by a look-behind), so each line and
each run is tried once: a text of any size is read in linear time. At most MAX_BLOCKS blocks are
read, the longest first: a drawing cannot be hidden behind a thousand small decoys.
"""

from __future__ import annotations

import binascii
import hashlib
import heapq
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MIN_BYTES = 64  # decoded: a shorter block is a key, a hash or a word, no file worth tracing
RUN_CHARS = 88  # one run of base64 (or hex) inside a line, without line breaks: 66 bytes decoded
MIN_WIDTH = 8  # the width of a block of lines (its first line); one line alone is a run
MAX_BLOCKS = 256  # read of one text, the longest first
# what a dump's "*" lines may stand for: at most so many bytes a character of the dump's own lines,
# and at least DUMP_FLOOR_BYTES (a dump's offsets are its writer's word: a jump to 0xffffffff after
# a "*" built 4 GB in memory from a few lines)
DUMP_RATIO = 100
DUMP_FLOOR_BYTES = 16 * 1024 * 1024
BASE64, HEX, UUENCODE = "base64", "hex", "uuencode"

_B64 = "A-Za-z0-9+/_-"  # base64's alphabet and base64url's (RFC 4648: - and _ for + and /)
_PAIR = "[0-9a-fA-F]{2}"
# a line that is one of: base64 (hex is a part of its alphabet; quoted, as a program's or a
# notebook's string, "...\n", or a reply's "> ", is one too), a dump of xxd (offset, colon, groups), a dump of bytes
# after an offset (`hexdump -C`, its characters between bars; `certutil -encodehex` and
# PowerShell's Format-Hex, their characters after spaces; `od -tx1`), bytes alone (`od -An -tx1`,
# PowerShell's BitConverter 4D-5A-90, Python's hex(":")), a C array (`xxd -i`), a "*" (the lines a dump left out as
# the line before over again) or an offset alone (where such a dump ends). A dump's characters are
# matched as bytes where they look like them: _dump cuts each line to the bytes its offsets give.
# (From the line break before it: sre finds that as fast as memchr, not so a "^"; the repeats
# possessive: a line of millions of pairs is matched with no stack of places to go back to.)
_LINES = (  # (in three passes, merged: each alone is some 2-3 times as fast as one of them all)
    re.compile(
        rf"(?m)\n[ \t]*(?=[0-9a-fA-F])(?:"
        rf"(?P<at1>[0-9a-fA-F]{{4,16}}): (?P<xxd>{_PAIR}(?:[0-9a-fA-F]{{2}}| (?={_PAIR}))*+)"
        rf"|(?P<at2>[0-9a-fA-F]{{4,16}})(?:[ \t]{{1,3}}|:[ \t]*)(?P<hd>{_PAIR}(?:(?: {{1,2}}|-){_PAIR})*+).*$"
        rf"|(?P<od>{_PAIR}(?:(?:[ \t]{{1,2}}|[-:]){_PAIR}){{3,}}+)(?:[ \t]{{3,}}.*)?[ \t\r]*$"
        rf"|(?P<xi>0[xX]{_PAIR}(?:(?:,[ \t]*|[ \t]+)0[xX]{_PAIR})*+),?[ \t\r]*$"
        r"|(?P<end>[0-9a-fA-F]{4,16})[ \t\r]*$"
        r")"
    ),
    re.compile(
        rf"(?m)\n[ \t>]*[\"'`]?(?P<b64>[{_B64}]{{{MIN_WIDTH},}}={{0,2}})(?:\\[nr])*[\"'`]?[ \t]*[,+;)]?[ \t\r]*$"
    ),
    re.compile(r"(?m)\n[ \t]*(?P<star>\*)[ \t\r]*$"),
)
_LAST_LINE = re.compile(rf"\n[ \t>]*[\"'`]?([{_B64}]{{1,{MIN_WIDTH - 1}}}={{0,2}})", re.M)  # a block's short last
_OFFSET = {"xxd": "at1", "hd": "at2"}  # the group of each dump's offset
# runs are looked for in the text's UTF-8 bytes with every byte of the alphabet made "a" and every
# other a space: a search for RUN_CHARS "a"s skips along the text some 5 times as fast as a pattern
_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")
_AS_RUNS = bytes(0x61 if byte in _ALPHABET else 0x20 for byte in range(256))
_RUN_OF = b"a" * RUN_CHARS
_RUN_REST = re.compile(rb"a*")
# a JSON string's escapes that cut a run (jq -Rs keeps base64's line breaks as \n, PHP writes / as
# \/, .NET + as \u002B): read as what they stand for
_JSON_ESCAPES = (
    (b"\\n", b""),
    (b"\\r", b""),
    (b"\\/", b"/"),
    (b"\\u002B", b"+"),
    (b"\\u002b", b"+"),
    (b"\\u002F", b"/"),
    (b"\\u002f", b"/"),
)
_HEX_ONLY = re.compile(r"[0-9a-fA-F]*")
_DASHED_HEX = re.compile(rf"(?:{_PAIR}-)+{_PAIR}")
_NOT_HEX = re.compile(r"[^0-9a-fA-F]")
_DIGIT, _HEX_LETTER = re.compile(r"[0-9]"), re.compile(r"[a-fA-F]")
_UPPER, _LOWER, _DIGIT_OR_SIGN = re.compile(r"[A-Z]"), re.compile(r"[a-z]"), re.compile(r"[0-9+/_-]")
_URL_SAFE, _STANDARD = re.compile(r"[-_]"), re.compile(r"[+/]")
_UU_BEGIN = re.compile(r"(?m)\nbegin [0-7]{3,4} ([^\r\n]{1,1000})\r?$")
_UU_END = re.compile(r"(?m)\nend[ \t\r]*$")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/=]")
_B64_PIECE = re.compile(rb"[A-Za-z0-9+/]+=*")
_FROM_URL_SAFE = bytes.maketrans(b"-_", b"+/")


@dataclass(frozen=True)
class Carried:
    kind: str  # BASE64, HEX or UUENCODE
    data: bytes
    name: str | None = None  # what a uuencoded block calls its file


def carried(text: str, check_time: Callable[[], None] = lambda: None) -> Iterator[Carried]:
    """The files written out in `text`, decoded, the longest first (at most MAX_BLOCKS)."""
    text = "\n" + text  # every line, the first too, after a line break (the patterns start at one)
    blocks: list[tuple[int, str, str | bytes, str | None]] = []  # (length, kind, encoded or decoded, name)
    lines: set[str] = set()  # the lines of the blocks of lines: a run that is one is theirs
    for kind, encoded, pieces in _line_blocks(text, check_time):
        blocks.append((len(encoded), kind, encoded, None))
        lines.update(piece.rstrip("=") for piece in pieces)
    for start, end, name in _uu_blocks(text, check_time):
        blocks.append((end - start, UUENCODE, text[start:end], name))
    for run in _runs(text, check_time):
        kind = _kind(run)
        if kind is not None and run not in lines:
            blocks.append((len(run), kind, run, None))
    blocks.sort(key=lambda b: -b[0])  # (a stable sort: in the text's order at a tie)
    yielded = set()  # digests of what was decoded: a block found twice (a notebook's lines, also a run once its \n are read) once
    for _, kind, encoded, name in blocks[:MAX_BLOCKS]:
        check_time()
        data = _decoded(kind, encoded)
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if len(data) >= MIN_BYTES and digest not in yielded:
            yielded.add(digest)
            yield Carried(kind, data, name)


def _decoded(kind: str, encoded: str | bytes) -> bytes:
    if isinstance(encoded, bytes):  # a dump, decoded as its lines were put together
        return encoded
    if kind == UUENCODE:
        return uudecode(encoded)
    if kind == HEX:  # (the digits of pairs, dashes or spaces between them left out)
        digits = _NOT_HEX.sub("", encoded)
        return bytes.fromhex(digits[: len(digits) // 2 * 2])
    raw = encoded.encode()
    return lenient_base64(raw.translate(_FROM_URL_SAFE) if _URL_SAFE.search(encoded) else raw)


def _runs(text: str, check_time: Callable[[], None]) -> Iterator[str]:
    """Each run of RUN_CHARS or more characters of the base64 alphabet in text (padding left out)."""
    raw = text.encode("utf-8", "surrogatepass")
    if b"\\" in raw:
        for escape, meant in _JSON_ESCAPES:
            raw = raw.replace(escape, meant)
    marks = raw.translate(_AS_RUNS)
    at = 0
    while (start := marks.find(_RUN_OF, at)) >= 0:  # the first of a run's: where it starts
        check_time()
        at = _RUN_REST.match(marks, start + RUN_CHARS).end()
        yield raw[start:at].decode("ascii")


def _kind(encoded: str) -> str | None:
    """HEX for an even run of hex digits only (which base64 would read as other bytes) or of pairs
    joined by dashes; BASE64 for one holding capitals, small letters and a digit (or a sign), as
    any file of 66 bytes or more written out does but for one of a byte repeated, in one alphabet
    (base64's + and /, or base64url's - and _, not both); None for anything else (a word, a
    number, a slug)."""
    if len(encoded) % 2 == 0 and _HEX_ONLY.fullmatch(encoded):
        return HEX if _DIGIT.search(encoded) and _HEX_LETTER.search(encoded) else None
    if _DASHED_HEX.fullmatch(encoded):
        return HEX
    if _URL_SAFE.search(encoded) and _STANDARD.search(encoded):
        return None
    if _UPPER.search(encoded) and _LOWER.search(encoded) and _DIGIT_OR_SIGN.search(encoded):
        return BASE64
    return None


def _line_blocks(text: str, check_time: Callable[[], None]) -> Iterator[tuple[str, str | bytes, list[str]]]:
    """(kind, the encoded characters or a dump's bytes, the lines' pieces) of each block of
    consecutive lines of one form (text starts with a line break)."""
    block: list[str] = []
    offsets: list[str | None] = []  # a dump's: each line's offset, None for a "*"
    form, width, end = "", 0, -1
    taken = -1  # where the line last read starts: a line two passes match is read once (the first's)
    passes = _LINES if "*" in text else _LINES[:2]  # (most texts hold no "*": its pass is skipped)
    for _, _, line in heapq.merge(*(_matches(order, lines, text) for order, lines in enumerate(passes))):
        check_time()
        line_form = line.lastgroup or ""
        piece = line.group(line_form)
        if line.start() == taken:
            continue
        if line_form == "end" and form not in _OFFSET:
            continue  # a number alone: the end of a dump only after one (else, maybe base64's line)
        taken = line.start()
        # the line after the block's last (the rest of that line is an xxd or hexdump character
        # column), or after blank lines (an HTML message's text, its <br> and its line break each one)
        adjacent = _blank(text, text.find("\n", end) + 1, line.start() + 1)
        if form in _OFFSET and adjacent and line_form in ("star", "end"):
            block.append("")  # a "*", or the dump's last offset alone
            offsets.append(None if line_form == "star" else piece)
            end = line.end()
            continue
        follows = line_form == form and adjacent
        if follows and line_form in _OFFSET:  # a dump's offset back at zero: the next dump's first line
            follows = line.group(_OFFSET[line_form]).strip("0") != ""
        if follows and form == "b64":
            # a wrapped block: every line as long as the first, but the last (which may be shorter,
            # and alone ends in padding)
            follows = len(block[-1]) == width and len(piece) <= width and not block[-1].endswith("=")
        if not follows:
            if block:
                yield from _finished(text, block, offsets, form, end)
            block, offsets, form, width = [], [], line_form, len(piece)
        block.append(piece)
        if line_form in _OFFSET:
            offsets.append(line.group(_OFFSET[line_form]))
        end = line.end()
    if block:
        yield from _finished(text, block, offsets, form, end)


def _matches(order: int, lines: re.Pattern, text: str) -> Iterator[tuple[int, int, re.Match]]:
    """(start, order, match) of each line one pass matches: merged in the text's order, the first
    pass's first where two match one line."""
    for match in lines.finditer(text):
        yield match.start(), order, match


def _blank(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is empty or only blank lines (0 < start: the line had a break after it)."""
    return 0 < start <= end and (start == end or text[start:end].isspace())


def _finished(
    text: str, block: list[str], offsets: list[str | None], form: str, end: int
) -> Iterator[tuple[str, str | bytes, list[str]]]:
    if form in ("star", "end"):
        return  # a "*" or a number alone, with no dump before it
    if form == "b64":
        last = _LAST_LINE.match(text, end) if len(block[-1]) == len(block[0]) else None
        if last is not None:  # the wrapped block's last line, too short for a line of its own
            block = [*block, last.group(1)]
        if len(block) == 1 and len(block[0]) < RUN_CHARS:
            return  # one short line: a word, a hash, an identifier
        encoded = "".join(block)
        kind = HEX if _DASHED_HEX.fullmatch(block[0]) else _kind(encoded.rstrip("="))  # (BitConverter's lines)
        if kind is not None:
            yield kind, encoded, block
        return
    if form in _OFFSET:
        yield HEX, _dump([_NOT_HEX.sub("", piece) for piece in block], offsets), block
        return
    encoded = "".join(block)
    if form == "xi":
        encoded = encoded.replace("0x", "").replace("0X", "")
    yield HEX, _NOT_HEX.sub("", encoded), block


def _dump(lines: list[str], offsets: list[str | None]) -> bytes:
    """The bytes of a dump with offsets: each line's hex digits cut to the bytes a line holds (the
    step between its first offsets, in the base that makes it a whole line: hexdump's and xxd's
    hex, od's octal, or decimal), a "*" as the line before it over again up to the next offset,
    and the last line cut at the dump's closing offset alone, where there is one."""
    steps = [(o, n) for o, n in zip(offsets, lines, strict=True) if o is not None and n]
    base, width = 16, None
    if len(steps) >= 2:
        first, second, held = steps[0][0], steps[1][0], len(steps[0][1]) // 2
        for candidate in (16, 8, 10):  # the one in which the step is a whole first line, else the first under it
            try:
                step = int(second, candidate) - int(first, candidate)
            except ValueError:
                continue
            if 0 < step <= held and (width is None or step == held):
                base, width = candidate, step
                if step == held:
                    break
    out = bytearray()
    previous = b""
    most = max(DUMP_FLOOR_BYTES, DUMP_RATIO * sum(map(len, lines)))  # beyond it, "*" lines stand for nothing more
    for offset, digits in zip(offsets, lines, strict=True):
        if not digits:  # a "*" (offset None) or the closing offset: the line before, over again
            if offset is None:
                continue
            at = _int(offset, base)
            if at is not None and previous and width:
                _repeat(out, previous, min(at, most))
                del out[at:]
            continue
        at = _int(offset, base) if offset is not None else None
        if at is not None and previous and width and len(out) < at:  # the lines a "*" stood for
            _repeat(out, previous, min(at, most))
        row = bytes.fromhex(digits[: 2 * width] if width else digits[: len(digits) // 2 * 2])
        out += row
        previous = row
    return bytes(out)


def _repeat(out: bytearray, line: bytes, end: int) -> None:
    """`line` put after `out` over again while it ends at or before `end` (at once, not a line at a time)."""
    if len(out) + len(line) <= end:
        out += line * ((end - len(out)) // len(line))


def _int(digits: str, base: int) -> int | None:
    try:
        return int(digits, base)
    except ValueError:
        return None


def _uu_blocks(text: str, check_time: Callable[[], None]) -> Iterator[tuple[int, int, str]]:
    """(start, end, name) of each uuencoded block: each found once, in one pass."""
    at = 0
    while (begin := _UU_BEGIN.search(text, at)) is not None:
        check_time()
        end = _UU_END.search(text, begin.end())
        if end is None:
            return  # no block ends after this one: none after it does either
        yield begin.start() + 1, end.end(), begin.group(1)
        at = end.end()


def lenient_base64(data: bytes) -> bytes:
    """Base64 as mail clients read it: junk left out, a stray last character dropped, and a body
    padded on every line (some mailers encode each line on its own) decoded a piece at a time."""
    clean = _B64_JUNK.sub(b"", data)
    pieces = _B64_PIECE.findall(clean) if b"=" in clean.rstrip(b"=") else [clean]
    out = []
    for piece in pieces:
        piece = piece.rstrip(b"=")
        if len(piece) % 4 == 1:
            piece = piece[:-1]
        out.append(binascii.a2b_base64(piece + b"=" * (-len(piece) % 4)))
    return b"".join(out)


def uudecode(data: bytes | str) -> bytes:
    """A uuencoded block ("begin ..." to "end"), decoded line by line; a line with trailing garbage
    is cut to its length byte's count, as uu's own reader forgives."""
    if isinstance(data, str):
        data = data.encode("latin-1", "replace")
    out = []
    lines = iter(data.splitlines())
    for line in lines:
        if line.startswith(b"begin "):
            break
    for line in lines:
        if line.strip() in (b"end", b"`", b""):
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            try:
                out.append(binascii.a2b_uu(line[: ((line[0] - 32 & 63) * 4 + 5) // 3]))
            except binascii.Error:
                continue
    return b"".join(out)
