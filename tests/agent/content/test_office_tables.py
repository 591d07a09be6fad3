"""Spreadsheets read as tables, docx comments and pptx speaker notes."""

from __future__ import annotations

import random
from pathlib import Path

from agent.content.detectors import detect
from agent.content.document import BODY, Document
from agent.content.extract import extract
from tests.agent.content import makers
from tests.agent.content.makers import P, S, W


def _body(doc: Document) -> list[str]:
    return [p.text for p in doc.parts if p.where == BODY]


def _sheet(path: Path, rows: str, shared: tuple[str, ...] = ()) -> Path:
    strings = "".join(f"<si><t>{s}</t></si>" for s in shared)
    return makers.write_zip(
        path,
        {
            "[Content_Types].xml": makers.CONTENT_TYPES,
            "xl/workbook.xml": f"<workbook {S}/>",
            "xl/sharedStrings.xml": f"<sst {S}>{strings}</sst>",
            "xl/worksheets/sheet1.xml": f"<worksheet {S}><sheetData>{rows}</sheetData></worksheet>",
        },
    )


def _mobiles(n: int) -> list[str]:
    rng = random.Random(7)
    return [f"1{rng.choice('3589')}{rng.randrange(10**9):09d}" for _ in range(n)]


def test_numbers_stored_as_numbers_are_read_under_their_header(tmp_path: Path) -> None:
    """A customer list keeps phone numbers as numbers: the 手机 header names their column."""
    numbers = _mobiles(250)
    rows = '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="C1" t="s"><v>1</v></c></row>' + "".join(
        f'<row r="{i + 2}"><c r="A{i + 2}" t="s"><v>2</v></c><c r="C{i + 2}"><v>{n}</v></c></row>'
        for i, n in enumerate(numbers)
    )
    doc = extract(str(_sheet(tmp_path / "customers.xlsx", rows, ("客户", "手机", "张三"))), "customers.xlsx")
    table = _body(doc)[0].split("\n")
    assert table[0] == "客户\t\t手机"  # B is empty: C stays the third column
    assert table[1] == f"张三\t\t{numbers[0]}"
    found = {d.detector: d for d in detect(doc)}
    assert found["cn_mobile"].count == 250
    assert numbers[0] not in found["cn_mobile"].sample  # masked


def test_numbers_without_context_do_not_count_as_mobiles(tmp_path: Path) -> None:
    rows = '<row r="1"><c r="A1" t="s"><v>0</v></c></row>' + "".join(
        f'<row r="{i + 2}"><c r="A{i + 2}"><v>{n}</v></c></row>' for i, n in enumerate(_mobiles(250))
    )
    doc = extract(str(_sheet(tmp_path / "parts.xlsx", rows, ("零件号",))), "parts.xlsx")
    assert "cn_mobile" not in {d.detector for d in detect(doc)}


def test_cell_kinds(tmp_path: Path) -> None:
    rows = (
        '<row r="1">'
        '<c r="A1" t="b"><v>1</v></c>'  # a boolean is not text
        '<c r="B1" t="e"><v>#N/A</v></c>'  # nor an error
        '<c r="C1" t="str"><f>A1&amp;"x"</f><v>formula text</v></c>'  # a formula's text result: yes
        '<c r="D1" t="inlineStr"><is><t>inline</t><rPh><t>PHONETIC</t></rPh></is></c>'
        '<c r="E1" t="s"><v>99</v></c>'  # an index no string has
        '<c r="F1" t="s"><v>x</v></c>'  # nor a number at all
        '<c r="G1"><v>3.5</v></c>'
        "</row>"
    )
    doc = extract(str(_sheet(tmp_path / "k.xlsx", rows, ("used", "hidden 商业秘密"))), "k.xlsx")
    assert doc.problem is None
    # no cell refers to the shared strings: they are still the file's text, after the sheet
    assert _body(doc) == ["\t\tformula text\tinline\t\t\t3.5", "used\nhidden 商业秘密"]


def test_crafted_cell_references_cannot_pad_without_bound(tmp_path: Path) -> None:
    rows = '<row r="1"><c r="ZZZZZZ1"><v>1</v></c><c r="A1"><v>2</v></c><c r="XFD1"><v>3</v></c></row>'
    doc = extract(str(_sheet(tmp_path / "c.xlsx", rows)), "c.xlsx")
    (text,) = _body(doc)
    # ZZZ is past Excel's last column (XFD): clamped; a reference going back stays in order
    assert text.split("\t")[-3:] == ["1", "2", "3"] and len(text) < 40_000


def test_sheet_cut_by_the_budget_keeps_the_rows_read(tmp_path: Path) -> None:
    rows = "".join(f'<row r="{i}"><c r="A{i}"><v>{10**12 + i}</v></c></row>' for i in range(1, 20_000))
    path = _sheet(tmp_path / "big.xlsx", rows)
    doc = extract(str(path), "big.xlsx", max_bytes=50_000)
    assert doc.truncated
    (text,) = _body(doc)
    assert text.startswith(f"{10**12 + 1}\n{10**12 + 2}") and len(text) <= 50_000


def test_docx_comments_are_body_text(tmp_path: Path) -> None:
    path = makers.write_zip(
        tmp_path / "c.docx",
        {
            "[Content_Types].xml": makers.CONTENT_TYPES,
            "word/document.xml": f"<w:document {W}><w:body><w:p><w:r><w:t>正文</w:t></w:r></w:p></w:body></w:document>",
            "word/comments.xml": f'<w:comments {W}><w:comment w:id="0"><w:p><w:r><w:t>批注 comment</w:t></w:r></w:p>'
            "</w:comment></w:comments>",
        },
    )
    assert _body(extract(str(path), "c.docx")) == ["正文", "批注 comment"]


def test_pptx_speaker_notes_are_body_text(tmp_path: Path) -> None:
    def shape(text: str, placeholder: str = "") -> str:
        ph = f'<p:nvSpPr><p:nvPr><p:ph type="{placeholder}"/></p:nvPr></p:nvSpPr>' if placeholder else ""
        return f"<p:sp>{ph}<p:txBody><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp>"

    def tree(tag: str, *shapes: str) -> str:
        return f"<p:{tag} {P}><p:cSld><p:spTree>{''.join(shapes)}</p:spTree></p:cSld></p:{tag}>"

    path = makers.write_zip(
        tmp_path / "n.pptx",
        {
            "[Content_Types].xml": makers.CONTENT_TYPES,
            "ppt/presentation.xml": f"<p:presentation {P}/>",
            "ppt/slides/slide1.xml": tree("sld", shape("slide text")),
            "ppt/notesSlides/notesSlide1.xml": tree("notes", shape("备注 notes", "body"), shape("1", "sldNum")),
        },
    )
    doc = extract(str(path), "n.pptx")
    assert _body(doc) == ["slide text", "备注 notes"]
    assert [p.text for p in doc.parts if p.where == "footer"] == ["1"]
