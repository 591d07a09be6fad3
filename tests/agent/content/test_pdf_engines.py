"""The two PDF readers (agent/content/pdf.py): PDFium, the default, and pypdf, the reference, give
the same text parts, detections and fingerprints on the same files, refuse the same encrypted and
broken ones, and the reader in force is PDFium wherever pypdfium2 is installed."""

from __future__ import annotations

import io

import pytest

from agent.content import pdf as pdf_module
from agent.content.budget import Collector, Refused
from agent.content.inspect import inspect_source
from tests.agent.content import legacy_makers, makers

pdfium = pytest.importorskip("pypdfium2", reason="needs pypdfium2 (an install requirement)")

LINES = ("CONFIDENTIAL Pump impeller HXB100", "Customer 11010519491231002X mobile 13800138000",
         "Blade angle 22.5 deg; clearance 0.35 mm", "card 6222020200112233445")  # fmt: skip


def _parts(path, engine: str) -> list[tuple[str, str, int]]:
    out = Collector(64 << 20, 30.0)
    pdf_module.read_pdf(str(path), out, engine=engine)
    return [(p.where, p.text, p.page_line) for p in out.parts]


def _inspected(path, engine: str, monkeypatch) -> tuple:
    monkeypatch.setattr(pdf_module, "ENGINE", engine)
    with open(path, "rb") as f:
        result = inspect_source(f, path.name)
    return result.detections, result.fingerprints


def test_pdfium_is_the_reader_in_force():
    assert pdf_module.ENGINE == "pdfium"


def test_both_readers_give_the_same_parts_of_a_written_pdf(tmp_path):
    path = makers.pdf(tmp_path / "spec.pdf", lines=LINES, title="泵叶轮图纸", subject="研发 subject")
    assert _parts(path, "pdfium") == _parts(path, "pypdf")
    assert ("title", "泵叶轮图纸", 0) in _parts(path, "pdfium")


@pytest.mark.skipif(legacy_makers.SOFFICE is None, reason="needs LibreOffice (apt-get install libreoffice-writer)")
def test_both_readers_give_the_same_detections_and_fingerprints_on_a_libreoffice_pdf(tmp_path, monkeypatch):
    source = legacy_makers.fodt(tmp_path / "规格书.fodt", body=legacy_makers.SPEC * 4)
    path = legacy_makers.convert(source, "pdf", tmp_path)
    assert _parts(path, "pdfium") == _parts(path, "pypdf")
    detections, fingerprints = _inspected(path, "pdfium", monkeypatch)
    assert (detections, fingerprints) == _inspected(path, "pypdf", monkeypatch)
    assert fingerprints and {d.detector for d in detections} >= {"cn_resident_id", "cn_mobile", "trade_secret_marking"}


def test_both_readers_refuse_a_password_and_open_an_owner_only_encryption(tmp_path):
    from pypdf import PdfReader, PdfWriter

    plain = makers.pdf(tmp_path / "plain.pdf", lines=LINES)
    for name, user, owner in (("locked.pdf", "secret", "secret"), ("print-only.pdf", "", "owner")):
        writer = PdfWriter(clone_from=PdfReader(plain))
        writer.encrypt(user, owner_password=owner, algorithm="RC4-128")
        path = tmp_path / name
        with open(path, "wb") as f:
            writer.write(f)
        if user:
            for engine in ("pdfium", "pypdf"):
                with pytest.raises(Refused, match="encrypted"):
                    _parts(path, engine)
        else:
            assert _parts(path, "pdfium") == _parts(path, "pypdf") == _parts(plain, "pypdf")


@pytest.mark.parametrize("data", [b"%PDF-1.7\n" + b"\x00" * 500, b"%PDF-1.4\n1 0 obj << /Type /Catalog", b"not a pdf"])
def test_both_readers_turn_a_broken_file_into_refused(data):
    for engine in ("pdfium", "pypdf"):
        out = Collector(1 << 20, 5.0)
        try:
            pdf_module.read_pdf(io.BytesIO(data), out, engine=engine)
        except Refused as exc:
            assert "corrupt pdf" in str(exc)
        else:
            assert not out.parts  # pypdf reads some broken files as empty: nothing found, nothing invented
