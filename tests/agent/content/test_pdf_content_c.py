"""The C loop over a content stream's tokens (agent/content/_pdftext.c) held to pdf_content.py's
Python loop, its reference: on random content streams (plausible operators, office runs, runs of
lines, forms, marked content, and their corruptions) both give the very same text objects, or both
fail (the document then goes to PDFium either way)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import pdf_content, pdf_fast
from agent.content.pdf_content import Column, ContentReader, TextObject
from agent.content.pdf_xref import Document
from tests.agent.content import makers

_pdftext = pytest.importorskip("agent.content._pdftext", reason="the C extension is not built")

HELVETICA = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
# "!" and '"' at PDFium's repeated-glyph distance (71), "#" of no width
WIDTHS = " ".join({32: "250", 33: "70", 34: "71", 35: "0"}.get(c, str(300 + c % 7 * 100)) for c in range(32, 127))
SERIF = (f"<< /Type /Font /Subtype /Type1 /BaseFont /ABCDEF+Serif /FirstChar 32 /LastChar 126 /Widths [{WIDTHS}] "
         "/Encoding /WinAnsiEncoding >>")  # fmt: skip
TYPE0 = "<< /Type /Font /Subtype /Type0 /BaseFont /AAAAAA+Sans /Encoding /Identity-H /DescendantFonts [9 0 R] /ToUnicode 10 0 R >>"
CID = ("<< /Type /Font /Subtype /CIDFontType2 /BaseFont /AAAAAA+Sans /CIDSystemInfo << /Registry (Adobe) "
       "/Ordering (Identity) /Supplement 0 >> /DW 1000 /W [1 [1000 1000] 3 4 500] >>")  # fmt: skip
CMAP_BODY = (
    "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Adobe-Identity-UCS def "
    "1 begincodespacerange <0000> <FFFF> endcodespacerange 2 beginbfchar <0001> <673A> <0002> <5BC6> endbfchar "
    "1 beginbfrange <0003> <0005> <0041> endbfrange 2 beginbfchar <D800> <0058> <DC00> <0059> endbfchar endcmap CMapName currentdict /CMap defineresource pop end end"
)
FORM_MARKED = "/P2 BDC BT /F1 9 Tf (in a form) Tj ET EMC"  # a form without Properties of its own
FORM_GS = "/G2 gs BT /F1 9 Tf (in a form) Tj ET"  # a form without an ExtGState of its own
FORM_CONTENT = "BT /F1 12 Tf 72 650 Td (inside the form) Tj ET q 0 0 0 rg BT 5 5 Td /F2 9 Tf <00010002> Tj ET Q"


def _document() -> tuple[Document, dict]:
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R /F2 6 0 R "
        "/F3 7 0 R >> /XObject << /X1 8 0 R /X2 11 0 R /X3 12 0 R /X4 13 0 R >> /Properties << /P1 << /ActualText (x) >> /P2 << >> >> "
        "/ExtGState << /G1 << /Font [5 0 R 12] >> /G2 << /CA 1 >> >> >> "
        "/Contents 4 0 R >>",
        "<< /Length 0 >>\nstream\n\nendstream",
        HELVETICA,
        TYPE0,
        SERIF,
        f"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> "
        f"/Matrix [1 0 0 1 3 -4] /Length {len(FORM_CONTENT)} >>\nstream\n{FORM_CONTENT}\nendstream",
        CID,
        f"<< /Length {len(CMAP_BODY)} >>\nstream\n{CMAP_BODY}\nendstream",
        "<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /Length 1 >>\nstream\n\x00\nendstream",
        f"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
        f"/Length {len(FORM_MARKED)} >>\nstream\n{FORM_MARKED}\nendstream",
        f"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
        f"/Length {len(FORM_GS)} >>\nstream\n{FORM_GS}\nendstream",
    ]
    doc = Document(makers.pdf_file(objects), 64 << 20)
    page = pdf_fast._pages(doc, doc.resolve(doc.trailer.get("Root")))[0]
    return doc, page["Resources"]


DOC, RESOURCES = _document()
FONTS: dict = {}  # shared by both loops: the same Font objects, so text objects compare field by field


def _exact(value):
    if isinstance(value, float):
        return repr(value)  # -0.0 and 0.0 apart, NaN equal to NaN
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value


def _record(obj) -> tuple:
    if isinstance(obj, TextObject):
        fields = ("font", "size", "codes", "kerns", "cuts", "last_x", "end_x", "a", "d", "x", "y", "holder", "dense")
    else:
        assert isinstance(obj, Column)
        fields = ("font", "size", "a", "d", "x", "y", "step", "holder", "codes")
    return (type(obj).__name__, *(_exact(getattr(obj, f)) for f in fields))


def _read(content: bytes, use_c: bool, monkeypatch, min_codes: float = 0, checks: list | None = None):
    monkeypatch.setattr(pdf_content, "FAST_C", use_c)
    reader = ContentReader(DOC, FONTS, min_codes, (lambda: checks.append(1)) if checks is not None else lambda: None)
    try:
        reader.run(content, RESOURCES)
    except Exception as e:  # noqa: BLE001 - any failure sends the document to PDFium
        return "failed", type(e).__name__ == "Unsure"
    return [_record(o) for o in reader.objects], reader.count, reader.codes


def _same(content: bytes, monkeypatch, min_codes: float = 0) -> tuple:
    python = _read(content, False, monkeypatch, min_codes)
    c = _read(content, True, monkeypatch, min_codes)
    if python[0] == "failed":
        assert c[0] == "failed", content
    else:
        assert c == python, content
    return python


NUMBERS = ("0", "1", "-1", "12", "10.5", ".5", "-.25", "+3", "1.", "007", "-0", "0.0", "1e3", "1.2.3", "--1", "+",
           "99999999999999999999", "1" * 320, "1" * 320 + ".5", "700", "-200", "1000", "0.001", ".", "-.", "+.5.")  # fmt: skip
STRINGS = ("(Hello)", "(a b c)", "()", "(x\\)y)", "(tab\\tnl\\n\\101)", "(nest (in) side)", "(unterminated",
           "<414243>", "<41 42 4>", "<>", "<0001 0002>", "<00010003>", "<4>", "(Hi) ", "( )", "(\\\\)")  # fmt: skip
NAMES = ("/F1", "/F2", "/F3", "/F9", "/X1", "/X2", "/X9", "/P1", "/P2", "/ActualText", "/", "/Span", "/F#31")
OPERATORS = ("BT", "ET", "Tf", "Td", "TD", "Tm", "T*", "TL", "Tc", "Tw", "Tz", "Ts", "Tr", "Tj", "TJ", "'", '"', "q",
             "Q", "cm", "Do", "BDC", "BMC", "EMC", "BI", "d0", "rg", "re", "f", "gs", "W", "n", "TjET", "Tj5", "true")  # fmt: skip
GOOD = (
    "q 0 0 0 rg BT 72 700 Td /F1 12 Tf <48656c6c6f> Tj ET Q",
    "q 0.5 0 1 rg BT 100.5 700 Td /F2 9 Tf [<0001> -120 <00020003> 40 <0004>] TJ ET Q",
    "q 0 0 0 rg BT 80 690 Td /F3 10 Tf [<414243> -300 <44>] TJ ET Q",
    "q 0 0 0 rg BT 80 690 Td /F3 10 Tf <4142>TjET Q",
    "BT /F1 11 Tf 14 TL 72 700 Td (first line) Tj T* (second) Tj T* (third\\051) Tj T* ET",
    "BT /F3 10 Tf 12 TL 72 600 Td (one) Tj (two) Tj T* (three) Tj T* ET",
    "BT /F1 12 Tf 72 700 Td [(Hello) -200 (World) 50 (x)] TJ ET",
    "BT /F2 10 Tf 72 700 Td [<00010002> 3 <0003> -2 <0004>] TJ ET",
    "BT /F1 12 Tf 2 0 0 2 10 10 Tm (big) Tj ET",
    "q 1 0 0 1 10 -40 cm /X1 Do Q",
    "/X2 Do",
    "/Span << /ActualText (y) >> BDC EMC",
    "BT /F1 10 Tf 12 TL (a) ' 2 0 (b) \" ET",
    "/P2 BDC BT /F3 9 Tf 1 0 0 1 30 40 Tm 5 Ts (raised) Tj ET EMC",
    "BT /F3 10 Tf 11 TL 300 500 Td (a) Tj (b) Tj T* (c) Tj T* (d) Tj T* (e) Tj T* ET",
)
HUGE = "1" * 320 + ".5"  # float() gives inf: matrices of inf and NaN
PIECES = GOOD + (
    f"BT /F3 10 Tf 12 TL {HUGE} 0 0 1 0 0 Tm (a) Tj T* (b) Tj T* (c) Tj T* ET BT (d) Tj T* (e) Tj T* ET",
    f"BT /F3 10 Tf 12 TL 1 0 0 1 {HUGE} 0 Tm (a) Tj (b) Tj T* (c) Tj T* (d) Tj T* (e) Tj T* ET",
    f"q 1 0 0 1 0 {HUGE} cm BT /F1 9 Tf (a) Tj T* (b) Tj T* ET Q",
    "BT /F1 9 Tf (x) Tj T*5 ET",
    'BT /F3 10 Tf 72 700 Td (a!b) Tj ("c") Tj [<41> 100 <21> -30 <22> 20 <23>] TJ ET',
    "BT /F2 10 Tf 72 700 Td <D800DC00> Tj <D800> Tj <DC00D800> Tj [<0001D800> -5 <DC00>] TJ ET",
    "BT /F1 9 Tf 20000 10 Td (far) Tj ET",
    "BT /F1 9 Tf 16380 10 Td (reaching past the edge) Tj ET",
    "q 0 0 0 rg BT 16385 700 Td /F1 12 Tf <41> Tj ET Q",
    "BT /F1 9 Tf [<41> 5.5.5 <42>] TJ ET",
    "BT /F1 9 Tf [<41> 5x <42>] TJ ET",
    "BT /F1 9 Tf 72 700 Td (x) Tj+0 ET",
    "/Span << /A 1 BT >> BDC EMC",
    "BT /F1 9 Tf (x) Tj ET << /Open 1",
    "/G1 gs BT /F1 9 Tf (x) Tj ET",
    "/G2 gs BT /F1 9 Tf (x) Tj ET /G9 gs",
    "/X3 Do",
    "/X4 Do",
    "q 0 0 0 rg BT " + "0" * 299 + "1 700 Td /F1 12 Tf <41> Tj ET Q",
    "q " + "0" * 300 + " 0 0 rg BT 1 1 Td /F1 9 Tf <41> Tj ET Q",
    "BT /F1 9 Tf [<41> " + "0" * 300 + " <42>] TJ ET",
    "BT /F1 9 Tf 72 700 Td " + "0" * 299 + "1 0 Td (x) Tj ET",
    "/" + "F" * 300 + " BMC EMC BT /F1 9 Tf (x) Tj ET",
    "/Span << /F#31 1 >> BDC EMC BT /F1 9 Tf (x) Tj ET",
    "BT /F1 0.01 Tf (" + "A" * 33_000 + ") Tj ET",  # small: its width stays on the page
    "BT /F1 0.01 Tf <" + "41" * 33_000 + "> Tj ET",
    "BT /F3 10 Tf 3 Tw 72 700 Td (ends in a space ) Tj [(a ) -50 (b )] TJ [<6120> -50 <6220>] TJ ET",
    "/P1 BDC BT /F1 9 Tf [(x) 5 (y)] TJ ET EMC",
    "/Span << /A . /B -. /C (x) >> BDC EMC",
    "BT /F1 9 Tf 12 TL (x) Tj T*(y) Tj T*/F1 9 Tf ET",
    "BT /F1 9 Tf [<41> 5] TJq ET",
    "BT /F1 9 Tf [<41> 5 .5 <42>]TJ[<43>]TJ ET",
    "q 0 0 0 rg BT 1 2 Td /F1 9 Tf <41> Tj ET Qq",
    "q 0 0 0 rg BT 1 2 Td /F1 9 Tf <41> Tj ET Q(a)",
    "q 0 0 0 rg BT 1 2 Td /F1 9 Tf <41> Tj ET Q BT (after the run: no font) Tj ET",
    "/P1 BDC BT /F1 9 Tf (marked) Tj ET EMC",
    "/Span << /MCID 3 /Nested << /ActualText (y) >> >> BDC BT /F1 9 Tf (m) Tj ET EMC",
    "BT /F1 10 Tf 12 TL (a) ' 1 2 (b) \" ET",
    "% a comment\n",
    "BT /F1 10 Tf 3 Tr (clip) Tj 0 Tr 50 Tz (wide) Tj ET",
)
SEPARATORS = (" ", " ", "\n", "\r\n", "", "\t", " %c\n", "\x00")


@st.composite
def content_streams(draw) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 30))):
        kind = draw(st.integers(0, 9))
        if kind < 3:
            parts.append(draw(st.sampled_from(PIECES)))
        elif kind == 3:
            parts.append(draw(st.sampled_from(NUMBERS)))
        elif kind == 4:
            parts.append(draw(st.sampled_from(STRINGS)))
        elif kind == 5:
            parts.append(draw(st.sampled_from(NAMES)))
        elif kind == 6:
            parts.append(draw(st.sampled_from(("[", "]", "<<", ">>", "{", ")", ">"))))
        else:
            parts.append(draw(st.sampled_from(OPERATORS)))
        parts.append(draw(st.sampled_from(SEPARATORS)))
    data = "".join(parts).encode("latin-1")
    if data and draw(st.integers(0, 4)) == 0:  # a corruption: a byte changed, dropped or doubled
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.integers(0, 2))
        byte = bytes([draw(st.integers(0, 255))])
        data = data[:at] + (byte if edit == 0 else b"" if edit == 1 else data[at : at + 1]) + data[at + 1 :]
    return data


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=content_streams())
def test_random_content_streams_give_the_same_text_objects_in_c_and_python(content, monkeypatch):
    _same(content, monkeypatch)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=20), min_codes=st.sampled_from((0, 4, 24)))
def test_well_formed_streams_give_the_same_objects_and_the_same_short_run_give_up(pieces, min_codes, monkeypatch):
    _same(" ".join(pieces).encode("latin-1"), monkeypatch, min_codes)
    _same("\n".join(pieces[::-1]).encode("latin-1"), monkeypatch, min_codes)


def test_the_random_streams_read_text_in_both_loops(monkeypatch):
    """The property tests above are not vacuous: most well-formed streams give text objects."""
    rng = random.Random(7)
    read = 0
    for _ in range(200):
        python = _same(" ".join(rng.choices(GOOD, k=8)).encode("latin-1"), monkeypatch)
        read += python[0] != "failed" and python[1] > 0
    assert read > 100


def test_an_office_shaped_page_gives_the_same_objects(monkeypatch):
    from bench import corpus

    data = corpus.office_pdf_bytes(random.Random(3), 20_000)
    doc = Document(data, 64 << 20)
    for page in pdf_fast._pages(doc, doc.resolve(doc.trailer.get("Root"))):
        contents = doc.resolve(page.get("Contents"))
        content = b"\n".join(doc.stream_data(p) for p in (contents if isinstance(contents, list) else [contents]))
        got = {}
        for use_c in (False, True):
            monkeypatch.setattr(pdf_content, "FAST_C", use_c)
            reader = ContentReader(doc, {}, 0)
            reader.run(content, page["Resources"])
            got[use_c] = [_record(o)[2:] for o in reader.objects]  # fonts are each run's own objects
        assert got[True] == got[False] and len(got[True]) > 50


@pytest.mark.parametrize(
    "content",
    [b"q " * 1001, b"[" + b"1 " * 1_000_001 + b"]", b"1 " * 65, b"BMC " * 10_000 + b"BT /F1 9 Tf (x) Tj ET"],
    ids=["q nesting", "long array", "many operands", "deep marked content"],
)
def test_the_limits_of_the_python_loop_hold_in_c(content, monkeypatch):
    python = _same(content, monkeypatch)
    assert (python[0] == "failed") == (not content.startswith(b"BMC"))


def test_the_c_loop_looks_at_the_clock_as_often_as_the_python_loop(monkeypatch):
    content = b"1 0 0 1 0 0 cm " * 5000
    counts = []
    for use_c in (False, True):
        checks: list = []
        _read(content, use_c, monkeypatch, checks=checks)
        counts.append(len(checks))
    assert counts[0] == counts[1] == 35_000 // pdf_content.CHECK_EVERY


DECIMALS = st.from_regex(r"\A[+-]?(\d{1,18}\.?\d{0,25}|\.\d{1,25})\Z", fullmatch=True)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kern=DECIMALS, x=DECIMALS, size=DECIMALS)
def test_decimal_numbers_are_read_as_python_reads_them(kern, x, size, monkeypatch):
    """The C reads a plain decimal without strtod where that gives the same double (up to 2**53
    as digits and 22 after the point): the kerning, the position and the size of an office run
    come out as Python's float() gives them, and so do the longer ones strtod reads."""
    content = f"q 0 0 0 rg BT {x} 700 Td /F3 {size} Tf [<4142> {kern} <43>] TJ ET Q".encode()
    python = _same(content, monkeypatch)
    if python[0] != "failed" and python[0]:
        record = python[0][0]
        assert record[4] == [repr(float(kern))] and record[2] == repr(float(size))
