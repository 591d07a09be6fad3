"""A file's name changes nothing about how its content is inspected.

Before: one byte of a name that is not UTF-8 (os.fsdecode keeps it as a lone surrogate) made the
regex engine raise on the name part, so the whole inspection became one parse_error: no
markings, no identifiers, no archive members, no fingerprints.
"""

import hashlib
import os
from pathlib import Path

import pytest
from stdnum.cn import ric

from agent.content.detectors import detect
from agent.content.document import NAME, TextPart, readable
from agent.content.extract import extract
from agent.content.inspect import inspect_file
from tests.agent.content.makers import docx, write_zip

RID = "33010619900307123" + ric.calc_check_digit("330106199003071230")
TEXT = f"商业秘密\n客户名单 customer list, 身份证 {RID}\n" + "正文内容足够长以便指纹 " * 40
DRAWING = b"AC1032" + bytes(range(256)) * 40  # a DWG head: no text of its own

ODD_NAMES = {
    "invalid_utf8": b"plan\xff",
    "lone_continuation": b"\x80\x80plan",
    "gbk_bytes": "图纸".encode("gbk") + b"\xff",
    "newline": b"plan\nline",
    "escape_sequence": b"\x1b[31mred\x1b[0m",
    "carriage_return_and_tab": b"a\rb\tc",
    "del_and_bell": b"\x7f\x07plan",
}


def _named(folder: Path, stem: bytes, suffix: str) -> str:
    return os.fsdecode(os.fsencode(folder) + b"/" + stem + suffix.encode())


@pytest.mark.parametrize("stem", ODD_NAMES.values(), ids=ODD_NAMES.keys())
def test_marked_text_with_an_odd_name_is_inspected_like_any_other(tmp_path, stem):
    path = _named(tmp_path, stem, ".txt")
    Path(path).write_text(TEXT, encoding="utf-8")
    plain = tmp_path / "plain.txt"
    plain.write_text(TEXT, encoding="utf-8")

    odd, same = inspect_file(path), inspect_file(str(plain))

    assert odd.file_type == "text"
    assert {d.detector for d in odd.detections} == {"trade_secret_marking", "cn_resident_id"}
    assert odd.fingerprints and odd.fingerprints == same.fingerprints


@pytest.mark.parametrize("stem", ODD_NAMES.values(), ids=ODD_NAMES.keys())
def test_marked_docx_with_an_odd_name_keeps_its_markings(tmp_path, stem):
    path = _named(tmp_path, stem, ".docx")
    docx(Path(path), body=("商业秘密", "第一段 first paragraph"))

    found = inspect_file(path)

    assert found.file_type == "docx"
    assert "trade_secret_marking" in {d.detector for d in found.detections}
    assert "parse_error" not in {d.detector for d in found.detections}


@pytest.mark.parametrize("stem", ODD_NAMES.values(), ids=ODD_NAMES.keys())
def test_zipped_drawing_with_an_odd_name_is_still_traced(tmp_path, stem):
    path = _named(tmp_path, stem, ".zip")
    write_zip(Path(path), {"rev3/pump.dwg": DRAWING})

    found = inspect_file(path)

    assert found.file_type == "zip"
    assert [m.sha256 for m in found.members] == [hashlib.sha256(DRAWING).hexdigest()]
    assert found.detections == ()


def test_a_name_in_gbk_bytes_reads_as_what_it_says_so_its_marking_counts(tmp_path):
    path = _named(tmp_path, "商业秘密-报价".encode("gbk"), ".txt")
    Path(path).write_text("nothing marked in here\n", encoding="utf-8")

    document = extract(path, os.path.basename(path))

    assert document.parts[0] == TextPart(NAME, "商业秘密-报价.txt")
    assert "trade_secret_marking" in {d.detector for d in detect(document)}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain 商业秘密", "plain 商业秘密"),
        (os.fsdecode(b"bad\xff.txt"), "bad\ufffd.txt"),
        (os.fsdecode("商业秘密".encode() + b"\xff.docx"), "商业秘密\ufffd.docx"),
        (os.fsdecode("机密".encode("gbk")), "机密"),
        ("lone \ud800 high surrogate", "lone \ufffd high surrogate"),
        ("ctrl \x1b\x00 kept", "ctrl \x1b\x00 kept"),
    ],
)
def test_readable_makes_every_text_part_utf8_encodable(raw, expected):
    assert readable(raw) == expected
    assert TextPart(NAME, raw).text.encode("utf-8").decode("utf-8") == expected
