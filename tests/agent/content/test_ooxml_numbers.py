"""Counts and indexes an OOXML file writes as text (a table cell's gridSpan, a shared string's
index) are read as ASCII digits only: "²" passes str.isdigit() but not int(), and int() refuses
over 4,300 digits; either used to end the document's extraction as an internal error, so a crafted
file carried its text past inspection unread."""

from __future__ import annotations

import pytest

from agent.content.extract import extract
from tests.agent.content import makers
from tests.agent.content.makers import S, W

ODD = ["²", "①", "٣", "9" * 5000, "-1", "", " 2 ", "0"]


def _docx(path, span: str):
    row = (
        f'<w:tr><w:tc><w:tcPr><w:gridSpan w:val="{span}"/></w:tcPr><w:p><w:r><w:t>姓名</w:t></w:r></w:p></w:tc>'
        "<w:tc><w:p><w:r><w:t>机密 身份证号</w:t></w:r></w:p></w:tc></w:tr>"
    )
    return makers.write_zip(
        path,
        {
            **makers._office("t"),
            "word/document.xml": f"<w:document {W}><w:body><w:tbl>{row}</w:tbl></w:body></w:document>",
        },
    )


def _xlsx(path, index: str):
    return makers.write_zip(
        path,
        {
            **makers._office("t"),
            "xl/workbook.xml": f"<workbook {S}/>",
            "xl/sharedStrings.xml": f'<sst {S} count="1"><si><t>机密 shared</t></si></sst>',
            "xl/worksheets/sheet1.xml": f'<worksheet {S}><sheetData><row r="1">'
            f'<c r="A1" t="s"><v>{index}</v></c><c r="B1" t="inlineStr"><is><t>inline 内部</t></is></c>'
            "</row></sheetData></worksheet>",
        },
    )


@pytest.mark.parametrize("span", ODD)
def test_an_odd_grid_span_still_reads_the_table(tmp_path, span):
    document = extract(str(_docx(tmp_path / "t.docx", span)), "t.docx")
    assert document.problem is None
    text = "\n".join(p.text for p in document.parts)
    assert "机密 身份证号" in text and "姓名" in text


@pytest.mark.parametrize("index", ODD)
def test_an_odd_shared_string_index_still_reads_the_sheet(tmp_path, index):
    document = extract(str(_xlsx(tmp_path / "t.xlsx", index)), "t.xlsx")
    assert document.problem is None
    text = "\n".join(p.text for p in document.parts)
    assert "inline 内部" in text
    assert "机密 shared" in text  # referenced or not, a shared string is read
