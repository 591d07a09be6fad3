"""A zip's central directory is read once per extraction (issue 21 item 3): filetype.detect_opened
hands the BoundedZip it opened to tell the type to the zip readers, which read the members from
it. The Documents are those of reading the directory again (extract.FAST_OPENED False: the
reference) on Office, ODF, plain, damaged and refused zips; the count checked to fail with the
hand-off off."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from agent.content import extract as extract_module
from agent.content import filetype, zipread
from agent.content.extract import extract, extract_file
from tests.agent.content import makers
from tests.agent.content.roster import roster_docx


def _files(tmp_path: Path) -> list[Path]:
    paths = [
        makers.docx(tmp_path / "f.docx"),
        makers.xlsx(tmp_path / "f.xlsx"),
        makers.pptx(tmp_path / "f.pptx"),
        makers.odf(tmp_path / "f.odt", "odt"),
        makers.odf(tmp_path / "f.ods", "ods"),
        roster_docx(tmp_path / "roster.docx", 50),
        makers.write_zip(tmp_path / "plain.zip", {"a.txt": "机密 text"}),
    ]
    cut = tmp_path / "cut.docx"  # the directory there, a member's data damaged
    data = bytearray(paths[0].read_bytes())
    at = data.find(b"word/document.xml") + 40
    data[at : at + 20] = b"\xff" * 20
    cut.write_bytes(bytes(data))
    paths.append(cut)
    short = tmp_path / "short.pptx"  # no end record: detection's BoundedZip refused
    short.write_bytes(paths[2].read_bytes()[:-30])
    paths.append(short)
    return paths


def test_documents_are_those_of_reading_the_directory_again(tmp_path, monkeypatch):
    for path in _files(tmp_path):
        fast = extract(str(path), path.name)
        monkeypatch.setattr(extract_module, "FAST_OPENED", False)
        assert fast == extract(str(path), path.name), path.name
        monkeypatch.setattr(extract_module, "FAST_OPENED", True)


def test_the_directory_is_parsed_once(tmp_path, monkeypatch):
    monkeypatch.setattr(zipread, "FAST_DIRECTORY", False)  # else zipfile parses none (test_zip_directory)
    parsed = []
    real = zipfile.ZipFile._RealGetContents
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: (parsed.append(1), real(self))[0])
    path = makers.pptx(tmp_path / "f.pptx")
    document = extract(str(path), path.name)
    assert document.file_type == "pptx" and len(document.parts) > 3
    assert len(parsed) == 1
    monkeypatch.setattr(extract_module, "FAST_OPENED", False)
    extract(str(path), path.name)
    assert len(parsed) == 3


@pytest.mark.parametrize("limit", [3, 5])
def test_a_directory_over_the_limits_is_still_refused(tmp_path, monkeypatch, limit):
    monkeypatch.setattr(zipread, "MAX_ENTRIES", limit)
    path = makers.docx(tmp_path / "f.docx")  # 7 members
    document = extract_file(io.BytesIO(path.read_bytes()), path.name)
    assert document.file_type == "zip" and document.problem and "too large" in document.problem
    assert filetype.detect_opened(io.BytesIO(path.read_bytes())) == ("zip", None)
