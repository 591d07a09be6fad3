"""Files embedded in office documents (agent/content/archive.py walk_embedded): a drawing or a
specification inserted into a memo as an object (Insert > Object > from file: an OLE Package), a
workbook embedded in a presentation. Before, the document's own text was read and nothing it
embedded: a compressible file deflated inside it shares no bytes with its source, and its text
is not the document's."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile
from pathlib import Path

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


def test_a_package_that_does_not_parse_is_read_as_it_is_and_the_rest_too(tmp_path):
    broken = olewrite.compound_file(
        {"\x01Ole10Native": b"\x10\x00\x00\x00\x02\x00no terminator", "\x01CompObj": bytes(24)}
    )
    data = _with(
        docx(tmp_path / "memo.docx"),
        {"word/embeddings/oleObject1.bin": broken, "word/embeddings/oleObject2.bin": _package("a.dwg", DRAWING)},
    )
    found = inspect_source(io.BytesIO(data), "memo.docx")
    assert {"word/embeddings/oleObject2.bin!/a.dwg", "word/embeddings/oleObject1.bin!/(object)"} <= {
        m.name for m in found.members
    }
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


def test_files_attached_to_a_pdf_are_members():
    """Acrobat's or WPS's attachments panel (the EmbeddedFiles name tree): each attached file a
    member; a PDF attaching nothing has none."""
    data = _pdf_with({"泵叶轮.dwg": DRAWING, "spec.txt": SPEC})
    found = inspect_source(io.BytesIO(data), "report.pdf")
    assert found.file_type == "pdf"
    assert sorted((m.name, m.sha256) for m in found.members) == sorted(
        [("泵叶轮.dwg", _sha(DRAWING)), ("spec.txt", _sha(SPEC))]
    )
    assert {m.name for m in found.members if m.fingerprints} == {"spec.txt"}
    assert inspect_source(io.BytesIO(_pdf_with({})), "plain.pdf").members == ()


def _pdf_with_annotation(name: str, data: bytes, compressed: bool = False) -> bytes:
    """Acrobat's "Attach File" comment: a FileAttachment annotation on the page, its file
    specification holding the file (not in the EmbeddedFiles name tree)."""
    import zlib

    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, TextStringObject

    writer = PdfWriter()
    page = writer.add_blank_page(200, 200)
    stream = DecodedStreamObject()
    if compressed:
        stream.set_data(zlib.compress(data))
        stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    else:
        stream.set_data(data)
    stream[NameObject("/Type")] = NameObject("/EmbeddedFile")
    spec = DictionaryObject(
        {NameObject("/Type"): NameObject("/Filespec"), NameObject("/UF"): TextStringObject(name),
         NameObject("/EF"): DictionaryObject({NameObject("/F"): writer._add_object(stream)})}
    )  # fmt: skip
    annotation = DictionaryObject(
        {NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/FileAttachment"),
         NameObject("/Rect"): ArrayObject([]), NameObject("/FS"): writer._add_object(spec)}
    )  # fmt: skip
    page[NameObject("/Annots")] = ArrayObject([writer._add_object(annotation)])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_file_attached_as_a_pdf_comment_is_a_member_and_a_bomb_is_not_inflated():
    found = inspect_source(io.BytesIO(_pdf_with_annotation("spec.txt", SPEC)), "report.pdf")
    assert [(m.name, m.sha256) for m in found.members] == [("spec.txt", _sha(SPEC))]
    bomb = _pdf_with_annotation("zeros.bin", bytes(300 * 1024 * 1024), compressed=True)
    assert len(bomb) < 1024 * 1024
    found = inspect_source(io.BytesIO(bomb), "report.pdf")
    assert found.members == () and "archive_bomb" in {d.detector for d in found.detections}


def test_what_a_zipped_or_mailed_document_embeds_is_read_a_level_down(tmp_path):
    memo = _with(docx(tmp_path / "memo.docx"), {"word/embeddings/oleObject1.bin": _package("spec.txt", SPEC)})
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("memo.docx", memo)
        z.writestr("report.pdf", _pdf_with({"pump.dwg": DRAWING}))
    members = {m.name: m for m in inspect_source(io.BytesIO(packed.getvalue()), "memo.zip").members}
    assert members["memo.docx!/word/embeddings/oleObject1.bin!/spec.txt"].sha256 == _sha(SPEC)
    assert members["report.pdf!/pump.dwg"].sha256 == _sha(DRAWING)


def test_an_ole1_object_is_read_as_it_is_and_a_stream_larger_than_its_file_is_not_read(tmp_path):
    """A Paint picture pasted into Word is an OLE1 object whose \\x01Ole10Native is no package: its
    data is a member, not a parse error. A stream declaring more bytes than its file holds (a
    sector chain looping on itself: 100 MB read from a few KB) is named corrupt, not read."""
    pbrush = olewrite.compound_file(
        {"\x01Ole10Native": struct.pack("<I", 2000) + b"BM" + os.urandom(1998), "\x01CompObj": bytes(24)}
    )
    found = inspect_source(
        io.BytesIO(_with(docx(tmp_path / "memo.docx"), {"word/embeddings/oleObject1.bin": pbrush})), "memo.docx"
    )
    assert "word/embeddings/oleObject1.bin!/(object)" in {m.name for m in found.members}
    assert "parse_error" not in {d.detector for d in found.detections}
    doc = bytearray(olewrite.sample_doc(("x",), objects={"_1/CONTENTS": os.urandom(5000)}))
    entry = doc.find("CONTENTS".encode("utf-16-le"))
    struct.pack_into("<I", doc, entry + 120, 90 * 1024 * 1024)  # the directory entry's stream size
    found = inspect_source(io.BytesIO(bytes(doc)), "memo.doc")
    assert found.members == () and "parse_error" in {d.detector for d in found.detections}


class _Source:
    def __init__(self, path: str, level: str) -> None:
        self.path, self.level = path, level

    def event_fields(self, match=None) -> dict:
        from rules.events import Match

        return {"source_path": self.path, "level": self.level, "match": match or Match("exact", 1.0)}


def test_a_document_whose_text_is_core_is_not_masked_by_a_less_secret_file_it_embeds(tmp_path):
    """A core memo edited, embedding the internal form template: the event is the memo's (core),
    not the template's; before, the member spoke and the text was never looked up."""
    from agent.classify import content_fields
    from agent.hashing import FileDigest

    form = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)

    class Index:
        def lookup_sha256(self, sha256):
            return _Source("/classified/internal/form.png", "internal") if sha256 == _sha(form) else None

        def lookup_bytes(self, sketch):
            return None

        def lookup_partial(self, fingerprints):
            return _Source("/classified/core/spec.docx", "core"), 0.9

    memo = _with(docx(tmp_path / "memo.docx"), {"word/embeddings/oleObject1.bin": _package("form.png", form)})
    inspection = inspect_source(io.BytesIO(memo), "memo.docx")
    digest = FileDigest(_sha(memo), len(memo), 0, 0, 0)
    fields = content_fields(Index(), digest, inspection)
    assert fields["level"] == "core" and fields["source_path"] == "/classified/core/spec.docx"
    assert "archive_member" not in (fields.get("details") or {})


def test_a_workbook_embedded_in_a_legacy_doc_as_a_storage_is_read_as_a_workbook():
    """Word keeps an Excel object as ObjectPool/_1234 holding the workbook's own streams (no
    package): the storage is read as the .xls it is, its text and identifiers with it."""
    import olefile

    book = olewrite.sample_xls((("客户", "身份证"), ("张三", "11010519491231002X")), header="机密")
    with olefile.OleFileIO(io.BytesIO(book)) as container:
        streams = {"/".join(p): container.openstream("/".join(p)).read() for p in container.listdir()}
    doc = olewrite.sample_doc(("见附件",), objects={**{f"_1234/{k}": v for k, v in streams.items()}, "_1234/\x01CompObj": bytes(24)})
    found = inspect_source(io.BytesIO(doc), "memo.doc")
    [member] = found.members
    assert member.name == "ObjectPool/_1234.xls" and member.fingerprints
    assert "cn_resident_id" in {d.detector for d in found.detections}
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:  # and the memo zipped: read a level down
        z.writestr("memo.doc", doc)
    assert "memo.doc!/ObjectPool/_1234.xls" in {m.name for m in inspect_source(io.BytesIO(packed.getvalue()), "memo.zip").members}


def test_names_from_inside_a_document_are_made_printable():
    """Storage names and package labels are the document's to choose: a newline, a right-to-left
    override or "!/" (which joins a member to its archive) must not reach an officer as such."""
    doc = olewrite.sample_doc(
        ("x",), objects={"_1\n!/evil\u202e/\x01Ole10Native": olewrite.package("a\u202egpj.exe!/b", DRAWING)}
    )
    [member] = inspect_source(io.BytesIO(doc), "memo.doc").members
    assert member.sha256 == _sha(DRAWING)
    assert all(c.isprintable() for c in member.name) and member.name.count("!/") == 0, member.name
