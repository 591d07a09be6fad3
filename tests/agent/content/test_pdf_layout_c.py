"""The page layout in C (agent/content/_pdflayout.c) held to pdf_layout.py's Python layout, its
reference: on generated pages of text objects (kerning, repeated glyphs and objects, one-glyph
objects, rotated and vertical flows, forms, hyphens, columns, overlapping runs, ligatures and
controls, huge, NaN and infinite coordinates, blank and empty runs) the C gives the very page text
the Python gives, or gives way (None) and the Python decides; and on the content streams the C
loop's tests generate, the whole page reads the same with the C layout on or off."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import pdf_content, pdf_fast, pdf_layout
from agent.content.pdf_content import Column, ContentReader, TextObject
from agent.content.pdf_fonts import Font
from agent.content.pdf_objects import Unsure
from agent.content.pdf_xref import Document
from tests.agent.content import nomemory
from tests.agent.content import test_pdf_content_c as loop_tests

_pdflayout = pytest.importorskip("agent.content._pdflayout", reason="the C extension is not built")

BOX = (0.0, 0.0, 595.304, 841.89)


def _latin(space: bool = True, extra: dict | None = None) -> Font:
    text = {c: chr(c) for c in range(32, 127)}
    text[0xAD] = "\xad"
    text[0x93] = "\x93"  # a control PDFium drops
    text[0x80] = "\ufb01"  # fi: spelled out
    text[0x81] = "\ufb05"  # the long s ligature: Unsure
    text[0x82] = "ffi"  # a code of three characters
    text[0x83] = "\u05d0"  # right to left
    text[0x84] = "\xa0"  # a blank other than the space
    text[0x85] = "\u3002"
    text.update(extra or {})
    if not space:
        del text[32]
    widths = {c: 250 if c == 32 else 60 if c == 0x21 else 0 if c == 0x23 else 300 + c % 7 * 100 for c in text}
    return Font(False, text, widths, None, 32 if space else None, 900.0, -200.0)


def _cjk(default: int | None = 1000) -> Font:
    text = {1: "\u673a", 2: "\u5bc6", 3: "A", 4: "-", 5: " ", 6: "\u8d44", 7: "1"}
    widths = {1: 1000, 2: 1000, 3: 500, 4: 333}
    return Font(True, text, widths, default, 5, 880.0, -120.0)


FONTS = (_latin(), _latin(space=False), _cjk(), _cjk(default=None), Font(False, {65: "A", 66: "B"}, {65: 500}, 700, None, 718.0, -207.0))
SIZES = (10.0, 10.5, 12.0, 9.0, 1.0, 0.5, 30.0, 1e-9, 1e300, math.inf, math.nan, -10.0, 0.0)
SCALES = (1.0, 1.0, 1.0, 2.0, 0.5, 0.001, 1e300, math.inf, math.nan, -1.0, 0.0)
KERNS = (-300.0, -120.0, -50.0, -1.0, 1.0, 3.0, 40.0, 100.0, -1000.0, -125.0, -83.33333333333333, 0.0, -400.0, -250.0, math.nan)


@st.composite
def objects(draw) -> list:
    """Specs of text objects (fresh TextObjects are made from them for each run: the Python
    layout fills in their text)."""
    specs = []
    hostile = draw(st.integers(0, 3)) == 0  # odd values (NaN, huge, zero scales...) on a quarter of the pages
    x, y = draw(st.sampled_from((56.8, 72.0, 0.0, -5.0))), draw(st.sampled_from((760.0, 700.0, 10.0, 841.0)))
    for _ in range(draw(st.integers(0, 40))):
        font_i = draw(st.integers(0, len(FONTS) - 1))
        font = FONTS[font_i]
        usable = sorted(font.usable)
        plain = [c for c in usable if font.advances[c] > 0 and ord(c) < 0x80 and (c.isalnum() or hostile)] or usable
        n = draw(st.sampled_from((1, 1, 2, 3, 4, 7, 8, 12, 30)))
        codes = "".join(draw(st.lists(st.sampled_from(plain if draw(st.integers(0, 3 if hostile else 30)) else usable), min_size=n, max_size=n)))
        if draw(st.integers(0, 9)) == 0:
            codes = codes[:1] * len(codes)  # a glyph repeated
        strings = 1 + (draw(st.integers(0, 3)) if len(codes) > 1 else 0)
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(codes) - 1)), min_size=strings - 1, max_size=strings - 1))))
        if len(codes) < 2:
            cuts = []
        kerns = [draw(st.sampled_from(KERNS if hostile else KERNS[:-1])) for _ in cuts]
        size = draw(st.sampled_from(SIZES)) if hostile and draw(st.integers(0, 5)) == 0 else draw(st.sampled_from(SIZES[:4]))
        a = draw(st.sampled_from(SCALES)) if draw(st.integers(0, 6)) == 0 else 1.0
        d = a if draw(st.integers(0, 3)) else draw(st.sampled_from(SCALES if hostile else SCALES[:5]))
        if not hostile:
            a = a if a in SCALES[:5] else 1.0
        scale = size / 1000 if math.isfinite(size) else 0.01
        total = sum(font.advances[c] for c in codes)
        end_x = (total - sum(kerns)) * scale
        last_x = end_x - font.advances[codes[-1]] * scale
        move = draw(st.integers(0, 11))
        if move < 5:  # along the line: just after, or a gap, or overlapping
            x += (end_x * a if math.isfinite(end_x * a) else 10) + draw(st.sampled_from((0.0, 0.0, 2.5, 1.0, -3.0, 30.0, 0.3, -20.0)))
        elif move < 8:  # a new line, at the margin or not
            y -= draw(st.sampled_from((15.1, 12.0, 14.0, 5.0, 1.0, 30.2, 0.5)))
            x = draw(st.sampled_from((56.8, 56.8, 72.0, 226.8)))
        elif move == 8:  # back up the page: a column beside, a header
            y += draw(st.sampled_from((15.1, 200.0, 3.0)))
            x += draw(st.sampled_from((170.0, -100.0, 0.0)))
        elif move == 9:  # the same place again (fake bold, a repeat)
            pass
        elif move == 10 and hostile:
            x, y = draw(st.sampled_from(((1e300, 1.0), (math.nan, 700.0), (700.0, math.inf), (-1e6, 5.0), (1001.0, 500.0))))
        else:
            x += draw(st.floats(-50, 50, allow_nan=False))
            y += draw(st.floats(-20, 20, allow_nan=False))
        holder = draw(st.sampled_from((0, 0, 0, 0, 1, 2)))
        dense = draw(st.integers(0, 15 if hostile else 200)) == 0
        if hostile and draw(st.integers(0, 12)) == 0:  # fields out of step with the codes
            last_x, end_x = draw(st.sampled_from(((0.0, 0.0), (-1.0, 5.0), (math.nan, 1.0), (1e-5, 1e-5))))
        specs.append((font_i, size, codes, kerns, cuts, last_x, end_x, a, d, x, y, holder, dense))
    return specs


def _build(specs: list) -> list:
    return [TextObject(FONTS[f], *rest) for f, *rest in specs]


def _outcome(fn):
    try:
        return "text", fn()
    except Exception as e:  # noqa: BLE001 - any failure sends the document to PDFium
        return "failed", type(e).__name__


def _python(objects: list, monkeypatch, box=BOX):
    monkeypatch.setattr(pdf_layout, "FAST_C", False)
    return _outcome(lambda: pdf_layout.PageLayout(box).text(objects))


def _c(objects: list, box=BOX):
    layout = pdf_layout.PageLayout(box)
    return _pdflayout.text(objects, layout.width, layout.height, layout.sx, layout.sy, lambda: None)


def _same(specs_or_objects, monkeypatch, make=_build, box=BOX):
    """The C layout's text is the Python's wherever the C gives one; the layout as pdf_fast calls
    it (FAST_C on) gives the Python's outcome, text or failure."""
    python = _python(make(specs_or_objects), monkeypatch, box)
    objects = make(specs_or_objects)
    c = _c(objects, box)
    if c is not None:
        assert python == ("text", c)
    elif python[0] == "text":  # the C gives way only where the Python fails, or on what it leaves to it
        assert any(not isinstance(o, TextObject) for o in objects), "the C gave way on a page the Python reads"
    monkeypatch.setattr(pdf_layout, "FAST_C", True)
    assert _outcome(lambda: pdf_layout.PageLayout(box).text(make(specs_or_objects))) == python
    return python, c


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=objects())
def test_generated_pages_read_the_same_in_c_and_python(specs, monkeypatch):
    _same(specs, monkeypatch)


def test_the_generated_pages_are_mostly_read_by_the_c(monkeypatch):
    """Pages of lines of words are read by the C (not given way), and as the Python reads them."""
    read = 0
    for seed in range(300):
        python, c = _same(_example(seed), monkeypatch)
        read += c is not None and python[1] != ""
    assert read > 200


def _example(seed: int) -> list:
    """A page as office suites draw one, from a seed: lines of runs along the baseline with
    small gaps and kerning (some wide enough for a space), CJK and Latin fonts mixed, a
    one-glyph run now and then, a table row of cells side by side, a run from a form, a repeated
    word, ligatures and controls, new lines below."""
    rng = random.Random(seed)
    specs, y = [], 760.0
    for _ in range(rng.randint(1, 14)):
        cells = (56.8, 226.8, 396.8) if rng.random() < 0.15 else (56.8,)
        for x in cells:
            for _ in range(rng.randint(1, 8)):
                font_i = rng.choice((0, 0, 1, 2, 3))
                font = FONTS[font_i]
                plain = [c for c in sorted(font.usable) if font.advances[c] > 71 and (c.isalnum() or font.two_byte and c != "\x04")]
                codes = "".join(rng.choices(plain, k=rng.choice((1, 2, 3, 5, 8))))
                if not font.two_byte and rng.random() < 0.05:
                    codes = codes[:1] + rng.choice([c for c in "\x80\x82\x93 " if c in font.usable]) + codes[1:] + "x"
                cuts = sorted({rng.randint(1, len(codes) - 1) for _ in range(rng.randint(0, 3))}) if len(codes) > 1 else []
                kerns = [rng.choice((-3.0, 2.0, 1.0, -400.0, -250.0, -1000.0, -60.0, -110.0, -120.0, -140.0)) for _ in cuts]
                size = rng.choice((10.5, 10.5, 9.0, 12.0))
                end_x = (sum(font.advances[c] for c in codes) - sum(kerns)) * size / 1000
                last_x = end_x - font.advances[codes[-1]] * size / 1000
                holder = 1 if rng.random() < 0.05 else 0
                specs.append((font_i, size, codes, kerns, cuts, last_x, end_x, 1.0, 1.0, x, y, holder, False))
                if rng.random() < 0.03:  # the same word again further on
                    specs.append(specs[-1][:9] + (x + 40.0,) + specs[-1][10:])
                x += end_x + rng.choice((0.0, 0.0, 3.0, 0.2, 0.5, 6.0))
        y -= rng.choice((15.1, 15.1, 30.2, 14.0))
    return specs


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1 << 32))
def test_office_like_pages_read_the_same_in_c_and_python(seed, monkeypatch):
    _same(_example(seed), monkeypatch)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=loop_tests.content_streams())
def test_random_content_streams_lay_out_the_same_in_c_and_python(content, monkeypatch):
    monkeypatch.setattr(pdf_content, "FAST_C", False)
    reader = ContentReader(loop_tests.DOC, loop_tests.FONTS, 0)
    try:
        reader.run(content, loop_tests.RESOURCES)
    except Exception:  # noqa: BLE001 - no objects to lay out
        return
    objects = reader.objects

    def fresh(_):  # each run its own copies: the Python layout fills in their text
        return [TextObject(*(getattr(o, f) for f in TextObject.__slots__[:13])) if isinstance(o, TextObject) else o for o in objects]

    _same(None, monkeypatch, make=fresh)


def test_office_shaped_pages_are_laid_out_by_the_c_as_by_the_python(monkeypatch):
    from bench import corpus

    data = corpus.office_pdf_bytes(random.Random(5), 40_000)
    doc = Document(data, 64 << 20)
    pages = pdf_fast._pages(doc, doc.resolve(doc.trailer.get("Root")))
    fonts: dict = {}
    for page in pages:
        contents = doc.resolve(page.get("Contents"))
        reader = ContentReader(doc, fonts, 0)
        reader.run(doc.stream_data(contents), page["Resources"])
        objects = reader.objects
        python, c = _same(None, monkeypatch, make=lambda _, objects=objects: [TextObject(*(getattr(o, f) for f in TextObject.__slots__[:13])) for o in objects])
        assert c is not None and python == ("text", c) and len(c) > 500


def _line(font_i: int, codes: str, x: float, y: float, size: float = 10.0, kerns=(), cuts=(), holder: int = 0) -> tuple:
    font = FONTS[font_i]
    end_x = (sum(font.advances[c] for c in codes) - sum(kerns)) * size / 1000
    return (font_i, size, codes, list(kerns), list(cuts), end_x - font.advances[codes[-1]] * size / 1000, end_x, 1.0, 1.0, x, y, holder, False)


CASES = {
    "one point down, small type": [_line(0, "ab", 72.0, 700.0, size=0.9), _line(0, "cd", 75.0, 699.0, size=0.9)],
    "a hyphen after a digit": [_line(0, "12-", 72.0, 700.0), _line(0, "ab", 72.0, 685.0)],
    "a hyphen after a letter, then a digit": [_line(0, "ab-", 72.0, 700.0), _line(0, "-7", 72.0, 685.0)],
    "a ligature and a control": [_line(0, "a\x80b\x93c  d", 72.0, 700.0), _line(0, "\x82x", 72.0, 685.0)],
    "a lone space between words": [_line(0, "ab", 72.0, 700.0), _line(0, " ", 83.3, 700.0), _line(0, "cd", 86.1, 700.0)],
    "kerning wide enough for a space": [_line(0, "abcd", 72.0, 700.0, kerns=(-300.0, -120.0, 40.0), cuts=(1, 2, 3))],
    "kerning in a font without a space": [_line(1, "abcd", 72.0, 700.0, kerns=(-300.0, -120.0), cuts=(1, 3))],
    "CJK runs with small kerning": [_line(2, "\x01\x02\x03", 72.0, 700.0, kerns=(-3.0, 2.0), cuts=(1, 2)), _line(2, "\x06", 102.0, 700.0)],
    "one-glyph runs on two lines": [_line(2, "\x01", 72.0 + 10 * (i % 8), 700.0 - 15 * (i // 8)) for i in range(16)],
    "one-glyph runs along a line": [_line(2, "\x01", 72.0 + 10 * i, 700.0) for i in range(6)],
    "a form's run between the page's": [_line(0, "ab", 72.0, 700.0), _line(0, "cd", 90.0, 700.0, holder=1), _line(0, "ef", 110.0, 700.0)],
    "runs out of order on a line": [_line(0, "cd", 120.0, 700.0), _line(0, "ab", 72.0, 700.0), _line(0, "ef", 96.0, 700.0)],
    "two columns": [_line(0, "left", 72.0, 700.0), _line(0, "right", 300.0, 700.0), _line(0, "left2", 72.0, 685.0), _line(0, "right2", 300.0, 685.0)],
    "spaces collapse": [_line(0, "a  ", 72.0, 700.0), _line(0, "  b", 86.0, 700.0)],
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_shape_is_laid_out_by_the_c_as_by_the_python(case, monkeypatch):
    python, c = _same(CASES[case], monkeypatch)
    assert python[0] == "text" and c == python[1]


def test_a_column_is_left_to_the_python(monkeypatch):
    font = FONTS[0]
    column = Column(font, 10.0, 1.0, 1.0, 72.0, 700.0, 14.0, 0, ["first line", "second", "third", "fourth", "fifth"])
    assert _c([column]) is None
    python, _ = _same(None, monkeypatch, make=lambda _: [column])
    assert python[0] == "text" and "third" in python[1]


def test_the_c_layout_looks_at_the_clock_and_stops_when_it_says(monkeypatch):
    specs = [(0, 10.0, "ab", [], [], 5.0, 10.0, 1.0, 1.0, 10.0 + 20 * (i % 20), 800.0 - 15 * (i // 20), 0, False) for i in range(1000)]
    checks: list = []
    layout = pdf_layout.PageLayout(BOX)
    text = _pdflayout.text(_build(specs), layout.width, layout.height, layout.sx, layout.sy, lambda: checks.append(1))
    # every 256 objects as they are read, and again as they are laid out (the Python's cadence)
    assert text is not None and len(checks) == 2 * (999 // pdf_layout.CHECK_EVERY)

    def out_of_time():
        raise Unsure("time")

    with pytest.raises(Unsure):
        _pdflayout.text(_build(specs), layout.width, layout.height, layout.sx, layout.sy, out_of_time)


def test_the_c_layout_survives_running_out_of_memory_at_every_allocation(monkeypatch):
    """Each allocation made to fail in turn (_testcapi.set_nomemory): the C raises MemoryError,
    gives way, or gives the Python's text; a missing NULL check crashes the test process."""
    if not nomemory.in_child():
        nomemory.run_in_child(__file__, "test_the_c_layout_survives_running_out_of_memory_at_every_allocation")
        return
    nomemory.testcapi()
    specs = _example(11) + [(0, 10.0, "a\x80b\x93c", [-300.0], [2], 20.0, 25.0, 1.0, 1.0, 300.0, 100.0, 1, False)]
    specs += [(2, 10.0, "\x01", [], [], 0.0, 10.0, 1.0, 1.0, 100.0, 50.0, 0, False)]  # one glyph: the flow direction
    expected = _python(_build(specs), monkeypatch)
    assert expected[0] == "text"
    fonts = [Font(f.two_byte, f.text, f.widths, f.default_width, f.space_code, f.ascent, f.descent) for f in FONTS]
    finished = failed = 0
    for n in range(400):
        objects = [TextObject(fonts[f], *rest) for f, *rest in specs]  # new fonts: their tables made each time
        for f in fonts:
            f.__dict__.pop("_layout_tables", None)
        layout = pdf_layout.PageLayout(BOX)
        try:
            with nomemory.failing(n):
                text = _pdflayout.text(objects, layout.width, layout.height, layout.sx, layout.sy, lambda: None)
        except MemoryError:
            failed += 1
            continue
        finished += 1
        assert text is None or ("text", text) == expected
    assert failed and finished
