"""Attacks on the fast PDF reader (agent/content/pdf_fast.py and the pdf_* modules under it).

Its promise: for every file it gives PDFium's very page text and metadata, or gives up (Unsure)
so that the whole document goes to PDFium; never less or other text, never a crash, a hang or
unbounded work on a hostile file. Each test here builds a file (in memory) and holds the reader to
that promise. The cases marked xfail(strict=True) are where the promise breaks today: the marker
comes off when the reader is fixed (by reading as PDFium does, or by giving up).

The hang cases bound the reader's CPU time with a timer signal (Python's regex engine checks for
signals, so a runaway match is interrupted): the limit is seconds where a correct reader takes
milliseconds and the broken one, at these sizes, years.
"""

from __future__ import annotations

import io
import re
import zlib

import pytest

from agent.content import pdf as pdf_module
from agent.content import pdf_fast, pdf_layout
from agent.content.budget import Collector
from agent.content.inspect import inspect_source
from agent.content.pdf_objects import Unsure
from tests.agent.content import legacy_makers, makers
from tests.agent.content.cpu_limit import cpu_limit

pdfium = pytest.importorskip("pypdfium2", reason="needs pypdfium2 (an install requirement)")

KEYS = tuple(key for key, _ in pdf_module.META_KEYS)
HELVETICA = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
CPU_LIMIT_S = 0.5


@pytest.fixture(autouse=True)
def every_page(monkeypatch):
    """The layout run on every page (in use, a page of short runs goes to PDFium for speed)."""
    monkeypatch.setattr(pdf_fast, "MIN_CODES_PER_OBJECT", 0, raising=False)


def _page(content: str, more: tuple[str, ...] = (), trailer: str = "") -> bytes:
    """A one-page PDF drawing content with Helvetica as /F1; more objects numbered from 6."""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        f"<< /Length {len(content.encode('latin-1'))} >>\nstream\n{content}\nendstream",
        HELVETICA,
        *more,
    ]
    return makers.pdf_file(objects, trailer)


def _last_xref(data: bytes) -> int:
    return int(re.findall(rb"startxref\s+(\d+)", data)[-1])


def _update(
    base: bytes, objects: dict[int, bytes], table: bytes = b"", trailer: bytes = b"", tail: bytes = b"%%EOF\n"
) -> bytes:
    """base with an incremental update appended: objects (number -> body) and their xref entries,
    `table` more entries, a trailer pointing back at base's xref, then startxref and `tail`."""
    out = bytearray(base)
    entries = b""
    for number, body in objects.items():
        entries += b"%d 1\n%010d 00000 n \n" % (number, len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    at = len(out)
    out += b"xref\n" + entries + table
    out += b"trailer\n<< /Size 20 /Root 1 0 R /Prev %d %s>>\nstartxref\n%d\n" % (_last_xref(base), trailer, at)
    return bytes(out + tail)


def _stream(content: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)


def _pdfium(data: bytes) -> tuple[dict, list[str]]:
    return makers.pdfium_pages(data, KEYS)


def _fast(data: bytes) -> tuple[dict, list[str]]:
    found = pdf_fast.read(data, 20 << 20, pdf_module.MAX_PAGES, lambda: None, KEYS)
    return found.meta, found.pages


def _held_to_pdfium(data: bytes) -> tuple[dict, list[str]] | None:
    """The fast reader's answer where it is PDFium's; None where it gives up."""
    try:
        fast = _fast(data)
    except Unsure:
        return None
    assert fast == _pdfium(data)
    return fast


def _cpu_limit(seconds: float = CPU_LIMIT_S):
    return cpu_limit(seconds)


# -- hangs: regular expressions that backtrack exponentially on a failed match ------------------
@pytest.mark.parametrize("numbers", ["1" * 40, "1000 " * 16], ids=["one long number", "kerning numbers"])
def test_numbers_before_a_literal_string_in_a_tj_do_not_hang(numbers):
    data = _page("BT /F1 12 Tf 72 700 Td [" + numbers + " (Hello World)] TJ ET")
    with _cpu_limit():
        _held_to_pdfium(data)


def test_white_space_at_the_end_of_a_content_stream_does_not_hang():
    data = _page("BT /F1 12 Tf 72 700 Td (Hello) Tj ET" + "\n" * 40)
    with _cpu_limit():
        _held_to_pdfium(data)


def test_a_comment_of_percent_signs_ending_a_content_stream_does_not_hang():
    data = _page("BT /F1 12 Tf 72 700 Td (Hello) Tj ET\n" + "%" * 40 + "\n")
    with _cpu_limit():
        _held_to_pdfium(data)


def test_a_comment_of_percent_signs_before_a_bad_token_in_an_object_does_not_hang():
    data = _page("BT /F1 12 Tf 72 700 Td (Hello) Tj ET", more=("<< /A 1 " + "%" * 40 + "\n} >>",),
                 trailer=" /Info 6 0 R")  # fmt: skip
    with _cpu_limit():
        _held_to_pdfium(data)


def test_ordinary_white_space_and_comments_read_quickly():
    """What the hang cases must keep working: white space, comments and numbers between tokens."""
    data = _page("BT /F1 12 Tf\n\n\n   72 700 Td % a comment %%%%\n [(Hello) -250 (World)] TJ\r\n ET\n")
    with _cpu_limit():
        assert _held_to_pdfium(data) is not None


# -- incremental updates: the reader must read the revision PDFium reads -------------------------
def test_an_update_freeing_the_content_stream_does_not_hide_its_text():
    base = _page("BT /F1 12 Tf 72 700 Td (CONFIDENTIAL 11010519491231002X) Tj ET")
    data = _update(base, {}, table=b"4 1\n0000000000 00001 f \n")
    assert "CONFIDENTIAL" in _pdfium(data)[1][0]
    _held_to_pdfium(data)


def test_an_update_with_a_damaged_end_marker_is_read_as_pdfium_reads_it():
    base = _page("BT /F1 12 Tf 72 700 Td (harmless old text) Tj ET")
    data = _update(base, {4: _stream(b"BT /F1 12 Tf 72 700 Td (CONFIDENTIAL new text) Tj ET")}, tail=b"%%EO\n")
    assert "CONFIDENTIAL" in _pdfium(data)[1][0]
    _held_to_pdfium(data)


def test_info_named_only_by_an_older_trailer_is_read():
    base = _page(
        "BT /F1 12 Tf 72 700 Td (body) Tj ET", more=("<< /Title (CONFIDENTIAL plan) >>",), trailer=" /Info 6 0 R"
    )
    data = _update(base, {4: _stream(b"BT /F1 12 Tf 72 700 Td (body two) Tj ET")})
    assert _pdfium(data)[0] == {"Title": "CONFIDENTIAL plan"}
    _held_to_pdfium(data)


def test_an_update_replacing_the_page_text_is_read_as_pdfium_reads_it():
    base = _page("BT /F1 12 Tf 72 700 Td (CONFIDENTIAL old text) Tj ET")
    data = _update(base, {4: _stream(b"BT /F1 12 Tf 72 700 Td (harmless new text) Tj ET")})
    assert _held_to_pdfium(data) == ({}, ["harmless new text"])


# -- metadata ------------------------------------------------------------------------------------
def test_a_utf16le_title_is_read_as_pdfium_reads_it():
    title = (b"\xff\xfe" + "机密".encode("utf-16-le")).hex()
    data = _page("BT /F1 12 Tf 72 700 Td (x) Tj ET", more=(f"<< /Title <{title}> >>",), trailer=" /Info 6 0 R")
    assert _pdfium(data)[0] == {"Title": "机密"}
    _held_to_pdfium(data)


@pytest.mark.parametrize(
    "raw", [b"\xfe\xff" + "内部资料".encode("utf-16-be"), "Café".encode("latin-1"), b"\xef\xbb\xbf" + "秘".encode(),
            b"a\x95b", b"a\tb", b"\xfe\xff\x00A\x00", b"\xfe\xff\x00A\x00\x00\x00B", b"\xfe\xff"],
    ids=["utf16be", "latin1", "utf8 mark", "pdfdoc bullet", "tab", "odd utf16", "nul in utf16", "mark only"],
)  # fmt: skip
def test_other_title_encodings_are_read_as_pdfium_reads_them_or_given_up(raw):
    data = _page("BT /F1 12 Tf 72 700 Td (x) Tj ET", more=(f"<< /Title <{raw.hex()}> >>",), trailer=" /Info 6 0 R")
    _held_to_pdfium(data)


# -- inspection: what a break costs -------------------------------------------------------------
def test_inspection_finds_the_same_with_the_fast_reader_on_a_freed_content_stream(monkeypatch):
    base = _page("BT /F1 12 Tf 72 700 Td (CONFIDENTIAL 11010519491231002X) Tj ET")
    data = _update(base, {}, table=b"4 1\n0000000000 00001 f \n")
    results = []
    for fast in (True, False):
        monkeypatch.setattr(pdf_module, "FAST_READER", fast)
        result = inspect_source(io.BytesIO(data), "plan.pdf")
        results.append((result.detections, result.fingerprints))
    assert results[1][0], "PDFium's reading finds the id"
    assert results[0] == results[1]


# -- the standard 14 fonts and the base encodings, as PDFium has them ----------------------------
def _standard_font(base: str, encoding: str) -> str:
    return f"<< /Type /Font /Subtype /Type1 /BaseFont /{base} {encoding} >>"


def _page_in(font: str, content: str, *more: str) -> bytes:
    """A one-page PDF drawing content with `font` as /F1; more objects numbered from 6."""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        font,
        *more,
    ]
    return makers.pdf_file(objects)


def test_a_gap_after_a_euro_sign_in_helvetica_is_measured_as_pdfium_measures_it():
    font = _standard_font("Helvetica", "/Encoding /WinAnsiEncoding")
    data = _page_in(font, "BT /F1 12 Tf 72 700 Td (A\\200) Tj ET BT /F1 12 Tf 89 700 Td (B) Tj ET")
    assert _pdfium(data)[1] == ["A€B"]
    _held_to_pdfium(data)


def test_mac_roman_0xdb_is_read_as_pdfium_reads_it():
    data = _page_in(
        _standard_font("Helvetica", "/Encoding /MacRomanEncoding"), "BT /F1 12 Tf 72 700 Td (A\\333B) Tj ET"
    )
    assert _pdfium(data)[1] == ["A¤B"]
    _held_to_pdfium(data)


@pytest.mark.parametrize("encoding", ["/Encoding /WinAnsiEncoding", "/Encoding /StandardEncoding"])
def test_zapf_dingbats_with_an_encoding_name_is_read_as_pdfium_reads_it(encoding):
    data = _page_in(_standard_font("ZapfDingbats", encoding), "BT /F1 12 Tf 72 700 Td (ABC abc) Tj ET")
    assert _pdfium(data)[1] == ["✡✢✣ ❁❂❃"]
    _held_to_pdfium(data)


@pytest.mark.parametrize(
    ("base", "encoding"),
    [(base, encoding) for base in ("Helvetica", "Times-Roman", "Courier", "Symbol")
     for encoding in ("", "/Encoding /WinAnsiEncoding", "/Encoding /StandardEncoding")] + [("ZapfDingbats", "")],
)  # fmt: skip
def test_plain_letters_in_the_standard_fonts_are_read_as_pdfium_reads_them_or_given_up(base, encoding):
    """A run followed on its line by another 2 pt after its end (the end measured with the AFM
    widths, which PDFium shares for ASCII letters): a space, and the widths must be right for it."""
    from pypdf._codecs.core_font_metrics import CORE_FONT_METRICS

    widths = CORE_FONT_METRICS[base].character_widths
    end = 72 + sum(widths.get(c, 0) for c in "Hello World") * 12 / 1000
    data = _page_in(_standard_font(base, encoding), f"BT /F1 12 Tf 72 700 Td (Hello World) Tj ET "
                    f"BT /F1 12 Tf {end + 2:.3f} 700 Td (again) Tj ET "
                    "BT /F1 12 Tf 72 680 Td [(Sp) -300 (aced) 120 (kern)] TJ ET")  # fmt: skip
    found = _held_to_pdfium(data)
    if base in ("Helvetica", "Times-Roman", "Courier"):
        assert found is not None and found[1][0].startswith("Hello World again\r\n")


def test_widths_past_last_char_are_read_as_pdfium_reads_them():
    widths = " ".join("500" for _ in range(32, 127))
    font = f"<< /Type /Font /Subtype /TrueType /BaseFont /ArialMT /FirstChar 32 /LastChar 50 /Widths [{widths}] /Encoding /WinAnsiEncoding >>"
    data = _page_in(font, "BT /F1 12 Tf 72 700 Td (ID 11010519491231002X here) Tj ET")
    assert _pdfium(data)[1] == ["ID 1101051941231002X her"]  # PDFium itself loses a digit and a letter here
    _held_to_pdfium(data)


# -- a font PDFium must substitute: its glyph boxes decide what it keeps ---------------------------
@pytest.fixture(scope="module")
def libreoffice_line(tmp_path_factory) -> bytes:
    if legacy_makers.SOFFICE is None:
        pytest.skip("needs LibreOffice (apt-get install libreoffice-writer)")
    folder = tmp_path_factory.mktemp("lo")
    source = folder / "line.txt"
    source.write_text("联系人张伟，电话 13800138000。\n", encoding="utf-8")
    return legacy_makers.convert(source, "pdf", folder).read_bytes()


def test_libreoffices_line_is_read_as_pdfium_reads_it(libreoffice_line):
    _held_to_pdfium(libreoffice_line)  # the fonts LibreOffice picks differ between machines: equal, or given up


@pytest.mark.xfail(strict=True, reason="PDFium reads the font through a substitute when the symbolic flag is "
                   "cleared or the program's key is damaged, and drops the lone 。 (its box empty in the substitute); "
                   "the fast reader, which never looks at glyph boxes, keeps it (found by mutating LibreOffice files)")  # fmt: skip
@pytest.mark.parametrize(
    ("old", "new"), [(b"/Flags 4", b"/Flags 0"), (b"/FontFile ", b"/FontFilX ")], ids=["flags", "font file key"]
)
def test_a_font_pdfium_must_substitute_is_given_to_pdfium(libreoffice_line, old, new):
    if old not in libreoffice_line:
        pytest.skip(f"this machine's LibreOffice wrote no {old.decode()}")
    data = libreoffice_line.replace(old, new)
    assert _pdfium(data)[1] == ["联系人张伟，电话 13800138000"]
    _held_to_pdfium(data)


# -- glyph names in /Differences, as PDFium reads them ------------------------------------------
def _differences_page(name: str) -> bytes:
    widths = " ".join("500" for _ in range(32, 127))  # every code a width: the name alone decides
    encoding = f"/FirstChar 32 /LastChar 126 /Widths [{widths}] /Encoding << /BaseEncoding /WinAnsiEncoding /Differences [66 /{name}] >>"
    font = _standard_font("Helvetica", encoding)
    return _page_in(font, "BT /F1 12 Tf 72 700 Td (ABC) Tj ET BT /F1 12 Tf 72 680 Td (xBy) Tj ET")


@pytest.mark.parametrize("name", ["f_f", "uni0000", "uniD800", "u1F600", "u10FFFF", ".notdef", "a1", "a100"])
def test_an_odd_glyph_name_in_differences_is_read_as_pdfium_reads_it(name):
    _held_to_pdfium(_differences_page(name))


@pytest.mark.parametrize("name", ["Euro", "uni4E2D", "u4E2D", "fi", "ffi", "afii10017", "nbspace", "hyphen", "space",
                                  "uni3000", "Omega", "mu", "g123", "A.sc", "uni00410042"])  # fmt: skip
def test_common_glyph_names_in_differences_are_read_as_pdfium_reads_them_or_given_up(name):
    _held_to_pdfium(_differences_page(name))


# -- a ToUnicode CMap PDFium rejects: then the font's encoding gives the text --------------------
def _decoy_cmap_page(section: str) -> bytes:
    """CONFIDENTIAL drawn through WinAnsi, with a ToUnicode CMap mapping each of its letters to x
    in `section` (its count, bfchar pairs and bfrange triples filled in)."""
    letters = sorted(set("CONFIDENTIAL"))
    pairs = " ".join(f"<{ord(c):02X}> <0078>" for c in letters)
    ranges = " ".join(f"<{ord(c):02X}> <{ord(c):02X}> <0078>" for c in letters)
    body = section.format(count=len(letters), pairs=pairs, ranges=ranges)
    cmap = ("/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Adobe-Identity-UCS def "
            f"1 begincodespacerange <00> <FF> endcodespacerange {body} endcmap CMapName currentdict /CMap "
            "defineresource pop end end")  # fmt: skip
    widths = " ".join("600" for _ in range(32, 127))
    font = (f"<< /Type /Font /Subtype /TrueType /BaseFont /ArialMT /FirstChar 32 /LastChar 126 /Widths [{widths}] "
            "/Encoding /WinAnsiEncoding /ToUnicode 6 0 R >>")  # fmt: skip
    content = "BT /F1 12 Tf 72 700 Td (CONFIDENTIAL) Tj ET"
    return _page_in(font, content, f"<< /Length {len(cmap)} >>\nstream\n{cmap}\nendstream")


DECOY_SECTIONS = {
    "no endbfchar": "{count} beginbfchar {pairs}",
    "a count past the pairs": "99 beginbfchar {pairs} endbfchar",
    "a name among the pairs": "{count} beginbfchar /junk {pairs} endbfchar",
    "a count short of the pairs": "2 beginbfchar {pairs} endbfchar",
    "no count": "beginbfchar {pairs} endbfchar",
    "no endbfrange": "{count} beginbfrange {ranges}",
    "a range count past its ranges": "99 beginbfrange {ranges} endbfrange",
}


@pytest.mark.parametrize("section", list(DECOY_SECTIONS))
def test_a_tounicode_cmap_pdfium_rejects_does_not_give_its_decoy_text(section):
    data = _decoy_cmap_page(DECOY_SECTIONS[section])
    assert _pdfium(data)[1] == ["CONFIDENTIAL"]
    _held_to_pdfium(data)


def test_a_well_formed_tounicode_cmap_is_read_as_pdfium_reads_it():
    data = _decoy_cmap_page("{count} beginbfchar {pairs} endbfchar")
    assert _held_to_pdfium(data) == ({}, ["xxxxxxxxxxxx"])


def test_inspection_finds_the_marking_behind_a_decoy_cmap(monkeypatch):
    data = _decoy_cmap_page(DECOY_SECTIONS["no endbfchar"])
    found = []
    for fast in (True, False):
        monkeypatch.setattr(pdf_module, "FAST_READER", fast)
        found.append(inspect_source(io.BytesIO(data), "plan.pdf").detections)
    assert found[1], "PDFium's reading finds CONFIDENTIAL"
    assert found[0] == found[1]


def test_an_object_listed_twice_in_one_xref_section_is_read_as_pdfium_reads_it():
    base = _page("BT /F1 12 Tf 72 700 Td (original) Tj ET")
    out = bytearray(base)
    offsets = []
    for text in (b"harmless copy", b"CONFIDENTIAL copy"):
        offsets.append(len(out))
        out += b"4 0 obj\n%s\nendobj\n" % _stream(b"BT /F1 12 Tf 72 700 Td (%s) Tj ET" % text)
    at = len(out)
    out += b"xref\n4 1\n%010d 00000 n \n4 1\n%010d 00000 n \n" % tuple(offsets)
    out += b"trailer\n<< /Size 6 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (_last_xref(base), at)
    data = bytes(out)
    assert _pdfium(data)[1] == ["CONFIDENTIAL copy"]
    _held_to_pdfium(data)


def test_a_file_without_a_pdf_header_is_refused_as_pdfium_refuses_it():
    data = _page("BT /F1 12 Tf 72 700 Td (Hello) Tj ET").replace(b"%PDF-1.4", b"%XYZ-1.4")
    with pytest.raises(pdfium.PdfiumError):
        _pdfium(data)
    with pytest.raises(Unsure):
        _fast(data)


# -- the same attacks through an xref stream, and around encryption and the file's end ------------
def _xref_stream_update(base: bytes, bodies: list[bytes], rows: bytes, index: str) -> bytes:
    """base with objects 4 appended (each body in turn) and an xref stream (W [1 4 2], object 20)
    whose rows are one in-use row for each appended copy, then `rows`, then its own row."""
    out = bytearray(base)
    table = b""
    for body in bodies:
        table += b"\x01" + len(out).to_bytes(4, "big") + b"\x00\x00"
        out += b"4 0 obj\n%s\nendobj\n" % body
    at = len(out)
    packed = zlib.compress(table + rows + b"\x01" + at.to_bytes(4, "big") + b"\x00\x00")
    out += (b"20 0 obj\n<< /Type /XRef /Size 21 /W [1 4 2] /Index [%s] /Root 1 0 R /Prev %d /Filter /FlateDecode "
            b"/Length %d >>\nstream\n" % (index.encode(), _last_xref(base), len(packed)))  # fmt: skip
    return bytes(out + packed + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % at)


def test_an_object_listed_twice_in_an_xref_stream_is_read_as_pdfium_reads_it():
    base = _page("BT /F1 12 Tf 72 700 Td (original) Tj ET")
    copies = [_stream(b"BT /F1 12 Tf 72 700 Td (%s) Tj ET" % t) for t in (b"harmless copy", b"CONFIDENTIAL copy")]
    data = _xref_stream_update(base, copies, b"", "4 1 4 1 20 1")
    assert _pdfium(data)[1] == ["CONFIDENTIAL copy"]
    _held_to_pdfium(data)


def test_an_xref_stream_freeing_the_content_stream_is_read_as_pdfium_reads_it():
    base = _page("BT /F1 12 Tf 72 700 Td (CONFIDENTIAL 11010519491231002X) Tj ET")
    _held_to_pdfium(_xref_stream_update(base, [], b"\x00\x00\x00\x00\x00\x00\x01", "4 1 20 1"))


def test_encryption_named_only_by_an_older_trailer_is_given_to_pdfium():
    """An /Encrypt whose crypt filter is Identity (the streams plain, so a reader that missed it
    would read the same text): the update's trailer leaves it out, PDFium still has it."""
    encrypt = (" /ID [<00112233445566778899AABBCCDDEEFF> <00112233445566778899AABBCCDDEEFF>] /Encrypt << /Filter "
               "/Standard /V 4 /R 4 /Length 128 /CF << /StdCF << /CFM /None >> >> /StmF /Identity /StrF /Identity "
               "/O <00> /U <00> /P -4 >>")  # fmt: skip
    base = _page("BT /F1 12 Tf 72 700 Td (CONFIDENTIAL) Tj ET", trailer=encrypt)
    data = _update(base, {4: _stream(b"BT /F1 12 Tf 72 700 Td (CONFIDENTIAL two) Tj ET")})
    assert _pdfium(data)[1] == ["CONFIDENTIAL two"]
    with pytest.raises(Unsure, match="encrypt"):
        _fast(data)


@pytest.mark.parametrize(
    "tail", [b"%%EOF\n" + b" " * 3000, b"\n" * 20, b"%%eof\n", b"%%EOF junk\n", b"%%EOF"],
    ids=["3000 spaces after", "no end marker", "lower case", "junk after the marker", "no newline"],
)  # fmt: skip
def test_an_update_ending_oddly_is_read_as_pdfium_reads_it_or_given_up(tail):
    base = _page("BT /F1 12 Tf 72 700 Td (harmless old text) Tj ET")
    _held_to_pdfium(_update(base, {4: _stream(b"BT /F1 12 Tf 72 700 Td (CONFIDENTIAL new text) Tj ET")}, tail=tail))


# --- the fast reader's time: a shape it reads slowly is given to PDFium, not paid for ------------


def _right_to_left_line(objects: int) -> bytes:
    """One line of `objects` one-letter text objects drawn from the right edge leftwards: each
    goes before all the others gathered on the line (PDFium sorts the same way)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    shows = "".join(f"BT /F1 0.5 Tf {600 - 0.5 * i:.2f} 700 Td ({letters[i % 26]}) Tj ET\n" for i in range(objects))
    return _page(shows)


def test_a_line_of_too_many_objects_is_given_to_pdfium():
    """Sorting a line by insertion is quadratic: 20,000 objects took 20 s where PDFium takes 3."""
    with pytest.raises(Unsure, match="a line of too many objects"):
        _fast(_right_to_left_line(pdf_layout.MAX_LINE_OBJECTS + 1))
    wide = _right_to_left_line(20_000)
    with _cpu_limit(3.0), pytest.raises(Unsure):  # about 0.4 s here, reading the 20,000 objects; 18 s uncapped
        _fast(wide)


def _read_with_clock(data: bytes, budget_s: float, tick_s: float) -> tuple[list, list[str]]:
    """read_pdf's parts, on a clock that moves tick_s each time it is read, and the reasons the
    fast reader gave up for."""
    now = [0.0]

    def clock() -> float:
        now[0] += tick_s
        return now[0]

    reasons: list[str] = []
    real_read = pdf_fast.read

    def read(*args):
        try:
            return real_read(*args)
        except Unsure as e:
            reasons.append(str(e))
            raise

    out = Collector(20 << 20, budget_s, clock=clock)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pdf_fast, "read", read)
        pdf_module.read_pdf(io.BytesIO(data), out)
    return out.parts, reasons


def test_the_fast_reader_gives_way_to_pdfium_past_its_share_of_the_time():
    """A page of many objects on a clock that runs out of the fast reader's share: PDFium reads
    the document with the rest of the budget (the same parts as PDFium alone), nothing is lost."""
    many = _page("".join(f"BT /F1 10 Tf 72 {700 - i % 600} Td (line {i} CONFIDENTIAL) Tj ET\n" for i in range(3000)))
    parts, reasons = _read_with_clock(many, budget_s=60.0, tick_s=1.0)  # 15 readings of the clock for the fast reader
    assert reasons == ["time: PDFium reads it faster"]
    reference = Collector(20 << 20, 60)
    pdf_module.read_pdf(io.BytesIO(many), reference, engine="pdfium")
    assert parts == reference.parts and any("CONFIDENTIAL" in p.text for p in parts)
    # with time to spare the fast reader reads it itself
    parts, reasons = _read_with_clock(many, budget_s=1e9, tick_s=1.0)
    assert reasons == [] and parts == reference.parts
