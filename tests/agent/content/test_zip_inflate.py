"""Members inflated through zlib-ng (zipread.FAST_INFLATE) give what zipfile's own reader with
stdlib zlib gives (the reference): the same chunks, the same budget taken, the same truncation,
and the same refusal with the same message for a damaged member (a wrong CRC-32, a size that
lies, a corrupt or cut deflate stream, a bomb), over members whole, streamed by chunks and read
in one chunk, and over zip archives' members."""

from __future__ import annotations

import io
import random
import struct
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import zipread
from agent.content.budget import Collector, OutOfBudget, Refused

pytestmark = pytest.mark.skipif(
    zipread._zlib_ng is None, reason="zlib-ng is not installed: stdlib zlib reads every member"
)


def _member_data(seed: int, size: int) -> bytes:
    """Text-like bytes (XML and Chinese runs) with a little noise: deflate finds matches and literals."""
    rng = random.Random(seed)
    words = ["<w:t>", "</w:t>", "机密", "内部资料", "drawing", "confidential", " ", "\n", "12345"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words).encode() if rng.random() < 0.9 else bytes([rng.randrange(256)])
    return bytes(out[:size])


def _zip_of(data: bytes, level: int) -> bytearray:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        z.writestr("word/document.xml", data)
    return bytearray(buf.getvalue())


def _damaged(raw: bytearray, how: str, at: int) -> bytes:
    """raw with one thing wrong, as an edited or cut file has it."""
    local = raw.find(b"PK\x03\x04")
    central = raw.find(b"PK\x01\x02")
    name_length, extra_length = struct.unpack_from("<HH", raw, local + 26)
    data_at = local + 30 + name_length + extra_length
    data_end = central
    if how == "crc":  # both headers agree on a wrong CRC-32
        crc = struct.unpack_from("<L", raw, central + 16)[0] ^ (1 + at % 0xFFFF)
        struct.pack_into("<L", raw, central + 16, crc)
        struct.pack_into("<L", raw, local + 14, crc)
    elif how in ("longer", "shorter"):  # the declared size lies
        size = struct.unpack_from("<L", raw, central + 24)[0]
        size = size + 1 + at % 5000 if how == "longer" else max(0, size - 1 - at % 5000)
        struct.pack_into("<L", raw, central + 24, size)
        struct.pack_into("<L", raw, local + 22, size)
    elif how == "flip":  # a byte of the deflate stream changed
        i = data_at + at % max(1, data_end - data_at)
        raw[i] ^= 0x5A
    elif how == "cut":  # the stream ends early, the directory still there
        i = data_at + at % max(1, data_end - data_at)
        raw[i:data_end] = b"\x00" * (data_end - i)
    return bytes(raw)


def _read(data: bytes, fast: bool, max_bytes: int, budget: int, way: str) -> tuple:
    """What reading the member gives: its chunks, the budget left, the flags, the outcome."""
    zipread.FAST_INFLATE = fast
    out = Collector(budget, 60)
    chunks: list[bytes | None] = []
    z = None
    try:
        z = zipread.BoundedZip(io.BytesIO(data))
        if way == "chunks":
            for chunk in z.chunks("word/document.xml", out, max_bytes):
                chunks.append(chunk)
        else:
            chunks.append(z.one_chunk("word/document.xml", out))
        outcome = "read"
    except (Refused, OutOfBudget) as e:
        outcome = f"{type(e).__name__}: {e}"
    finally:
        zipread.FAST_INFLATE = True
    return chunks, out.bytes_left, out.truncated, z and z.member_truncated, outcome


@pytest.fixture(autouse=True)
def _switch_restored():
    yield
    zipread.FAST_INFLATE = True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    size=st.sampled_from([0, 1, 700, 65535, 65536, 65537, 150_000, 400_000]),
    level=st.sampled_from([0, 1, 6, 9]),
    how=st.sampled_from(["none", "none", "crc", "longer", "shorter", "flip", "cut"]),
    at=st.integers(0, 2**31),
    max_bytes=st.sampled_from([1, 4096, 65536, 100_000, zipread.MAX_MEMBER_BYTES]),
    budget=st.sampled_from([10_000, 200_000, 50_000_000]),
    way=st.sampled_from(["chunks", "chunks", "one_chunk"]),
)
def test_a_member_reads_as_zipfile_and_zlib_read_it(seed, size, level, how, at, max_bytes, budget, way):
    data = _damaged(_zip_of(_member_data(seed, size), level), how, at)
    fast = _read(data, True, max_bytes, budget, way)
    assert fast == _read(data, False, max_bytes, budget, way)


@pytest.mark.parametrize("how", ["crc", "shorter", "flip", "cut"])
def test_a_damaged_member_streamed_is_refused_as_before(how):
    """Streamed (larger than one read): refused, not read short, with zipfile's message. (A
    declared size larger than the data is no damage to zipfile: the stream's end and its CRC-32
    end the member, in both.)"""
    data = _damaged(_zip_of(_member_data(7, 300_000), 6), how, 150_001)
    fast = _read(data, True, zipread.MAX_MEMBER_BYTES, 50_000_000, "chunks")
    assert fast == _read(data, False, zipread.MAX_MEMBER_BYTES, 50_000_000, "chunks")
    assert fast[4].startswith("Refused: corrupt zip member word/document.xml"), fast[4]
    if how == "crc":
        assert "Bad CRC-32 for file 'word/document.xml'" in fast[4]
        assert sum(map(len, fast[0])) < 300_000  # the chunk that ends the data is not handed on


def test_a_bomb_is_refused_at_the_same_byte():
    data = _zip_of(b"\x00" * (zipread.RATIO_FLOOR_BYTES * 3), 9)
    fast = _read(bytes(data), True, zipread.MAX_MEMBER_BYTES, 50_000_000, "chunks")
    assert fast == _read(bytes(data), False, zipread.MAX_MEMBER_BYTES, 50_000_000, "chunks")
    assert "compression ratio over" in fast[4]


def test_zlib_ng_inflates_and_checks_the_streamed_member(monkeypatch):
    """The fast path is taken: zlib-ng's decompressor and crc32 read it, and zlib's neither."""
    calls = {"ng_inflate": 0, "ng_crc": 0}
    ng = zipread._zlib_ng

    class Counting:
        error = ng.error

        @staticmethod
        def decompressobj(wbits):
            calls["ng_inflate"] += 1
            return ng.decompressobj(wbits)

        @staticmethod
        def crc32(data, value=0):
            calls["ng_crc"] += 1
            return ng.crc32(data, value)

    data = _member_data(3, zipread.RATIO_FLOOR_BYTES + 300_000)  # over the floor: streamed, not read whole
    z = zipread.BoundedZip(io.BytesIO(bytes(_zip_of(data, 6))))
    monkeypatch.setattr(zipread, "_zlib_ng", Counting)
    real_crc32 = zipfile.crc32  # zipfile's CRC of b"" when it opens the member, and nothing more

    def zipfiles_crc32(data, value=0):
        if data:
            pytest.fail("zipfile checked the CRC itself")
        return real_crc32(data, value)

    monkeypatch.setattr(zipfile, "crc32", zipfiles_crc32)
    assert b"".join(z.chunks("word/document.xml", Collector(50_000_000, 60))) == data
    assert calls["ng_inflate"] == 1 and calls["ng_crc"] >= len(data) // zipread.CHUNK_BYTES


def test_the_reference_never_touches_zlib_ng(monkeypatch):
    monkeypatch.setattr(zipread, "FAST_INFLATE", False)
    monkeypatch.setattr(zipread, "_zlib_ng", None)  # any use would raise AttributeError
    data = _member_data(5, 300_000)
    z = zipread.BoundedZip(io.BytesIO(bytes(_zip_of(data, 6))))
    assert b"".join(z.chunks("word/document.xml", Collector(50_000_000, 60))) == data
    small = zipread.BoundedZip(io.BytesIO(bytes(_zip_of(data[:1000], 6))))
    assert small.one_chunk("word/document.xml", Collector(50_000_000, 60)) == data[:1000]
