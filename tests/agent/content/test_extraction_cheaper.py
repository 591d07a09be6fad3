"""Extraction made cheaper (issue 21 round 3) gives what its references give:

- budget.has_surrogates (UTF-16's strict encoder) against the regex search it replaced;
- text.decode never gives a lone surrogate, whatever the bytes (so read_text's lines skip the
  search: add_all(decoded=True)), and read_text on random bytes adds what add() per line adds.

Each comparison was checked to fail with its fast path broken on purpose (the report of the
change says how)."""

from __future__ import annotations

import codecs
import io
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content import budget
from agent.content.budget import Collector, OutOfBudget
from agent.content.document import BODY
from agent.content.text import decode, read_text

SETTINGS = settings(max_examples=400, deadline=None)
SURROGATE = re.compile("[\ud800-\udfff]")

TEXTS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "a", "\udc80", "x\ud800", "\udfff y", "\U0001f600", "机密", "\ud7ff\ue000", "\ud83d\ude00"]),
)


@SETTINGS
@given(pieces=st.lists(TEXTS, max_size=6))
def test_has_surrogates_finds_what_the_regex_finds(pieces):
    text = "".join(pieces)
    assert budget.has_surrogates(text) == (SURROGATE.search(text) is not None)


def test_has_surrogates_on_each_edge():
    for text in ("\ud800", "\udbff", "\udc00", "\udfff", "a" * 1000 + "\udc80", "机密\udcff"):
        assert budget.has_surrogates(text), repr(text)
    for text in ("", "ascii", "\ud7ff", "\ue000", "\U0001f600", "é" * 100, "机密" * 100):
        assert not budget.has_surrogates(text), repr(text)


BOMS = st.sampled_from([b"", b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])
SURROGATE_BYTES = st.sampled_from([b"\xed\xa0\x80", b"\x00\xd8", b"\xd8\x00", b"\x00\xdc", b"\x84\x31\xa4\x39", b""])


@SETTINGS
@given(bom=BOMS, body=st.lists(st.one_of(st.binary(max_size=8), SURROGATE_BYTES), max_size=8), complete=st.booleans())
def test_decode_never_gives_a_surrogate(bom, body, complete):
    assert not SURROGATE.search(decode(bom + b"".join(body), complete))


def test_no_gb18030_sequence_decodes_to_a_surrogate():
    """Every four-byte GB18030 sequence of the BMP (the two-byte ones are CJK and symbols)."""
    found = [
        bytes((a, b, c, d))
        for a in range(0x81, 0x85)
        for b in range(0x30, 0x3A)
        for c in range(0x81, 0xFF)
        for d in range(0x30, 0x3A)
        if SURROGATE.search(bytes((a, b, c, d)).decode("gb18030", "replace"))
    ]
    assert found == []


def _parts(read, data: bytes, chars_left: int):
    out = Collector(1 << 20, 30.0)
    out.chars_left = chars_left
    try:
        read(data, out)
    except OutOfBudget as e:
        return out.parts, out.chars_left, out.truncated, str(e)
    return out.parts, out.chars_left, out.truncated, None


def _reference(data: bytes, out: Collector) -> None:
    out.take_bytes(len(data))
    for line in decode(data).splitlines():
        out.add(BODY, line)


@SETTINGS
@given(
    bom=BOMS,
    body=st.lists(st.one_of(st.binary(max_size=8), SURROGATE_BYTES, st.sampled_from([b"\n", b"\r\n", b" \x0c"]))),
    chars_left=st.sampled_from([1 << 20, 12, 0]),
)
def test_read_text_on_random_bytes_adds_what_add_adds(bom, body, chars_left):
    data = bom + b"".join(body)
    fast = _parts(lambda d, out: read_text(io.BytesIO(d), out), data, chars_left)
    assert fast == _parts(_reference, data, chars_left)
