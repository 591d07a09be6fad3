"""The whole-body identifier scan (identifiers._scan_whole: the parts joined, Python's re for the
candidates) finds exactly what the reference finds part by part with RE2 (scan_digits, scan_uscc),
with the per-part cap kept, on random parts built from identifiers in every layout, near misses,
full-width digits and line breaks."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.cn import ric, uscc

from agent.content import identifiers
from agent.content.document import BODY, Cell, Document, TextPart
from agent.content.identifiers import MobileDetector
from agent.content.ids import checks
from agent.content.ids.columns import ColumnContext, table_lines_by_line

TODAY = date(2026, 11, 26)


def _pieces(rng: random.Random) -> list[str]:
    first = "1101051949123100" + str(rng.randrange(10))
    rid = first + ric.calc_check_digit(first + "0")
    digits = "6222" + "".join(rng.choice("0123456789") for _ in range(11))
    card = digits + luhn.calc_check_digit(digits)
    body = "91330106" + "".join(rng.choice("0123456789") for _ in range(9))
    credit = body + uscc.calc_check_digit(body + "0")
    return [
        rid, rid[:-1] + " X", rid[:6] + " " + rid[6:14] + " " + rid[14:], rid.lower() + "x", rid + "ab",
        card, " ".join(card[i : i + 4] for i in range(0, 16, 4)), "-".join(card[i : i + 4] for i in range(0, 16, 4)),
        credit, credit.lower(), "A" + credit, credit + "1", "138 1234 5678", "13812345678", "手机", "卡号", "订单号",
        "１３８１２３４５６７８", "1 " * 20, "12345", "-", " ", "\n", "\t", ",", "x", "X", "甲",
    ]  # fmt: skip


@st.composite
def documents(draw):
    rng = random.Random(draw(st.integers(0, 10**6)))
    pieces = _pieces(rng)
    parts = draw(
        st.lists(
            st.lists(st.one_of(st.sampled_from(pieces), st.text(max_size=6)), max_size=25).map("".join),
            min_size=1,
            max_size=8,
        )
    )
    return [identifiers.unicodedata.normalize("NFKC", p) for p in parts]


def _reference(texts: list[str], cap: int) -> dict[int, tuple[tuple, tuple]]:
    out = {}
    for i, text in enumerate(texts):
        found = tuple(identifiers.scan_digits(text, TODAY, cap)) if identifiers.may_hold_identifier(text) else ()
        usccs = tuple(identifiers.scan_uscc(text, TODAY, cap)) if identifiers.may_hold_identifier(text) else ()
        if found or usccs:
            out[i] = (found, usccs)
    return out


def _whole(texts: list[str]) -> dict[int, tuple[tuple, tuple]]:
    out = {}
    for part in identifiers._scan_whole(texts, "\n".join(texts), TODAY):
        usccs = (
            tuple(identifiers.scan_uscc(part.text, TODAY, identifiers.MAX_CANDIDATES))
            if part.usccs is None
            else part.usccs
        )
        if part.found or usccs:
            out[part.index] = (part.found, usccs)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_the_whole_body_scan_finds_what_the_reference_finds(texts):
    assert _whole(texts) == _reference(texts, identifiers.MAX_CANDIDATES)


@pytest.mark.parametrize("cap", [1, 3, 8])
def test_a_long_part_keeps_its_cap(cap, monkeypatch):
    """With a small cap, long parts are scanned alone and stop where the reference stops."""
    monkeypatch.setattr(identifiers, "MAX_CANDIDATES", cap)
    rng = random.Random(cap)
    for _ in range(200):
        pieces = _pieces(rng)
        texts = [" ".join(rng.choice(pieces) for _ in range(rng.randrange(0, 12))) for _ in range(rng.randrange(1, 6))]
        assert _whole(texts) == _reference(texts, cap), texts


def test_luhn_and_issuer_lookups_are_stdnums():
    rng = random.Random(1)
    for _ in range(20000):
        value = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 22)))
        assert checks.luhn_valid(value) == luhn.is_valid(value), value
        issuer = next(
            (i for i in checks.ISSUERS if i.low <= int(value[: len(str(i.low))]) <= i.high and len(value) in i.lengths),
            None,
        )
        expected = issuer if issuer and len(value) in checks.CARD_LENGTHS and luhn.is_valid(value) else None
        assert checks.card_issuer(value) == expected, value


HEADER_PIECES = (
    "tel", "Tel", "hotel", "电话", "手机号", "卡号", "订单号", "account", "cell", "sim", "ref", "姓名", "金额",
    ",", "\t", "  ", " ", "\n", "\n\n", "13812345678", "6222021234567890", "1234567", "x" * 30, "甲乙",
)  # fmt: skip
parts_strategy = st.lists(
    st.tuples(
        st.sampled_from(["body", "footer"]),
        st.lists(st.sampled_from(HEADER_PIECES), max_size=30).map("".join),
        st.sampled_from([None, None, None, Cell(0, 0, 0), Cell(0, 1, 0)]),
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(parts_strategy)
def test_table_lines_are_the_line_by_line_ones(parts):
    """Headers found from one pass over the whole text, parts before a header skipped: the same
    rows and headers as reading every line ("[^a-z]tel" may start on the line break before)."""
    assert ColumnContext(parts)._table_lines() == table_lines_by_line(parts)


def test_a_header_at_the_start_of_a_part_gives_its_column_context():
    document = Document(
        "text", (TextPart(BODY, "客户名单"), TextPart(BODY, "tel,姓名"), TextPart(BODY, "13812345678,张三"))
    )
    found = MobileDetector(lambda: TODAY).detect(document)
    assert found is not None and found.count == 1


GLUED = ("sim", "ref", "tel", "hotel", "cell", "xcell", "Tel", "卡号", "订单", "手机", "card", "", " ", ",", "\t")


@st.composite
def card_documents(draw):
    rng = random.Random(draw(st.integers(0, 10**6)))
    digits = "6222" + "".join(rng.choice("0123456789") for _ in range(11))
    card = digits + luhn.calc_check_digit(digits)
    weak = "3001" + "".join(rng.choice("0123456789") for _ in range(9))  # Diners: counts only with context
    weak += luhn.calc_check_digit(weak)
    pieces = (card, weak, "13812345678", "138 1234 5678", *GLUED, "x" * 25, "甲乙丙")
    part = st.lists(st.sampled_from(pieces), max_size=10).map("".join)
    texts = draw(st.lists(part, min_size=1, max_size=6))
    return Document("text", tuple(TextPart(BODY, t) for t in texts))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(card_documents())
def test_parts_without_a_context_word_skip_the_window_search_and_find_the_same(document):
    """A window is searched only in parts holding a context word (boundaries aside): "5678sim" has
    none (no boundary) but its window "… sim" does; the counts are those of searching every window."""
    from tests.agent.content.test_identifier_scan import DETECTORS, _unshared

    shared = {}
    for cls in DETECTORS:
        d = cls(lambda: TODAY).detect(document)
        shared[cls.id] = (d.count, d.sample) if d else None
    assert shared == _unshared(document)


def test_one_run_groups_are_classified_as_classify_run_does():
    """_scan_groups classifies a group of one digit run inline: the same as _classify_run, for runs
    of every length around the identifiers' (IDs, cards in every range, mobiles, near misses)."""
    rng = random.Random(21)
    runs = []
    for _ in range(4000):
        kind = rng.randrange(4)
        if kind == 0:
            first = rng.choice(["110105", "330102", "999999"]) + f"{rng.randint(1890, 2030)}{rng.randint(0, 13):02d}"
            first += f"{rng.randint(0, 32):02d}" + f"{rng.randrange(1000):03d}"
            runs.append(first + ric.calc_check_digit(first + "0")[:1].replace("X", str(rng.randrange(10))))
        elif kind == 1:
            head = rng.choice(
                ["62", "4", "51", "34", "37", "3528", "6011", "65", "300", "36", "50", "9558", "89", "81"]
            )
            digits = head + "".join(rng.choice("0123456789") for _ in range(rng.randint(12, 18) - len(head)))
            runs.append(digits + luhn.calc_check_digit(digits) if rng.random() < 0.8 else digits + "0")
        elif kind == 2:
            runs.append("1" + rng.choice("0123456789") + "".join(rng.choice("0123456789") for _ in range(9)))
        else:
            runs.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 22))))
    text = " 甲 ".join(runs)
    expected = []
    offset = 0
    for run in runs:
        expected += list(identifiers._classify_run(run, offset, TODAY))
        offset += len(run) + 3
    found = list(identifiers.scan_digits(text, TODAY))
    assert found == expected
    assert {f.kind for f in found} == {identifiers.RESIDENT_ID, identifiers.BANK_CARD, identifiers.MOBILE}
