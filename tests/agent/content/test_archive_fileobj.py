"""walk_archive reads an already-open file: from offset 0, never re-opening a path, never closing it.

The pipeline opens each egress file once and passes that descriptor to every reader; a reader that
re-opened by path could read a different file (renamed or replaced in between) than the one hashed.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
import zipfile

import py7zr
import pytest

from agent.content.archive import Limits, walk_archive

DRAWING = b"AC1032 pump impeller rev C\n" + bytes(range(256)) * 40


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("rev3/pump.dwg", DRAWING)
    return buffer.getvalue()


def tar_bytes(mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        info = tarfile.TarInfo("rev3/pump.dwg")
        info.size = len(DRAWING)
        tar.addfile(info, io.BytesIO(DRAWING))
    return buffer.getvalue()


def seven_zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as z:
        z.writestr(DRAWING, "rev3/pump.dwg")
    return buffer.getvalue()


CASES = [
    ("zip", zip_bytes),
    ("tar", lambda: tar_bytes("w")),
    ("gzip", lambda: tar_bytes("w:gz")),
    ("bzip2", lambda: tar_bytes("w:bz2")),
    ("xz", lambda: tar_bytes("w:xz")),
    ("7z", seven_zip_bytes),
]


@pytest.mark.parametrize(("file_type", "make"), CASES)
def test_an_open_unlinked_file_is_walked_from_offset_zero_and_left_open(file_type, make):
    with tempfile.TemporaryFile() as f:  # no path at all: nothing can re-open it
        f.write(make())
        f.seek(123)  # wherever another reader left it
        listing = walk_archive(f, file_type, Limits())
        assert not f.closed
        assert listing.problems == []
        assert {m.name: m.sha256 for m in listing.members} == {"rev3/pump.dwg": hashlib.sha256(DRAWING).hexdigest()}
        f.seek(0)  # still usable by the next reader
        assert f.read(2) in (b"PK", b"7z", b"\x1f\x8b", b"BZ", b"\xfd7", b"re")


def test_a_descriptor_whose_path_was_replaced_is_still_the_one_read(tmp_path):
    path = tmp_path / "drawings.zip"
    path.write_bytes(zip_bytes())
    with open(path, "rb") as f:
        os.replace(tmp_path / "drawings.zip", tmp_path / "moved.zip")
        path.write_bytes(b"not a zip at all")
        listing = walk_archive(f, "zip")
        assert not f.closed
    assert [m.name for m in listing.members] == ["rev3/pump.dwg"]


def test_a_bytesio_works_and_a_path_still_works(tmp_path):
    data = zip_bytes()
    assert [m.name for m in walk_archive(io.BytesIO(data), "zip").members] == ["rev3/pump.dwg"]
    path = tmp_path / "drawings.zip"
    path.write_bytes(data)
    assert [m.name for m in walk_archive(str(path), "zip").members] == ["rev3/pump.dwg"]


def test_an_unreadable_descriptor_is_a_problem_not_an_exception(tmp_path):
    path = tmp_path / "drawings.zip"
    path.write_bytes(zip_bytes())
    with open(path, "wb") as f:  # open for writing only: every read fails
        listing = walk_archive(f, "zip")  # type: ignore[arg-type]
    assert listing.members == [] and [p.kind for p in listing.problems] == ["parse_error"]
