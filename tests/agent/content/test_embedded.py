"""Files embedded in office documents (agent/content/archive.py walk_embedded): a drawing or a
specification inserted into a memo as an object (Insert > Object > from file: an OLE Package), a
workbook embedded in a presentation. Before, the document's own text was read and nothing it
embedded: a compressible file deflated inside it shares no bytes with its source, and its text
is not the document's."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest

from agent.content import ole, olewrite
from agent.content.archive import walk_embedded
from agent.content.inspect import inspect_source
from tests.agent.content.makers import docx, odf, pptx, xlsx

DRAWING = b"AC1032" + os.urandom(20_000)
SPEC = "\n".join(f"{i}. 叶轮精加工：温度 {400 + i} 度，公差 {i % 90} 微米。" for i in range(300)).encode("utf-8")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _with(base: Path, members: dict[str, bytes]) -> bytes:
    packed = io.BytesIO(base.read_bytes())
    with zipfile.ZipFile(packed, "a", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return packed.getvalue()


def _package(label: str, data: bytes) -> bytes:
    """oleObject1.bin as Word writes it for a file inserted as an object."""
    return olewrite.compound_file({"\x01Ole10Native": olewrite.package(label, data), "\x01CompObj": bytes(24)})


def test_a_file_inserted_into_a_docx_as_an_object_is_a_member_whole(tmp_path):
    data = _with(docx(tmp_path / "memo.docx"), {"word/embeddings/oleObject1.bin": _package("泵叶轮.dwg", DRAWING)})
    found = inspect_source(io.BytesIO(data), "memo.docx")
    members = {m.name: m for m in found.members}
    assert members["word/embeddings/oleObject1.bin!/泵叶轮.dwg"].sha256 == _sha(DRAWING)
    assert members["word/embeddings/oleObject1.bin!/泵叶轮.dwg"].depth == 2


def test_a_workbook_embedded_in_a_presentation_is_read_with_its_text(tmp_path):
    book = xlsx(tmp_path / "book.xlsx").read_bytes()
    data = _with(pptx(tmp_path / "deck.pptx"), {"ppt/embeddings/Microsoft_Excel_Worksheet.xlsx": book})
    found = inspect_source(io.BytesIO(data), "deck.pptx")
    [member] = found.members
    assert member.name == "ppt/embeddings/Microsoft_Excel_Worksheet.xlsx" and member.sha256 == _sha(book)
    assert member.fingerprints  # its cells' text, traced as the workbook's would be


def test_objects_in_a_legacy_doc_and_an_odf_document_are_members(tmp_path):
    doc = olewrite.sample_doc(("会议纪要",), objects={"_1234/\x01Ole10Native": olewrite.package("spec.txt", SPEC)})
    found = inspect_source(io.BytesIO(doc), "memo.doc")
    assert found.file_type == "doc" and [(m.name, m.sha256) for m in found.members] == [
        ("ObjectPool/_1234/spec.txt", _sha(SPEC))
    ]
    assert found.members[0].fingerprints
    odt = odf(tmp_path / "memo.odt", "odt")
    data = _with(odt, {"Object 1": _package("pump.dwg", DRAWING)})
    found = inspect_source(io.BytesIO(data), "memo.odt")
    assert ("Object 1!/pump.dwg", _sha(DRAWING)) in [(m.name, m.sha256) for m in found.members]


def test_a_document_embedding_nothing_has_no_members_and_its_own_parts_are_not_read_as_such(tmp_path):
    plain = docx(tmp_path / "memo.docx")
    found = inspect_source(io.BytesIO(plain.read_bytes()), "memo.docx")
    assert found.members == () and {d.detector for d in found.detections} <= {"trade_secret_marking"}
    data = _with(plain, {"word/media/image1.png": b"\x89PNG\r\n\x1a\n" + os.urandom(500)})
    assert inspect_source(io.BytesIO(data), "memo.docx").members == ()  # a picture is no embedded file


def test_a_broken_package_is_said_and_the_rest_is_read(tmp_path):
    broken = olewrite.compound_file(
        {"\x01Ole10Native": b"\x10\x00\x00\x00\x02\x00no terminator", "\x01CompObj": bytes(24)}
    )
    data = _with(
        docx(tmp_path / "memo.docx"),
        {"word/embeddings/oleObject1.bin": broken, "word/embeddings/oleObject2.bin": _package("a.dwg", DRAWING)},
    )
    found = inspect_source(io.BytesIO(data), "memo.docx")
    assert "word/embeddings/oleObject2.bin!/a.dwg" in {m.name for m in found.members}
    assert "parse_error" in {d.detector for d in found.detections}
    assert ole.packaged_file(b"") is None and ole.packaged_file(olewrite.package("x", b"abc")[:-2]) is None


def test_walk_embedded_never_raises_on_what_is_not_the_type_it_was_told():
    for kind in ("docx", "doc", "odt"):
        listing = walk_embedded(io.BytesIO(os.urandom(3000)), kind)
        assert listing.members == [] and [p.kind for p in listing.problems] in (["parse_error"], ["archive_bomb"])


def _pdf_with(files: dict[str, bytes]) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    for name, data in files.items():
        writer.add_attachment(name, data)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("engine", ["pdfium", "pypdf"])
def test_files_attached_to_a_pdf_are_members(engine, monkeypatch):
    """Acrobat's or WPS's attachments panel: each attached file a member, read by PDFium (the
    worker's reader) or by pypdf where PDFium is not installed."""
    from agent.content import pdf

    if engine == "pypdf":
        monkeypatch.setattr(pdf, "pdfium", None)
    elif pdf.pdfium is None:
        pytest.skip("pypdfium2 not installed")
    data = _pdf_with({"泵叶轮.dwg": DRAWING, "spec.txt": SPEC})
    found = inspect_source(io.BytesIO(data), "report.pdf")
    assert found.file_type == "pdf"
    assert sorted((m.name, m.sha256) for m in found.members) == sorted(
        [("泵叶轮.dwg", _sha(DRAWING)), ("spec.txt", _sha(SPEC))]
    )
    assert {m.name for m in found.members if m.fingerprints} == {"spec.txt"}
    assert inspect_source(io.BytesIO(_pdf_with({})), "plain.pdf").members == ()
