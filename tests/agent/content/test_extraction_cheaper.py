"""Extraction made cheaper (issue 21 round 3) gives what its references give:

- budget.has_surrogates (UTF-16's strict encoder) against the regex search it replaced, and
  document.readable (a TextPart's text) by either;
- text.decode never gives a lone surrogate, whatever the bytes (so read_text's lines skip the
  search: add_all(decoded=True)), and read_text on random bytes adds what add() per line adds;
- ooxml.simple_rows (a sheet of simple rows by whole-text passes) against _plain_rows's loop;
- ooxml._plain_texts (paragraphs by a simpler findall and string replacements) against the marks.

Each comparison was checked to fail with its fast path broken on purpose (the report of the
change says how)."""

from __future__ import annotations

import codecs
import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content import budget, document, ooxml
from agent.content.budget import Collector, OutOfBudget
from agent.content.document import BODY
from agent.content.text import decode, read_text
from tests.agent.content import test_extraction_fast as fast

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


@SETTINGS
@given(pieces=st.lists(TEXTS, max_size=6))
def test_readable_is_the_same_by_either_check(pieces):
    """A part as long as a worksheet is checked by the encoder, not the regex: the same text."""
    text = "".join(pieces)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(document, "FAST_SURROGATES", False)
        reference = document.readable(text)
    assert document.readable(text) == reference
    assert not SURROGATE.search(reference)


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


# --- simple worksheet rows ----------------------------------------------------------------------

SHARED = ["姓名", "a b", " a  b ", "x\ty", "", " ", "110105194912310021", "机密\u3000文件", "p\xa0q", "end "]
NUMBERS = st.sampled_from(["0", "7", "12345", "-5", "2.5", "-0.50", "1.0", "1.2E+3", "007", "1.10105194912311E+17"])


@st.composite
def _simple_sheet(draw) -> str:
    rows = []
    for n in range(1, draw(st.integers(0, 5)) + 1):
        width = draw(st.sampled_from([1, 2, 3, 5, 64, 65]))
        cells = []
        for column in range(1, width + 1):
            letters = ooxml._column_letters(column)
            style = draw(st.sampled_from(["", "", ' s="3"']))
            if draw(st.booleans()):
                index = draw(st.sampled_from(["0", "1", "3", "6", "7", "8", "9"] if width < 9 else ["0", "6"]))
                cells.append(f'<c r="{letters}{n}"{style} t="s"><v>{index}</v></c>')
            else:
                kind = draw(st.sampled_from(["", "", ' t="n"']))
                cells.append(f'<c r="{letters}{n}"{style}{kind}><v>{draw(NUMBERS)}</v></c>')
        row = draw(
            st.sampled_from([f'<row r="{n}">{{}}</row>', "<row>{}</row>", f'<row r="{n}" spans="1:9">{{}}</row>'])
        )
        rows.append(row.format("".join(cells)))
    sheet = "".join(rows)
    odd = draw(
        st.sampled_from(
            [None] * 6
            + [('r="B', 'r="C'), ('r="A', 'r="a'), ("</row>", "</row> "), ("<v>1</v>", "<v>12</v>"),
               ("</row>", "</row><row/>"), ("</row>", "</row><row></row>"), ('t="s"', 't="str"'),
               ("<v>0</v>", "<v>0000000000000000001</v>"), ("<v>7</v>", "<v>7&#48;</v>")]
        )
    )  # fmt: skip
    if odd and odd[0] in sheet:
        at = draw(st.integers(0, sheet.count(odd[0]) - 1))
        pieces = sheet.split(odd[0])
        sheet = odd[0].join(pieces[: at + 1]) + odd[1] + odd[0].join(pieces[at + 1 :])
    return sheet


@SETTINGS
@given(
    sheet=_simple_sheet(),
    chars_left=st.sampled_from([1 << 20, 40, 5]),
    shared=st.sampled_from([SHARED, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], ["x"] * 10]),
)
def test_simple_rows_read_as_the_loop_reads(sheet, chars_left, shared):
    text = f"<worksheet><sheetData>{sheet}</sheetData></worksheet>"
    begin, end = text.index("<sheetData>") + len("<sheetData>"), text.index("</sheetData>")
    simple = ooxml.simple_rows(text, begin, end, shared, chars_left)
    reference = ooxml._plain_rows(text, begin, end, shared, chars_left)
    if simple is not None:
        assert simple == reference
    assert ooxml.plain_rows(text, begin, end, shared, chars_left) == reference


def test_simple_rows_take_the_simple_sheets():
    """The shortcut is taken where it should be (not just always refused), and refused on a gap."""
    text = '<sheetData><row r="1"><c r="A1" t="s"><v>1</v></c><c r="B1" s="2"><v>2.5</v></c></row>'
    text += '<row r="2" spans="1:2"><c r="A2"><v>-7</v></c></row></sheetData>'
    begin, end = len("<sheetData>"), text.index("</sheetData>")
    assert ooxml.simple_rows(text, begin, end, [" x ", "a  b"], 1000) == (["a b\t2.5", "-7"], [], 11, {1})
    assert ooxml.simple_rows(text.replace('r="B1"', 'r="C1"'), begin, end, ["x", "y"], 1000) is None


def test_other_space_is_what_str_split_splits_at_but_the_space():
    spaces = [c for c in map(chr, range(0x110000)) if c.isspace() and c != " "]
    assert [c for c in map(chr, range(0x110000)) if ooxml._OTHER_SPACE.match(c)] == spaces


# --- paragraphs without tabs and breaks ---------------------------------------------------------


@fast.SETTINGS
@given(
    body=st.one_of(
        fast._body("w:", "tbl"), fast._body("", "tbl"), fast._body("a:", "ph", odd_blocks=False), fast._body("x:", "p")
    ),
    kind=st.sampled_from(["document", "slide"]),
    strip_inline=st.booleans(),
)
def test_plain_texts_give_what_the_marks_give(body, kind, strip_inline, monkeypatch):
    """_plain_texts gives plain_paragraphs's marks' answer: the paragraphs, or None (a t holding
    elements; tabs or breaks outside a paragraph or beside nested ones), on bodies with and
    without their tabs and breaks."""
    if strip_inline:
        body = re.sub(r"<(?:\w+:)?(?:tab|br|cr)\b[^>]*/>|<(?:\w+:)?br></(?:\w+:)?br>", "", body)
    text = fast._member(body, kind).decode()
    monkeypatch.setattr(ooxml, "FAST_PLAIN_MARKS", False)
    reference = ooxml.plain_paragraphs(text)
    checked = text.count("<") == text.count(">")  # plain_paragraphs's check before it asks
    plain = ooxml._plain_texts(ooxml._LINE_ENDS.sub("\n", text)) if checked else None
    if plain is not None or checked:
        assert plain == reference  # and what the marks read, it reads
    monkeypatch.setattr(ooxml, "FAST_PLAIN_MARKS", True)
    assert ooxml.plain_paragraphs(text) == reference


@pytest.mark.timeout(120)
def test_a_long_crafted_number_costs_one_pass():
    """A fraction's digits read one way only: "1.", zeros, ones and an "x" took quadratic time
    with [0-9]*[1-9][0-9]* (0.3 s at 8,000 digits a side; at 200,000 it had not ended after two
    minutes): such a regression fails by the timeout (no clock read here)."""
    digits = 200_000
    text = f'<row r="1"><c r="A1"><v>1.{"0" * digits}{"1" * digits}x</v></c></row>'
    assert ooxml._SIMPLE_SHEET.fullmatch(text) is None
    assert ooxml.simple_rows(text, 0, len(text), [], 1 << 30) is None
