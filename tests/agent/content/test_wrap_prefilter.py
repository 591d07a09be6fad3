"""ids/wrap.py's length test (a wrapped row's fragments must be able to make an 11- to
19-character join, one of them 18) rejects only rows the full fragment-by-cell search rejects too:
the same joins with and without it, on random rows cut from real identifiers and on the bench's
PDF lines."""

from __future__ import annotations

import random
from datetime import date

import pytest

from agent.content.ids import checks, wrap
from agent.content.ids.wrap import _join_row, join_wrapped

TODAY = date(2026, 11, 26)
IDS = ["11010519491231002X", "110101199709203955", "310104200208152450", "91330100MA27XY1234"]
CARDS = ["6222021234567890123", "6222384317814611", "4111111111111111", "378282246310005"]
MOBILES = ["13812345678", "14655912624"]
WORDS = ["张三", "备注", "report", "pump", "ID", "card", "of", "1234", "5678", "元", "合计", "X"]


def _valid_uscc() -> str:
    body = "91330100" + "MA27XY12"
    organisation = body[8:] + checks.organisation_check(body[8:])
    first17 = body[:8] + organisation
    return first17 + checks.uscc_check(first17)


def _pieces(rng: random.Random, value: str) -> tuple[str, str]:
    cut = rng.randint(1, len(value) - 1)
    return value[:cut], value[cut:]


def _rows(seed: int, count: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    values = [*IDS, _valid_uscc(), *CARDS, *MOBILES]
    rows = []
    for _ in range(count):
        row, wrapped = [], []
        for _ in range(rng.randint(1, 5)):
            kind = rng.random()
            if kind < 0.5:
                head, tail = _pieces(rng, rng.choice(values))
                row.append(head)
                wrapped.append(tail)
            elif kind < 0.8:
                row.append(rng.choice(WORDS + values))
            else:
                wrapped.append(rng.choice(WORDS))
        rows.append((" ".join(row), " ".join(wrapped)))
    return rows


@pytest.mark.parametrize("seed", range(4))
def test_the_length_test_keeps_every_join(seed):
    joined = 0
    for row, wrapped in _rows(seed, 3000):
        quick = _join_row(row, wrapped, TODAY)
        assert quick == _join_row(row, wrapped, TODAY, prefilter=False), (row, wrapped)
        joined += quick is not None
    assert joined > 50  # the rows do join, so the comparison is not of Nones only


def test_bench_lines_join_the_same(monkeypatch):
    from bench import corpus

    rng = random.Random(11)
    lines = [line for p in corpus.paragraphs(rng, 64 * 1024) for line in p.split("\n")]
    lines += [line for row in _rows(9, 500) for line in row]  # rows and their continuations, in order
    quick = join_wrapped(lines, TODAY)
    full = wrap._join_row
    monkeypatch.setattr(wrap, "_join_row", lambda row, wrapped, today: full(row, wrapped, today, prefilter=False))
    assert quick == join_wrapped(lines, TODAY)
    assert quick != lines


@pytest.mark.parametrize(
    "row, wrapped",
    [
        ("110105194 1381234567 110105194", "91231002X 8 91231002X"),  # a mobile's shape at 11 exactly
        ("王五 9133010 1234 6222021234", "0MA27XY1234 5678 567890123"),
        ("11010519491231002 X", "X"),
    ],
)
def test_the_shortest_and_longest_joins_pass_the_length_test(row, wrapped):
    assert _join_row(row, wrapped, TODAY) == _join_row(row, wrapped, TODAY, prefilter=False)


def test_a_mobile_between_two_ids_joins():
    assert _join_row("110105194 1381234567 110105194", "91231002X 8 91231002X", TODAY) == (
        "11010519491231002X 13812345678 11010519491231002X"
    )
