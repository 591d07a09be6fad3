"""Legacy Office and other OLE2 files: true type, text in its places, lineage like the modern form.

Two sources of files: compound files built here (agent.content.olewrite), so the readers are tested
without LibreOffice, and files LibreOffice writes when a docx, xlsx or pptx is saved as .doc, .xls
or .ppt (tests/agent/content/legacy_makers.py), which skip when soffice is not installed.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import filetype, olewrite
from agent.content.document import BODY, FOOTER, HEADER, PROPERTIES, TITLE, Document
from agent.content.extract import extract_file, may_have_text
from agent.content.inspect import inspect_file, inspect_source
from agent.content.ole_doc import paragraphs
from agent.inspector import InspectorProcess, open_regular
from tests.agent.content import legacy_makers

PARAGRAPHS = (
    "第一章 总则 本规范适用于第三代电池管理系统。",
    "客户 张三 身份证 11010519491231002X 手机 13800138000",
    "Second paragraph in English.",
)


def _doc(data: bytes, name: str) -> Document:
    return extract_file(io.BytesIO(data), name)


def _texts(doc: Document, where: str) -> list[str]:
    return [p.text for p in doc.parts if p.where == where]


def _detectors(inspection) -> dict[str, int]:
    return {d.detector: d.count for d in inspection.detections}


# --- hand-built compound files: no LibreOffice needed


def test_doc_text_headers_and_footers_are_read_from_the_piece_table() -> None:
    doc = _doc(olewrite.sample_doc(PARAGRAPHS, header="商业秘密", footer="内部资料 footer"), "spec.doc")
    assert doc.file_type == "doc" and doc.problem is None and not doc.truncated
    assert _texts(doc, HEADER) == ["商业秘密"]
    assert _texts(doc, FOOTER) == ["内部资料 footer"]
    assert _texts(doc, BODY) == list(PARAGRAPHS)


def test_doc_field_codes_are_dropped_and_their_results_kept() -> None:
    text = 'see \x13 HYPERLINK "http://x" \x14the site\x15 and \x13PAGE\x15 end\x07cell two\x0bnext line'
    doc = _doc(olewrite.sample_doc((text,)), "fields.doc")
    assert _texts(doc, BODY) == ["see the site and  end", "cell two\nnext line"]


@pytest.mark.timeout(120)
def test_doc_many_unclosed_fields_cost_linear_time() -> None:
    """200,000 fields opened and never closed, then text: a scan of the open fields per character
    took minutes (quadratic), which fails by the timeout; a count of them takes well under a second."""
    found = paragraphs("\x13\x14" * 200_000 + "x" * 200_000)
    assert found == ["x" * 200_000]


def test_xls_cells_become_a_table_and_numbers_keep_their_digits() -> None:
    rows = (("姓名", "手机", "金额"), ("张三", 13800138000.0, 1234.5), ("李四", 42.0, 0.25))
    doc = _doc(olewrite.sample_xls(rows, header='&L&"Arial,Bold"秘密&R&P'), "roster.xls")
    assert doc.file_type == "xls" and doc.problem is None
    assert _texts(doc, BODY) == ["姓名\t手机\t金额\n张三\t13800138000\t1234.5\n李四\t42\t0.25"]
    assert _texts(doc, HEADER) == ["秘密"]


def test_ppt_slides_and_footers_are_read_and_master_template_text_is_not() -> None:
    doc = _doc(olewrite.sample_ppt((("路线图", "第一季度 量产"), ("Pricing",)), footer="商业秘密"), "deck.ppt")
    assert doc.file_type == "ppt" and doc.problem is None
    assert _texts(doc, FOOTER) == ["商业秘密"]
    assert _texts(doc, BODY) == ["路线图", "第一季度 量产", "Pricing"]


def test_a_doc_with_a_secret_header_is_detected_as_marked() -> None:
    data = olewrite.sample_doc(("普通正文 ordinary text",), header="商业秘密")
    found = _detectors(inspect_source(io.BytesIO(data), "plain.doc"))
    assert found.get("trade_secret_marking", 0) >= 1


def _altium(header: bytes) -> bytes:
    return olewrite.compound_file({"FileHeader": header, "Board6/Data": b"|RECORD=Board|"})


PCB_V6 = struct.pack("<IB", 20, 19) + b"PCB 6.0 Binary File" + struct.pack("<d", 5.01)
PCB_V5_UTF16 = struct.pack("<I", 19) + "PCB 5.0 Bi".encode("utf-16-le")
SCH = (
    struct.pack("<HBB", 80, 0, 0) + b"|HEADER=Protel for Windows - Schematic Capture Binary File Version 5.0|WEIGHT=3\0"
)
ENCRYPTED_DOCX = olewrite.compound_file({"EncryptionInfo": b"\x04\0\x04\0" + bytes(60), "EncryptedPackage": bytes(64)})
MSG = olewrite.compound_file({"__substg1.0_0037001F": "主题".encode("utf-16-le"), "__properties_version1.0": bytes(32)})


@pytest.mark.parametrize(
    "data, name, kind, mismatch",
    [
        (olewrite.sample_doc(PARAGRAPHS), "spec.doc", "doc", False),
        (olewrite.sample_doc(PARAGRAPHS), "spec.wps", "doc", False),  # WPS Office writes the same format
        (olewrite.sample_doc(PARAGRAPHS), "holiday.jpg", "doc", True),
        (olewrite.sample_doc(PARAGRAPHS), "spec.docx", "doc", True),
        (olewrite.sample_xls((("a",),)), "roster.xls", "xls", False),
        (olewrite.sample_xls((("a",),)), "roster.et", "xls", False),
        (olewrite.sample_xls((("a",),)), "roster.txt", "xls", True),
        (olewrite.sample_ppt((("a",),)), "deck.ppt", "ppt", False),
        (olewrite.sample_ppt((("a",),)), "deck.pdf", "ppt", True),
        (_altium(PCB_V6), "board.PcbDoc", "pcbdoc", False),
        (_altium(PCB_V5_UTF16), "board.PcbDoc", "pcbdoc", False),
        (_altium(PCB_V6), "board.jpg", "pcbdoc", True),
        (_altium(SCH), "power.SchDoc", "schdoc", False),
        (_altium(SCH), "power.zip", "schdoc", True),
        (_altium(b"\0\0\0\0something else"), "x.PcbDoc", "ole2", False),  # unsure: not called a PcbDoc
        (ENCRYPTED_DOCX, "offer.docx", "ooxml_encrypted", False),
        (ENCRYPTED_DOCX, "offer.png", "ooxml_encrypted", True),
        (MSG, "mail.msg", "msg", False),
        (MSG, "mail.doc", "msg", True),
        (olewrite.compound_file({"Catalog": b"x"}), "Thumbs.db", "ole2", False),
        (olewrite.compound_file({"Catalog": b"x"}), "Thumbs.pdf", "ole2", True),
        (olewrite.compound_file({"Catalog": b"x"}), "Thumbs.doc", "ole2", True),
    ],
)
def test_ole2_files_are_typed_by_their_streams(data: bytes, name: str, kind: str, mismatch: bool) -> None:
    inspection = inspect_source(io.BytesIO(data), name)
    assert (inspection.file_type, inspection.type_mismatch) == (kind, mismatch)


def test_text_named_like_an_altium_document_is_not_a_mismatch() -> None:
    """Altium also saves documents as text; a text .PcbDoc is not hiding anything."""
    assert filetype.type_mismatch("text", "PcbDoc") is False
    assert filetype.type_mismatch("text", "doc") is True


def test_an_encrypted_ooxml_file_says_so() -> None:
    inspection = inspect_source(io.BytesIO(ENCRYPTED_DOCX), "offer.docx")
    assert ("parse_error", "encrypted") in [(d.detector, d.sample) for d in inspection.detections]


def test_the_index_opens_ole2_files_for_their_text() -> None:
    assert may_have_text(olewrite.sample_doc(PARAGRAPHS)[: filetype.HEAD_BYTES])


def test_a_stream_beyond_the_byte_budget_is_read_as_a_prefix_and_marked_truncated() -> None:
    long = tuple(f"第{i}段 paragraph number {i} of a long specification" for i in range(400))
    doc = extract_file(io.BytesIO(olewrite.sample_doc(long)), "long.doc", max_bytes=6000)
    assert doc.truncated and doc.problem is None
    assert _texts(doc, BODY)[:2] == list(long[:2])


# --- corrupt and crafted files: a parse_error, never an exception or a hang


def _corruptions() -> list[tuple[str, bytes]]:
    doc = olewrite.sample_doc(PARAGRAPHS, header="h")
    xls = olewrite.sample_xls((("a", 1.0),))
    ppt = olewrite.sample_ppt((("a",),))
    header_only = olewrite.SIGNATURE + bytes(504)
    loop_fat = bytearray(doc)
    struct.pack_into("<I", loop_fat, 48, 0)  # the directory starts at sector 0 (a stream's data)
    return [
        ("cut.doc", doc[:1024]),
        ("header.doc", header_only),
        ("dir-at-0.doc", bytes(loop_fat)),
        ("no-fib.doc", olewrite.compound_file({"WordDocument": b"\xec\xa5", "1Table": b""})),
        ("bad-clx.doc", olewrite.compound_file({"WordDocument": doc[:0], "1Table": b"\x02\xff\xff\xff\xff"})),
        ("cut-record.xls", olewrite.compound_file({"Workbook": struct.pack("<HH", 0x00FD, 10) + b"\0\0"})),
        ("huge-sst.xls", olewrite.compound_file({"Workbook": struct.pack("<HHII", 0x00FC, 8, 1, 0xFFFFFFFF)})),
        (
            "deep.ppt",
            olewrite.compound_file({"PowerPoint Document": struct.pack("<HHI", 0x0F, 0x03EE, 0xFFFFFFF0) * 500}),
        ),
        ("ppt.ppt", ppt[:700]),
        ("xls.xls", xls[:600]),
    ]


@pytest.mark.timeout(60)  # a loop over a corrupt chain fails by the timeout, not by a clock read here
@pytest.mark.parametrize("name, data", _corruptions(), ids=[n for n, _ in _corruptions()])
def test_a_corrupt_ole2_file_gives_a_parse_error_quickly(name: str, data: bytes) -> None:
    inspection = inspect_source(io.BytesIO(data), name)
    found = _detectors(inspection)
    assert inspection.file_type in ("doc", "xls", "ppt", "ole2")
    # a directory read from a stream's sectors may still parse (olefile tolerates what is not fatal):
    # then it is a compound file holding nothing known, which is what it is
    assert "parse_error" in found or name in ("deep.ppt", "dir-at-0.doc"), (name, inspection)
    assert not any(d.sample and d.sample.startswith("internal error") for d in inspection.detections)


SAMPLES = (
    olewrite.sample_doc(PARAGRAPHS, header="商业秘密", footer="f"),
    olewrite.sample_xls((("姓名", 13800138000.0), ("张三", 0.5)), header="秘密"),
    olewrite.sample_ppt((("路线图", "要点"),), footer="机密"),
)


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 2), edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=12))
def test_mutated_ole2_files_never_raise_nor_hang(which: int, edits: list[tuple[int, int]]) -> None:
    data = bytearray(SAMPLES[which])
    for at, value in edits:
        data[at % len(data)] = value
    inspection = inspect_source(io.BytesIO(bytes(data)), "fuzz.doc")
    assert not any(d.sample and d.sample.startswith("internal error") for d in inspection.detections)


# --- files written by LibreOffice: the legacy copy traced like its modern source

needs_soffice = pytest.mark.skipif(legacy_makers.SOFFICE is None, reason="soffice (LibreOffice) is not installed")


@pytest.fixture(scope="session")
def converted(tmp_path_factory) -> dict[str, Path]:
    """a.docx, a.xlsx, a.pptx made by LibreOffice from flat ODF, then each saved as .doc, .xls, .ppt."""
    if legacy_makers.SOFFICE is None:
        pytest.skip("soffice (LibreOffice) is not installed")
    folder = tmp_path_factory.mktemp("legacy")
    long_spec = legacy_makers.SPEC + tuple(
        f"第{i}条 电池包第{i}号模组的均衡阈值为 {3300 + i} mV，采样周期 {100 + i} ms，超过阈值时上报主控并记录日志。"
        for i in range(40)
    )
    files = {}
    for make, modern, legacy in (
        (lambda p: legacy_makers.fodt(p, body=long_spec), "docx", "doc"),
        (legacy_makers.fods, "xlsx", "xls"),
        (legacy_makers.fodp, "pptx", "ppt"),
    ):
        source = make(folder / f"source-{modern}.f{modern[0]}d{modern[1] if modern != 'docx' else 't'}")
        files[modern] = legacy_makers.convert(source, modern, folder)
        files[legacy] = legacy_makers.convert(files[modern], legacy, folder)
    return files


@needs_soffice
@pytest.mark.slow
@pytest.mark.parametrize("modern, legacy", [("docx", "doc"), ("xlsx", "xls"), ("pptx", "ppt")])
def test_a_legacy_copy_has_the_text_and_detections_of_its_modern_source(converted, modern, legacy) -> None:
    new, old = (inspect_file(str(converted[kind])) for kind in (modern, legacy))
    assert old.file_type == legacy and old.type_mismatch is False
    assert _detectors(old) == _detectors(new)
    new_doc, old_doc = (extract_file(open(converted[k], "rb"), converted[k].name) for k in (modern, legacy))
    for where in (BODY, HEADER, FOOTER, TITLE):
        assert _texts(old_doc, where) == _texts(new_doc, where), where
    assert "Classification: 核心商业秘密" in _texts(old_doc, PROPERTIES)


@needs_soffice
@pytest.mark.slow
def test_a_doc_saved_from_a_docx_keeps_its_lineage_fingerprints(converted) -> None:
    new, old = (inspect_file(str(converted[kind])).fingerprints for kind in ("docx", "doc"))
    assert len(new) >= 10
    # measured: every fingerprint of the docx is in the doc; the doc has one or two more, from the
    # properties LibreOffice adds to the legacy file (AppVersion) and the keywords joined by a comma
    assert len(new & old) / len(new) >= 0.95


@needs_soffice
@pytest.mark.slow
@pytest.mark.parametrize("saved_as", ["html", "rtf"])
def test_a_docx_saved_by_libreoffice_as_a_web_page_or_rtf_keeps_its_lineage_and_marking(converted, saved_as, tmp_path) -> None:
    """LibreOffice's own "Save as HTML" and "Save as RTF" of the classified docx (agent/content/
    markup.py): before, read with their tags and escapes, they kept 1-2% of its fingerprints and no
    marking. Its header's 商业秘密 is in the page and the RTF too."""
    saved = legacy_makers.convert(converted["docx"], saved_as, tmp_path)
    new, copy = inspect_file(str(converted["docx"])), inspect_file(str(saved))
    assert copy.file_type == "text"
    assert len(new.fingerprints & copy.fingerprints) / len(new.fingerprints) >= 0.9
    assert _detectors(copy).get("trade_secret_marking", 0) >= 1


@needs_soffice
@pytest.mark.slow
def test_a_docx_saved_as_doc_with_a_secret_header_is_marked(converted) -> None:
    doc = extract_file(open(converted["doc"], "rb"), "a.doc")
    assert _texts(doc, HEADER) == ["商业秘密"]
    assert _detectors(inspect_file(str(converted["doc"]))).get("trade_secret_marking", 0) >= 1


@needs_soffice
@pytest.mark.slow
@pytest.mark.parametrize("legacy, disguise", [("doc", "holiday.jpg"), ("xls", "notes.txt"), ("ppt", "clip.mp4.zip")])
def test_a_renamed_legacy_file_shows_a_type_mismatch(converted, tmp_path, legacy, disguise) -> None:
    renamed = tmp_path / disguise
    renamed.write_bytes(converted[legacy].read_bytes())
    inspection = inspect_file(str(renamed))
    assert (inspection.file_type, inspection.type_mismatch) == (legacy, True)


@needs_soffice
@pytest.mark.slow
def test_cut_libreoffice_files_give_a_parse_error(converted, tmp_path) -> None:
    for kind in ("doc", "xls", "ppt"):
        data = converted[kind].read_bytes()
        for size in (600, len(data) // 2):
            cut = tmp_path / f"cut{size}.{kind}"
            cut.write_bytes(data[:size])
            found = _detectors(inspect_file(str(cut)))
            assert "parse_error" in found, (kind, size, found)


def test_the_inspection_worker_reads_legacy_files_as_the_agent_does(tmp_path) -> None:
    """The worker pre-loads olefile and the readers before it drops root (its warm-up inspects a
    sample of each legacy format)."""
    worker = InspectorProcess()
    try:
        for name, data in (("a.doc", SAMPLES[0]), ("b.xls", SAMPLES[1]), ("c.ppt", SAMPLES[2])):
            path = tmp_path / name
            path.write_bytes(data)
            fd, _st = open_regular(str(path))
            try:
                assert worker.inspect(fd, name) == inspect_file(str(path)), name
            finally:
                os.close(fd)
    finally:
        worker.close()
