"""A zip whose directory is gone or not found, read by its local headers as 7-Zip reads it
(zipread.local_zip), or said not inspected where it is not read: never a silent nothing."""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import zipfile

import pytest

from agent.content import zipread
from agent.content.budget import Refused
from agent.content.inspect import inspect_source

SECRET = random.Random(3).randbytes(5000)


def _zipped(streamed: bool = False) -> bytes:
    """A zip of a drawing and a text; streamed: written to a pipe, so every member's sizes and
    CRC come after its data (a data descriptor), as zip -, jar or a browser's download write it."""
    out = io.BytesIO()
    target = _Unseekable(out) if streamed else out
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("drawings/impeller.dwg", SECRET)
        z.writestr("notes.txt", b"milled to 12 microns\n" * 300)
    return out.getvalue()


class _Unseekable(io.RawIOBase):
    def __init__(self, out: io.BytesIO) -> None:
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self._out.write(data)


def _directory_start(z: bytes) -> int:
    return z.find(b"PK\x01\x02")


def _without_directory(z: bytes) -> bytes:
    return z[: _directory_start(z)]


def _member_names(data: bytes) -> set[str]:
    inspection = inspect_source(io.BytesIO(data), "holiday.jpg")
    assert inspection.detections == (), inspection.detections
    return {m.name for m in inspection.members if m.sha256}


DAMAGES = {
    "no-directory": lambda z: b"\0" * 64 + z[: _directory_start(z)],
    "directory-cut": lambda z: b"\0" * 64 + z[: _directory_start(z) + 30],
    "16-false-ends": lambda z: b"\0" * 64 + z + (b"PK\x05\x06" + b"\xff" * 40) * 16,
    "40-false-ends": lambda z: b"\0" * 64 + z + (b"PK\x05\x06" + b"\xff" * 40) * 40,
    "behind-text": lambda z: b"a text before the zip\n" * 50 + z[: _directory_start(z)],
    "behind-a-false-header": lambda z: b"\0" * 10 + b"PK\x03\x04" + os.urandom(60) + z[: _directory_start(z)],
}


@pytest.mark.parametrize("streamed", [False, True], ids=["sized", "streamed"])
@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_zip_without_a_directory_found_is_read_by_its_local_headers(damage, streamed):
    data = damage(_zipped(streamed))
    assert zipread.appended(io.BytesIO(data)) is None  # no end record leads to a directory
    assert _member_names(data) == {"drawings/impeller.dwg", "notes.txt"}
    members = {m.name: m for m in inspect_source(io.BytesIO(data), "holiday.jpg").members}
    import hashlib

    assert members["drawings/impeller.dwg"].sha256 == hashlib.sha256(SECRET).hexdigest()


@pytest.mark.skipif(not shutil.which("7z"), reason="7-Zip is not installed")
@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_7zip_reads_those_zips_too(tmp_path, damage):
    """The truth the test above stands on: what the recipient's 7-Zip gives back."""
    staged = tmp_path / "staged.jpg"
    staged.write_bytes(damage(_zipped()))
    subprocess.run(["7z", "x", "-y", f"-o{tmp_path / 'out'}", str(staged)], capture_output=True, check=False)
    assert (tmp_path / "out" / "drawings" / "impeller.dwg").read_bytes() == SECRET


def test_a_zip_from_the_start_and_bytes_without_the_signature_are_not_looked_into():
    z = _zipped()
    assert zipread.local_zip(io.BytesIO(z)) is None
    assert zipread.local_zip(io.BytesIO(b"\0" + os.urandom(100_000).replace(b"PK\x03\x04", b""))) is None


def test_signatures_that_start_no_member_are_not_a_zip():
    """The signature alone (a program that reads zips holds it) with no well-formed member after it."""
    for tail in (os.urandom(60), b"\x14\x00" + b"\0" * 24 + b"\x05\x00\x00\x00" + b"abcde" + os.urandom(10)):
        data = b"\0" * 100 + b"PK\x03\x04" + tail
        assert zipread.local_zip(io.BytesIO(data)) is None
        assert inspect_source(io.BytesIO(data), "x.bin").detections == ()


def test_a_first_member_whose_crc_is_wrong_starts_no_zip():
    z = bytearray(_zipped()[: _directory_start(_zipped())])
    z[14] ^= 0xFF  # the first member's CRC-32
    assert zipread.local_zip(io.BytesIO(b"\0" * 64 + bytes(z))) is not None  # its second member starts one
    second = bytes(z).find(b"PK\x03\x04", 1)
    assert zipread.local_zip(io.BytesIO(b"\0" * 64 + bytes(z[:second]))) is None


def test_more_false_headers_than_are_tried_is_said_not_inspected():
    """Past MAX_LOCAL_STARTS signatures that start no member, the zip may lie further: refused,
    and the file says so (archive_not_inspected, which the fail-closed rules count)."""
    decoys = (b"PK\x03\x04" + b"\xff" * 30) * zipread.MAX_LOCAL_STARTS
    data = b"\0" * 64 + decoys + _zipped()[: _directory_start(_zipped())]
    with pytest.raises(Refused):
        zipread.local_zip(io.BytesIO(data))
    detections = {d.detector: d for d in inspect_source(io.BytesIO(data), "holiday.jpg").detections}
    assert set(detections) == {"archive_not_inspected"}
    assert "local headers" in detections["archive_not_inspected"].sample


def test_fewer_false_headers_than_that_leave_the_zip_read():
    decoys = (b"PK\x03\x04" + b"\xff" * 30) * (zipread.MAX_LOCAL_STARTS - 1)
    data = b"\0" * 64 + decoys + _zipped()[: _directory_start(_zipped())]
    assert _member_names(data) == {"drawings/impeller.dwg", "notes.txt"}


def test_a_stored_member_with_sizes_after_its_data_ends_the_walk():
    """Its end cannot be found but by searching for the descriptor: the members before it are read."""
    z = _zipped()[: _directory_start(_zipped())]
    out = io.BytesIO()
    with zipfile.ZipFile(_Unseekable(out), "w", zipfile.ZIP_STORED) as stored:
        stored.writestr("later.bin", b"x" * 100)
    data = b"\0" * 64 + z + out.getvalue()[: _directory_start(out.getvalue())]
    assert _member_names(data) == {"drawings/impeller.dwg", "notes.txt"}


def test_the_joined_file_reads_across_its_parts():
    f = io.BytesIO(b"0123456789")
    joined = zipread.Joined(zipread.Window(f, 2, 6), b"abc")
    assert joined.read() == b"2345abc"
    joined.seek(3)
    assert joined.read(3) == b"5ab"
    assert joined.seek(0, os.SEEK_END) == 7


def test_a_member_whose_descriptor_disagrees_with_its_data_starts_no_zip():
    """A streamed member's descriptor must give the CRC-32 and sizes its data inflates to: one
    that does not ends the walk there (here the first, so the zip starts at the next member)."""
    z = bytearray(_without_directory(_zipped(streamed=True)))
    descriptor = z.find(b"PK\x07\x08")
    z[descriptor + 4] ^= 0xFF  # its CRC-32
    assert _member_names(b"\0" * 64 + bytes(z)) == {"notes.txt"}
