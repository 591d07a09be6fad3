"""Winnowing fingerprints: normalisation, Chinese text, stability across processes, the guarantee."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from agent.content import winnow
from agent.content.winnow import GRAM_BYTES, MAX_ANCHORS, WINDOW_BYTES, fingerprints, line_anchors, normalise
from tests.agent.content.lineage_corpus import paragraph

GUARANTEE_BYTES = WINDOW_BYTES + GRAM_BYTES + 3  # W + K, and a character start missing the window's end


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("Pump Impeller, rev. C!", "pumpimpellerrevc"),
        ("ＡＢＣ１２３", "abc123"),  # full-width forms (NFKC)
        ("Straße", "strasse"),  # casefold, not lower
        ("某某精密机械有限公司 内部资料\n注意保密。", "某某精密机械有限公司内部资料注意保密"),
        ("温度：350℃，压力 2.5 MPa", "温度350c压力25mpa"),  # ℃ is NFKC °C; the degree sign is a symbol
        ("snake_case\ttabs  and\u3000ideographic spaces", "snakecasetabsandideographicspaces"),
        ("★☆ — «»", ""),
    ],
)
def test_normalise_keeps_letters_and_digits_only(text, normalised):
    assert normalise(text) == normalised


def _random_text(rng: random.Random, lang: str, min_bytes: int) -> str:
    text = ""
    while len(text.encode()) < min_bytes:
        text += paragraph(rng, lang) + "\n"
    return text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_layout_and_punctuation_do_not_change_fingerprints(lang):
    text = _random_text(random.Random(1), lang, 3000)
    reflowed = text.replace("\n", "  ").replace("。", "，").replace(".", " ; ").upper()
    # the grams do not see layout; the lines as anchors do (a reflowed paragraph is another line)
    assert fingerprints(text) - line_anchors(text) == fingerprints(reflowed) - line_anchors(reflowed)
    assert line_anchors(text.replace("。", "，").upper()) == line_anchors(text)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_density_is_about_two_per_window_of_bytes(lang):
    text = _random_text(random.Random(2), lang, 100_000)
    size = len(normalise(text).encode())
    per_fingerprint = size / len(fingerprints(text))
    # winnowing picks about 2 / (w + 1) of the grams: one per ~W/2 bytes in both scripts
    assert WINDOW_BYTES / 2 * 0.8 < per_fingerprint < WINDOW_BYTES / 2 * 1.5, per_fingerprint


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("seed", range(20))
def test_a_shared_run_of_the_guaranteed_length_shares_a_fingerprint(lang, seed):
    rng = random.Random(seed)
    text = normalise(_random_text(rng, lang, GUARANTEE_BYTES * 2))
    cut = next(n for n in range(len(text)) if len(text[:n].encode()) >= GUARANTEE_BYTES)
    shared = text[:cut]  # the shortest run of whole characters of at least the guaranteed length
    a = _random_text(rng, lang, 2000) + shared + _random_text(rng, lang, 2000)
    b = _random_text(rng, lang, 500) + shared + _random_text(rng, lang, 3000)
    at_the_end = _random_text(rng, lang, 1000) + shared  # the run ends the text
    assert fingerprints(a) & fingerprints(b)
    assert fingerprints(a) & fingerprints(at_the_end)
    assert fingerprints(shared) & fingerprints(b)


def test_chinese_text_shares_fingerprints_with_its_copy_inside_other_text():
    rng = random.Random(3)
    source = _random_text(rng, "zh", 6000)
    copy = _random_text(rng, "zh", 3000) + source[: len(source) // 2] + _random_text(rng, "zh", 3000)
    mine = fingerprints(source)
    assert len(mine) >= 15
    assert len(mine & fingerprints(copy)) >= len(mine) // 4
    assert not mine & fingerprints(_random_text(rng, "zh", 6000)), "unrelated text of the same vocabulary"


def test_short_text_has_one_fingerprint_and_text_below_one_gram_none():
    assert fingerprints("x" * (GRAM_BYTES - 1)) == frozenset()
    assert fingerprints("。，！") == frozenset()
    assert len(fingerprints("某某精密机械有限公司内部资料注意保密")) == 1  # 54 bytes: below one window
    assert len(fingerprints("叶轮动平衡等级G2.5，残余不平衡量小于12克毫米")) == 2  # and the line as anchor


def test_a_pasted_short_line_keeps_its_anchor_where_the_grams_miss_it():
    bullet = "通过底漆焊缝使方案抛光按刀具淬火和主轴采购为929HRC。"  # 69 bytes: below the grams' guarantee
    deck = "\n".join(
        ["新品发布与市场策略", "经过设备评审与变形审批，抛光毛坯三坐标。", bullet, "对于转速轴承由裂纹记录为59.51%。"]
    )
    mail = "转发：资料\n请查收附件中的数据，周五前反馈意见。\n" + bullet + "\n谢谢。"
    assert line_anchors(bullet) <= fingerprints(deck) & fingerprints(mail)
    assert line_anchors("（三）" + bullet) == line_anchors("第3条 " + bullet) == line_anchors(bullet)


@pytest.mark.parametrize(
    "line",
    [
        # a standard clause as some firm reworded it: the boilerplate's vocabulary
        "任何一方因不可抗力不能履行合同的，应及时通知对方，并在合理期限内提供相关证明，双方可据此部分或全部免除责任。",
        "Neither party shall be liable for failure to perform caused by force majeure, provided that prompt notice is given.",
        # the firm's header and footer: every document of the firm holds them
        "某某精密机械有限公司 内部资料 注意保密 第1页",
        "本文件为某某精密机械有限公司内部资料，未经书面许可，任何单位和个人不得复制。",
        "短行也不算",  # below MIN_ANCHOR_BYTES
    ],
)
def test_standard_and_template_lines_are_no_anchors(line):
    assert line_anchors(line) == set()


def test_anchors_are_capped_by_their_smallest_hashes():
    lines = [f"第{i}批 叶轮HXB{i:05d} 外径{i * 7 % 997}毫米 重量{i % 89}千克" for i in range(MAX_ANCHORS + 500)]
    anchors = line_anchors("\n".join(lines))
    every = set().union(*(line_anchors(x) for x in lines))
    assert len(every) == MAX_ANCHORS + 500
    assert anchors == set(sorted(every)[:MAX_ANCHORS])
    assert line_anchors("\n".join(reversed(lines))) == anchors  # whatever the order


def test_hashes_fit_sqlite_six_byte_integers():
    found = fingerprints(_random_text(random.Random(4), "en", 20_000))
    grams = [h for h in found if not winnow.is_anchor(h)]
    assert grams and all(0 <= h < 2**47 for h in grams)
    assert all(2**47 <= h < 2**48 for h in found - set(grams))  # a line's: 8 bytes in SQLite


def test_fingerprints_are_the_same_in_another_process():
    """Python's hash() is salted per process; stored fingerprints must not be."""
    text = _random_text(random.Random(5), "zh", 4000) + _random_text(random.Random(6), "en", 4000)
    code = "import sys; from agent.content.winnow import fingerprints; print(sorted(fingerprints(sys.stdin.read())))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == str(sorted(fingerprints(text)))


def test_fingerprinting_stops_at_the_text_cap(monkeypatch):
    text = _random_text(random.Random(7), "en", 20_000)
    whole = fingerprints(text)
    monkeypatch.setattr(winnow, "MAX_TEXT_CHARS", 5_000)
    assert fingerprints(text) == fingerprints(text[:5_000]) != whole
