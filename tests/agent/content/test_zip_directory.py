"""zipread._plain_directory reads a plain zip's central directory (the end record the last 22
bytes, no zip64, nothing prepended, no extra fields or comments, ASCII names without NULs, none
twice) without zipfile, and says None for anything else, which zipfile then parses
(FAST_DIRECTORY). Held to zipfile: whatever it reads, zipfile opens with ZipInfos of exactly
those fields, one a name; on hostile zips (duplicate names, zip64, bytes prepended, an archive
comment holding a second end record, entry comments, extra fields, encrypted and descriptor
flags, NULs, cp437 and UTF-8 names, directories cut, counts, sizes and offsets that lie) and any
1-3 bytes of the directory changed, BoundedZip opens, refuses, names and reads every member
alike either way. Office files are read without zipfile's parse at all."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import zipread
from agent.content.budget import Collector, OutOfBudget, Refused
from agent.content.extract import extract
from tests.agent.content import makers
from tests.agent.content.test_zip_names import _cp437_zip

FIELDS = (
    "filename",
    "orig_filename",
    "flag_bits",
    "compress_type",
    "CRC",
    "compress_size",
    "file_size",
    "header_offset",
)
SLIDE = '<?xml version="1.0"?><p:sld xmlns:p="urn:p" xmlns:a="urn:a"><a:t>机密 x</a:t></p:sld>'.encode()


def _write(
    members: list[tuple[str | zipfile.ZipInfo, bytes]], comment: bytes = b"", compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
        z.comment = comment
    return buffer.getvalue()


def _deck(**options) -> bytes:
    return _write(
        [("[Content_Types].xml", b"<Types/>"), ("ppt/slides/slide1.xml", SLIDE), ("ppt/slides/slide2.xml", SLIDE)],
        **options,
    )


def _info(name: str, **fields) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def _end(data: bytes) -> int:
    return data.rfind(b"PK\x05\x06")


def _patched(data: bytes, at: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


def _hostile() -> dict[str, bytes]:
    good = _deck()
    end, directory = _end(good), good.find(b"PK\x01\x02")
    cases = {"good": good, "stored": _deck(compression=zipfile.ZIP_STORED)}
    with pytest.warns(UserWarning):  # zipfile warns of the duplicate name it writes
        cases["duplicate name"] = _write([("ppt/slides/slide1.xml", SLIDE), ("ppt/slides/slide1.xml", SLIDE + b" ")])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("ppt/slides/slide1.xml", "w", force_zip64=True) as m:
            m.write(SLIDE)
        z.writestr("ppt/slides/slide2.xml", SLIDE)
    cases["zip64 member"] = buffer.getvalue()
    cases["prepended"] = b"MZ stub " * 50 + good
    cases["archive comment"] = _write([("ppt/slides/slide1.xml", SLIDE)], comment=b"x" * 16)
    fake = good[end:]  # a second end record inside the comment
    with_comment = bytearray(good)
    struct.pack_into("<H", with_comment, end + 20, len(fake))
    cases["end record in the comment"] = bytes(with_comment) + fake
    cases["entry comment"] = _write([(_info("ppt/slides/slide1.xml", comment=b"note"), SLIDE)])
    cases["extra field"] = _write([(_info("ppt/slides/slide1.xml", extra=b"UT\x05\x00\x01\x00\x00\x00\x00"), SLIDE)])
    cases["zip64 extra on a small member"] = _write(
        [(_info("ppt/slides/slide1.xml", extra=struct.pack("<HHQ", 1, 8, len(SLIDE))), SLIDE)]
    )
    cases["encrypted flag"] = _patched(good, directory + 8, "<H", 1)
    cases["descriptor flag"] = _patched(good, directory + 8, "<H", 8)
    cases["utf-8 name"] = _write([("ppt/slides/幻灯片1.xml", SLIDE)])
    cases["cp437 name"] = _cp437_zip("ppt/slides/slïde1.xml")
    cases["NUL in a name"] = good.replace(b"slide1.xml", b"slide1\x00xml")
    cases["NUL first in a name"] = good.replace(b"ppt/slides/slide1.xml", b"\x00pt/slides/slide1.xml")
    # zipfile turns a backslash into "/" on Windows only: the agent must read such a name alike on both
    cases["backslash in a name"] = good.replace(b"ppt/slides/slide1.xml", b"ppt\\slides\\slide1.xml")
    cases["directory cut"] = good[: directory + 30] + good[end:]
    cases["count too high"] = _patched(_patched(good, end + 8, "<H", 4), end + 10, "<H", 4)
    cases["count too low"] = _patched(_patched(good, end + 8, "<H", 2), end + 10, "<H", 2)
    cases["disk count differs"] = _patched(good, end + 8, "<H", 2)
    cases["size too high"] = _patched(good, end + 12, "<L", end - directory + 10)
    cases["size too low"] = _patched(good, end + 12, "<L", end - directory - 10)
    cases["offset wrong"] = _patched(good, end + 16, "<L", directory - 1)
    cases["offset past the file"] = _patched(good, end + 16, "<L", 1 << 30)
    cases["bad entry signature"] = good[:directory] + b"PK\x01\x03" + good[directory + 4 :]
    cases["disk number"] = _patched(good, end + 4, "<H", 1)
    cases["local header offset wrong"] = _patched(good, directory + 42, "<L", 3)
    cases["empty zip"] = _write([])
    cases["method 99"] = _patched(good, directory + 10, "<H", 99)
    cases["version needed 99"] = _patched(good, directory + 6, "<H", 99)
    cases["locator before the end"] = good[:end] + b"PK\x06\x07" + b"\x00" * 16 + good[end:]
    # zipfile takes the 20 bytes before the end record for a zip64 locator, here the end of a name
    # (its disk number not 0: BadZipFile), whatever the directory around it says
    cases["locator ending the last name"] = _write(
        [("ppt/slides/slide1.xml", SLIDE), ("ppt/x" + "PK\x06\x07" + "a" * 16, SLIDE)]
    )
    return cases


def _reads(data: bytes) -> tuple:
    """What BoundedZip makes of data: refused and why, or each member's fields, chunks and one chunk."""
    try:
        z = zipread.BoundedZip(io.BytesIO(data))
    except Refused as e:
        return ("refused", str(e))
    rows = []
    for name in sorted(z.names()):
        fields = tuple(getattr(z._info(name), field) for field in FIELDS)
        answers = []
        for read in (
            lambda out, name=name: b"".join(z.chunks(name, out)),
            lambda out, name=name: z.one_chunk(name, out),
        ):
            out = Collector(1 << 20, 30.0)
            try:
                answers.append(("read", read(out), out.bytes_left))
            except (Refused, OutOfBudget) as e:
                answers.append((type(e).__name__, str(e)))
        rows.append((name, fields, *answers))
    return ("opened", rows)


def _both(data: bytes, monkeypatch) -> tuple:
    monkeypatch.setattr(zipread, "FAST_DIRECTORY", False)
    reference = _reads(data)
    monkeypatch.setattr(zipread, "FAST_DIRECTORY", True)
    assert _reads(data) == reference
    return reference


def _as_zipfile_reads(data: bytes) -> None:
    """Whatever _plain_directory reads, zipfile reads alike."""
    f = io.BytesIO(data)
    try:
        entries, cd_bytes = zipread.directory_extent(f)
    except Refused:
        return
    plain = zipread._plain_directory(f, entries, cd_bytes)
    if plain is None:
        return
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        assert len(infos) == len(plain) == len(z.NameToInfo)
        for info in infos:
            member = zipread._Member(info.filename, plain[info.filename])
            assert tuple(getattr(member, f) for f in FIELDS) == tuple(getattr(info, f) for f in FIELDS)


HOSTILE = _hostile()


@pytest.mark.parametrize("case", list(HOSTILE))
def test_each_hostile_zip_reads_as_by_zipfile(case, monkeypatch):
    data = HOSTILE[case]
    _as_zipfile_reads(data)
    _both(data, monkeypatch)


def test_only_plain_zips_are_read_without_zipfile():
    plain = {
        "good",
        "stored",
        "zip64 member",
        "local header offset wrong",
        "method 99",
        "version needed 99",
        "encrypted flag",
        "descriptor flag",
    }  # fmt: skip  (a member's flags, method and local header are its reader's business)
    for case, data in HOSTILE.items():
        f = io.BytesIO(data)
        try:
            extent = zipread.directory_extent(f)
        except Refused:
            continue
        assert (zipread._plain_directory(f, *extent) is not None) == (case in plain), case


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    case=st.sampled_from(["good", "stored", "cp437 name", "entry comment"]),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.binary(min_size=0, max_size=3), st.integers(0, 3)), min_size=1, max_size=3
    ),
)
def test_any_bytes_of_the_directory_changed_read_as_by_zipfile(case, edits, monkeypatch):
    data = bytearray(HOSTILE[case])
    start = data.find(b"PK\x01\x02")
    for where, piece, cut in edits:
        at = start + int(where * (len(data) - start))
        data[at : at + cut] = piece
    data = bytes(data)
    _as_zipfile_reads(data)
    _both(data, monkeypatch)


@pytest.mark.parametrize("kind", ["docx-word", "pptx-powerpoint", "xlsx", "pptx"])
def test_office_files_read_alike_and_skip_zipfiles_parse(kind, tmp_path, monkeypatch):
    from bench import corpus

    (path,) = map(Path, corpus.documents(str(tmp_path), kind, 1, 64 * 1024, seed=4))
    monkeypatch.setattr(zipread, "FAST_DIRECTORY", False)
    reference = extract(str(path), path.name)
    monkeypatch.setattr(zipread, "FAST_DIRECTORY", True)
    parsed = []
    real = zipfile.ZipFile._RealGetContents
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: (parsed.append(1), real(self))[0])
    assert extract(str(path), path.name) == reference and len(reference.parts) > 3
    assert parsed == []


def test_test_documents_read_alike(tmp_path, monkeypatch):
    paths = [makers.docx(tmp_path / "f.docx"), makers.xlsx(tmp_path / "f.xlsx"), makers.pptx(tmp_path / "f.pptx"),
             makers.odf(tmp_path / "f.odt", "odt"), makers.write_zip(tmp_path / "plain.zip", {"a.txt": "机密 text"})]  # fmt: skip
    for path in paths:
        monkeypatch.setattr(zipread, "FAST_DIRECTORY", False)
        reference = extract(str(path), path.name)
        monkeypatch.setattr(zipread, "FAST_DIRECTORY", True)
        assert extract(str(path), path.name) == reference, path.name
