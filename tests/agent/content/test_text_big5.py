"""Traditional Chinese saved in Big5 (Notepad's "ANSI" on a Taiwan or Hong Kong Windows) is read
as Big5. Before, a text that was not UTF-8 was read as GB18030, which reads Big5's bytes without
an error as other characters: a classified traditional-Chinese document saved as a Big5 .txt
was no longer traced, and nothing in it was found."""

from __future__ import annotations

import io
import random

from agent.content.inspect import inspect_source
from agent.content.text import decode

TRADITIONAL = "本規範為公司機密，未經授權不得複製。葉輪採用不鏽鋼材料，經動平衡校正成形，外徑控制在四百零七毫米。"
SIMPLIFIED = "本规范为公司机密，未经授权不得复制。叶轮采用不锈钢材料，经动平衡校正成形，外径控制在四百零七毫米。"


def _characters(first: int, last: int, codec: str) -> list[str]:
    """The characters of a region of a double-byte code page (lead bytes first..last, trails as
    the code page has them)."""
    found = []
    for lead in range(first, last + 1):
        for trail in (*range(0x40, 0x7F), *range(0xA1, 0xFF)):
            try:
                found.append(bytes([lead, trail]).decode(codec))
            except UnicodeDecodeError:
                continue
    return found


def test_big5_is_read_as_big5_and_gbk_as_gbk():
    for text in (TRADITIONAL, SIMPLIFIED):
        assert decode(text.encode("big5" if text is TRADITIONAL else "gbk")) == text
    assert decode(TRADITIONAL.encode("gbk")) == TRADITIONAL  # traditional characters in GBK stay GBK
    assert decode(TRADITIONAL.encode("big5")[:-1], complete=False) == TRADITIONAL[:-1]  # cut in a character


def test_random_texts_of_either_are_told_apart():
    """Texts of the frequent characters of each (Big5's first level, GB2312's first level), mixed
    with ASCII: never one taken for the other. (A Big5 text of a few characters may hold too few
    to tell: it reads as GB18030, as before.)"""
    rng = random.Random(8)
    big5 = _characters(0xA4, 0xC6, "big5")
    gb = _characters(0xB0, 0xD7, "gb2312")
    for _ in range(300):
        length = rng.randrange(60, 400)
        for characters, codec in ((big5, "big5"), (gb, "gbk")):
            text = "".join(rng.choice(characters) if rng.random() < 0.8 else rng.choice("ab 12,.\n") for _ in range(length))
            assert decode(text.encode(codec)) == text, codec


def test_a_traditional_text_in_big5_is_traced_as_it_is_in_utf8():
    paragraphs = "\n".join(f"{i}. {TRADITIONAL[i % 7 :]}{i * 7919}" for i in range(60))
    utf8 = inspect_source(io.BytesIO(paragraphs.encode("utf-8")), "spec.txt")
    big5 = inspect_source(io.BytesIO(paragraphs.encode("big5")), "spec.txt")
    assert big5.fingerprints == utf8.fingerprints


def test_gbk_behind_a_head_that_also_reads_as_big5_stays_gbk():
    """An attacker's review: 66 KB of GBK characters that Big5 reads too (rare names' characters,
    ending in a byte of 0x40-0x7E) before a classified GBK text made the whole file read as Big5.
    The whole text must read as Big5 for Big5 to be taken."""
    head = "猋骉玥珺頔甡赟" * 5000
    assert decode((head + SIMPLIFIED).encode("gbk")) == head + SIMPLIFIED


def test_hong_kong_big5_is_read():
    text = "呢份文件係公司嘅機密，唔好俾人睇咗，我哋要保護好佢。" * 3
    assert decode(text.encode("big5hkscs")) == text
