"""Runs of text in a file no reader types (agent/content/textruns.py): the C scans held to the
Python ones, the lane's window test never missing a run, junk before a text no longer hiding
it, and random or compressed bytes gaining nothing."""

from __future__ import annotations

import io
import os
import random
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import textruns
from agent.content.detectors import detect
from agent.content.extract import extract_file
from agent.content.inspect import inspect_source
from tests.agent.content import nomemory

_zipend = pytest.importorskip("agent.content._zipend")

REPORT = " ".join(f"Impeller blade {i} is milled to {i * 41 % 997} microns." for i in range(60))
CHINESE = "机密\n叶轮的叶片按图纸铣削到规定的微米公差，然后在平衡机上校正到规定的克数，检验合格后方可装配。" * 3
# bytes where the scans decide something: ASCII text, controls, UTF-8 leads and their edges,
# continuations, GB2312 leads and trails and their edges
EDGES = b"a \t\n\r\x00\x01\x7f\x80\x9f\xa0\xa1\xbf\xc0\xc1\xc2\xc3\xdf\xe0\xe4\xed\xef\xf0\xf4\xf5\xf7\xf8\xfe\xff"


def _edgy(draw_bytes: bytes) -> bytes:
    return bytes(EDGES[b % len(EDGES)] for b in draw_bytes)


mixed = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=1500).map(_edgy),
    st.tuples(st.binary(max_size=80), st.text(max_size=300), st.sampled_from(["utf-8", "gb18030"]), st.binary(max_size=80)).map(
        lambda t: t[0] + t[1].encode(t[2], "ignore") + t[3]
    ),
    st.lists(st.tuples(st.sampled_from([REPORT[:200], CHINESE[:80], "x"]), st.sampled_from(["utf-8", "gb18030"]), st.binary(max_size=3)), max_size=6).map(
        lambda parts: b"".join(text.encode(enc) + junk for text, enc, junk in parts)
    ),
)  # fmt: skip
lengths = st.integers(min_value=2, max_value=130)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed, lengths, lengths)
def test_the_c_scans_find_the_runs_the_python_scans_find(data, utf8_bytes, gb_bytes):
    utf8, gb = _zipend.text_runs(data, textruns.PAIRS, utf8_bytes, gb_bytes)
    assert utf8 == textruns.utf8_runs_reference(data, utf8_bytes)
    assert gb == textruns.gb_runs_reference(data, gb_bytes)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed, lengths, lengths)
def test_the_window_test_is_the_pythons_and_never_misses_a_run(data, utf8_bytes, gb_bytes):
    maybe = textruns.may_hold_runs_reference(data, utf8_bytes, gb_bytes)
    assert _zipend.may_hold_runs(data, textruns.PAIRS, utf8_bytes, gb_bytes) == maybe
    if textruns.utf8_runs_reference(data, utf8_bytes) or textruns.gb_runs_reference(data, gb_bytes):
        assert maybe


# a character at each edge of what UTF-8 and GB2312's rows take, and each just past it
EDGE_CHARACTERS = [
    b"\xc2\x80", b"\xc2\x9f", b"\xc2\xa0", b"\xdf\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x9f\x80", b"\xe0\xa0\x80",
    b"\xed\x9f\xbf", b"\xed\xa0\x80", b"\xef\xbf\xbf", b"\xf0\x8f\x80\x80", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xa1\xa1", b"\xf7\xfe", b"\xf8\xa1", b"\xa0\xa1", b"\xa1\xa0", b"\xb0\xff",
    b"\x7f", b"\x0c", b"\x1b",
]  # fmt: skip


@pytest.mark.parametrize("character", EDGE_CHARACTERS, ids=lambda c: c.hex())
def test_a_character_at_an_edge_is_read_as_its_codec_and_category_say(character):
    """Beside a run that lets the C scan the data at all, a run of the one character: a UTF-8 run
    where Python's UTF-8 codec reads it as a character past the C1 controls (or printable ASCII),
    in the C as in the Python; a GB run where it is a pair of GB2312's rows (its bytes may make
    pairs of other alignments too: the C's GB runs are the Python's whatever they are)."""
    data = REPORT.encode()[:200] + b"\x01" + b"ab" + character * 60 + b"\x01"
    run = (201, 203 + 60 * len(character))
    try:
        decoded = character.decode("utf-8")
        is_utf8 = decoded >= "\xa0" or " " <= decoded <= "~"
    except UnicodeDecodeError:
        is_utf8 = False
    utf8, gb = _zipend.text_runs(data, textruns.PAIRS, 64, 96)
    assert utf8 == textruns.utf8_runs_reference(data) == [(0, 200)] + ([run] if is_utf8 else [])
    assert gb == textruns.gb_runs_reference(data)
    if len(character) == 2 and 0xA1 <= character[0] <= 0xF7 and 0xA1 <= character[1] <= 0xFE:
        assert gb == [run]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_every_neighbouring_pair_of_a_utf8_text_may_stand_in_a_run(text):
    """The table of pairs (what the window test and its C read) holds every pair of a UTF-8 text
    made of text characters (no controls but tab and line breaks, nothing past U+009F below U+00A0)."""
    text = "".join(
        c for c in text if c in "\t\n\r" or " " <= c <= "~" or (c >= "\xa0" and not "\ud800" <= c <= "\udfff")
    )
    data = text.encode("utf-8")
    assert textruns.utf8_runs_reference(data, 1) == ([(0, len(data))] if data else [])
    assert all(textruns.PAIRS[a << 8 | b] & textruns.UTF8 for a, b in zip(data, data[1:], strict=False))


def test_every_pair_of_gb2312_characters_may_stand_in_a_gb_run():
    text = "机密文件，严禁外传。ABC 123\n" + "".join(
        bytes([a, b]).decode("gb18030") for a in range(0xB0, 0xF8, 7) for b in range(0xA1, 0xFF, 5)
    )
    data = text.encode("gb18030")
    assert textruns.gb_runs_reference(data, 2) == [(0, len(data))]
    assert all(textruns.PAIRS[a << 8 | b] & textruns.GB for a, b in zip(data, data[1:], strict=False))


@pytest.mark.parametrize("fast", [True, False], ids=["c", "python"])
@pytest.mark.parametrize(
    "prefix",
    [b"\xff", b"\x01" * 3000, b"\0" * 8192, os.urandom(5000) + b"\0"],
    ids=["invalid-byte", "controls", "nuls", "random"],
)
def test_a_text_behind_junk_is_read_from_a_file_of_no_type(monkeypatch, prefix, fast):
    monkeypatch.setattr(textruns, "FAST_RUNS", fast)
    for text, encoding in ((REPORT, "utf-8"), (CHINESE, "utf-8"), (CHINESE, "gb18030")):
        document = extract_file(io.BytesIO(prefix + text.encode(encoding) + b"\0" * 10), "draft.txt", runs=True)
        assert document.file_type is None
        assert document.text_of("body") == text.strip()


def test_a_marking_behind_junk_is_found_and_without_runs_it_was_not():
    data = b"\0" * 8192 + ("商业秘密\n" + CHINESE).encode("gb18030")
    with_runs = inspect_source(io.BytesIO(data), "x.bin")
    assert {d.detector for d in with_runs.detections} == {"trade_secret_marking"} and with_runs.fingerprints
    without = extract_file(io.BytesIO(data), "x.bin")  # the index's way (file_fingerprints): name alone
    assert [p.where for p in without.parts] == ["name"]


def test_a_text_between_junk_keeps_each_run_in_order():
    data = b"\x01" * 100 + REPORT.encode() + b"\xff\x00" + CHINESE.encode("gb18030") + b"\x80" + CHINESE.encode()
    assert textruns.runs_text(data) == [REPORT, CHINESE, CHINESE]


def test_where_a_utf8_and_a_gb_run_overlap_the_longer_is_read():
    gb = CHINESE.encode("gb18030")
    assert textruns.gb_runs_reference(gb) == [(0, len(gb))]
    assert textruns.encoded_runs(gb) == [(0, len(gb), textruns.GB)]
    assert textruns._untangled([(0, 100)], [(50, 150)]) == [(0, 100, textruns.UTF8)]
    assert textruns._untangled([(0, 100), (200, 260)], [(50, 251)]) == [(50, 251, textruns.GB)]
    assert textruns._untangled([(0, 100), (300, 420)], [(50, 251)]) == [
        (50, 251, textruns.GB),
        (300, 420, textruns.UTF8),
    ]


def _random_gb18030(rng: random.Random, pairs: int) -> bytes:
    """Bytes that all decode as GB18030 (two-byte characters of any of its rows): what GB18030
    makes of random bytes, with 机密 and 商业秘密 put in here and there."""
    out = bytearray()
    for i in range(pairs):
        if i % 97 == 0:
            out += "机密商业秘密".encode("gb18030")
        out += bytes([rng.randint(0x81, 0xFE), rng.choice([*range(0x40, 0x7F), *range(0x80, 0xFF)])])
    assert out.decode("gb18030")
    return bytes(out)


def _words(rng: random.Random, count: int) -> str:
    """Text that does not repeat itself: random words and numbers, a marking among them."""
    words = ["impeller", "机密", "叶轮", "blade", "商业秘密", "microns", "平衡", "confidential"]
    return " ".join(rng.choice(words) + str(rng.randint(0, 10**6)) for _ in range(count))


def test_random_and_compressed_bytes_gain_no_text():
    """A file of random bytes, of compressed text, or of random GB18030 characters holding terms:
    no runs, so no markings, identifiers or fingerprints (a term must not be found in noise)."""
    rng = random.Random(7)
    samples = [rng.randbytes(130_000) for _ in range(20)]
    samples += [zlib.compress(_words(rng, 20_000).encode(encoding), 9) for encoding in ("utf-8", "gb18030")]
    for data in samples:
        assert textruns.encoded_runs(data) == []
        inspection = inspect_source(io.BytesIO(b"\0" + data), "blob.bin")
        assert inspection.file_type is None
        assert inspection.detections == () and not inspection.fingerprints
    # (bytes that all decode as GB18030 are typed text by filetype.looks_like_text: not runs' doing)
    assert textruns.encoded_runs(_random_gb18030(rng, 60_000)) == []


def test_compressed_repetition_may_read_as_runs_but_finds_nothing():
    """Deflate makes a text repeated hundreds of times into bytes that repeat with a short period
    ("\xca\xa7|" again and again: ʧ| as UTF-8, 失| as GB): runs of no words, where no detector
    finds anything."""
    data = zlib.compress((REPORT + "商业秘密 机密★5年 13912345678").encode() * 200, 9)
    assert inspect_source(io.BytesIO(b"\0" + data), "blob.bin").detections == ()


def test_random_bytes_rarely_pass_the_window_test():
    rng = random.Random(11)
    assert sum(textruns.may_hold_runs(rng.randbytes(130_000)) for _ in range(200)) == 0


def test_a_budget_running_out_ends_the_reading_without_saying_truncated():
    data = (b"\x01" * 2000 + REPORT.encode()) * 40
    document = extract_file(io.BytesIO(data), "x.bin", max_bytes=100_000, runs=True)
    assert not document.truncated and document.problem is None
    assert 0 < len(document.text_of("body")) < len(REPORT) * 40
    assert detect(document) is not None


def test_the_c_scans_refuse_a_table_of_the_wrong_size_and_too_short_runs():
    with pytest.raises(ValueError):
        _zipend.text_runs(b"abc", textruns.PAIRS[:100], 64, 96)
    with pytest.raises(ValueError):
        _zipend.may_hold_runs(b"abc", textruns.PAIRS, 1, 96)


def test_the_c_scans_survive_running_out_of_memory_at_every_allocation():
    """Each allocation made to fail in turn: text_runs raises MemoryError or gives the Python
    scans' runs; a missing NULL check crashes the test process."""
    if not nomemory.in_child():
        nomemory.run_in_child(__file__, "test_the_c_scans_survive_running_out_of_memory_at_every_allocation")
        return
    nomemory.testcapi()
    data = (b"\x01" + REPORT[:100].encode() + b"\xff" + CHINESE[:60].encode("gb18030")) * 8
    expected = (textruns.utf8_runs_reference(data, 64), textruns.gb_runs_reference(data, 96))
    assert expected[0] and expected[1]
    finished = failed = 0
    for n in range(80):
        try:
            with nomemory.failing(n):
                got = _zipend.text_runs(data, textruns.PAIRS, 64, 96)
        except MemoryError:
            failed += 1
            continue
        finished += 1
        assert got == expected
    assert failed and finished


def _characters_table() -> bytes:
    """The table of pairs made from the characters themselves: every text character's bytes (each
    code point's UTF-8, each pair of GB2312's rows), the pairs inside one, and the last byte of any
    before the first byte of any."""
    table = bytearray(65536)
    ascii_text = [*range(0x20, 0x7F), 0x09, 0x0A, 0x0D]
    for bit, characters in (
        (textruns.UTF8, [chr(c).encode() for c in range(0xA0, 0x110000) if not 0xD800 <= c <= 0xDFFF]),
        (textruns.GB, [bytes([a, b]) for a in range(0xA1, 0xF8) for b in range(0xA1, 0xFF)]),
    ):
        characters += [bytes([a]) for a in ascii_text]
        firsts, lasts = {c[0] for c in characters}, {c[-1] for c in characters}
        inner = {(c[i], c[i + 1]) for c in characters for i in range(len(c) - 1)}
        for a, b in inner | {(a, b) for a in lasts for b in firsts}:
            table[a << 8 | b] |= bit
    return bytes(table)


def test_the_table_of_pairs_is_what_the_characters_make():
    """Exactly: a pair left out would let the window test miss a run, one too many would send
    random files to a worker."""
    assert textruns.PAIRS == _characters_table()


@pytest.mark.parametrize("at", [0, 1, 2, 63, 64, 65, 200])
@pytest.mark.parametrize("encoding", ["utf-8", "gb2312"])
def test_a_run_just_long_enough_is_found_wherever_it_starts(at, encoding):
    """A run of exactly MIN_*_BYTES after `at` bytes that stand in no run, in enough junk to keep
    both of the C's side-by-side scans going: found, by the C as by the Python (a window found is
    one whose every pair was looked at, never one pair more: the pair before a window's start is
    the one that ended the window before it)."""
    junk = bytes(random.Random(at).choice(b"\x01\x02\x03\x04\x05\x06") for _ in range(600))
    want = textruns.MIN_UTF8_BYTES if encoding == "utf-8" else textruns.MIN_GB_BYTES
    run = ("机" * (want // 2)).encode("gb2312") if encoding == "gb2312" else b"a" * want
    data = junk[:at] + run + b"\x01" + junk
    assert textruns.may_hold_runs_reference(data)
    assert _zipend.may_hold_runs(data, textruns.PAIRS, textruns.MIN_UTF8_BYTES, textruns.MIN_GB_BYTES)
    shorter = junk[:at] + run[:-2] + b"\x01" + junk
    assert not textruns.may_hold_runs_reference(shorter)
    assert not _zipend.may_hold_runs(shorter, textruns.PAIRS, textruns.MIN_UTF8_BYTES, textruns.MIN_GB_BYTES)
