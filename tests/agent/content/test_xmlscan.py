"""The regex pass over OOXML members (agent/content/xmlscan.py) gives exactly what the expat
reference gives (xmltext.parse with every callback): the same parts in the same places and cells,
the same truncation and the same refusals, on the fixtures, the bench's documents, odd but valid
XML (prefixes, references, line ends, attributes holding > and /, formulas, inline strings,
phonetic guides, headers and footers) and hostile XML (DTDs, entities, malformed members), and on
random texts put into paragraphs, shared strings and cells."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import ooxml, xmlscan
from agent.content.extract import extract
from tests.agent.content import makers
from tests.agent.content.makers import CONTENT_TYPES, S, W, write_zip

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _both(path: Path, monkeypatch: pytest.MonkeyPatch, max_bytes: int = 20 * 1024 * 1024, fast: bool | None = True):
    """The document by both ways, asserted equal; `fast`: whether the regex pass must have read
    something (None: either)."""
    scanned = []
    real_scan, real_paragraphs = xmlscan._scan, ooxml.plain_paragraphs
    monkeypatch.setattr(xmlscan, "_scan", lambda *a: (scanned.append(1), real_scan(*a))[1])

    def paragraphs(*a):  # the whole-member shortcut of paragraphs reads without _scan
        found = real_paragraphs(*a)
        scanned.extend([1] if found is not None else [])
        return found

    monkeypatch.setattr(ooxml, "plain_paragraphs", paragraphs)
    real_tables = ooxml.paragraphs_and_cells  # a docx member with tables: paragraphs and cells in one findall
    monkeypatch.setattr(
        ooxml,
        "paragraphs_and_cells",
        lambda *a: (found := real_tables(*a), scanned.extend([1][: found is not None]))[0],
    )
    real_native = ooxml.native_paragraphs  # the C scan of a whole member, when built
    monkeypatch.setattr(
        ooxml, "native_paragraphs", lambda *a: (found := real_native(*a), scanned.extend([1][: bool(found)]))[0]
    )
    real_bytes = ooxml.member_paragraphs  # the C scan of a whole member's bytes, when built
    monkeypatch.setattr(
        ooxml, "member_paragraphs", lambda *a: (found := real_bytes(*a), scanned.extend([1][: bool(found)]))[0]
    )
    monkeypatch.setattr(xmlscan, "ENABLED", False)
    reference = extract(str(path), path.name, max_bytes=max_bytes)
    assert not scanned
    monkeypatch.setattr(xmlscan, "ENABLED", True)
    quick = extract(str(path), path.name, max_bytes=max_bytes)
    assert quick.parts == reference.parts
    assert (quick.truncated, quick.problem, quick.file_type) == (
        reference.truncated,
        reference.problem,
        reference.file_type,
    )
    if fast is not None:
        assert bool(scanned) == fast
    return reference


def _docx(path: Path, body: str, prefix: str = "w", declaration: str = "") -> Path:
    ns = W if prefix == "w" else W.replace("xmlns:w=", f"xmlns:{prefix}=")
    return write_zip(path, {
        "[Content_Types].xml": CONTENT_TYPES,
        "word/document.xml": f"{declaration}<{prefix}:document {ns}><{prefix}:body>{body}</{prefix}:body></{prefix}:document>",
    })  # fmt: skip


def _xlsx(path: Path, strings: str, sheet: str, after: str = "") -> Path:
    return write_zip(path, {
        "[Content_Types].xml": CONTENT_TYPES,
        "xl/sharedStrings.xml": f"<sst {S}>{strings}</sst>",
        "xl/worksheets/sheet1.xml": f"<worksheet {S}><sheetData>{sheet}</sheetData>{after}</worksheet>",
    })  # fmt: skip


_RAW_PIECES = ("a", "中", "\r", "\n", "\r\n", " ", "<b/>", "<b x='1\r\n2'/>", "<b>in</b>", "&amp;", "&#13;", "&#10;")


def _expat_text(raw: str) -> str:
    """The character data expat gives for <t>raw</t>, nested elements' included."""
    from xml.parsers import expat

    found: list[str] = []
    parser = expat.ParserCreate()
    parser.CharacterDataHandler = found.append
    parser.Parse(f"<t>{raw}</t>", True)
    return "".join(found)


@FAST
@given(raw=st.lists(st.sampled_from(_RAW_PIECES), max_size=10).map("".join))
def test_text_of_gives_what_expat_gives(raw):
    """A \\r before a tag is a line end of its own: "a\\r<b/>\\nc" is "a\\n\\nc" (text_of dropped
    the tag first and read "a\\nc")."""
    assert xmlscan.text_of(raw) == _expat_text(raw)


def test_a_cr_before_a_tag_stays_its_own_line_end():
    assert xmlscan.text_of("a\r<b/>\nc") == _expat_text("a\r<b/>\nc") == "a\n\nc"


def test_the_fixtures_read_the_same(tmp_path, monkeypatch):
    for make in (makers.docx, makers.xlsx, makers.pptx):
        _both(make(tmp_path / f"f.{make.__name__}"), monkeypatch)
    _both(makers.odf(tmp_path / "f.odt", "odt"), monkeypatch)


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx", "docx-word", "pptx-powerpoint"])
def test_the_bench_documents_read_the_same(kind, tmp_path, monkeypatch):
    from bench import corpus

    for path in corpus.documents(str(tmp_path), kind, 2, 48 * 1024, seed=3):
        _both(Path(path), monkeypatch)


ODD_PARAGRAPHS = [
    '<w:p w:rsidR="00A1"><w:pPr><w:jc w:val="left"/></w:pPr><w:r><w:rPr><w:sz w:val="21"/></w:rPr>'
    '<w:t xml:space="preserve">a &amp; b &lt;c&gt; &#x4E2D;&#25991; &quot;q&quot; &apos;</w:t></w:r></w:p>',
    "<w:p><w:r><w:t>line\r\nbreak\rcr &#13; kept</w:t><w:br/><w:t>after</w:t><w:tab/><w:cr/></w:r></w:p>",
    "<w:p><w:r><w:t>a<w:x>inner</w:x>b</w:t><w:t/><w:t></w:t></w:r></w:p>",
    "<w:p><w:r><w:t w:odd=\"x>y/z\" other='1>2'>quoted &gt; attrs</w:t></w:r></w:p>",
    "<w:p>\n  <w:r>\n    <w:t>pretty</w:t>\n  </w:r>\n  <w:r> <w:t> printed </w:t> </w:r>\n</w:p>",
    '<w:tbl><w:tr><w:tc><w:tcPr><w:gridSpan w:val="2"/></w:tcPr><w:p><w:r><w:t>姓名</w:t></w:r></w:p></w:tc>'
    "<w:tc><w:p><w:r><w:t>身份证号</w:t></w:r></w:p></w:tc></w:tr><w:tr><w:tc><w:gridSpan w:val='3' />"
    "<w:p><w:r><w:t>张三</w:t></w:r></w:p><w:tbl><w:tr><w:tc><w:p><w:r><w:t>nested</w:t></w:r></w:p>"
    "</w:tc></w:tr></w:tbl></w:tc><w:tc><w:p><w:r><w:t>110105194912310021</w:t></w:r></w:p></w:tc></w:tr></w:tbl>",
    "<w:p><w:r><w:t>outer </w:t></w:r><w:r><w:txbxContent><w:p><w:r><w:t>inner box</w:t></w:r></w:p>"
    "</w:txbxContent></w:r><w:r><w:t>outer end</w:t></w:r></w:p>",
    "<w:p><w:r><w:t>\u3000全角\u00a0空白\t</w:t></w:r></w:p><w:p/><w:p></w:p>",
]


@pytest.mark.parametrize("body", ODD_PARAGRAPHS)
def test_odd_but_valid_docx_reads_the_same(body, tmp_path, monkeypatch):
    _both(_docx(tmp_path / "odd.docx", body), monkeypatch)
    _both(_docx(tmp_path / "prefixed.docx", body.replace("w:", "ns0:"), prefix="ns0"), monkeypatch)


def test_an_unprefixed_default_namespace_reads_the_same(tmp_path, monkeypatch):
    body = '<document xmlns="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><body>'
    body += "<p><r><t>default namespace</t></r></p></body></document>"
    path = write_zip(tmp_path / "d.docx", {"[Content_Types].xml": CONTENT_TYPES, "word/document.xml": body})
    assert _both(path, monkeypatch).parts


@pytest.mark.parametrize(
    "declaration, body",
    [
        ("", "<w:p><w:r><w:t>a<!-- <w:t>hidden</w:t> -->b</w:t></w:r></w:p>"),
        ("", "<w:p><w:r><w:t><![CDATA[<w:t>x</w:t> & y]]></w:t></w:r></w:p>"),
        ("", "<w:p><w:r><?pi data?><w:t>pi</w:t></w:r></w:p>"),
        ('<?xml version="1.0" encoding="ISO-8859-1"?>', "<w:p><w:r><w:t>latin</w:t></w:r></w:p>"),
    ],
)
def test_comments_cdata_instructions_and_other_encodings_go_to_the_reference(declaration, body, tmp_path, monkeypatch):
    _both(_docx(tmp_path / "ref.docx", body, declaration=declaration), monkeypatch, fast=False)


@pytest.mark.parametrize(
    "member",
    [
        '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><w:document {W}><w:body><w:p><w:r>'
        "<w:t>&b;</w:t></w:r></w:p></w:body></w:document>",
        "<w:document {W}><w:body><w:p><w:r><w:t>before</w:t></w:r></w:p><w:p><w:r><w:t>unclosed</w:r></w:p>",
        "<w:document {W}><w:body><w:p><w:r><w:t>before</w:t></w:r></w:p><x:p>unbound prefix</x:p></w:body></w:document>",
        "<w:document {W}><w:body><w:p><w:r><w:t>&nbsp;undefined entity</w:t></w:r></w:p></w:body></w:document>",
        "<w:document {W}><w:body><w:p><w:r><w:t>bad utf-8 \udcff</w:t></w:r></w:p></w:body></w:document>",
    ],
)
def test_hostile_xml_is_refused_the_same_way(member, tmp_path, monkeypatch):
    data = member.replace("{W}", W).encode("utf-8", "surrogateescape")
    path = write_zip(tmp_path / "h.docx", {"[Content_Types].xml": CONTENT_TYPES, "word/document.xml": data})
    assert _both(path, monkeypatch, fast=False).problem


def test_a_utf16_member_reads_the_same(tmp_path, monkeypatch):
    member = f'<?xml version="1.0" encoding="UTF-16"?><w:document {W}><w:body><w:p><w:r><w:t>十六位</w:t>'
    member += "</w:r></w:p></w:body></w:document>"
    path = write_zip(
        tmp_path / "u.docx", {"[Content_Types].xml": CONTENT_TYPES, "word/document.xml": member.encode("utf-16")}
    )
    assert _both(path, monkeypatch, fast=False).parts


PLAIN_STRINGS = '<si><t>姓名</t></si><si><t xml:space="preserve"> a &amp; b\r\n</t></si><si><t>unused &#x41;</t></si>'
SHEETS = [
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="C1" s="2" t="s"><v>1</v></c></row>'
    '<row r="2" spans="1:3"><c r="A2"><v>1.10105194912311E+17</v></c><c r="B2"><v>1.2E+3</v></c>'
    '<c r="C2" t="b"><v>1</v></c><c r="D2" t="e"><v>#N/A</v></c><c r="E2"/><c r="F2"></c></row><row r="3"/>'
    '<row r="4"><c t="s" r="B4"><v>0</v></c><c r=\'D4\' t="str"><v>a\tb\nc</v></c><c><v>7</v></c><c r="A4"><v>8</v></c></row>',
    '<row r="1"><c r="A1"><f>SUM(B1:B2)</f><v>3</v></c><c r="B1" t="inlineStr"><is><t>inline</t></is></c></row>',
    '<row r="1"><c r="XFD1"><v>1</v></c><c r="ZZZZ1"><v>2</v></c><c r="A1" t="s"><v>99</v></c><c r="B1" t="s"><v> 1 </v></c></row>',
    '<row r="1"><c r="A1" t="str"><v>&lt;tag&gt; &amp;amp;</v></c></row><row r="2" x="a>b"><c r="A2"><v>5</v></c></row>',
]


@pytest.mark.parametrize("sheet", SHEETS)
@pytest.mark.parametrize(
    "strings", [PLAIN_STRINGS, PLAIN_STRINGS + "<si><r><t>rich</t></r><rPh><t>PHONETIC</t></rPh></si>"]
)
def test_sheets_and_shared_strings_read_the_same(sheet, strings, tmp_path, monkeypatch):
    after = "<headerFooter><oddHeader>&amp;L秘密 header&amp;R&amp;P</oddHeader><oddFooter>&amp;C footer</oddFooter></headerFooter>"
    _both(_xlsx(tmp_path / "s.xlsx", strings, sheet), monkeypatch)
    _both(_xlsx(tmp_path / "h.xlsx", strings, sheet, after), monkeypatch)


def test_a_header_before_the_rows_reads_the_same(tmp_path, monkeypatch):
    path = write_zip(tmp_path / "b.xlsx", {
        "[Content_Types].xml": CONTENT_TYPES,
        "xl/worksheets/sheet1.xml": f"<worksheet {S}><headerFooter><oddHeader>first</oddHeader></headerFooter>"
        '<sheetData><row r="1"><c r="A1"><v>12345</v></c></row></sheetData></worksheet>',
    })  # fmt: skip
    _both(path, monkeypatch)


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx", "docx-word", "pptx-powerpoint"])
@pytest.mark.parametrize("max_bytes", [3_000, 20_000, 60_000])
def test_a_budget_running_out_inside_a_member_keeps_the_same_parts(kind, max_bytes, tmp_path, monkeypatch):
    from bench import corpus

    for path in corpus.documents(str(tmp_path), kind, 1, 64 * 1024, seed=5):
        assert _both(Path(path), monkeypatch, max_bytes=max_bytes, fast=None).truncated


pieces = st.lists(
    st.one_of(
        st.sampled_from(
            ["&", "<", ">", '"', "'", "\r\n", "\r", "\n", "\t", " ", "  ", "\u3000", "机密", "110105194912310021", "x"]
        ),
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8),
    ),
    max_size=12,
).map("".join)


def _escaped(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", "&#13;" if len(text) % 2 else "\r")
    )


@FAST
@given(texts=st.lists(pieces, min_size=1, max_size=6))
def test_random_texts_read_the_same(texts, tmp_path, monkeypatch):
    body = "".join(f'<w:p><w:r><w:t xml:space="preserve">{_escaped(t)}</w:t></w:r></w:p>' for t in texts)
    _both(_docx(tmp_path / "r.docx", body), monkeypatch)
    strings = "".join(f"<si><t>{_escaped(t)}</t></si>" for t in texts)
    cells = "".join(
        f'<row r="{i + 1}"><c r="A{i + 1}" t="s"><v>{i}</v></c><c r="C{i + 1}" t="str"><v>{_escaped(t)}</v></c></row>'
        for i, t in enumerate(texts)
    )
    _both(_xlsx(tmp_path / "r.xlsx", strings, cells), monkeypatch)
    os.remove(tmp_path / "r.docx")


@pytest.mark.parametrize("rows", [10, 40, 200])
def test_a_wide_sheet_running_out_of_text_budget_keeps_the_same_rows(rows, tmp_path, monkeypatch):
    """Empty cells before a far column count as text (the tabs): the budget runs out in the rows,
    not in the bytes read."""
    sheet = "".join(
        f'<row r="{i}"><c r="A{i}"><v>{i}</v></c><c r="ZZ{i}"><v>{i * 7}</v></c></row>' for i in range(1, rows + 1)
    )
    path = _xlsx(tmp_path / "w.xlsx", "<si><t>s</t></si>", sheet)
    document = _both(path, monkeypatch, max_bytes=30_000, fast=True)
    assert document.truncated == (rows > 40)
