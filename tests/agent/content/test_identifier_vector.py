"""The numpy scan (identifiers._scan_vector, ids/vector.py) finds exactly what the whole-body
reference (identifiers._scan_whole, itself held equal to the part-by-part RE2 scan) finds: on
random parts of valid and near-valid identifiers in every layout, and on the bench's documents;
and ids/vector.py's checks answer what checks.py answers, value by value."""

from __future__ import annotations

import os
import random
from datetime import date

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.cn import ric, uscc

from agent.content import identifiers
from agent.content.detectors import detect
from agent.content.document import BODY, Cell, Document, TextPart
from agent.content.ids import checks, vector
from tests.agent.content.test_identifier_whole import documents

TODAY = date(2026, 11, 26)
AREAS = ("110105", "330102", "810000", "999999", "000000", "100000", "330100")


def _resident(rng: random.Random, valid: bool = True) -> str:
    year = rng.choice([1899, 1900, 1949, 2000, 2024, 2026, 2027, rng.randint(1900, 2026)])
    month, day = rng.choice([(2, 29), (2, 28), (11, 26), (11, 27), (12, 31), (0, 1), (13, 1), (4, 31), (1, 0)])
    if rng.random() < 0.5:
        month, day = rng.randint(1, 12), rng.randint(1, 28)
    first = f"{rng.choice(AREAS)}{year:04d}{month:02d}{day:02d}{rng.randrange(1000):03d}"
    check = ric.calc_check_digit(first + "0")
    return first + (check if valid else rng.choice("0123456789X".replace(check, "")))


def _credit(rng: random.Random, valid: bool = True) -> str:
    head = rng.choice(["91", "92", "93", "11", "12", "31", "51", "Y1", "A1", "N1", "N3", "94", "21", "81"])
    division = rng.choice(["330106", "110105", "100000", "999999", "3301A6"])
    organisation = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(organisation, weights, strict=True))
    org_check = {10: "X", 11: "0"}.get(11 - total % 11, str(11 - total % 11))
    if rng.random() < 0.2:
        org_check = rng.choice("0123456789X")
    body = head + division + organisation + org_check
    check = uscc.calc_check_digit(body + "0") if all(c in checks.USCC_ALPHABET for c in body) else "0"
    return body + (check if valid else rng.choice("0123456789ABC".replace(check, "")))


def _card(rng: random.Random, length: int | None = None, valid: bool = True, head: str = "") -> str:
    head = head or rng.choice(["62", "81", "4", "51", "2221", "2720", "34", "37", "3528", "6011", "644", "65", "300", "36",
                       "38", "50", "56", "60", "63", "67", "9558", "89", "11", "7"])  # fmt: skip
    length = length or rng.randint(13, 20)
    digits = head + "".join(rng.choice("0123456789") for _ in range(max(0, length - 1 - len(head))))
    check = luhn.calc_check_digit(digits)
    return digits + (check if valid else str((int(check) + rng.randint(1, 9)) % 10))


def _pieces(rng: random.Random) -> list[str]:
    rid, credit, card = _resident(rng), _credit(rng), _card(rng, 16)
    return [
        rid, _resident(rng), _resident(rng, valid=False), rid[:-1] + " X", rid[:-1] + "x", rid[:6] + " " + rid[6:14] + " " + rid[14:],
        rid + "X", rid[:17] + " x1", credit, credit.lower(), _credit(rng), _credit(rng, valid=False), "A" + credit,
        card, _card(rng), _card(rng, valid=False), _card(rng, 19), _card(rng, 18), _card(rng, 14),
        _card(rng, 19, head="9558"), _card(rng, 19, head="8986"), _card(rng, 19, head="62"),
        " ".join(card[i : i + 4] for i in range(0, 16, 4)), "-".join(card[i : i + 4] for i in range(0, 16, 4)),
        card[:4] + " " + card[4:10] + " " + card[10:15], "13812345678", "12812345678", "138 1234 5678", "138-1234-5678",
        "手机", "卡号", "订单号", "１３８１２３４５６７８", "1 " * 20, "2026-12-05", "12345", "-", " ", "\n", "\t", ",",
        "x", "X", "甲", "ab", "Z",
    ]  # fmt: skip


@st.composite
def near_documents(draw):
    rng = random.Random(draw(st.integers(0, 10**6)))
    pieces = _pieces(rng)
    parts = draw(
        st.lists(
            st.lists(st.one_of(st.sampled_from(pieces), st.text(max_size=4)), max_size=30).map("".join),
            min_size=1,
            max_size=8,
        )
    )
    return [identifiers.unicodedata.normalize("NFKC", p) for p in parts]


def _resolved(parts: list) -> dict[int, tuple[tuple, tuple]]:
    """Part -> (candidates, USCCs); a long part's USCCs (None: scan_uscc at detection) looked for."""
    out = {}
    for part in parts:
        usccs = part.usccs
        if usccs is None:
            usccs = tuple(identifiers.scan_uscc(part.text, TODAY, identifiers.MAX_CANDIDATES))
        if part.found or usccs:
            out[part.index] = (part.found, usccs)
    return out


def _same(texts: list[str]) -> None:
    joined = "\n".join(texts)
    fast, whole = identifiers._scan_vector(texts, joined, TODAY), identifiers._scan_whole(texts, joined, TODAY)
    assert _resolved(fast) == _resolved(whole), texts


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_documents())
def test_the_vector_scan_finds_what_the_whole_body_scan_finds(texts):
    _same(texts)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_the_vector_scan_on_the_whole_body_tests_documents(texts):
    _same(texts)


@pytest.mark.parametrize("cap", [1, 3, 8, 40])
def test_a_long_part_keeps_its_cap(cap, monkeypatch):
    """With a small cap, parts long enough for it to bind are scanned by the reference when they
    hold that many digit runs, and by the table when they do not: the same candidates and counts."""
    monkeypatch.setattr(identifiers, "MAX_CANDIDATES", cap)
    rng = random.Random(cap)
    for _ in range(150):
        pieces = _pieces(rng)
        texts = [" ".join(rng.choice(pieces) for _ in range(rng.randrange(0, 8))) for _ in range(rng.randrange(1, 5))]
        _same(texts)
        document = Document("text", tuple(TextPart(BODY, t) for t in texts))
        fast, reference = _both(
            document, [cls(lambda: TODAY) for cls in identifiers._IdentifierDetector.__subclasses__()]
        )
        assert fast == reference, texts


def test_the_checks_are_checks_pys():
    rng = random.Random(21)
    residents = [_resident(rng, rng.random() < 0.5) for _ in range(5000)]
    residents += ["".join(rng.choice("0123456789") for _ in range(18)) for _ in range(2000)]
    codes = np.array([[ord(c) for c in v] for v in residents], dtype=np.int64)
    assert vector.is_resident_id(codes, TODAY).tolist() == [checks.is_resident_id(v, TODAY) for v in residents]
    assert vector.looks_like_resident_id(codes, TODAY).tolist() == [
        checks.looks_like_resident_id(v, TODAY) for v in residents
    ]
    credits = [_credit(rng, rng.random() < 0.5).upper() for _ in range(5000)] + residents
    credits = [c for c in credits if c.isalnum() and c.isascii() and len(c) == 18]
    codes = np.array([[ord(c) for c in v] for v in credits], dtype=np.int64)
    assert vector.is_uscc(codes).tolist() == [checks.is_uscc(v) for v in credits]
    assert sum(checks.is_uscc(v) for v in credits) > 500
    for length in range(14, 20):
        cards = [_card(rng, length, rng.random() < 0.5) for _ in range(1500)]
        cards += ["".join(rng.choice("0123456789") for _ in range(length)) for _ in range(500)]
        codes = np.array([[ord(c) for c in v] for v in cards], dtype=np.int64)
        issuers = [checks.card_issuer(v) for v in cards]
        assert [checks.ISSUERS[i] if i >= 0 else None for i in vector.card_issuers(codes).tolist()] == issuers
        assert sum(i is not None for i in issuers) > 20


def _both(document: Document, detectors=None) -> tuple[tuple, tuple]:
    """detect() by the table (numpy) and by the reference (_scan_whole and the per-part loops)."""
    identifiers._cache.__dict__.pop("entry", None)
    fast = detect(document, detectors)
    identifiers._cache.__dict__.pop("entry", None)
    original = identifiers._scan_table
    try:
        identifiers._scan_table = lambda *a: None
        reference = detect(document, detectors)
    finally:
        identifiers._scan_table = original
        identifiers._cache.__dict__.pop("entry", None)
    return fast, reference


WORDS = (
    "卡号",
    "银行卡",
    "手机",
    "电话",
    "订单号",
    "对公",
    "tel",
    "hotel",
    "account",
    "order",
    "ICCID",
    "姓名",
    "备注",
)


@st.composite
def table_documents(draw):
    """Tables as CSV, TSV, space-aligned text and docx cells, with headers, quotes, context words
    beside values and prose between, over valid and near-valid cards, mobiles and IDs."""
    rng = random.Random(draw(st.integers(0, 10**6)))
    values = [_card(rng, 16), _card(rng, 19, head="9558"), _card(rng, 16, head="300"), _card(rng, valid=False),
              "13812345678", "138 1234 5678", "12812345678", _resident(rng), "6222 0212 3456 7890"]  # fmt: skip
    cell = st.one_of(st.sampled_from(values), st.sampled_from(WORDS), st.text(max_size=3))
    line = st.tuples(
        st.sampled_from([",", "\t", "  ", " "]), st.lists(cell, min_size=1, max_size=5), st.booleans()
    ).map(
        lambda t: t[0].join(f'"{c}{t[0]}甲"' if t[2] and i == 0 else c for i, c in enumerate(t[1]))
    )  # quoted delimiter
    parts = []
    for text in draw(st.lists(st.lists(line, min_size=1, max_size=4).map("\n".join), min_size=1, max_size=10)):
        where = draw(st.sampled_from([BODY, BODY, BODY, "footer"]))
        cell_at = draw(st.sampled_from([None, None, None, Cell(0, 0, 0), Cell(0, 1, 0), Cell(0, 1, 1), Cell(1, 2, 0)]))
        parts.append(TextPart(where, text, cell=cell_at))
    return Document("text", tuple(parts))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_documents())
def test_the_table_counts_what_the_parts_count(document):
    fast, reference = _both(document, [cls(lambda: TODAY) for cls in identifiers._IdentifierDetector.__subclasses__()])
    assert fast == reference


@pytest.mark.parametrize("kind", ["text", "csv", "docx", "xlsx", "pptx", "pdf"])
def test_the_bench_documents_give_the_same_scan_and_detections(kind, tmp_path):
    from agent.content.extract import extract
    from bench import corpus

    for path in corpus.documents(str(tmp_path), kind, 1, 96 * 1024, seed=int.from_bytes(os.urandom(2), "big")):
        document = extract(path, os.path.basename(path))
        _same([identifiers._nfkc(p.text) for p in document.parts])
        fast, reference = _both(document)
        assert fast == reference
        assert {d.detector for d in fast} >= {"bank_card", "cn_resident_id"}


def test_a_roster_gives_the_same_detections():
    rng = random.Random(5)
    rows = ["姓名,身份证号,手机,银行卡号,统一社会信用代码"]
    for _ in range(300):
        rows.append(",".join([
            "张三", _resident(rng, rng.random() < 0.9), f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
            _card(rng, rng.choice([16, 19]), rng.random() < 0.9), _credit(rng, rng.random() < 0.9),
        ]))  # fmt: skip
    document = Document("csv", tuple(TextPart(BODY, row) for row in rows))
    fast, reference = _both(document, [cls(lambda: TODAY) for cls in identifiers._IdentifierDetector.__subclasses__()])
    assert fast == reference
    assert len(fast) == 4


def test_a_quoted_delimiter_keeps_the_column():
    """A comma inside quotes does not split (ColumnContext's cells): the mobile stands under 手机,
    the card under 备注 (a strong range: it counts with no words), the weak card under 卡号."""
    weak = _card(random.Random(2), 16, head="300")
    rows = ("姓名,手机,卡号,备注", f'"张,三",13812345678,{weak},x', f"李四,13912345678,{weak},x", "王五\t13712345678")
    document = Document("csv", tuple(TextPart(BODY, row) for row in rows))
    detectors = [identifiers.MobileDetector(lambda: TODAY), identifiers.BankCardDetector(lambda: TODAY)]
    fast, reference = _both(document, detectors)
    assert fast == reference
    assert [(d.detector, d.count) for d in fast] == [("bank_card", 2), ("cn_mobile", 2)]
