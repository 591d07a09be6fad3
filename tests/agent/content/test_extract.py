from __future__ import annotations

import codecs
import gzip
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from agent.content.document import BODY, FOOTER, HEADER, NAME, PROPERTIES, TITLE, Document, TextPart
from agent.content.extract import extract
from agent.content.filetype import type_mismatch
from tests.agent.content import makers

GB = 1024**3


def _run(path: Path, **budget) -> Document:
    return extract(str(path), path.name, **budget)


def _texts(doc: Document, where: str) -> list[str]:
    return [p.text for p in doc.parts if p.where == where]


# --- text


@pytest.mark.parametrize(
    "data",
    [
        "机密\n第二行 second\n".encode(),
        codecs.BOM_UTF8 + "机密\n第二行 second\n".encode(),
        codecs.BOM_UTF16_LE + "机密\r\n第二行 second\r\n".encode("utf-16-le"),
        codecs.BOM_UTF16_BE + "机密\n第二行 second\n".encode("utf-16-be"),
        "机密\n第二行 second\n".encode("gbk"),
        "机密\n第二行 second\n".encode("gb18030"),
    ],
    ids=["utf8", "utf8-bom", "utf16le", "utf16be", "gbk", "gb18030"],
)
def test_text_is_decoded_into_lines(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    doc = _run(path)
    assert doc.file_type == "text"
    assert doc.parts[0].where == NAME and doc.parts[0].text == "notes.txt"
    assert _texts(doc, BODY) == ["机密", "第二行 second"]
    assert doc.problem is None and not doc.truncated


def test_csv_lines_are_body_parts(tmp_path: Path) -> None:
    path = tmp_path / "客户.csv"
    path.write_text("姓名,身份证号\n张三,11010519491231002X\n", encoding="gbk")
    doc = _run(path)
    assert _texts(doc, BODY) == ["姓名,身份证号", "张三,11010519491231002X"]
    assert _texts(doc, NAME) == ["客户.csv"]


def test_text_beyond_the_byte_budget_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_text("第一行\n" + "x" * 100 + "\n" * 10_000)
    doc = _run(path, max_bytes=50)
    assert doc.truncated and doc.problem is None
    assert _texts(doc, BODY)[0] == "第一行"


# --- OOXML


def test_docx_parts_land_in_their_places(tmp_path: Path) -> None:
    doc = _run(makers.docx(tmp_path / "a.docx"))
    assert doc.file_type == "docx" and doc.problem is None and not doc.truncated
    assert _texts(doc, TITLE) == ["年度预算 title"]
    assert _texts(doc, PROPERTIES) == [
        "主题 subject",
        "机密 keywords",
        "某某科技有限公司",
        "Classification: 核心商业秘密",
    ]
    assert _texts(doc, HEADER) == ["机密 header"]
    assert _texts(doc, FOOTER) == ["内部资料 footer"]
    assert _texts(doc, BODY) == ["第一段 first paragraph", "second paragraph", "split \truns"]
    assert "someone" not in doc.text_of(*[p.where for p in doc.parts])  # the author is not a marking place


def test_xlsx_strings_and_sheet_header_footer(tmp_path: Path) -> None:
    doc = _run(makers.xlsx(tmp_path / "a.xlsx"))
    assert doc.file_type == "xlsx" and doc.problem is None
    assert _texts(doc, TITLE) == ["sheet title"]
    # the sheet as a table (A1 shared, B1 inline), then the string no cell shows; no phonetic run
    assert _texts(doc, BODY) == ["姓名 shared\tinline cell", "rich text"]
    assert _texts(doc, HEADER) == ["秘密 sheet header"]
    assert _texts(doc, FOOTER) == ["R&D footer"]


def test_pptx_slides_in_order_with_footer_placeholders(tmp_path: Path) -> None:
    doc = _run(makers.pptx(tmp_path / "a.pptx"))
    assert doc.file_type == "pptx" and doc.problem is None
    assert _texts(doc, TITLE) == ["deck title"]
    assert _texts(doc, BODY) == ["Slide Title", "bullet text", "tenth slide"]
    assert _texts(doc, FOOTER) == ["商业秘密 slide footer"]


# --- ODF


@pytest.mark.parametrize(
    ("kind", "body"),
    [("odt", ["Heading one", "正文 body text"]), ("ods", ["cell text"]), ("odp", ["slide text"])],
)
def test_odf_parts_land_in_their_places(tmp_path: Path, kind: str, body: list[str]) -> None:
    doc = _run(makers.odf(tmp_path / f"a.{kind}", kind))
    assert doc.file_type == kind and doc.problem is None
    assert _texts(doc, TITLE) == ["ODF 标题"]
    assert _texts(doc, PROPERTIES) == ["odf subject", "odf keyword", "密级: 秘密"]
    assert _texts(doc, HEADER) == ["odf header"]
    assert _texts(doc, FOOTER) == ["odf footer"]
    assert _texts(doc, BODY) == body


# --- PDF


def test_pdf_metadata_and_page_text(tmp_path: Path) -> None:
    path = makers.pdf(
        tmp_path / "a.pdf", title="Quarterly plan", subject="CONFIDENTIAL subject", keywords="secret", author="Li"
    )
    doc = _run(path)
    assert doc.file_type == "pdf" and doc.problem is None
    assert _texts(doc, TITLE) == ["Quarterly plan"]
    assert _texts(doc, PROPERTIES) == ["CONFIDENTIAL subject", "secret", "Li"]
    assert _texts(doc, BODY) == ["CONFIDENTIAL first line", "second line"]


def test_encrypted_pdf_is_a_problem(tmp_path: Path) -> None:
    doc = _run(makers.pdf(tmp_path / "locked.pdf", title="t", user_password="s3cret"))
    assert doc.file_type == "pdf"
    assert doc.problem == "encrypted"
    assert _texts(doc, BODY) == []


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF",
        b"%PDF-1.4\n" + bytes(range(256)) * 20,
        makers.pdf_bytes(("line",))[:-120],
    ],
    ids=["dangling-reference", "garbage", "cut-short"],
)
def test_corrupt_pdf_is_a_problem_not_an_exception(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(data)
    doc = _run(path)
    assert doc.file_type == "pdf"
    assert doc.problem is not None and doc.problem.startswith("corrupt pdf: ")
    assert doc.parts == (doc.parts[0],)


def test_spent_time_budget_truncates_without_a_problem(tmp_path: Path) -> None:
    for path in (makers.pdf(tmp_path / "a.pdf"), makers.docx(tmp_path / "a.docx")):
        doc = _run(path, max_seconds=-1)
        assert doc.truncated and doc.problem is None and _texts(doc, BODY) == []


# --- hostile and broken input


def test_corrupt_docx_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    whole = makers.docx(tmp_path / "whole.docx").read_bytes()
    path = tmp_path / "cut.docx"
    path.write_bytes(whole[: len(whole) - 30])  # the end of the central directory is gone
    doc = _run(path)
    assert doc.file_type == "zip"  # without its directory nothing says it is a docx
    assert doc.problem == "corrupt zip: no end of central directory"
    assert doc.parts == (doc.parts[0],)


def test_docx_with_a_damaged_member_is_a_problem(tmp_path: Path) -> None:
    path = makers.docx(tmp_path / "a.docx")
    data = bytearray(path.read_bytes())
    at = data.find(b"word/document.xml") + len("word/document.xml") + 5  # inside its compressed data
    data[at : at + 20] = b"\xff" * 20
    path.write_bytes(bytes(data))
    doc = _run(path)
    assert doc.file_type == "docx"
    assert doc.problem is not None and "word/document.xml" in doc.problem
    assert _texts(doc, HEADER) == ["机密 header"]  # what was read before still counts


def test_doctype_with_entity_expansion_is_refused(tmp_path: Path) -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY a "秘密秘密秘密秘密">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        f"<w:document {makers.W}><w:body><w:p><w:r><w:t>&c;</w:t></w:r></w:p></w:body></w:document>"
    )
    for encoding in ("utf-8", "utf-16"):  # a byte scan for <!DOCTYPE would miss UTF-16
        path = makers.write_zip(
            tmp_path / f"{encoding}.docx",
            {
                "[Content_Types].xml": makers.CONTENT_TYPES,
                "word/document.xml": laughs.replace('1.0"?>', f'1.0" encoding="{encoding}"?>').encode(encoding),
            },
        )
        doc = _run(path)
        assert doc.file_type == "docx"
        assert doc.problem == "xml declares a DOCTYPE or entity: word/document.xml", encoding
        assert _texts(doc, BODY) == []


def test_png_renamed_docx_is_png_and_a_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    doc = _run(path)
    assert doc.file_type == "png" and doc.problem is None
    assert doc.parts == (doc.parts[0],) and doc.parts[0].text == "report.docx"
    assert type_mismatch(doc.file_type, "docx") is True


def test_unknown_binary_is_only_its_name(tmp_path: Path) -> None:
    path = tmp_path / "blob.dat"
    path.write_bytes(bytes(range(256)) * 8)
    assert _run(path) == Document(None, (TextPart(NAME, "blob.dat"),))


def test_archive_is_only_its_name(tmp_path: Path) -> None:
    path = tmp_path / "a.gz"
    path.write_bytes(gzip.compress("机密".encode()))
    assert _run(path) == Document("gzip", (TextPart(NAME, "a.gz"),))


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    doc = extract(str(tmp_path / "gone.txt"), "gone.txt")
    assert doc.problem and doc.problem.startswith("unreadable")


def test_docx_body_beyond_the_byte_budget_is_truncated_after_header_and_footer(tmp_path: Path) -> None:
    path = makers.docx(tmp_path / "long.docx", body=tuple(f"paragraph {i}" for i in range(20_000)))
    doc = _run(path, max_bytes=64 * 1024)
    assert doc.truncated and doc.problem is None
    assert _texts(doc, HEADER) == ["机密 header"] and _texts(doc, FOOTER) == ["内部资料 footer"]
    assert 0 < len(_texts(doc, BODY)) < 20_000


@pytest.fixture(scope="module")
def zeros_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return makers.zeros_member(tmp_path_factory.mktemp("bomb") / "bomb.docx", "word/document.xml", GB)


@pytest.fixture(scope="module")
def spaces_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # well-formed XML up to a paragraph holding 1 GB of spaces: only the ratio check stops it early
    prefix = f"<w:document {makers.W}><w:body><w:p><w:r><w:t>".encode()
    return makers.zeros_member(tmp_path_factory.mktemp("bomb") / "spaces.docx", "word/document.xml", GB, prefix, b" ")


@pytest.mark.parametrize("bomb", ["zeros_bomb", "spaces_bomb"])
def test_zip_bomb_is_refused_quickly_in_little_memory(request: pytest.FixtureRequest, bomb: str) -> None:
    path: Path = request.getfixturevalue(bomb)
    assert path.stat().st_size < 8 * 1024 * 1024
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("word/document.xml").file_size >= GB
    tracemalloc.start()
    started = time.monotonic()
    try:
        doc = _run(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"took {time.monotonic() - started:.2f}s")  # bounded by the checks below, not by a clock
    assert peak < 32 * 1024 * 1024
    assert doc.file_type == "docx"
    assert doc.problem is not None and "word/document.xml" in doc.problem
    if bomb == "spaces_bomb":
        assert doc.problem.startswith("compression ratio over")
