"""The fast PDF reader (agent/content/pdf_fast.py) held to PDFium, its reference: on the bench's
PDFs, on an office-shaped PDF 1.5 (object and xref streams), on hand-made files for each feature it
claims (TJ gaps, Differences, ToUnicode ranges, Identity-H, tables out of order, forms, incremental
updates), on LibreOffice's and Chromium's output, it gives PDFium's very page text and metadata, or
gives up (Unsure) and read_pdf hands the whole document to PDFium; hostile files never make it
crash, hang or return less than PDFium."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import zlib

import pytest

from agent.content import pdf as pdf_module
from agent.content import pdf_fast, pdf_layout
from agent.content.budget import Collector, Refused
from agent.content.inspect import inspect_source
from agent.content.pdf_objects import Unsure
from bench import corpus
from tests.agent.content import legacy_makers, makers

pdfium = pytest.importorskip("pypdfium2", reason="needs pypdfium2 (an install requirement)")

KEYS = tuple(key for key, _ in pdf_module.META_KEYS)
HELVETICA = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _pdfium(data: bytes) -> tuple[dict, list[str]]:
    return makers.pdfium_pages(data, KEYS)


def _fast(data: bytes) -> tuple[dict, list[str]]:
    found = pdf_fast.read(data, 256 << 20, pdf_module.MAX_PAGES, lambda: None, KEYS)
    return found.meta, found.pages


def _parts(data: bytes, engine: str | None = None) -> list[tuple[str, str, int]]:
    out = Collector(64 << 20, 30.0)
    pdf_module.read_pdf(io.BytesIO(data), out, engine=engine)
    return [(p.where, p.text, p.page_line) for p in out.parts]


@pytest.fixture
def every_page(monkeypatch):
    """The layout run on every page, short runs too (in use, pages of short runs go to PDFium for
    speed): the equivalence is proven on all of LibreOffice's output, not only its long runs."""
    monkeypatch.setattr(pdf_fast, "MIN_CODES_PER_OBJECT", 0)


def _page(
    content: str, fonts: dict[str, str] | None = None, more: list[str] | None = None, xobjects: str = ""
) -> bytes:
    """A one-page PDF: content drawn with fonts (name -> font dictionary, each its own object)."""
    fonts = fonts or {"F1": HELVETICA}
    names = list(fonts)
    first_font = 5
    resources = " ".join(f"/{n} {first_font + i} 0 R" for i, n in enumerate(names))
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << {resources} >> {xobjects} >> /Contents 4 0 R >>",
        f"<< /Length {len(content.encode('latin-1'))} >>\nstream\n{content}\nendstream",
        *fonts.values(),
        *(more or []),
    ]
    return makers.pdf_file(objects)


def _form(content: str, entries: str) -> str:
    return f"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] {entries} /Length {len(content)} >>\nstream\n{content}\nendstream"


def _cmap(body: str) -> str:
    cmap = ("/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Adobe-Identity-UCS def "
            f"{body} endcmap CMapName currentdict /CMap defineresource pop end end")  # fmt: skip
    return f"<< /Length {len(cmap)} >>\nstream\n{cmap}\nendstream"


# the features the fast reader claims: each must be read (not given up on) and read as PDFium does
SIMPLE_TT = (
    "<< /Type /Font /Subtype /TrueType /BaseFont /ABCDEF+Serif /FirstChar 32 /LastChar 126 /Widths [{w}] {extra} >>"
)
WIDTHS = " ".join("250" if c == 32 else "500" for c in range(32, 127))
CASES = {
    "tj gaps": _page("BT /F1 12 Tf 72 700 Td [(Hello) -200 (World) -100 (again) 50 (tight)] TJ ET"),
    "lines and a gap": _page(
        "BT /F1 11 Tf 14 TL 72 700 Td (first line) Tj T* (second) Tj 60 0 Td (gap after) Tj T* (third) Tj ET"
    ),
    "quote operators": _page("BT /F1 10 Tf 12 TL 72 700 Td (one) Tj (two) ' 2 0 (three) \" ET"),
    "table out of order": _page(
        "BT /F1 10 Tf 300 700 Td (right cell) Tj ET BT /F1 10 Tf 72 700 Td (left cell) Tj ET "
        "BT /F1 10 Tf 180 700 Td (middle) Tj ET BT /F1 10 Tf 72 680 Td (next row) Tj ET"
    ),
    "objects overlapping": _page(
        "BT /F1 12 Tf 72 700 Td (Hello) Tj ET BT /F1 12 Tf 95 700 Td (il) Tj ET "
        "BT /F1 12 Tf 72 680 Td (Hello) Tj ET BT /F1 12 Tf 97.5 680 Td (ii) Tj ET"
    ),
    "differences": _page(
        "BT /F1 12 Tf 72 700 Td (ABC xyz) Tj ET",
        {
            "F1": SIMPLE_TT.replace("TrueType", "Type1").format(
                w=WIDTHS, extra="/Encoding << /BaseEncoding /WinAnsiEncoding /Differences [65 /uni4E2D /eacute /B] >>"
            )
        },  # fmt: skip
    ),
    "tounicode ranges": _page(
        "BT /F1 12 Tf 72 700 Td (ABCabc) Tj ET",
        {"F1": SIMPLE_TT.format(w=WIDTHS, extra="/ToUnicode 6 0 R")},
        [
            _cmap(
                "1 begincodespacerange <00> <FF> endcodespacerange 2 beginbfrange <41> <43> [<4E2D> <6587> <0041>] "
                "<61> <63> <0078> endbfrange 1 beginbfchar <20> <0020> endbfchar"
            )
        ],  # fmt: skip
    ),
    "identity-h": _page(
        "BT /F1 10.5 Tf 72 700 Td [<00010002> 3 <0003> -2 <0004>] TJ ET BT /F1 10.5 Tf 72 680 Td <00050001> Tj ET",
        {
            "F1": "<< /Type /Font /Subtype /Type0 /BaseFont /AAAAAA+Sans /Encoding /Identity-H /DescendantFonts [6 0 R] /ToUnicode 7 0 R >>"
        },
        [
            "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /AAAAAA+Sans /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) "
            "/Supplement 0 >> /DW 1000 /W [1 [1000 1000] 3 4 500] >>",
            _cmap(
                "1 begincodespacerange <0000> <FFFF> endcodespacerange 2 beginbfchar <0001> <673A> <0002> <5BC6> endbfchar "
                "1 beginbfrange <0003> <0005> <0041> endbfrange"
            ),
        ],  # fmt: skip
    ),
    "form xobject": _page(
        "BT /F1 12 Tf 72 700 Td (before the form) Tj ET q 1 0 0 1 10 -40 cm /X1 Do Q BT /F1 12 Tf 72 500 Td (after) Tj ET",
        more=[
            _form(
                "BT /F1 12 Tf 72 650 Td (inside the form) Tj ET",
                "/Resources << /Font << /F1 5 0 R >> >> /Matrix [1 0 0 1 0 0]",
            )
        ],
        xobjects="/XObject << /X1 6 0 R >>",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_claimed_feature_is_read_and_read_as_pdfium_reads_it(name):
    data = CASES[name]
    assert _fast(data) == _pdfium(data)


@pytest.mark.parametrize("seed", range(3))
def test_the_bench_pdfs_read_as_pdfium_reads_them(seed):
    data = corpus.pdf_bytes(random.Random(seed), 40_000 + 30_000 * seed)
    assert _fast(data) == _pdfium(data)


@pytest.mark.parametrize("seed", range(2))
def test_an_office_shaped_pdf_15_reads_as_pdfium_reads_it(seed, every_page):
    data = corpus.office_pdf_bytes(random.Random(seed), 30_000)
    assert b"/ObjStm" in data and b"/XRef" in data  # object streams behind an xref stream
    fast = _fast(data)
    assert fast == _pdfium(data)
    assert fast[0] == {"Title": "规格书"}


def test_an_incremental_update_replaces_the_page_as_pdfium_sees_it():
    base = _page("BT /F1 12 Tf 72 700 Td (old text CONFIDENTIAL) Tj ET")
    xref = base.rindex(b"\nxref\n") + 1
    content = b"BT /F1 12 Tf 72 700 Td (new text 11010519491231002X) Tj ET"
    update = b"4 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (len(content), content)
    offset = len(base)
    table = b"xref\n4 1\n%010d 00000 n \ntrailer\n<< /Size 6 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n"
    data = base + update + table % (offset, xref, offset + len(update))
    fast = _fast(data)
    assert fast == _pdfium(data)
    assert "new text" in fast[1][0]


def test_metadata_in_utf16_and_pdfdocencoding_reads_as_pdfium_reads_it(tmp_path):
    path = makers.pdf(
        tmp_path / "m.pdf", lines=("CONFIDENTIAL line",), title="泵叶轮图纸", subject="研发", author="Zhang Wei"
    )
    data = path.read_bytes()
    fast = _fast(data)
    assert fast == _pdfium(data)
    assert fast[0]["Title"] == "泵叶轮图纸" and fast[0]["Author"] == "Zhang Wei"


def test_inspection_gives_the_same_detections_and_fingerprints_either_way(monkeypatch):
    data = corpus.pdf_bytes(random.Random(11), 80_000)
    results = []
    for fast in (True, False):
        monkeypatch.setattr(pdf_module, "FAST_READER", fast)
        result = inspect_source(io.BytesIO(data), "spec.pdf")
        results.append((result.detections, result.fingerprints))
    assert results[0] == results[1]
    assert results[0][1] and {d.detector for d in results[0][0]} >= {"cn_resident_id"}


def test_read_pdf_uses_the_fast_reader_only_when_it_is_on(monkeypatch):
    data = corpus.pdf_bytes(random.Random(5), 20_000)
    calls = []
    real = pdf_fast.read
    monkeypatch.setattr(pdf_fast, "read", lambda *a, **k: calls.append(1) or real(*a, **k))
    reference = _parts(data, engine="pdfium")
    assert not calls
    assert _parts(data) == reference and calls == [1]
    monkeypatch.setattr(pdf_module, "FAST_READER", False)
    assert _parts(data) == reference and calls == [1]


# what the fast reader gives up on goes whole to PDFium
def test_what_the_fast_reader_gives_up_on_goes_whole_to_pdfium(tmp_path):
    from pypdf import PdfReader, PdfWriter

    plain = makers.pdf(tmp_path / "plain.pdf", lines=("CONFIDENTIAL first", "second"))
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt("", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    type3 = _page("BT /F1 12 Tf 72 700 Td (abc) Tj ET", {"F1": "<< /Type /Font /Subtype /Type3 /FontMatrix [0.001 0 0 0.001 0 0] "
                                                              "/FontBBox [0 0 1000 1000] /CharProcs << >> /Encoding << /Differences [97 /a /b /c] >> "
                                                              "/FirstChar 97 /LastChar 99 /Widths [500 500 500] >>"})  # fmt: skip
    rotated = _page("BT /F1 12 Tf 0 1 -1 0 300 300 Tm (sideways) Tj ET")
    truetype_differences = _page(
        "BT /F1 12 Tf 72 700 Td (ABC) Tj ET",
        {
            "F1": SIMPLE_TT.format(
                w=WIDTHS, extra="/Encoding << /BaseEncoding /WinAnsiEncoding /Differences [65 /uni4E2D] >>"
            )
        },
    )  # PDFium keeps "A" there
    repeated_glyph = _page(
        "BT /F1 12 Tf 72 700 Td (Hello) Tj ET BT /F1 12 Tf 87.336 700 Td (lo) Tj ET"
    )  # PDFium drops the l
    damaged_font = _page(  # PDFium would measure a substitute font's glyph boxes
        "BT /F1 12 Tf 72 700 Td (ABC) Tj ET",
        {"F1": SIMPLE_TT.format(w=WIDTHS, extra="/Encoding /WinAnsiEncoding /FontDescriptor 6 0 R")},
        [
            "<< /Type /FontDescriptor /FontName /ABCDEF+Serif /Flags 32 /Ascent 900 /Descent -200 /FontFile2 7 0 R >>",
            "<< /Length 10 /Filter /FlateDecode >>\nstream\nnot zlib!!\nendstream",
        ],  # fmt: skip
    )
    for data in (buffer.getvalue(), type3, rotated, truetype_differences, repeated_glyph, damaged_font):
        with pytest.raises(Unsure):
            _fast(data)
        assert _parts(data) == _parts(data, engine="pdfium")
    locked = makers.pdf(tmp_path / "locked.pdf", lines=("x",), user_password="secret")
    with pytest.raises(Refused, match="encrypted"):
        _parts(locked.read_bytes())


def test_a_page_of_short_runs_is_read_as_pdfium_reads_it_where_the_layout_is_in_c():
    data = corpus.office_pdf_bytes(random.Random(4), 8_000)  # a run every few glyphs, as mixed-script office text
    assert pdf_layout.in_c()
    assert _fast(data) == _pdfium(data)
    assert _parts(data) == _parts(data, engine="pdfium")


def test_a_page_of_short_runs_is_given_to_pdfium_for_speed_where_the_layout_is_in_python(monkeypatch):
    monkeypatch.setattr(pdf_layout, "FAST_C", False)
    data = corpus.office_pdf_bytes(random.Random(4), 8_000)
    with pytest.raises(Unsure, match="short text runs"):
        _fast(data)
    assert _parts(data) == _parts(data, engine="pdfium")


def test_short_runs_beside_a_column_of_lines_are_given_to_pdfium_for_speed():
    """A run of "(line) Tj T*" (a Column) sends the page to the Python layout: there short runs
    cost more than PDFium takes, so the gate holds even with the C layout in force."""
    runs = " ".join(f"BT /F1 9 Tf {72 + 12 * (i % 40)} {500 - 12 * (i // 40)} Td (w{i % 10}) Tj ET" for i in range(200))
    data = _page(f"BT /F1 11 Tf 14 TL 72 700 Td (first line) Tj T* (second) Tj T* (third) Tj T* ET {runs}")
    with pytest.raises(Unsure, match="short text runs"):
        _fast(data)
    data = _page(runs)
    if pdf_layout.in_c():  # the same runs alone: the C layout reads them
        assert _fast(data) == _pdfium(data)


def test_an_encrypt_entry_is_given_to_pdfium_whatever_the_streams_hold():
    plain = _page("BT /F1 12 Tf 72 700 Td (CONFIDENTIAL) Tj ET")
    data = plain.replace(b"/Root 1 0 R", b"/Root 1 0 R /Encrypt << /Filter /Standard /V 4 /R 4 /Length 128 /CF << /StdCF "
                         b"<< /CFM /None >> >> /StmF /Identity /StrF /Identity /O <00> /U <00> /P -4 >>")  # fmt: skip
    with pytest.raises(Unsure, match="encrypted"):
        _fast(data)


def test_a_lone_space_object_is_skipped_and_a_wider_one_kept_as_pdfium_does():
    for middle in ("( )", "(  )"):
        data = _page(f"BT /F1 12 Tf 72 700 Td (Hello) Tj ET BT /F1 12 Tf 99.336 700 Td {middle} Tj ET "
                     "BT /F1 12 Tf 99.336 700 Td (World) Tj ET")  # fmt: skip
        assert _fast(data) == _pdfium(data)


# hostile files: Unsure, or PDFium's text; never another exception, never a hang
def _mutants(data: bytes, rng: random.Random, count: int):
    for _ in range(count):
        kind = rng.randrange(5)
        if kind == 0:
            yield data[: rng.randrange(len(data))]
        elif kind == 1:
            flipped = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                flipped[rng.randrange(len(data))] = rng.randrange(256)
            yield bytes(flipped)
        elif kind == 2:
            at = rng.randrange(len(data))
            yield data[:at] + rng.randbytes(rng.randint(1, 40)) + data[at:]
        elif kind == 3:
            yield data.replace(b"/Length ", b"/Length 1", 1)
        else:
            at = rng.randrange(len(data))
            yield data[:at] + data[at + rng.randint(1, 30) :]


def _held_to_pdfium(data: bytes) -> None:
    try:
        fast = _fast(data)
    except Unsure:
        return
    try:
        reference = _pdfium(data)
    except pdfium.PdfiumError:
        pytest.fail("the fast reader read a file PDFium refuses")
    assert fast == reference


@pytest.mark.parametrize("maker", ["bench", "office"])
def test_mutated_files_give_unsure_or_pdfiums_text(maker, every_page):
    rng = random.Random(f"mutants-{maker}")
    data = corpus.pdf_bytes(rng, 6_000) if maker == "bench" else corpus.office_pdf_bytes(rng, 6_000)
    for mutant in _mutants(data, rng, 150):
        _held_to_pdfium(mutant)


HOSTILE = {
    "prev cycle": b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\nxref\n0 2\n0000000000 65535 f \n"
    b"0000000009 00000 n \ntrailer\n<< /Size 2 /Root 1 0 R /Prev 55 >>\nstartxref\n55\n%%EOF\n",
    "deep arrays": b"%PDF-1.4\n1 0 obj\n"
    + b"[" * 100_000
    + b"\nendobj\nxref\n0 2\n0000000000 65535 f \n0000000009 00000 n \n"
    b"trailer\n<< /Size 2 /Root 1 0 R >>\nstartxref\n100025\n%%EOF\n",
    "huge count": makers.pdf_file(
        [
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1000000000 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            "<< /Length 0 >>\nstream\n\nendstream",
        ]
    ),  # fmt: skip
    "page tree cycle": makers.pdf_file(
        [
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
        ]
    ),  # fmt: skip
    "form cycle": _page(
        "/X1 Do",
        more=[_form("/X1 Do", "/Resources << /XObject << /X1 6 0 R >> >>")],
        xobjects="/XObject << /X1 6 0 R >>",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_structures_are_unsure_or_read_as_pdfium(name):
    _held_to_pdfium(HOSTILE[name])


def test_a_stream_inflating_past_the_budget_is_unsure():
    bomb = zlib.compress(b"0 0 m " * (4 << 20))
    data = makers.pdf_file(
        [
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            f"<< /Length {len(bomb)} /Filter /FlateDecode >>\nstream\n" + bomb.decode("latin-1") + "\nendstream",
        ]
    )
    with pytest.raises(Unsure, match="budget"):
        pdf_fast.read(data, 1 << 20, 10, lambda: None, KEYS)


# real producers
@pytest.mark.skipif(legacy_makers.SOFFICE is None, reason="needs LibreOffice (apt-get install libreoffice-writer)")
def test_libreoffice_pdfs_read_as_pdfium_reads_them(tmp_path, every_page, monkeypatch):
    rng = random.Random(3)
    body = legacy_makers.SPEC * 3 + tuple(corpus.paragraphs(rng, 6_000))
    rows = legacy_makers.ROWS + tuple(
        (f"客户{i}", f"11010519491231{i:03d}X", 13800138000 + i, i * 1.5) for i in range(40)
    )
    sources = [legacy_makers.fodt(tmp_path / "规格书.fodt", body=body), legacy_makers.fods(tmp_path / "名单.fods", rows=rows),
               legacy_makers.fodp(tmp_path / "路线图.fodp")]  # fmt: skip
    for source in sources:
        data = legacy_makers.convert(source, "pdf", tmp_path).read_bytes()
        assert _fast(data) == _pdfium(data), source.name
        results = []
        for fast in (True, False):
            monkeypatch.setattr(pdf_module, "FAST_READER", fast)
            result = inspect_source(io.BytesIO(data), source.stem + ".pdf")
            results.append((result.detections, result.fingerprints))
        assert results[0] == results[1]


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_a_chromium_pdf_is_read_as_pdfium_reads_it_or_given_to_pdfium(tmp_path, every_page):
    page = tmp_path / "page.html"
    page.write_text("<html><body><h1>内部资料 Confidential</h1>" + "".join(f"<p>{p}</p>" for p in legacy_makers.SPEC)
                    + "<table border=1><tr><td>料号</td><td>BMS-3000</td></tr></table></body></html>", encoding="utf-8")  # fmt: skip
    target = tmp_path / "page.pdf"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--print-to-pdf={target}", page.as_uri()],
                   capture_output=True, timeout=120, check=False)  # fmt: skip
    if not target.exists():
        pytest.skip("chromium did not print")
    data = target.read_bytes()
    _held_to_pdfium(data)
    assert _parts(data) == _parts(data, engine="pdfium")


# random layouts: words at random places, sizes and gaps, lines of a column, TJ gaps; the fast
# reader gives PDFium's text or gives up
WORDS = ("pump", "Impeller", "HXB100", "11010519491231002X", "机密", "a", "-", "x-", "(note)", "0.35", "CONFIDENTIAL")


def _random_page(rng: random.Random) -> bytes:
    ops = []
    for _ in range(rng.randint(1, 12)):
        size = rng.choice((6, 9, 10.5, 12, 14, 20))
        x, y = rng.uniform(-20, 560), rng.uniform(20, 780)
        kind = rng.randrange(4)
        words = [rng.choice(WORDS).encode("latin-1", "replace").decode("latin-1") for _ in range(rng.randint(1, 5))]
        text = " ".join(words).replace("(", "\\(").replace(")", "\\)")
        if kind == 0:
            ops.append(f"BT /F1 {size} Tf {x:.2f} {y:.2f} Td ({text}) Tj ET")
        elif kind == 1:
            parts = " ".join(
                f"({w.replace('(', '').replace(')', '')}) {rng.choice((-400, -250, -140, -138, -50, 0, 30, 120))}"
                for w in words
            )
            ops.append(f"BT /F1 {size} Tf {x:.2f} {y:.2f} Td [{parts}] TJ ET")
        elif kind == 2:
            lead = rng.choice((size * 1.2, size * 0.5, size * 2, 3))
            lines = " ".join(f"({w}) Tj T*" for w in words)
            ops.append(f"BT /F1 {size} Tf {lead:.2f} TL {x:.2f} {y:.2f} Td {lines} ET")
        else:
            dy = rng.choice((0, 0, 1, -2, size * 0.4, -size * 0.3))
            ops.append(
                f"BT /F1 {size} Tf {x:.2f} {y:.2f} Td ({text}) Tj {rng.uniform(-5, 60):.2f} {dy:.2f} Td ({words[0]}) Tj ET"
            )
    return _page(" ".join(ops))


@pytest.mark.parametrize("seed", range(4))
def test_random_layouts_give_pdfiums_text_or_give_up(seed, every_page):
    rng = random.Random(f"layouts-{seed}")
    read = 0
    for _ in range(150):
        data = _random_page(rng)
        try:
            fast = _fast(data)
        except Unsure:
            continue
        read += 1
        assert fast == _pdfium(data), data
    assert read > 20  # random pages overlap a lot; still many are read, not given up on


@pytest.mark.skipif(shutil.which("gs") is None, reason="needs ghostscript (apt-get install ghostscript)")
def test_a_ghostscript_pdf_is_read_as_pdfium_reads_it(tmp_path):
    source = tmp_path / "spec.ps"
    source.write_text(
        "%!PS\n/Helvetica findfont 11 scalefont setfont\n"
        "72 720 moveto (CONFIDENTIAL pump impeller HXB100 drawing) show\n"
        "72 705 moveto (Customer 11010519491231002X mobile 13800138000) show\n"
        "/Times-Roman findfont 10 scalefont setfont\n"
        "72 660 moveto (Table:) show 200 660 moveto (cell two) show 320 660 moveto (cell three) show\nshowpage\n"
    )
    target = tmp_path / "spec.pdf"
    subprocess.run(["gs", "-q", "-sDEVICE=pdfwrite", "-o", str(target), str(source)], check=True, timeout=120)
    data = target.read_bytes()
    fast = _fast(data)  # read, not given up on
    assert fast == _pdfium(data)
    assert "11010519491231002X" in fast[1][0]
