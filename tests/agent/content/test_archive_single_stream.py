"""A gzip, bzip2, xz, Zstandard, lzma or zlib file that holds no tar is one compressed file (`gzip pump.dwg`, a log, a
Debian changelog): its content is the one member, hashed and inspected, not a corrupt archive.
Before, every such file was a parse_error, so a drawing compressed alone was not traced to its
source, and any .gz copied out raised the uninspectable alert."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import random
import shutil
import subprocess
import tarfile
import zlib

import pytest

from agent.content import filetype
from agent.content.archive import CORRUPT, SKIPPED, STREAM_MEMBER, Limits, walk_archive
from agent.content.inspect import inspect_file

DRAWING = b"AC1032 pump impeller rev C\n" + bytes(range(256)) * 40
NOTE = "商业秘密\n涂层配方 v7\n".encode()


def _gzip_named(data: bytes, name: str, extra: bytes = b"") -> bytes:
    """gzip's own format with FNAME (and FEXTRA when given), as `gzip FILE` writes it."""
    flags = 0x08 | (0x04 if extra else 0)
    head = b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\0\x03"
    if extra:
        head += len(extra).to_bytes(2, "little") + extra
    body = gzip.compress(data)[10:]  # the deflate stream and the trailer of a header with no flags
    return head + name.encode("latin-1") + b"\0" + body


@pytest.mark.parametrize(
    ("file_type", "data", "name"),
    [
        ("gzip", _gzip_named(DRAWING, "pump.dwg"), "pump.dwg"),
        ("gzip", _gzip_named(DRAWING, "C:\\drawings\\pump.dwg", extra=b"xx\x02\x00ab"), "pump.dwg"),
        ("gzip", gzip.compress(DRAWING), STREAM_MEMBER),  # gzip -n, or Python's gzip: no name kept
        ("bzip2", bz2.compress(DRAWING), STREAM_MEMBER),
        ("xz", lzma.compress(DRAWING), STREAM_MEMBER),
    ],
)
def test_a_file_compressed_alone_is_its_one_member(file_type, data, name):
    listing = walk_archive(io.BytesIO(data), file_type)
    assert listing.problems == []
    [member] = listing.members
    assert (member.name, member.size, member.sha256) == (name, len(DRAWING), hashlib.sha256(DRAWING).hexdigest())


def test_a_marking_in_a_compressed_text_is_found(tmp_path):
    path = tmp_path / "formula.txt.gz"
    path.write_bytes(_gzip_named(NOTE * 20, "formula.txt"))
    inspection = inspect_file(str(path))
    assert "trade_secret_marking" in {d.detector for d in inspection.detections}
    assert "parse_error" not in {d.detector for d in inspection.detections}
    assert [m.name for m in inspection.members] == ["formula.txt"]


def test_a_compressed_tar_is_still_walked_member_by_member():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("a.dwg", DRAWING), ("b.txt", NOTE)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    listing = walk_archive(io.BytesIO(buffer.getvalue()), "gzip")
    assert [m.name for m in listing.members] == ["a.dwg", "b.txt"] and listing.problems == []


def test_a_compressed_file_nested_in_a_zip_is_named_under_it():
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("out/pump.dwg.gz", _gzip_named(DRAWING, "pump.dwg"))
    listing = walk_archive(io.BytesIO(buffer.getvalue()), "zip")
    names = {m.name: m.sha256 for m in listing.members}
    assert names["out/pump.dwg.gz!/pump.dwg"] == hashlib.sha256(DRAWING).hexdigest()


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "a\nb", "", "..", "x" * 2000], ids=["folders", "newline", "empty", "dots", "too-long"]
)
def test_a_name_the_header_holds_is_used_only_when_plain(name):
    data = _gzip_named(DRAWING, name) if name else gzip.compress(DRAWING)
    [member] = walk_archive(io.BytesIO(data), "gzip").members
    assert member.name == {"../../etc/passwd": "passwd"}.get(name, STREAM_MEMBER)
    assert member.sha256 == hashlib.sha256(DRAWING).hexdigest()


def test_a_compressed_file_over_a_members_allowance_is_skipped_and_named():
    data = gzip.compress(b"\0" * 3_000_000)
    listing = walk_archive(io.BytesIO(data), "gzip", Limits(max_member_bytes=1_000_000))
    assert [(p.kind, p.where) for p in listing.problems] == [(SKIPPED, STREAM_MEMBER)] and listing.members == []


def test_a_damaged_compressed_file_is_still_corrupt():
    data = gzip.compress(DRAWING)
    listing = walk_archive(io.BytesIO(data[:200]), "gzip")
    assert {p.kind for p in listing.problems} == {CORRUPT} and listing.members == []


def test_zeros_before_a_compressed_drawing_do_not_make_it_an_empty_tar():
    """A tar ends at a block of zeros: 70 KB of them before the drawing read as an empty tar."""
    content = bytes(70_000) + DRAWING
    listing = walk_archive(io.BytesIO(gzip.compress(content)), "gzip")
    assert [(m.name, m.sha256) for m in listing.members] == [(STREAM_MEMBER, hashlib.sha256(content).hexdigest())]


def test_a_classified_drawing_gzipped_onto_a_stick_is_traced_to_it(tmp_path):
    """End to end: the pipeline reports the .gz as holding the classified drawing."""
    import time

    from tests.agent.test_pipeline import Rig

    rig = Rig(tmp_path)
    try:
        source = rig.classified / "impeller.dwg"
        (rig.usb / "holiday.gz").write_bytes(_gzip_named(source.read_bytes(), "impeller.dwg"))
        deadline = time.monotonic() + 10
        while not (events := rig.events("egress.file")):
            assert time.monotonic() < deadline, "the .gz was never reported"
            time.sleep(0.05)
        [event] = events
        assert (event.get("match") or {}).get("method") == "archive"
        assert event["source_path"] == str(source)
    finally:
        rig.close()


# --- streams a helper's survey found leaving unseen: Zstandard (tar --zstd, Windows 11's tar.zst),
# the old lzma tool's format, zlib streams (git's loose objects), and LZ4 (no decoder: flagged) ---

RANDOM_DRAWING = b"AC1032" + random.Random(1).randbytes(20_000)  # incompressible: a real drawing's kind


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("tool", "args", "file_type"),
    [("zstd", ["-q", "-c"], "zstd"), ("xz", ["-q", "-c", "--format=lzma"], "lzma")],
    ids=["zstd", "lzma"],
)
def test_the_tools_streams_are_typed_and_read(tmp_path, tool, args, file_type):
    """What the command-line tools write (zstd, `xz --format=lzma`, as `lzma` does), alone and
    over a tar; before, each was an unknown binary: its name checked, nothing else."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    for data, names in ((RANDOM_DRAWING, [STREAM_MEMBER]), (_tar({"rev3/pump.dwg": RANDOM_DRAWING}), ["rev3/pump.dwg"])):
        path = tmp_path / "packed"
        path.write_bytes(subprocess.run([tool, *args], input=data, capture_output=True, check=True).stdout)
        assert filetype.detect(str(path)) == file_type
        listing = walk_archive(str(path), file_type)
        assert listing.problems == []
        assert [(m.name, m.sha256) for m in listing.members] == [(n, hashlib.sha256(RANDOM_DRAWING).hexdigest()) for n in names]


def test_a_drawing_committed_to_a_repository_is_traced_in_its_loose_object(tmp_path):
    """git keeps a committed file as a zlib stream of a header (`blob 20006\\0`) and the file: the
    member is the file, so a repository copied to a stick holds the drawing by its own hash."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pump.dwg").write_bytes(RANDOM_DRAWING)
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}
    for command in (["init", "-q"], ["add", "pump.dwg"], ["commit", "-q", "-m", "drawing"]):
        subprocess.run(["git", *command], cwd=repo, env=env, check=True, capture_output=True)
    blob = subprocess.run(["git", "rev-parse", "HEAD:pump.dwg"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    path = repo / ".git" / "objects" / blob[:2] / blob[2:]
    assert filetype.detect(str(path)) == "zlib"
    [member] = walk_archive(str(path), "zlib").members
    assert member.sha256 == hashlib.sha256(RANDOM_DRAWING).hexdigest()
    assert filetype.type_mismatch("zlib", "") is False  # an object's name has no extension: nothing hidden


def test_an_lz4_frame_is_flagged_not_passed_over(tmp_path):
    """No decoder of LZ4 is at hand: a file of it is archive_not_inspected (the uninspectable
    rules), not an unknown binary with nothing in it."""
    path = tmp_path / "pump.dwg.lz4"
    path.write_bytes(b"\x04\x22\x4d\x18\x64\x40\xa7" + RANDOM_DRAWING)
    assert "archive_not_inspected" in {d.detector for d in inspect_file(str(path)).detections}


def test_bytes_that_only_start_like_a_headerless_stream_are_no_stream():
    """zlib's two header bytes turn up at the start of random bytes; LZMA's properties too: only a
    head that decodes is typed so."""
    rng = random.Random(3)
    for _ in range(300):
        head = rng.choice([b"\x78\x9c", b"\x78\xda", b"\x5d\x00\x00\x80\x00"]) + rng.randbytes(4000)
        assert filetype.detect_file(io.BytesIO(head)) is None
    assert filetype.detect_file(io.BytesIO(zlib.compress(b"x" * 100))) == "zlib"
    # a Mac's printer settings in a pptx (printerSettings1.bin: 02 00 00 00 01, a "16 MB dictionary")
    # passed LZMA's header checks; typed by them alone, python-pptx's source became three corrupt members
    settings = b"\x02\x00\x00\x00\x01\x00\x00\x00\xaa\x19\x00\x00" + b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist>' * 50
    assert filetype.detect_file(io.BytesIO(settings)) != "lzma"


def test_streams_the_first_typing_missed_are_typed(tmp_path):
    """An attacker's review found each of these decompressed by its tool and read by name only:
    a Zstandard (or LZ4) skippable frame first; an lzma file of a 3 MiB dictionary (`xz
    --format=lzma --lzma1=dict=3MiB`: one and a half times a power of two); a zlib stream whose
    first 8 KB are empty stored blocks; LZ4's legacy frame (`lz4 -l`)."""
    skippable = b"\x50\x2a\x4d\x18" + (16).to_bytes(4, "little") + bytes(16)
    empty_blocks = b"\x78\x01" + b"\x00\x00\x00\xff\xff" * 1700
    inflated = zlib.decompressobj(-15)
    inflated.decompress(empty_blocks[2:])
    assert filetype.detect_file(io.BytesIO(skippable + b"\x28\xb5\x2f\xfd" + bytes(20))) == "zstd"
    assert filetype.detect_file(io.BytesIO(skippable + b"\x04\x22\x4d\x18" + bytes(20))) == "lz4"
    assert filetype.detect_file(io.BytesIO(b"\x02\x21\x4c\x18" + RANDOM_DRAWING[:4000])) == "lz4"
    assert filetype.detect_file(io.BytesIO(empty_blocks + zlib.compress(RANDOM_DRAWING)[2:])) == "zlib"
    if shutil.which("xz") is not None:
        packed = subprocess.run(["xz", "-q", "-c", "--format=lzma", "--lzma1=dict=3MiB"], input=RANDOM_DRAWING, capture_output=True, check=True).stdout
        assert filetype.detect_file(io.BytesIO(packed)) == "lzma"
        path = tmp_path / "a.lzma"
        path.write_bytes(packed)
        assert [m.sha256 for m in walk_archive(str(path), "lzma").members] == [hashlib.sha256(RANDOM_DRAWING).hexdigest()]


def test_typing_a_bomb_decodes_only_a_bounded_head():
    """Telling a headerless stream decoded its whole 8 KB head: an lzma bomb's head came to some
    55 MB, in the agent's own process (the lane asks the type of every file of a burst); and its
    decoder takes its dictionary's size (a crafted header's 1.5 GB): the head is decoded with a
    dictionary of TRIAL_DICTIONARY_BYTES (what it decodes reaches back no further)."""
    import tracemalloc

    zeros = bytes(100 * 1024 * 1024)
    for preset, dictionary in ((6, 8 << 20), (9, 64 << 20)):
        bomb = lzma.compress(zeros, format=lzma.FORMAT_ALONE, preset=preset)[: filetype.HEAD_BYTES]
        assert int.from_bytes(bomb[1:5], "little") == dictionary
        tracemalloc.start()
        try:
            assert filetype.detect_file(io.BytesIO(bomb)) == "lzma"
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2 * filetype.TRIAL_DICTIONARY_BYTES + 4 * filetype.HEAD_DECODED_BYTES, (preset, peak)
    crafted = b"\x5d" + (3 << 29).to_bytes(4, "little") + b"\xff" * 8 + bytes(100)  # a 1.5 GB dictionary
    assert filetype.detect_file(io.BytesIO(crafted)) == "lzma"
    # read by a worker within MAX_LZMA_DECODER_BYTES: refused, said (not 1.5 GB taken)
    assert [(p.kind, "limit" in p.why) for p in walk_archive(io.BytesIO(crafted), "lzma").problems] == [(CORRUPT, True)]
