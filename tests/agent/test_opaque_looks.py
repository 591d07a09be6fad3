"""What the lane looks for in an opaque file as it hashes it (opaque.Looker): a run of text or a
zip's local header, either of which a worker reads. Chunk by chunk it answers what a look at the
whole file answers, and a file holding either goes to a worker, which finds what is there."""

from __future__ import annotations

import io
import random
import time
import zipfile

from hypothesis import given, settings
from hypothesis import strategies as st

from agent import opaque
from agent.content import textruns
from agent.hashing import Hasher
from agent.inspector import InProcessInspector, open_regular
from agent.lanes import Job, Lanes
from agent.opaque import Looker, looked_at, name_only

REPORT = " ".join(f"Impeller blade {i} is milled to {i * 41 % 997} microns." for i in range(40))


def _chunked(data: bytes, cuts: list[int]) -> bool:
    looker = Looker()
    at = 0
    for cut in sorted({min(c, len(data)) for c in cuts}) + [len(data)]:
        looker(memoryview(data)[at:cut])
        at = max(at, cut)
    return looker.found


def _with(data: bytes, piece: bytes, where: int) -> bytes:
    where = min(where, len(data))
    return data[:where] + piece + data[where:]


pieces = st.sampled_from(
    [
        b"",
        REPORT.encode()[:64],
        REPORT.encode()[:63],
        "商业秘密，严禁外传。".encode("gb18030") * 5,
        b"PK\x03\x04",
        b"PK\x03",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=3000), pieces, st.integers(0, 3000), st.lists(st.integers(0, 3100), max_size=8))
def test_the_looks_chunk_by_chunk_answer_what_a_look_at_the_whole_answers(noise, piece, where, cuts):
    data = _with(bytes(b | 0x80 if b < 0x20 else b for b in noise) if where % 2 else noise, piece, where)
    assert _chunked(data, cuts) == looked_at(data)


def test_a_local_header_past_where_a_worker_looks_is_not_looked_for(monkeypatch):
    monkeypatch.setattr(opaque, "LOCAL_WITHIN", 1000)
    data = b"\0" * 998 + b"PK\x03\x04"
    assert not _chunked(data, [500, 999])
    assert _chunked(b"\0" * 996 + b"PK\x03\x04", [998])


def test_a_run_of_text_across_two_chunks_is_seen():
    data = b"\0" * 100 + REPORT.encode()[:70] + b"\0" * 100
    assert looked_at(data)
    assert _chunked(data, [135])
    assert not _chunked(data.replace(REPORT.encode()[:70], REPORT.encode()[:63]), [135])


def _zip_without_directory() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("drawings/impeller.dwg", random.Random(2).randbytes(4000))
    data = out.getvalue()
    return b"\0" * 64 + data[: data.find(b"PK\x01\x02")]


class _CountingInspector(InProcessInspector):
    calls: list[str] = []

    def inspect(self, fd, name):
        self.calls.append(name)
        return super().inspect(fd, name)


def test_a_lane_sends_an_opaque_file_holding_text_or_a_zip_to_its_worker(tmp_path, monkeypatch):
    monkeypatch.setattr(textruns, "FAST_RUNS", True)
    _CountingInspector.calls = []
    files = {
        "photo.jpg": b"\0" + random.Random(1).randbytes(200_000),
        "draft.txt": b"\0" * 8192 + REPORT.encode(),
        "holiday.jpg": _zip_without_directory(),
    }
    lanes = Lanes(Hasher(), _CountingInspector)
    lanes.start()
    try:
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
            fd, st_ = open_regular(str(tmp_path / name))
            assert lanes.submit(Job(str(tmp_path / name), fd, st_))
        found, deadline = [], time.monotonic() + 10
        while len(found) < len(files) and time.monotonic() < deadline:
            found += lanes.done()
            time.sleep(0.01)
    finally:
        lanes.stop()
    by_name = {d.job.path.rsplit("/", 1)[1]: d for d in found}
    assert sorted(_CountingInspector.calls) == ["draft.txt", "holiday.jpg"]
    assert by_name["photo.jpg"].inspection == name_only("photo.jpg")
    assert by_name["draft.txt"].inspection.fingerprints
    assert [m.name for m in by_name["holiday.jpg"].inspection.members] == ["drawings/impeller.dwg"]
