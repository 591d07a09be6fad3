from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content.filetype import detect, looks_like_text, type_mismatch
from tests.agent.content import makers


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 2
        t.addfile(info, io.BytesIO(b"hi"))
    return buf.getvalue()


def _plain_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<x/>")  # OOXML-looking, but no [Content_Types].xml
    return buf.getvalue()


BYTES_CASES = [
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"),
    ("zip", _plain_zip()),
    ("7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24)),
    ("gzip", gzip.compress(b"hello")),
    ("bzip2", bz2.compress(b"hello")),
    ("xz", lzma.compress(b"hello")),
    ("tar", _tar()),
    ("rar", b"Rar!\x1a\x07\x01\x00" + bytes(16)),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17)),
    ("jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(8)),
    ("gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
    (
        "bmp",
        b"BM"
        + (70).to_bytes(4, "little")
        + bytes(4)
        + (54).to_bytes(4, "little")
        + (40).to_bytes(4, "little")
        + bytes(40),
    ),
    ("tiff", b"II*\x00\x08\x00\x00\x00" + bytes(16)),
    ("tiff", b"MM\x00*\x00\x00\x00\x08" + bytes(16)),
    ("dwg", b"AC1032\x00\x00\x00\x00\x00\x06\x01" + bytes(32)),
    ("dxf", b"  0\r\nSECTION\r\n  2\r\nHEADER\r\n  9\r\n$ACADVER\r\n  1\r\nAC1015\r\n"),
    ("exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(48) + b"PE\x00\x00"),
    ("elf", b"\x7fELF\x02\x01\x01\x00" + bytes(56)),
    ("text", "机密 第一行\n第二行\n".encode()),
    ("text", codecs.BOM_UTF8 + "带BOM\n".encode()),
    ("text", "内部资料，注意保密\r\n".encode("gbk")),
    ("text", codecs.BOM_UTF16_LE + "小端 UTF-16\n".encode("utf-16-le")),
    ("text", codecs.BOM_UTF16_BE + "大端 UTF-16\n".encode("utf-16-be")),
    ("text", b"BMW annual report\n"),  # starts like a BMP; it is text
    ("text", b"MZ is not always a program\n"),
    (None, bytes(range(256)) * 4),
    (None, b""),
]


@pytest.mark.parametrize(("expected", "data"), BYTES_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(BYTES_CASES)])
def test_type_from_bytes(tmp_path: Path, expected: str | None, data: bytes) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    assert detect(str(path)) == expected


@pytest.mark.parametrize(
    ("expected", "make"),
    [
        ("docx", makers.docx),
        ("xlsx", makers.xlsx),
        ("pptx", makers.pptx),
        ("odt", lambda p: makers.odf(p, "odt")),
        ("ods", lambda p: makers.odf(p, "ods")),
        ("odp", lambda p: makers.odf(p, "odp")),
        ("pdf", makers.pdf),
    ],
)
def test_office_types_are_told_apart_by_their_members(tmp_path: Path, expected: str, make) -> None:
    assert detect(str(make(tmp_path / "renamed.jpg"))) == expected


def test_odf_with_mimetype_not_first_is_still_recognised(tmp_path: Path) -> None:
    path = makers.write_zip(
        tmp_path / "x.zip", {"content.xml": "<x/>", "mimetype": "application/vnd.oasis.opendocument.spreadsheet"}
    )
    assert detect(str(path)) == "ods"


def test_zip_with_a_huge_directory_is_a_plain_zip(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<x/>")
        for i in range(10_001):
            z.writestr(f"word/{i}", b"")
    assert detect(str(path)) == "zip"


def test_corrupt_zip_is_a_plain_zip(tmp_path: Path) -> None:
    path = tmp_path / "cut.docx"
    path.write_bytes(makers.docx(tmp_path / "whole.docx").read_bytes()[:200])
    assert detect(str(path)) == "zip"


def test_text_heuristic_rejects_binary_with_control_characters() -> None:
    assert not looks_like_text(b"abc\x01\x02\x03\x04" * 10)
    assert looks_like_text(b"a\tb\r\n\x0c")


@pytest.mark.parametrize(
    ("file_type", "extension", "expected"),
    [
        ("docx", "jpg", True),  # holiday.jpg holding a Word document
        ("docx", "DOCX", False),
        ("docx", ".docx", False),
        ("docx", "docm", False),
        ("xlsx", "xls", True),
        ("pptx", "pptx", False),
        ("zip", "zip", False),
        ("zip", "txt", True),
        ("png", "docx", True),
        ("jpeg", "JPG", False),
        ("jpeg", "jpeg", False),
        ("pdf", "pdf", False),
        ("pdf", "tmp", True),
        ("7z", "dat", True),
        ("gzip", "tgz", False),
        ("dwg", "dwg", False),
        ("dxf", "dxf", False),
        ("exe", "exe", False),
        ("exe", "txt", True),
        ("elf", "", False),
        ("elf", "so", False),
        ("text", "csv", False),
        ("text", "txt", False),
        ("text", "md", False),
        ("text", "log", False),
        ("text", "json", False),
        ("text", "xml", False),
        ("text", "yaml", False),
        ("text", "ini", False),
        ("text", "dxf", False),
        ("text", "py", False),
        ("text", "", False),
        ("text", "docx", True),
        ("text", "pdf", True),
        ("text", "jpg", True),
        ("text", "dat", False),  # winmail.dat's extension names any data too
        ("ole2", "dat", False),
        ("tnef", "dat", False),
        ("tnef", "jpg", True),
        ("eml", "txt", False),  # saved mail is text
        ("eml", "jpg", True),
        ("mbox", "", False),
        (None, "docx", None),
        ("docx", None, None),
        ("some-new-type", "x", None),
    ],
)
def test_type_mismatch(file_type: str | None, extension: str | None, expected: bool | None) -> None:
    assert type_mismatch(file_type, extension) is expected


_PREFIXES = [b"", b"%PDF-1.7\n", b"7z\xbc\xaf\x27\x1c\x00\x04", b"\x1f\x8b\x08\x00", b"BZh91AY&SY", b"\xfd7zXZ\x00\x00",
             b"Rar!\x1a\x07\x01\x00", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM6\x00", b"II*\x00",
             b"MM\x00*", b"AC1032", b"AC1015", b"MZ\x90\x00"]  # fmt: skip


@given(st.sampled_from(_PREFIXES), st.binary(min_size=0, max_size=2048))
@settings(max_examples=400, deadline=None)
def test_the_signature_gate_never_hides_what_puremagic_finds(prefix, rest):
    """puremagic is asked only when a signature of a mapped type is present: never a miss."""
    from agent.content.filetype import _magic, _may_have_magic

    head = (prefix + rest)[:8192]
    if _magic(head) is not None:
        assert _may_have_magic(head)


def test_a_tar_header_passes_the_gate(tmp_path):
    from agent.content.filetype import _may_have_magic

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("a.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    assert _may_have_magic(buffer.getvalue()[:8192])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 40))
def test_few_controls_counts_as_the_byte_by_byte_reference(data, controls):
    """The translate count gives the byte-by-byte answer, at and around the 1% line."""
    from agent.content import filetype

    data += bytes([7]) * controls + b"a" * (controls * 99)
    expected = sum(b in filetype._CONTROL for b in data) * 100 <= len(data)
    assert filetype._few_controls(data) is expected


TEXT = ("Impeller blade 7 is milled to 41 microns. 机密★5年 叶轮图纸 第三版\n" * 200).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"\0" + TEXT,  # one NUL put before a classified text made it untyped: neither fingerprinted nor searched
        TEXT.replace(b". ", b".\0 "),  # NULs through it
        TEXT[:4000] + b"\0" * 3000 + TEXT[4000:],  # a run of them
        b"\x01" * 100 + TEXT,  # control bytes before it: over 1% of its head, which was the limit
        b"\0" + b"\x01" * 6 + TEXT,  # a NUL and controls: opaque to the lane before
    ],
    ids=["one-before", "sprinkled", "a-run", "controls-before", "nul-and-controls"],
)
def test_a_text_with_nuls_is_text_and_reads_as_the_text_without_them(tmp_path: Path, data: bytes) -> None:
    from agent.content.extract import extract
    from agent.content.inspect import TEXT_PLACES, inspect_file

    path = tmp_path / "draft.bin"
    path.write_bytes(data)
    assert detect(str(path)) == "text"
    plain = tmp_path / "plain.txt"
    plain.write_bytes(TEXT)
    if b"\x01" not in data:  # NULs are left out; other control bytes stay as characters
        assert extract(str(path), path.name).text_of(*TEXT_PLACES) == extract(str(plain), plain.name).text_of(*TEXT_PLACES)
    assert inspect_file(str(path)).fingerprints == inspect_file(str(plain)).fingerprints  # what lineage compares


def test_utf16_without_a_byte_order_mark_reads_as_its_latin_text(tmp_path: Path) -> None:
    from agent.content.text import decode

    data = "Impeller drawing, rev 3; confidential\n".encode("utf-16-le") * 100
    assert looks_like_text(data[:8192])
    assert decode(data) == "Impeller drawing, rev 3; confidential\n" * 100


@pytest.mark.parametrize(
    "head",
    [
        b"\0" * 8192,  # a sparse image
        b"\0" * 7000 + b"abc" * 64,  # mostly NULs: a quarter at least must be something else
        b"\0" + b"abcdefghij",  # too little beside the NUL to call it text
        b"\0" + bytes(range(1, 256)) * 32,  # other control bytes at once
        b"abc\x01\x02" * 1600,  # control bytes over a quarter of the head: a binary's structure
        TEXT[:600] + b"\0" + bytes(range(1, 32)) * 200,  # text first, a binary's control bytes after the probe
    ],
)
def test_a_head_with_nuls_that_is_not_text(head: bytes) -> None:
    assert not looks_like_text(head)


def test_random_heads_with_a_nul_are_no_text() -> None:
    """The NUL tolerance must not type a burst's random files (compressed, encrypted) as text. (A
    few dozen random bytes may read as GB18030 by chance, with or without a NUL, as before.)"""
    import random

    rng = random.Random(7)
    heads = [b"\0" + rng.randbytes(rng.choice((300, 600, 8191))) for _ in range(3000)]
    assert not [h for h in heads if looks_like_text(h)]
