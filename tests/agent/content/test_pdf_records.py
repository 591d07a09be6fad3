"""A page's text objects handed from the C loop to the C layout as C records (ContentReader.records,
PageLayout.records_text, pdf_fast.FAST_PAGES) held to the page read into TextObjects (and on office
pages to the Python loop and the Python layout): on random content streams both give the very same
page text, or both fail (the document then goes to PDFium either way). Where a step needs Python's text objects (a show _show takes, a
run of lines, a form's text) the records made so far become TextObjects, the very ones run() makes."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import pdf_content, pdf_fast, pdf_layout
from agent.content.pdf_content import ContentReader
from agent.content.pdf_objects import Unsure
from agent.content.pdf_xref import Document
from tests.agent.content import nomemory
from tests.agent.content import test_pdf_content_c as loop_tests

_pdftext = pytest.importorskip("agent.content._pdftext", reason="the C extension is not built")
_pdflayout = pytest.importorskip("agent.content._pdflayout", reason="the C extension is not built")

BOX = (0.0, 0.0, 612.0, 792.0)


def _outcome(fn) -> tuple:
    try:
        return "text", fn()
    except Exception as e:  # noqa: BLE001 - any failure sends the document to PDFium
        return "failed", type(e).__name__ == "Unsure"


def _python(content: bytes, monkeypatch, doc=loop_tests.DOC, resources=loop_tests.RESOURCES) -> tuple:
    """The reference: the Python loop's text objects laid out by the Python layout."""
    monkeypatch.setattr(pdf_content, "FAST_C", False)
    monkeypatch.setattr(pdf_layout, "FAST_C", False)

    def read() -> str:
        reader = ContentReader(doc, loop_tests.FONTS if doc is loop_tests.DOC else {}, 0)
        reader.run(content, resources)
        return pdf_layout.PageLayout(BOX).text(reader.objects)

    try:
        return _outcome(read)
    finally:
        monkeypatch.setattr(pdf_content, "FAST_C", True)
        monkeypatch.setattr(pdf_layout, "FAST_C", True)


def _fast(content: bytes, monkeypatch, doc=loop_tests.DOC, resources=loop_tests.RESOURCES, fonts=None) -> tuple:
    """The page as the fast reader reads it, FAST_PAGES as it stands (on: through records)."""
    fonts = loop_tests.FONTS if fonts is None else fonts
    return _outcome(lambda: pdf_fast.content_text(doc, fonts, content, resources, BOX, lambda: None))


def _objects(content: bytes, monkeypatch) -> tuple:
    """The page read into TextObjects as before the records (FAST_PAGES off), the loop and the
    layout in C: each held to its Python reference by test_pdf_content_c and test_pdf_layout_c
    (content_text's short-run gate, for a page the Python layout reads, is the same in both)."""
    fast_pages = pdf_fast.FAST_PAGES
    monkeypatch.setattr(pdf_fast, "FAST_PAGES", False)
    try:
        return _outcome(
            lambda: pdf_fast.content_text(
                loop_tests.DOC, loop_tests.FONTS, content, loop_tests.RESOURCES, BOX, lambda: None
            )
        )
    finally:
        monkeypatch.setattr(pdf_fast, "FAST_PAGES", fast_pages)


def _same(content: bytes, monkeypatch) -> tuple:
    python = _objects(content, monkeypatch)
    fast = _fast(content, monkeypatch)
    if python[0] == "failed":
        assert fast[0] == "failed", content
    else:
        assert fast == python, content
    return python


def _records_text(content: bytes, doc=loop_tests.DOC, resources=loop_tests.RESOURCES, fonts=None):
    """The records path alone: the page's text, None where it gave way (TextObjects or the layout)."""
    reader = ContentReader(doc, loop_tests.FONTS if fonts is None else fonts, 0)
    records = reader.records(content, resources)
    return None if records is None else pdf_layout.PageLayout(BOX).records_text(records)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=loop_tests.content_streams())
def test_random_content_streams_give_the_same_page_text_through_records(content, monkeypatch):
    _same(content, monkeypatch)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.sampled_from(loop_tests.PIECES), min_size=1, max_size=20))
def test_well_formed_streams_give_the_same_page_text_through_records(pieces, monkeypatch):
    _same(" ".join(pieces).encode("latin-1"), monkeypatch)
    _same("\n".join(pieces[::-1]).encode("latin-1"), monkeypatch)


FONT_CODES = {"/F1": "48656c6c6f20", "/F2": "0001000200030004", "/F3": "414243442045"}  # Helvetica, Type0, Serif


def _office_run(rng: random.Random, x: float, y: float) -> tuple[str, float]:
    """A run as office suites write one: its own q/BT, a position, a font, a Tj or a TJ; and
    how far past x its glyphs surely end (an em each)."""
    font = rng.choice(list(FONT_CODES))
    codes = FONT_CODES[font]
    width = 4 if font == "/F2" else 2
    pieces = [codes[i : i + width] for i in range(0, len(codes), width)]
    picked = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
    size = rng.choice(("9", "10.5", "12"))
    if rng.random() < 0.5:
        show = f"<{picked}> Tj"
    else:
        cut = rng.randrange(0, len(picked) // width + 1) * width
        kern = rng.choice(("-300", "-120", "-3", "2", "40", "1.5", "-0.25", "-72.125", "+.5"))
        show = f"[<{picked[:cut] or picked}> {kern} <{picked[cut:] or picked}>] TJ"
    return f"q 0 0 0 rg BT {x:.3f} {y:.3f} Td {font} {size} Tf {show} ET Q", len(picked) // width * float(size) + 3


def _office_page(seed: int) -> bytes:
    rng = random.Random(seed)
    runs, y = [], 760.0
    for _ in range(rng.randint(1, 8)):
        x = 56.8
        for _ in range(rng.randint(1, 8)):
            run, width = _office_run(rng, x, y)
            runs.append(run)
            x += width + rng.uniform(0.1, 20.0)
        y -= rng.uniform(12.0, 30.0)
    return "\n".join(runs).encode("latin-1")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1 << 32))
def test_office_like_pages_give_the_same_page_text_through_records(seed, monkeypatch):
    _same(_office_page(seed), monkeypatch)


def test_office_like_pages_are_mostly_read_through_records(monkeypatch):
    """The properties above are not vacuous: most such pages are laid out from their records,
    and they read text."""
    through_records = 0
    for seed in range(200):
        content = _office_page(seed)
        python = _same(content, monkeypatch)
        got = _outcome(lambda: _records_text(content))  # noqa: B023 - called at once
        through_records += got[0] == "text" and got[1] is not None and got == python and got[1].strip() != ""
    assert through_records > 150


LINES = b"\nBT /F1 11 Tf 14 TL 72 60 Td (first line) Tj T* (second) Tj T* ET"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1 << 32))
def test_records_hold_the_values_the_python_loop_gives(seed, monkeypatch):
    """Each record, field by field (turned into a TextObject by the run of lines at the end), is
    the text object the Python loop makes."""
    content = _office_page(seed) + LINES
    made = {}
    for use_c in (False, True):
        monkeypatch.setattr(pdf_content, "FAST_C", use_c)
        reader = ContentReader(loop_tests.DOC, loop_tests.FONTS, 0)
        if use_c:
            assert reader.records(content, loop_tests.RESOURCES) is None
        else:
            reader.run(content, loop_tests.RESOURCES)
        made[use_c] = ([loop_tests._record(o) for o in reader.objects], reader.count, reader.codes)
    assert made[True] == made[False] and len(made[True][0]) >= 2


@pytest.mark.parametrize(
    "content",
    [
        # office runs, then a run of lines (a Column, made by Python)
        "q 0 0 0 rg BT 72 700 Td /F1 12 Tf <48656c6c6f> Tj ET Q q 0.5 0 1 rg BT 100.5 680 Td /F2 9 Tf "
        "[<0001> -120 <00020003> 40 <0004>] TJ ET Q BT /F1 11 Tf 14 TL 72 600 Td (first line) Tj T* (second) Tj T* ET",
        # office runs, then a form with text: the records go before the form's objects
        "q 0 0 0 rg BT 80 690 Td /F3 10 Tf [<414243> -300 <44>] TJ ET Q q 1 0 0 1 10 -40 cm /X1 Do Q "
        "q 0 0 0 rg BT 80 500 Td /F3 10 Tf <4142> Tj ET Q",
        # a TJ of literal strings (Python's _show) between two runs
        "q 0 0 0 rg BT 80 690 Td /F3 10 Tf <4142> Tj ET Q BT /F1 12 Tf 72 650 Td [(Hello) -200 (World)] TJ ET "
        "q 0 0 0 rg BT 80 600 Td /F2 9 Tf [<0001> -3 <0002>] TJ ET Q",
    ],
    ids=["a run of lines", "a form with text", "a show Python takes"],
)
def test_records_made_before_a_python_step_become_the_text_objects_run_makes(content, monkeypatch):
    data = content.encode("latin-1")
    made = {}
    for records in (False, True):
        reader = ContentReader(loop_tests.DOC, loop_tests.FONTS, 0)
        if records:
            assert reader.records(data, loop_tests.RESOURCES) is None
        else:
            reader.run(data, loop_tests.RESOURCES)
        made[records] = ([loop_tests._record(o) for o in reader.objects], reader.count, reader.codes)
    assert made[True] == made[False] and len(made[True][0]) >= 3
    assert _same(data, monkeypatch)[0] == "text"


def test_an_image_form_keeps_the_page_in_records(monkeypatch):
    """A Do that draws no text (an image) leaves the records as they are."""
    data = b"q 0 0 0 rg BT 80 690 Td /F3 10 Tf <4142> Tj ET Q /X2 Do q 0 0 0 rg BT 80 600 Td /F3 10 Tf <4344> Tj ET Q"
    assert _records_text(data) == _python(data, monkeypatch)[1] == "AB\r\nCD"


def test_office_shaped_pages_read_through_records_as_through_python(monkeypatch):
    from bench import corpus

    data = corpus.office_pdf_bytes(random.Random(5), 40_000)
    doc = Document(data, 64 << 20)
    pages = pdf_fast._pages(doc, doc.resolve(doc.trailer.get("Root")))
    fonts: dict = {}
    for page in pages:
        contents = doc.resolve(page.get("Contents"))
        content = doc.stream_data(contents)
        python = _python(content, monkeypatch, doc, page["Resources"])
        assert python[0] == "text" and len(python[1]) > 500
        assert _records_text(content, doc, page["Resources"], fonts) == python[1]
        assert _fast(content, monkeypatch, doc, page["Resources"], fonts) == python


EDGES = {
    "an odd hex digit": "q 0 0 0 rg BT 72 700 Td /F3 12 Tf <41424> Tj ET Q",
    "an empty string": "q 0 0 0 rg BT 72 700 Td /F3 12 Tf <> Tj ET Q q 0 0 0 rg BT 90 700 Td /F3 12 Tf <41> Tj ET Q",
    "a string past 256 bytes": "q 0 0 0 rg BT 1 700 Td /F3 1 Tf <" + "4142" * 200 + "> Tj ET Q",
    "a font named like the one before": "q 0 0 0 rg BT 72 700 Td /F1 12 Tf <4142> Tj ET Q "
    "q 0 0 0 rg BT 72 680 Td /F2 12 Tf <00010002> Tj ET Q q 0 0 0 rg BT 72 660 Td /F1 12 Tf <4344> Tj ET Q",
    "a font the resources lack after one they hold": "q 0 0 0 rg BT 72 700 Td /F3 12 Tf <41> Tj ET Q "
    "q 0 0 0 rg BT 72 680 Td /F9 12 Tf <41> Tj ET Q",
    "a size and place past strtod's fast path": "q 0 0 0 rg BT 72.000000000000000000000001 700.12345678901234567890123 "
    "Td /F3 10.000000000000000000000000001 Tf [<4142> -0.1000000000000000000000001 <43>] TJ ET Q",
}


@pytest.mark.parametrize("case", list(EDGES))
def test_each_edge_of_an_office_run_reads_the_same_through_records(case, monkeypatch):
    python = _same(EDGES[case].encode("latin-1"), monkeypatch)
    assert python == _python(EDGES[case].encode("latin-1"), monkeypatch)


def test_the_fast_reader_reads_office_pages_through_records(monkeypatch):
    """With FAST_PAGES, a page whose every object the C makes is never run into TextObjects."""
    content = _office_page(3)

    def no_text_objects(*args, **kwargs):
        raise AssertionError("run into TextObjects")

    expected = _objects(content, monkeypatch)
    assert expected[0] == "text" and expected[1]
    monkeypatch.setattr(ContentReader, "run", no_text_objects)
    assert _fast(content, monkeypatch) == expected


def test_a_page_the_layout_is_not_sure_of_is_read_again_into_text_objects(monkeypatch):
    """A hyphen at a line's end: the C layout gives way, the Python layout decides (Unsure)."""
    data = b"q 0 0 0 rg BT 72 700 Td /F3 10 Tf <61622D> Tj ET Q q 0 0 0 rg BT 72 685 Td /F3 10 Tf <6364> Tj ET Q"
    reader = ContentReader(loop_tests.DOC, loop_tests.FONTS, 0)
    records = reader.records(data, loop_tests.RESOURCES)
    assert records is not None and pdf_layout.PageLayout(BOX).records_text(records) is None
    assert _same(data, monkeypatch) == ("failed", True)


def test_records_text_looks_at_the_clock_and_stops_when_it_says():
    data = b" ".join(
        b"q 0 0 0 rg BT %d %d Td /F3 10 Tf <4142> Tj ET Q" % (10 + 20 * (i % 20), 780 - 15 * (i // 20))
        for i in range(1000)
    )
    records = ContentReader(loop_tests.DOC, loop_tests.FONTS, 0).records(data, loop_tests.RESOURCES)
    checks: list = []
    layout = pdf_layout.PageLayout(BOX)
    assert layout.records_text(records, lambda: checks.append(1)) is not None
    assert len(checks) == 2 * (999 // pdf_layout.CHECK_EVERY)  # as text() looks at it

    def out_of_time():
        raise Unsure("time")

    with pytest.raises(Unsure):
        layout.records_text(records, out_of_time)


def test_records_text_takes_only_a_page_of_records():
    with pytest.raises(TypeError):
        _pdflayout.records_text(object(), 612.0, 792.0, 1.0, 1.0, lambda: None)


def test_records_survive_running_out_of_memory_at_every_allocation(monkeypatch):
    """Each allocation made to fail in turn: records() and records_text() raise MemoryError, give
    way, or give the Python's text; a missing NULL check crashes the test process."""
    if not nomemory.in_child():
        nomemory.run_in_child(__file__, "test_records_survive_running_out_of_memory_at_every_allocation")
        return
    nomemory.testcapi()
    data = (
        b"q 0 0 0 rg BT 72 700 Td /F1 12 Tf <48656c6c6f> Tj ET Q q 0.5 0 1 rg BT 100.5 680 Td /F2 9 Tf "
        b"[<0001> -120 <00020003> 40 <0004>] TJ ET Q q 0 0 0 rg BT 80 660 Td /F3 10 Tf [<414243> -300 <44>] TJ ET Q "
    )
    tail = b"BT /F1 11 Tf 14 TL 72 600 Td (first line) Tj T* (second) Tj T* ET"
    for content in (data, data + tail):  # all records; records turned into TextObjects
        expected = _python(content, monkeypatch)
        assert expected[0] == "text"
        finished = failed = 0
        for n in range(600):
            reader = ContentReader(loop_tests.DOC, loop_tests.FONTS, 0)
            try:
                with nomemory.failing(n):
                    records = reader.records(content, loop_tests.RESOURCES)
                    text = None if records is None else pdf_layout.PageLayout(BOX).records_text(records)
            except MemoryError:
                failed += 1
                continue
            finished += 1
            if text is not None:
                assert ("text", text) == expected
            elif records is None:  # the objects as run() makes them
                assert ("text", pdf_layout.PageLayout(BOX).text(reader.objects)) == expected
        assert failed and finished
