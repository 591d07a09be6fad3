"""Word tables by ooxml.table_cells (issue 21 item 3) give exactly what _DocxHandler's events give:
the same parts (place, text, Cell(table, row, column), page_line), the same tables counted for the
next member, the same budget stops, on random tables (nested, spanning, merged, empty, stray
cells, tabs and breaks in cells, odd gridSpan values) and on the roster generator's documents.

Checked to fail with table_cells broken on purpose: a gridSpan ignored, a nested table's end not
popped, the empty <w:tbl/> not counted, the final flush given the last paragraph's cell."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import ooxml, xmlscan
from agent.content.budget import Collector, OutOfBudget, Refused
from agent.content.document import BODY
from agent.content.extract import extract
from tests.agent.content.roster import roster_body, roster_docx
from tests.agent.content.test_extraction_fast import SPANS, _body, _member

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CELL_EXTRAS = st.sampled_from(
    ["", "<w:tcPr><w:vMerge/></w:tcPr>", '<w:tcPr><w:vMerge w:val="restart"/><w:gridSpan w:val="2"/></w:tcPr>',
     "<w:p><w:r><w:t>a</w:t><w:tab/><w:t>b</w:t><w:br/><w:t>c</w:t></w:r></w:p>", "<w:p/>", "<w:tc/>",
     "<x:tbl/>", '<w:gridSpan w:val=" 2 "/>', "<w:tr/>", "<w:r><w:t>loose in a cell</w:t></w:r>", "<tbl><tr><tc><p><t>bare</t></p></tc></tr></tbl>"]
)  # fmt: skip


@st.composite
def _tables(draw, depth: int = 0) -> str:
    blocks = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(
            st.sampled_from(["paragraphs", "table", "table", "empty table", "stray cell", "stray row", "loose"])
        )
        if kind == "paragraphs":
            blocks.append(draw(_body("w:", "x", odd_blocks=False)))
        elif kind == "empty table":
            blocks.append(draw(st.sampled_from(["<w:tbl/>", "<w:tbl></w:tbl>", "<w:tbl ></w:tbl >"])))
        elif kind == "loose":
            blocks.append("<w:t>loose text outside a paragraph</w:t>")
        elif kind == "stray cell":
            blocks.append(f"<w:tc>{draw(_body('w:', 'x', odd_blocks=False))}</w:tc>")
        elif kind == "stray row":
            blocks.append(f"<w:tr><w:gridSpan w:val='2'/>{draw(_body('w:', 'x', odd_blocks=False))}</w:tr>")
        else:
            rows = []
            for _ in range(draw(st.integers(0, 3))):
                cells = []
                for _ in range(draw(st.integers(0, 3))):
                    inner = draw(_tables(depth + 1)) if depth < 2 and draw(st.booleans()) else ""
                    body = draw(_body("w:", "x", odd_blocks=False))
                    cells.append(f"<w:tc>{draw(SPANS)}{draw(CELL_EXTRAS)}{body}{inner}{draw(CELL_EXTRAS)}</w:tc>")
                rows.append(f"<w:tr><w:trPr/>{''.join(cells)}</w:tr>")
            blocks.append(f"<w:tbl><w:tblPr/><w:tblGrid/>{''.join(rows)}</w:tbl>")
    return "".join(blocks)


def _read(members: list[bytes], max_bytes: int, fast: bool, monkeypatch, one_findall: bool = True) -> tuple:
    """Members of one document through _DocxHandler as read_docx reads them (one tables count)."""
    monkeypatch.setattr(ooxml, "FAST_TABLES", fast)
    monkeypatch.setattr(ooxml, "FAST_ONE_FINDALL", one_findall)
    monkeypatch.setattr(ooxml, "NATIVE_PARAGRAPHS", False)  # the findalls themselves (the C: test_paragraphs_native)
    out = Collector(max_bytes, 30.0)
    tables = [0]
    ended = None
    try:
        for data in members:
            handler = ooxml._DocxHandler(out, BODY, tables)
            xmlscan.parse_fast([data], handler, "member.xml")
            handler.flush()
    except (OutOfBudget, Refused) as e:
        ended = type(e).__name__
    return out.parts, out.chars_left, ended, tables


def _same(members: list[bytes], monkeypatch, max_bytes: int = 1 << 20) -> bool:
    """The fast paths (one findall for paragraphs and cells, or plain_paragraphs and table_cells)
    and the events agree; True when a fast path read a member."""
    read = []
    for name in ("table_cells", "paragraphs_and_cells"):
        real = getattr(ooxml, name)
        monkeypatch.setattr(ooxml, name, lambda *a, real=real: (found := real(*a), read.append(found is not None))[0])
    fast = _read(members, max_bytes, True, monkeypatch)
    assert fast == _read(members, max_bytes, True, monkeypatch, one_findall=False)
    assert fast == _read(members, max_bytes, False, monkeypatch)
    return any(read)


@SETTINGS
@given(bodies=st.lists(_tables(), min_size=1, max_size=2), max_bytes=st.sampled_from([1 << 20, 150]))
def test_random_tables_read_the_same(bodies, max_bytes, monkeypatch):
    _same([_member(body, "document") for body in bodies], monkeypatch, max_bytes)


def test_the_roster_reads_the_same_by_table_cells(monkeypatch):
    for seed in range(3):
        member = _member(roster_body(300, seed), "document")
        assert _same([member, member], monkeypatch)  # a second member numbers its tables on
    parts = _read([_member(roster_body(300, 0), "document")], 1 << 20, True, monkeypatch)[0]
    assert parts[0].cell is None and parts[1].text == "姓名" and parts[1].cell == ooxml.Cell(0, 0, 0)
    assert {p.cell.column for p in parts if p.cell and p.cell.table == 0} >= {0, 1, 2, 3}
    one_findall = []
    real = ooxml.paragraphs_and_cells
    monkeypatch.setattr(ooxml, "paragraphs_and_cells", lambda *a: (found := real(*a), one_findall.append(found))[0])
    _read([_member(roster_body(300, 2), "document")], 1 << 20, True, monkeypatch)
    assert one_findall and one_findall[0] is not None  # the roster by one findall, not the two
    # text past the budget: the events say where it stops (the parts compared by _same)
    _same([_member(roster_body(300, 1), "document")], monkeypatch, 9_000)


def test_a_roster_document_extracts_the_same(tmp_path: Path, monkeypatch):
    path = roster_docx(tmp_path / "roster.docx", 500, seed=2)
    documents = []
    for fast, one_findall in ((True, True), (True, False), (False, False)):
        monkeypatch.setattr(ooxml, "FAST_TABLES", fast)
        monkeypatch.setattr(ooxml, "FAST_ONE_FINDALL", one_findall)
        documents.append(extract(str(path), path.name))
    assert documents[0] == documents[1] == documents[2]
    assert sum(1 for p in documents[0].parts if p.cell) > 2000


def test_members_table_cells_does_not_read_go_to_the_events(monkeypatch):
    for body in (
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>a<w:x/>b</w:t></w:r></w:p></w:tc></w:tr></w:tbl>",  # t holding elements
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>1 > 0</w:t></w:r></w:p></w:tc></w:tr></w:tbl>",  # a ">" in text
    ):
        assert not _same([_member(body, "document")], monkeypatch)


def test_chosen_tables_read_the_same(monkeypatch):
    cell = "<w:tc><w:p><w:r><w:t>x</w:t></w:r></w:p></w:tc>"
    for body in (
        f"<w:tbl><w:tr>{cell}</w:tr></w:tbl><w:t>loose after the table: the final flush, in no cell</w:t>",
        "<w:tbl><w:tr><w:tc><w:p/><w:t>loose in a cell</w:t></w:tc></w:tr></w:tbl><w:p><w:t>next</w:t></w:p>",
        f"<w:tbl><w:tr>{cell}<w:tc><w:tbl/>{cell.replace('x', 'after an empty nested table')}</w:tc></w:tr></w:tbl>",
        f'<w:tbl><w:tr><w:tc><w:gridSpan w:val="3"/>{cell}</w:tc>{cell}</w:tr><w:tr>{cell}{cell}</w:tr></w:tbl>',
        f"<w:tbl><w:tr><w:tc><w:tbl><w:tr>{cell}{cell}</w:tr></w:tbl><w:p><w:t>back</w:t></w:p></w:tc></w:tr></w:tbl>",
        "<w:tbl><w:p><w:t>in a table before its rows</w:t></w:p><w:tc><w:p><w:t>no row</w:t></w:p></w:tc></w:tbl>",
    ):
        assert _same([_member(body, "document")], monkeypatch), body


@pytest.mark.timeout(120)
def test_hostile_tags_cost_one_pass():
    """Tags that never end, or end far away: each try stops at the next "<" (linear time). At these
    sizes a try that ran on to the end would take hours, so a regression fails by the timeout (no
    clock read here)."""
    for text in ("<w:tbl " * 100_000, "<w:p " * 100_000 + ">" * 100_000, "<w:gridSpan w:val='" + "9" * 200_000):
        for read in (ooxml.table_cells, ooxml.paragraphs_and_cells):
            read(text + ">" * text.count("<"), 0)  # as many ">" as "<": paragraphs_and_cells reads it
