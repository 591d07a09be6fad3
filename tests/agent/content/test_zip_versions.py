"""A zip whose central directory says a member needs a later version of the format to extract
(agent/content/zipread.py). zipfile refused the whole archive over 6.3 with NotImplementedError,
which ended the inspection as an internal error with no member read, while 7-Zip and Office read
past that byte: an employee's one-byte edit that hid a marked docx's text. Found by fuzzing the
containers' bytes."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from agent.content.extract import extract
from agent.content.inspect import inspect_file
from tests.agent.content.makers import CONTENT_TYPES, W, write_zip

TEXT = "商业秘密 泵叶轮设计图 客户身份证 11010519491231002X"


def _needs(path: Path, version: int) -> Path:
    """Every central directory entry made to say it needs `version` (tenths: 255 is 25.5)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    assert at > 0
    while at >= 0:
        struct.pack_into("<B", data, at + 6, version)  # version needed to extract, its low byte
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    return path


def _docx(path: Path) -> Path:
    body = f"<w:document {W}><w:body><w:p><w:r><w:t>{TEXT}</w:t></w:r></w:p></w:body></w:document>"
    return write_zip(path, {"[Content_Types].xml": CONTENT_TYPES, "word/document.xml": body.encode()})


@pytest.mark.reliability(
    area="input",
    fault="A docx whose central directory says its members need zip version 25.5 to extract",
    how="extract and inspect_file of a marked docx with that one byte changed in each directory entry",
    outcome="the text is read and the marking and the ID number found (before: zipfile's NotImplementedError, "
    "an internal error, nothing inspected)",
)
@pytest.mark.parametrize("version", [64, 100, 255])
def test_a_later_version_needed_does_not_hide_the_members(version, tmp_path):
    path = _needs(_docx(tmp_path / "later.docx"), version)
    with pytest.raises(NotImplementedError):  # what the stock reader does with it
        _stock(path)
    document = extract(str(path), path.name)
    assert document.problem is None and [p.text for p in document.parts][1:] == [TEXT]
    assert {"trade_secret_marking", "cn_resident_id"} <= {d.detector for d in inspect_file(str(path)).detections}


def _stock(path: Path) -> None:
    """zipfile as the standard library ships it (its limit, 6.3)."""
    kept = zipfile.MAX_EXTRACT_VERSION
    zipfile.MAX_EXTRACT_VERSION = 63
    try:
        zipfile.ZipFile(path).close()
    finally:
        zipfile.MAX_EXTRACT_VERSION = kept


def test_an_unknown_compression_method_is_still_refused_by_member(tmp_path):
    """The version byte was never the guard: a member compressed by a method zipfile lacks is
    still refused when it is opened, and the document says so."""
    path = _docx(tmp_path / "method.docx")
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # the method, local header and directory
        at = data.find(signature)
        while at >= 0:
            struct.pack_into("<H", data, at + offset, 99)  # AE-x, not supported
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
    document = extract(str(path), path.name)
    assert document.problem is not None and "internal error" not in document.problem
