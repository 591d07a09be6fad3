"""Byte lineage's chunks (agent/content/chunks.py): the C loop gives the reference's fingerprints
fed in any pieces, a byte edit changes only the chunks it touches, and low-variety chunks have none."""

from __future__ import annotations

import os
import random
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import chunks

native = pytest.mark.skipif(not chunks.NATIVE, reason="the C extension agent.content._chunks was not built")


def _fed(chunker, data: bytes, cuts: list[int]):
    at = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        chunker.feed(data[at:cut])
        at = max(at, cut)
    chunker.feed(data[at:])
    return chunker.finish()


def _mixed(seed: int, size: int) -> bytes:
    """Random bytes with runs of a few values between them (where chunks have no fingerprint)."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        if rng.random() < 0.3:
            out += bytes(rng.choice(b"\0\1\2\xff") for _ in range(rng.randint(1, 3000)))
        else:
            out += rng.randbytes(rng.randint(1, 5000))
    return bytes(out[:size])


@native
def test_the_gear_table_is_the_references():
    from agent.content import _chunks

    assert list(_chunks.gear_table()) == list(chunks.GEAR)


@native
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    size=st.sampled_from([0, 1, 7, 8, 9, 255, 256, 257, 1000, 8191, 8192, 8193, 20_000, 70_000]),
    cuts=st.lists(st.integers(0, 100_000), max_size=6),
)
def test_the_c_loop_makes_the_references_fingerprints_fed_in_any_pieces(seed, size, cuts):
    data = _mixed(seed, size)
    made = chunks.reference_fingerprints(data)
    assert _fed(chunks.Chunker(), data, cuts) == sorted(set(made))
    assert _fed(chunks.Chunker(keep=5), data, cuts) == sorted(set(made))[:5]
    whole = chunks.Chunker(keep=chunks.KEEP)
    whole.feed(data)
    assert whole.finish_packed() == chunks.packed(sorted(set(made))[: chunks.KEEP])  # as the index stores a sketch
    wanted = array("Q", sorted({*random.Random(seed).sample(made, min(3, len(made))), 1, 2**46}))
    assert _fed(chunks.Chunker(wanted), data, cuts) == (len(made), sorted(set(made) & set(wanted)))


def test_the_python_fallback_gives_the_same_answers_within_its_bound():
    data = _mixed(3, 60_000)
    made = chunks.reference_fingerprints(data)
    pure = chunks._PureChunker(keep=7)
    pure.feed(data[:100])
    pure.feed(data[100:])
    assert pure.finish() == sorted(set(made))[:7]
    wanted = array("Q", sorted(made[:4]))
    pure = chunks._PureChunker(wanted)
    pure.feed(data)
    assert pure.finish() == (len(made), sorted(set(wanted)))
    beyond = chunks._PureChunker()  # bytes past PURE_MAX_BYTES are not looked at
    beyond.feed(bytes(chunks.PURE_MAX_BYTES))
    beyond.feed(os.urandom(50_000))
    assert beyond.finish() == []


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: b"x" + d,
        lambda d: d + b"tail",
        lambda d: d[:30_000] + bytes([d[30_000] ^ 1]) + d[30_001:],
        lambda d: d[:30_000] + os.urandom(100) + d[30_000:],
    ],
    ids=["prepended", "appended", "flipped", "inserted"],
)
def test_a_byte_edit_changes_only_the_chunks_it_touches(edit):
    data = random.Random(9).randbytes(120_000)
    before = set(chunks.reference_fingerprints(data)) if not chunks.NATIVE else set(_fed(chunks.Chunker(), data, []))
    after = set(_fed(chunks.Chunker(), edit(data), []))
    assert len(before) > 60  # some 1.3 KiB a chunk
    assert len(before - after) <= 2


def test_padding_fills_and_ramps_have_no_fingerprint():
    for data in (bytes(50_000), b"\xff" * 50_000, bytes(range(8)) * 6000, b"AB" * 30_000):
        assert _fed(chunks.Chunker(), data, []) == []
    assert chunks.varied(bytes(range(16))) and not chunks.varied(bytes(range(15)) * 20)


def test_a_sketch_keeps_the_least_fingerprints_of_a_file(tmp_path):
    data = random.Random(4).randbytes(2_000_000)
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    every = _fed(chunks.Chunker(), data, [])
    assert len(every) > chunks.KEEP
    assert chunks.sketch(str(path), read_bytes=65_536) == every[: chunks.KEEP]


def test_a_chunker_refuses_a_filter_that_is_not_8_byte_integers():
    if not chunks.NATIVE:
        pytest.skip("the C extension agent.content._chunks was not built")
    with pytest.raises(ValueError, match="8-byte"):
        chunks.Chunker(b"abc")
    done = chunks.Chunker()
    done.finish()
    with pytest.raises(ValueError, match="finished"):
        done.feed(b"more")


def test_one_chunker_fed_from_several_threads_refuses_instead_of_crashing():
    """feed() lets other threads run while it chunks 64 KiB or more; another call on the same
    Chunker meanwhile is refused (RuntimeError). Before, three feeders and a finish() on one
    Chunker crashed the interpreter (abort or segmentation fault) within a few hundred rounds."""
    if not chunks.NATIVE:
        pytest.skip("the C extension agent.content._chunks was not built")
    import threading
    import time

    buffers = [os.urandom(65_536 + 4096 * i) for i in range(4)]
    refused = []
    for _ in range(60):
        chunker = chunks.Chunker()
        stop = threading.Event()

        def feed(chunker=chunker, stop=stop):
            while not stop.is_set():
                try:
                    chunker.feed(random.choice(buffers))
                except RuntimeError:
                    refused.append(1)
                except ValueError:  # finished
                    return

        feeders = [threading.Thread(target=feed) for _ in range(3)]
        for t in feeders:
            t.start()
        time.sleep(0.002)
        try:
            chunker.finish()
        except RuntimeError:
            refused.append(1)
        stop.set()
        for t in feeders:
            t.join()
    assert refused  # the threads did meet
