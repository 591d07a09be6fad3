"""Plain text and CSV: decoded (UTF-8, UTF-16 with BOM, Big5, GB18030) and split into lines; a web page's
or an RTF document's text as it is shown (agent/content/markup.py)."""

from __future__ import annotations

import codecs
import re
from contextlib import AbstractContextManager, nullcontext
from typing import BinaryIO

from agent.content.budget import Collector
from agent.content.document import BODY
from agent.content.markup import as_text, is_rtf_file, rtf_text

CHUNK_BYTES = 1024 * 1024


def decode(data: bytes, complete: bool = True) -> str:
    """Try UTF-8 (BOM or not), then UTF-16 by its BOM, then Big5 where it is that (_big5), else
    GB18030 (which also reads GBK).

    complete=False when data was cut short: a character split at the end is not an error.
    NULs are left out (but in UTF-16 with a BOM, where they are half of Latin text's bytes): no
    text holds one, and one put among the text must not change what it reads as (filetype's
    looks_like_text types such a file as text).
    """
    if b"\0" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        data = data.replace(b"\0", b"")
    if data.startswith(codecs.BOM_UTF8):
        return codecs.getincrementaldecoder("utf-8-sig")("replace").decode(data, final=complete)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return codecs.getincrementaldecoder("utf-16")("replace").decode(data, final=complete)
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=complete)
    except UnicodeDecodeError:
        if (codec := _big5(data[:BIG5_PROBE_BYTES])) is not None:
            try:  # all of it: GBK behind a probe of characters both read (a crafted head) stays GBK
                return codecs.getincrementaldecoder(codec)().decode(data, final=complete)
            except UnicodeDecodeError:
                pass
        return codecs.getincrementaldecoder("gb18030")("replace").decode(data, final=complete)


BIG5_PROBE_BYTES = 64 * 1024
_DOUBLE = re.compile(rb"[\x81-\xfe][\x40-\xfe]")  # a double-byte character of GBK or Big5 (by its lead)


def _big5(sample: bytes) -> str | None:
    """The Big5 codec a text that is not UTF-8 is in (traditional Chinese as Taiwan's Windows
    saves it, cp950, or Hong Kong's, big5hkscs), or None for GBK: the sample reads in it without an
    error, and a fifth or more of its double-byte characters end in a byte of 0x40-0x7E. Some two
    in five of Big5's do; of GBK's only those of its extension areas (rare words, or traditional
    characters, whose GBK bytes mostly do not read as Big5). GB18030 reads Big5 without an error,
    as other characters. A text of a few characters may hold too few to tell: it reads as GB18030."""
    pairs = _DOUBLE.findall(sample)
    if len(pairs) < 4 or sum(1 for pair in pairs if pair[1] < 0x7F) * 5 < len(pairs):
        return None
    for codec in ("cp950", "big5hkscs"):
        try:
            codecs.getincrementaldecoder(codec)().decode(sample, final=False)  # (the probe may cut a character)
        except UnicodeDecodeError:
            continue
        return codec
    return None


def open_source(source: str | BinaryIO) -> AbstractContextManager[BinaryIO]:
    """A path is opened (and closed); a file object (an archive member in memory) is rewound."""
    if isinstance(source, str):
        return open(source, "rb")
    source.seek(0)
    return nullcontext(source)


def read_text(source: str | BinaryIO, out: Collector) -> None:
    """Each non-blank line is a body part; reads at most the byte budget (then truncated)."""
    chunks: list[bytes] = []
    with open_source(source) as f:
        while True:
            out.check_time()
            chunk = f.read(min(CHUNK_BYTES, out.bytes_left))
            if not chunk:
                break
            chunks.append(chunk)
            out.take_bytes(len(chunk))
        complete = not f.read(1)
    out.truncated = out.truncated or not complete
    data = b"".join(chunks)
    if is_rtf_file(data):  # RTF as a word processor shows it, from its bytes
        shown = rtf_text(data.removeprefix(b"\xef\xbb\xbf").decode("latin-1"))
        out.markup = True
    else:
        text = decode(data, complete)
        shown = as_text(text)  # a web page as a browser shows it
        out.markup = shown is not text
    lines = shown.splitlines()
    out.add_all(BODY, lines, decoded=True)  # add() per line, parts made at once
