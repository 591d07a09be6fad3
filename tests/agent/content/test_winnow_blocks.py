"""The block-wise winnowing (agent/content/winnow.py) chooses exactly the grams the straightforward
monotonic-queue version chooses (kept here as the reference): fingerprints stored by an older agent
stay valid, so the index needs no rebuild."""

from __future__ import annotations

import random
from collections import deque
from zlib import crc32

import pytest

from agent.content import winnow
from tests.agent.content.lineage_corpus import paragraph


def reference_chosen(data: bytes, gram_bytes: int, window_bytes: int) -> set[int]:
    """The version before the block-wise one, unchanged: one pass over every byte offset."""
    chosen: set[int] = set()
    window: deque[tuple[int, int]] = deque()
    opened: deque[int] = deque()
    smallest: tuple[int, int] | None = None
    for offset in range(len(data) - gram_bytes + 1):
        if data[offset] & 0xC0 == 0x80:
            continue
        while opened and opened[0] + window_bytes <= offset:
            start = opened.popleft()
            while window[0][1] < start:
                window.popleft()
            chosen.add(window[0][1])
        rank = crc32(data[offset : offset + gram_bytes])
        while window and window[-1][0] >= rank:
            window.pop()
        window.append((rank, offset))
        opened.append(offset)
        if smallest is None or rank < smallest[0]:
            smallest = (rank, offset)
    if not chosen and smallest is not None:
        chosen.add(smallest[1])
    return chosen


def _text(rng: random.Random, lang: str, size: int) -> bytes:
    text = ""
    while len(text.encode()) < size:
        text += paragraph(rng, rng.choice(["zh", "en"]) if lang == "mix" else lang)
    return winnow.normalise(text).encode()[: size + rng.randrange(0, 4)]  # may end inside a character


SIZES = [0, 1, 10, 23, 24, 25, 100, 383, 384, 385, 386, 387, 388, 390, 500, 721, 1000, 5000, 20000]
SHAPES = [(24, 360), (3, 7), (5, 5), (24, 30), (1, 1), (2, 3), (8, 100)]


@pytest.mark.parametrize("lang", ["en", "zh", "mix"])
@pytest.mark.parametrize("seed", range(8))
def test_the_same_grams_as_the_reference(lang, seed):
    rng = random.Random(seed)
    for size in SIZES:
        data = _text(rng, lang, size)
        for gram, window in SHAPES:
            assert winnow._chosen(data, gram, window) == reference_chosen(data, gram, window), (size, gram, window)


@pytest.mark.parametrize(
    "data",
    [
        b"a" * 2000,  # every gram ties: the rightmost wins
        b"ab" * 1000,
        "中文".encode() * 700,
        "a中".encode() * 500,
        bytes(random.Random(4).choice(b"ab") for _ in range(4000)),
        ("pump " * 40 + "impeller " * 40).encode() * 5,  # repeated lines, as in a table
        "\u00e9".encode() * 900,  # two-byte characters
        "\U0001f600".encode() * 400,  # four-byte characters
        b"\x80\x80\x80abc",  # starts inside a character (a cut text)
    ],
)
def test_ties_and_odd_texts_choose_as_the_reference(data):
    for gram, window in SHAPES:
        assert winnow._chosen(data, gram, window) == reference_chosen(data, gram, window), (gram, window)


def test_fingerprints_of_a_long_text_are_the_reference_ones():
    data = _text(random.Random(9), "mix", 300_000)
    assert winnow._chosen(data, winnow.GRAM_BYTES, winnow.WINDOW_BYTES) == reference_chosen(
        data, winnow.GRAM_BYTES, winnow.WINDOW_BYTES
    )


def test_memory_stays_bounded_whatever_the_length_of_the_text():
    """Ranks are held for CHUNK_WINDOWS blocks at a time, not for the whole text (2 M characters of
    Chinese would otherwise hold 6 M ranks)."""
    import tracemalloc

    data = _text(random.Random(10), "zh", 1_500_000)
    tracemalloc.start()
    try:
        winnow._chosen(data, winnow.GRAM_BYTES, winnow.WINDOW_BYTES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * 1024 * 1024, peak  # the whole text's ranks and offsets would take over 50 MB
