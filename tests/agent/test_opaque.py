"""Files no parser reads anything from are answered without an inspection worker, and the answer
is the one a worker gives: the same type (none), the same detections of the name."""

from __future__ import annotations

import codecs
import io
import os
import random
import time

import pytest

from agent.content import filetype
from agent.content.inspect import inspect_source
from agent.hashing import Hasher
from agent.inspector import InProcessInspector, open_regular
from agent.lanes import Job, Lanes
from agent.opaque import _TYPED_STARTS, HEAD_BYTES, is_opaque, name_only

NAMES = [
    "IMG_0001.jpg",
    "pump.docx",  # a document's name on opaque bytes: no type, so no mismatch either
    "绝密★10年 泵体图纸.dwg",
    "商业秘密★5年-报价.bin",
    "CONFIDENTIAL - trade secret.dat",
    "110101199003074477-张三.bin",  # an identifier in the name
    "13800138000.zip",
    "no extension",
    "\udcff\udcfe-odd bytes.bin",  # a name that is not UTF-8 (os.fsdecode's escapes)
]


def _random_binary(seed: int, size: int) -> bytes:
    data = bytearray(random.Random(seed).randbytes(size))
    if size:
        data[size // 2] = 0  # random bytes of any size hold a NUL: these surely do
    return bytes(data)


@pytest.mark.parametrize("name", NAMES)
def test_an_opaque_file_gets_what_a_worker_would_answer(tmp_path, name):
    path = tmp_path / "f"
    path.write_bytes(_random_binary(len(name), 20_000))
    assert is_opaque(path.read_bytes()[:HEAD_BYTES])
    fd, _ = open_regular(str(path))
    try:
        assert name_only(name) == InProcessInspector().inspect(fd, name)
    finally:
        os.close(fd)


def test_a_marking_in_an_opaque_files_name_is_still_found():
    assert {d.detector for d in name_only("绝密★10年 泵体图纸.dwg").detections} == {"state_secret_marking"}
    assert {d.detector for d in name_only("商业秘密-报价.bin").detections} == {"trade_secret_marking"}


def test_an_empty_file_is_opaque():
    assert is_opaque(b"")
    assert name_only("x.docx") == inspect_source(io.BytesIO(b""), "x.docx")


@pytest.mark.parametrize(
    "head",
    [
        b"plain text, no NUL at all\n" * 10,
        "中文文本，没有零字节".encode("gb18030") * 10,
        codecs.BOM_UTF16_LE + "UTF-16 text has NULs".encode("utf-16-le"),
        codecs.BOM_UTF16_BE + "UTF-16 text has NULs".encode("utf-16-be"),
        b"\0\0%PDF-1.7\n" + b"\0" * 100,  # PDF after two bytes (a CRLF) is looked for
        b"\0" * 257 + b"ustar\0" + b"\0" * 100,  # tar
    ]
    + [start + b"\0" * 600 for start in _TYPED_STARTS],
)
def test_anything_a_type_or_text_could_be_read_from_goes_to_a_worker(head):
    assert not is_opaque(head)


def test_opaque_means_no_type_for_random_heads():
    """Random heads, and random heads after each known start: whenever is_opaque says so, the
    type detection finds no type either."""
    rng = random.Random(7)
    heads = [rng.randbytes(rng.choice([1, 7, 100, 4096, HEAD_BYTES])) for _ in range(300)]
    heads += [start + rng.randbytes(500) for start in _TYPED_STARTS for _ in range(3)]
    seen_opaque = 0
    for head in heads:
        if is_opaque(head):
            seen_opaque += 1
            assert filetype.detect_file(io.BytesIO(head)) is None
    assert seen_opaque > 100  # the short ones often hold no NUL: they might be text


class _CountingInspector(InProcessInspector):
    calls: list[str] = []

    def inspect(self, fd, name):
        self.calls.append(name)
        return super().inspect(fd, name)


def test_a_lane_sends_only_files_with_something_to_parse_to_its_worker(tmp_path):
    _CountingInspector.calls = []
    photo, note = tmp_path / "IMG_0001.jpg", tmp_path / "note.txt"
    photo.write_bytes(_random_binary(1, 50_000))
    note.write_bytes("机密 报价单\n".encode() * 100)
    lanes = Lanes(Hasher(), _CountingInspector)
    lanes.start()
    try:
        for path in (photo, note):
            fd, st = open_regular(str(path))
            assert lanes.submit(Job(str(path), fd, st))
        found, deadline = [], time.monotonic() + 10
        while len(found) < 2 and time.monotonic() < deadline:
            found += lanes.done()
            time.sleep(0.01)
    finally:
        lanes.stop()
    by_name = {d.job.path.rsplit("/", 1)[1]: d for d in found}
    assert _CountingInspector.calls == ["note.txt"]
    assert by_name["IMG_0001.jpg"].inspection == name_only("IMG_0001.jpg")
    assert by_name["note.txt"].inspection.file_type == "text"
