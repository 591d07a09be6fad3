"""The fast paths of extraction give exactly what their references give (issue 21 item 3):

- ooxml.plain_paragraphs (a member's paragraphs from one findall of marks) against xmlscan's
  events and expat's (the same parts, places, cells and budget stops), on random paragraphs with
  runs, tabs and breaks inside and outside paragraphs, nested and empty paragraphs, tables,
  placeholders, prefixes, entities, line ends, text outside t and odd attributes;
- ooxml.plain_rows against _plain_rows (a worksheet's rows from findall tuples);
- Collector.add_all and add_cells against add one by one (budget, part cap, surrogates, blank
  texts, cells);
- ids/wrap.join_wrapped_fast against join_wrapped (only the lines with a digit tried);
- zipread's whole-member read against zipfile's (the same bytes, or zipfile's refusal: bad CRC,
  cut data, a header that disagrees, a stream longer or shorter than its size);
- PDF lines by join_wrapped_fast and add_all against the reference loop.

Each comparison was checked to fail with its fast path broken on purpose (the report of the
change says how)."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import budget, ooxml, xmlscan, zipread
from agent.content import pdf as pdf_module
from agent.content.budget import Collector, OutOfBudget, Refused
from agent.content.document import BODY, HEADER, Cell, TextPart
from agent.content.extract import extract
from agent.content.ids import wrap
from tests.agent.content import makers
from tests.agent.content.makers import CONTENT_TYPES, W

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TODAY = date(2026, 12, 5)
NAMESPACE = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


# --- paragraphs ---------------------------------------------------------------------------------

TEXTS = st.one_of(
    st.sampled_from(
        ["机密", "a &amp; b", "&lt;x&gt;", "&#x4E2D;&#13;", "line\r\nend", "cr\rx", " ", "", "\t", "p", "a/"]
    ),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="<>&"), max_size=6
    ),
)


def _leaf(prefix: str) -> st.SearchStrategy[str]:
    attrs = st.sampled_from(["", ' xml:space="preserve"', " xml:space='preserve' "])
    return st.builds(lambda a, t: f"<{prefix}t{a}>{t}</{prefix}t>", attrs, TEXTS)


def _inline(prefix: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            f"<{prefix}tab/>",
            f"<{prefix}br/>",
            f"<{prefix}cr />",
            f"<{prefix}br></{prefix}br>",
            f'<{prefix}tab {prefix}val="left"/>',
        ]
    )


OTHER = st.sampled_from(
    ["<w:rPr><w:b/></w:rPr>", '<w:bookmarkStart w:id="1" w:name="_Toc"/>', "<w:proofErr/>", "<w:tabs/>",
     '<w:pStyle w:val="p"/>', "\n  ", "<w:t/>", '<w:t xml:space="preserve"/>', "<w:pict/>"]
)  # fmt: skip


def _body(prefix: str, refused: str, odd_blocks: bool = True) -> st.SearchStrategy[str]:
    """Paragraphs and what may stand beside or inside them, well-formed by construction; without
    `odd_blocks` no text or tab outside paragraphs, no t holding elements, no refused element."""
    run_parts = st.lists(st.one_of(_leaf(prefix), _leaf(prefix), _inline(prefix), OTHER), max_size=4)
    runs = run_parts.map(lambda parts: f"<{prefix}r>{''.join(parts)}</{prefix}r>")

    def paragraph(children: list[str], attrs: str) -> str:
        return f"<{prefix}p{attrs}>{''.join(children)}</{prefix}p>"

    attrs = st.sampled_from(["", ' w:rsidR="00A1"', " w:odd='x/y'"])
    plain = st.builds(paragraph, st.lists(st.one_of(runs, _inline(prefix), OTHER), max_size=4), attrs)
    empty = st.sampled_from([f"<{prefix}p/>", f'<{prefix}p w:rsidR="1"/>', f"<{prefix}p></{prefix}p>"])
    odd = st.sampled_from(
        [
            f"<{prefix}t>outside a paragraph</{prefix}t>",
            f"<{prefix}tab/>",
            f"<{prefix}p><{prefix}r><{prefix}t>a<w:x/>b</{prefix}t></{prefix}r></{prefix}p>",  # a t holding an element
            f"<{prefix}{refused}><{prefix}p><{prefix}r><{prefix}t>refused</{prefix}t></{prefix}r></{prefix}p></{prefix}{refused}>",
            f'<{prefix}p><{prefix}r><{prefix}t w:a="x>y">gt in attribute</{prefix}t></{prefix}r></{prefix}p>',
            f"<{prefix}p><{prefix}r><{prefix}t>gt > in text</{prefix}t></{prefix}r></{prefix}p>",
            "stray text",
            "<w:tbl2/>",  # a refused name's start: the conservative check sends the member to the events
        ]
    )

    def nested(inner: list[str]) -> str:
        box = f"<{prefix}r><{prefix}txbxContent>{''.join(inner)}</{prefix}txbxContent></{prefix}r>"
        after = f"<{prefix}tab/>" if odd_blocks else ""  # a tab after a nested paragraph: the events
        return f"<{prefix}p><{prefix}r><{prefix}t>before</{prefix}t></{prefix}r>{box}{after}</{prefix}p>"

    blocks = [plain, plain, plain, empty, st.lists(plain, min_size=1, max_size=2).map(nested)]
    block = st.one_of(*blocks, odd) if odd_blocks else st.one_of(*blocks)
    return st.lists(block, max_size=8).map("".join)


def _member(body: str, kind: str) -> bytes:
    if kind == "slide":
        ns = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://x/p"'
        return f"<p:sld {ns}><p:cSld><p:spTree><p:sp><p:txBody>{body}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>".encode()
    ns = f'{W} xmlns:x="{NAMESPACE}" xmlns="{NAMESPACE}"'
    return f"<w:document {ns}><w:body>{body}</w:body></w:document>".encode()


HANDLERS = {
    "header": lambda out: ooxml._paragraphs(out, HEADER),
    "document": lambda out: ooxml._DocxHandler(out, BODY, [0]),
    "slide": lambda out: ooxml._SlideHandler(out),
}


def _read(data: bytes, kind: str, max_bytes: int, paragraphs: bool, enabled: bool, monkeypatch) -> tuple:
    """A member through its handler as ooxml.read_member reads it: parts and how it ended."""
    monkeypatch.setattr(ooxml, "FAST_PARAGRAPHS", paragraphs)
    monkeypatch.setattr(ooxml, "NATIVE_PARAGRAPHS", False)  # plain_paragraphs itself (the C: test_paragraphs_native)
    monkeypatch.setattr(xmlscan, "ENABLED", enabled)
    out = Collector(max_bytes, 30.0)
    handler = HANDLERS[kind](out)
    ended = None
    try:
        xmlscan.parse_fast([data], handler, "member.xml")
        handler.flush()
    except (OutOfBudget, Refused, ValueError) as e:  # ValueError: int() of a gridSpan of "²" (extract: internal error)
        ended = type(e).__name__
    return out.parts, out.chars_left, ended


def _same(data: bytes, kind: str, monkeypatch, max_bytes: int = 1 << 20) -> bool:
    """The three ways agree; True when plain_paragraphs read the member."""
    read = []
    real = ooxml.plain_paragraphs
    monkeypatch.setattr(ooxml, "plain_paragraphs", lambda *a: (found := real(*a), read.append(found is not None))[0])
    fast = _read(data, kind, max_bytes, True, True, monkeypatch)
    assert fast == _read(data, kind, max_bytes, False, True, monkeypatch)
    assert fast == _read(data, kind, max_bytes, False, False, monkeypatch)
    return any(read)


@SETTINGS
@given(
    body=st.one_of(_body("w:", "tbl"), _body("x:", "tbl"), _body("", "tbl"), _body("w:", "tbl", odd_blocks=False)),
    kind=st.sampled_from(["header", "document"]),
    max_bytes=st.sampled_from([1 << 20, 40, 200]),
)
def test_random_paragraphs_read_the_same(body, kind, max_bytes, monkeypatch):
    _same(_member(body, "document"), kind, monkeypatch, max_bytes)


@SETTINGS
@given(body=st.one_of(_body("a:", "ph"), _body("a:", "ph", odd_blocks=False)), max_bytes=st.sampled_from([1 << 20, 60]))
def test_random_slides_read_the_same(body, max_bytes, monkeypatch):
    _same(_member(body, "slide"), "slide", monkeypatch, max_bytes)


PLACEHOLDER_TAGS = st.sampled_from(
    ["", "<p:ph/>", '<p:ph type="title"/>', '<p:ph type="ftr" idx="3"/>', "<p:ph type='dt'/>", '<p:ph type="sldNum"></p:ph>',
     '<p:ph type="hdr"/>', '<p:ph type="body" sz="quarter"/>']
)  # fmt: skip


@st.composite
def _shapes(draw) -> str:
    """A slide's shapes: placeholders of every kind, tables outside shapes (the place in force
    goes on), groups, text between them."""
    shapes = []
    for _ in range(draw(st.integers(0, 5))):
        paragraphs = draw(st.one_of(_body("a:", "x", odd_blocks=False), _body("a:", "x")))
        placeholder = draw(PLACEHOLDER_TAGS)
        shape = f"<p:sp><p:nvSpPr><p:nvPr>{placeholder}</p:nvPr></p:nvSpPr><p:txBody>{paragraphs}</p:txBody></p:sp>"
        kind = draw(st.sampled_from(["shape", "shape", "table", "group", "empty"]))
        if kind == "table":
            shape = f"<p:graphicFrame><a:tbl><a:tr><a:tc><a:txBody>{paragraphs}</a:txBody></a:tc></a:tr></a:tbl></p:graphicFrame>"
        elif kind == "group":
            shape = f"<p:grpSp>{shape}<p:sp/>{shape}</p:grpSp>"
        elif kind == "empty":
            shape = "<p:sp/>"
        shapes.append(shape)
    return "".join(shapes)


SPANS = st.sampled_from(["", '<w:tcPr><w:gridSpan w:val="2"/></w:tcPr>', "<w:gridSpan w:val='3' />", '<w:gridSpan w:val="0"/>',
                         '<w:gridSpan w:val="x"/>', '<w:gridSpan w:val="99"/>', '<w:gridSpan w:val="²"/>'])  # fmt: skip


@st.composite
def _tables(draw, depth: int = 0) -> str:
    """Paragraphs and tables (nested, spanning, empty, a cell outside a row), in any order."""
    blocks = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["paragraphs", "table", "table", "empty table", "stray cell"]))
        if kind == "paragraphs":
            blocks.append(draw(_body("w:", "x", odd_blocks=False)))
        elif kind == "empty table":
            blocks.append("<w:tbl/>")
        elif kind == "stray cell":
            blocks.append(f"<w:tc>{draw(_body('w:', 'x', odd_blocks=False))}</w:tc>")
        else:
            rows = []
            for _ in range(draw(st.integers(0, 3))):
                cells = []
                for _ in range(draw(st.integers(0, 3))):
                    inner = draw(_tables(depth + 1)) if depth < 1 and draw(st.booleans()) else ""
                    cells.append(f"<w:tc>{draw(SPANS)}{draw(_body('w:', 'x', odd_blocks=False))}{inner}</w:tc>")
                rows.append(f"<w:tr><w:trPr/>{''.join(cells)}</w:tr>")
            blocks.append(f"<w:tbl><w:tblPr/><w:tblGrid/>{''.join(rows)}</w:tbl>")
    return "".join(blocks)


@SETTINGS
@given(body=_tables(), max_bytes=st.sampled_from([1 << 20, 120]))
def test_random_tables_read_the_same(body, max_bytes, monkeypatch):
    _same(_member(body, "document"), "document", monkeypatch, max_bytes)


@SETTINGS
@given(shapes=_shapes(), max_bytes=st.sampled_from([1 << 20, 80]))
def test_random_shapes_and_placeholders_read_the_same(shapes, max_bytes, monkeypatch):
    ns = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://x/p"'
    data = f"<p:sld {ns}><p:cSld><p:spTree>{shapes}</p:spTree></p:cSld></p:sld>".encode()
    _same(data, "slide", monkeypatch, max_bytes)


def test_the_fixture_deck_with_placeholders_reads_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(ooxml, "NATIVE_PARAGRAPHS", False)  # plain_paragraphs itself
    read = []
    real = ooxml.plain_paragraphs
    monkeypatch.setattr(ooxml, "plain_paragraphs", lambda *a: (found := real(*a), read.append(found is not None))[0])
    path = makers.pptx(tmp_path / "f.pptx")
    fast = extract(str(path), path.name)
    assert read == [False, True]  # slide2 (read first) has placeholders: the events; slide10 has none
    monkeypatch.setattr(ooxml, "FAST_PARAGRAPHS", False)
    assert fast == extract(str(path), path.name)
    assert [p.text for p in fast.parts if p.where == "footer"] == ["商业秘密 slide footer"]


@pytest.mark.parametrize(
    "body, fast",
    [
        (
            "<w:p><w:r><w:t>one</w:t></w:r><w:r><w:tab/><w:t>two</w:t></w:r></w:p><w:p/><w:p><w:r><w:t>3</w:t></w:r></w:p>",
            True,
        ),
        (
            '<w:p w:rsidR="1"><w:pPr><w:tabs><w:tab w:val="left"/></w:tabs></w:pPr><w:r><w:t>tab stop</w:t></w:r></w:p>',
            True,
        ),
        (
            "<w:p><w:r><w:t>a &amp; b &#x4E2D;\r\nc</w:t></w:r></w:p>\n<w:p>\n <w:r><w:t>pretty</w:t></w:r>\n</w:p>",
            True,
        ),
        ("<w:t>before</w:t><w:p><w:r><w:t>after</w:t></w:r></w:p><w:t>tail</w:t>", True),
        ("<w:p><w:r><w:t>a</w:t></w:r><w:p><w:r><w:t>nested</w:t></w:r></w:p><w:r><w:t>b</w:t></w:r></w:p>", True),
        ("<w:p><w:r><w:t>a</w:t></w:r><w:p><w:r><w:tab/></w:r></w:p></w:p>", False),  # tab in a nested paragraph
        ("<w:tab/><w:p><w:r><w:t>tab outside</w:t></w:r></w:p>", False),
        ("<w:p><w:r><w:t>a<w:x/>b</w:t></w:r></w:p>", False),
        # tables: by ooxml.paragraphs_and_cells, not plain_paragraphs (test_ooxml_tables_fast.py)
        ("<w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell</w:t></w:r></w:p></w:tc></w:tr></w:tbl>", False),
        ("<w:p><w:r><w:t>1 > 0</w:t></w:r></w:p>", False),
        ("<w:t>outside</w:t><w:p/><w:t>after an empty paragraph</w:t><w:p></w:p>", True),
        ('<w:p><w:r><w:t>a</w:t></w:r><w:p w:x="1"/><w:r><w:t>b</w:t></w:r></w:p>', True),
    ],
)
def test_chosen_paragraphs_read_the_same(body, fast, monkeypatch):
    assert _same(_member(body, "document"), "document", monkeypatch) == fast


def test_the_bench_and_fixture_documents_read_the_same(tmp_path, monkeypatch):
    from bench import corpus

    paths = [makers.docx(tmp_path / "f.docx"), makers.pptx(tmp_path / "f.pptx"), makers.xlsx(tmp_path / "f.xlsx")]
    for kind in ("docx", "pptx", "xlsx", "docx-word", "pptx-powerpoint"):
        paths += map(Path, corpus.documents(str(tmp_path / kind), kind, 1, 48 * 1024, seed=4))
    for path in paths:
        documents = []
        for flags in ((True, True, True), (False, False, False)):
            monkeypatch.setattr(ooxml, "FAST_PARAGRAPHS", flags[0])
            monkeypatch.setattr(ooxml, "FAST_ROWS", flags[1])
            monkeypatch.setattr(zipread, "FAST_MEMBERS", flags[2])
            documents.append(extract(str(path), path.name))
        assert documents[0] == documents[1], path.name
        assert len(documents[0].parts) > 3


# --- worksheet rows -----------------------------------------------------------------------------

CELL_VALUES = st.sampled_from(
    ["0", "1", "7", "12345", "1.2E+3", "1.10105194912311E+17", " 3 ", "", "a b\tc", "x&amp;y", "2.5"]
)
REFS = st.sampled_from(
    ["", ' r="A{n}"', ' r="B{n}"', ' r="D{n}"', ' r="ZZ{n}"', ' r="XFD{n}"', ' r="ZZZZ{n}"', ' r="b{n}"', ' r="{n}"']
)
TYPES = st.sampled_from(
    ["", ' t="s"', ' t="n"', ' t="b"', ' t="e"', ' t="str"', ' t="inlineStr"', ' s="2"', ' s="1" t="s"']
)


@st.composite
def _sheet(draw) -> str:
    rows = []
    for n in range(1, draw(st.integers(0, 6)) + 1):
        cells = []
        for _ in range(draw(st.integers(0, 5))):
            attrs = draw(REFS).format(n=n) + draw(TYPES) + draw(st.sampled_from(["", ' x="1"', " ", "\n"]))
            value = draw(CELL_VALUES)
            cells.append(draw(st.sampled_from([f"<c{attrs}><v>{value}</v></c>", f"<c{attrs}/>", f"<c{attrs}></c>"])))
        row = draw(st.sampled_from([f'<row r="{n}">{{}}</row>', "<row>{}</row>", f'<row r="{n}" spans="1:2"/>{{}}']))
        rows.append(row.format("".join(cells)))
    return "".join(rows) + draw(st.sampled_from(["", "", "", "", "", "<row>", "<c><f>SUM()</f></c>", "<x/>"]))


@SETTINGS
@given(sheet=_sheet(), chars_left=st.sampled_from([1 << 20, 30, 5]))
def test_random_rows_read_the_same(sheet, chars_left):
    text = f"<worksheet><sheetData>{sheet}</sheetData></worksheet>"
    begin, end = text.index("<sheetData>") + len("<sheetData>"), text.index("</sheetData>")
    shared = ["姓名", " a  b ", "x\ty", "", "110105194912310021"]
    assert ooxml.plain_rows(text, begin, end, shared, chars_left) == ooxml._plain_rows(
        text, begin, end, shared, chars_left
    )


# --- parts at once ------------------------------------------------------------------------------


@SETTINGS
@given(
    texts=st.lists(
        st.one_of(st.sampled_from(["", " ", "\t", " \r\n", "\u3000", "a\udc80b", "\udcff", " x "]), st.text(max_size=8))
    ),
    chars_left=st.sampled_from([1 << 20, 10, 0]),
    max_parts=st.sampled_from([200_000, 3]),
    first=st.sampled_from([0, 1]),
    cell=st.sampled_from([None, Cell(1, 2, 3)]),
    decoded=st.booleans(),
)
def test_add_all_adds_as_add_does(texts, chars_left, max_parts, first, cell, decoded, monkeypatch):
    monkeypatch.setattr(budget, "MAX_PARTS", max_parts)
    if decoded:  # what text.decode gives never holds a lone surrogate
        texts = [t.encode("utf-8", "replace").decode() for t in texts]
    ends = []
    for way in ("all", "one by one"):
        out = Collector(1 << 20, 30.0)
        out.add(HEADER, "before")
        out.chars_left = chars_left
        try:
            if way == "all":
                out.add_all(BODY, texts, first_page_line=first, cell=cell, decoded=decoded)
            else:
                for i, text in enumerate(texts):
                    out.add(BODY, text, first + i if first else 0, cell=cell)
        except OutOfBudget as e:
            ends.append((out.parts, out.chars_left, str(e)))
        else:
            ends.append((out.parts, out.chars_left, None))
    assert ends[0] == ends[1]
    # a plain tuple of the same fields would compare equal to a TextPart
    assert all(type(p) is TextPart and type(p.text) is str and len(p) == 4 for p in ends[0][0])


@SETTINGS
@given(
    texts_and_cells=st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(["", " ", "\t", " \r\n", "\u3000", "a\udc80b", "\udcff", " x ", "\tx\t"]),
                st.text(max_size=8),
            ),
            st.one_of(st.none(), st.builds(Cell, st.integers(0, 2), st.integers(0, 2), st.integers(0, 2))),
        )
    ),
    chars_left=st.sampled_from([1 << 20, 10, 0]),
    max_parts=st.sampled_from([200_000, 3]),
    decoded=st.booleans(),
)
def test_add_cells_adds_as_add_does(texts_and_cells, chars_left, max_parts, decoded, monkeypatch):
    """Each part as add makes it, field by field, with its own cell (a blank text's cell dropped
    with it), the budget spent alike and the same stop. decoded texts come without surrogates."""
    monkeypatch.setattr(budget, "MAX_PARTS", max_parts)
    texts = [t for t, _ in texts_and_cells]
    if decoded:
        texts = [t.encode("utf-8", "replace").decode() for t in texts]
    cells = [c for _, c in texts_and_cells]
    ends = []
    for way in ("cells", "one by one"):
        out = Collector(1 << 20, 30.0)
        out.add(HEADER, "before")
        out.chars_left = chars_left
        try:
            if way == "cells":
                out.add_cells(BODY, texts, cells, decoded=decoded)
            else:
                for text, cell in zip(texts, cells, strict=True):
                    out.add(BODY, text, cell=cell)
        except OutOfBudget as e:
            ends.append((out.parts, out.chars_left, str(e)))
        else:
            ends.append((out.parts, out.chars_left, None))
    assert [tuple(p) for p in ends[0][0]] == [(p.where, p.text, p.cell, p.page_line) for p in ends[1][0]]
    assert ends[0] == ends[1]
    assert all(type(p) is TextPart and type(p.text) is str for p in ends[0][0])


def test_add_cells_wants_a_cell_for_each_text():
    with pytest.raises(ValueError):
        Collector(1 << 20, 30.0).add_cells(BODY, ["a", "b"], [None])


# --- wrapped identifiers ------------------------------------------------------------------------

PIECES = st.sampled_from(
    ["110105194", "91231002X", "11010519491231002X", "6222021234", "567890123", "13812", "345678", "report", "备注",
     " ", "  ", "\t", "12", "x", "ID", "9", "1"]
)  # fmt: skip


@SETTINGS
@given(lines=st.lists(st.lists(PIECES, max_size=5).map("".join), max_size=12))
def test_random_lines_join_the_same(lines):
    assert wrap.join_wrapped_fast(lines, TODAY) == wrap.join_wrapped(lines, TODAY)


def test_a_line_cut_by_a_join_is_tried_again():
    lines = ["ID 110105194", "91231002X 310104200", "208152450", "prose"]
    joined = ["ID 11010519491231002X", "310104200208152450", "", "prose"]
    assert wrap.join_wrapped(lines, TODAY) == joined
    assert wrap.join_wrapped_fast(lines, TODAY) == joined


def test_rows_and_prose_join_the_same():
    from bench import corpus
    from tests.agent.content.test_wrap_prefilter import _rows

    rng = random.Random(5)
    lines = [line for p in corpus.paragraphs(rng, 64 * 1024) for line in p.split("\n")]
    lines += [line for row in _rows(3, 800) for line in row]
    rng.shuffle(lines)
    lines += [line for row in _rows(4, 800) for line in row]  # rows and their continuations, in order
    joined = wrap.join_wrapped_fast(lines, TODAY)
    assert joined == wrap.join_wrapped(lines, TODAY)
    assert sum(a != b for a, b in zip(joined, lines, strict=True)) > 100


def test_pdf_lines_read_the_same(tmp_path, monkeypatch):
    from bench import corpus
    from tests.agent.content.test_wrap_prefilter import _rows

    rows = [line.encode("ascii", "ignore").decode() for row in _rows(6, 60) for line in row]  # Helvetica: no CJK
    lines = (*rows, "CONFIDENTIAL", "", "  ", "page end 12")
    paths = [makers.pdf(tmp_path / "rows.pdf", lines=lines)]
    (tmp_path / "bench.pdf").write_bytes(corpus.pdf_bytes(random.Random(2), 96 * 1024))
    paths.append(tmp_path / "bench.pdf")
    for path in paths:
        for engine in pdf_module.ENGINES:
            documents = []
            for fast in (True, False):
                monkeypatch.setattr(pdf_module, "FAST_LINES", fast)
                out = Collector(1 << 24, 30.0)
                pdf_module.read_pdf(str(path), out, engine=engine)
                documents.append(out.parts)
            assert documents[0] == documents[1]
            assert len(documents[0]) > 40


# --- whole zip members ----------------------------------------------------------------------------


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return bytearray(buffer.getvalue())


def _docx_members(text: str = "第一段 paragraph") -> dict[str, bytes]:
    document = f"<w:document {W}><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
    return {"[Content_Types].xml": CONTENT_TYPES.encode(), "word/document.xml": document.encode()}


def _central(data: bytearray, name: bytes) -> int:
    """Offset of name's entry in the central directory."""
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        if data[at + 46 : at + 46 + len(name)] == name:
            return at
        at += 4


def _local(data: bytearray, name: bytes) -> int:
    """Offset of name's local header."""
    at = 0
    while True:
        at = data.index(b"PK\x03\x04", at)
        if data[at + 30 : at + 30 + len(name)] == name:
            return at
        at += 4


def _damaged() -> dict[str, bytearray]:
    """A docx, and the same with its document member damaged in ways zipfile's reader refuses or
    reads otherwise than a naive inflate would."""
    name = b"word/document.xml"
    good = _zip(_docx_members())
    cases = {"good": good, "stored": _zip(_docx_members(), zipfile.ZIP_STORED)}
    cases["bad crc"] = bytearray(good)
    struct.pack_into("<L", cases["bad crc"], _central(good, name) + 16, zlib.crc32(b"other"))
    cases["local name differs"] = bytearray(good)
    local = _local(good, name)
    cases["local name differs"][local + 30 : local + 30 + len(name)] = b"word/documenX.xml"
    cases["bad local signature"] = bytearray(good)
    cases["bad local signature"][local + 3] = 0x05
    for label, delta in (("size larger", 7), ("size smaller", -7), ("compressed size larger", 3)):
        cases[label] = bytearray(good)
        field = 24 if label.startswith("size") else 20
        size = struct.unpack_from("<L", good, _central(good, name) + field)[0]
        struct.pack_into("<L", cases[label], _central(good, name) + field, size + delta)
    compressed = struct.unpack_from("<L", good, local + 18)[0]
    start = local + 30 + len(name) + struct.unpack_from("<H", good, local + 28)[0]
    cases["stream zeroed"] = bytearray(good)
    cases["stream zeroed"][start + compressed // 2 : start + compressed] = bytes(compressed - compressed // 2)
    return cases


@pytest.mark.parametrize("case", list(_damaged()))
@pytest.mark.parametrize("max_bytes", [20 << 20, 200, 90])
def test_whole_members_read_as_zipfile_reads_them(case, max_bytes, tmp_path, monkeypatch):
    path = tmp_path / "m.docx"
    path.write_bytes(bytes(_damaged()[case]))
    documents = []
    for fast in (True, False):
        monkeypatch.setattr(zipread, "FAST_MEMBERS", fast)
        documents.append(extract(str(path), path.name, max_bytes=max_bytes))
    assert documents[0] == documents[1]
    if case == "good" and max_bytes > 1000:
        assert documents[0].text_of(BODY) == "第一段 paragraph"


def test_the_whole_member_read_is_used(tmp_path, monkeypatch):
    path = tmp_path / "m.docx"
    path.write_bytes(bytes(_zip(_docx_members())))
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(
        zipfile.ZipFile, "open", lambda self, *a, **k: (opened.append(a[0]), real_open(self, *a, **k))[1]
    )
    assert extract(str(path), path.name).text_of(BODY) == "第一段 paragraph"
    assert not opened
