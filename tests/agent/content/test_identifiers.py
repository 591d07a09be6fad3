import dataclasses
from datetime import date

import pytest
from stdnum import luhn
from stdnum.cn import ric, uscc

from agent.content.document import BODY, NAME, Document, TextPart
from agent.content.identifiers import (
    BankCardDetector,
    MobileDetector,
    ResidentIdDetector,
    UsccDetector,
)
from agent.content.ids.checks import organisation_check

TODAY = date(2026, 11, 26)


def with_ric_check(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


def with_luhn_check(digits: str) -> str:
    return digits + luhn.calc_check_digit(digits)


def with_uscc_check(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17 + "0")


def wrong_last(number: str) -> str:
    return number[:-1] + ("1" if number[-1] != "1" else "2")


RID = with_ric_check("11010519491231002")  # ends in X
RID2 = with_ric_check("33010619900307123")
RID_BAD_DATE = with_ric_check("11010519990230123")
RID_2021 = with_ric_check("11010520210101123")
CARD16 = with_luhn_check("622202123456789")
CARD19 = with_luhn_check("621700123456789012")
USCC_CODE = with_uscc_check("91330106MA2GL123" + organisation_check("MA2GL123"))  # its own GB 11714 check too
USCC_DIGITS = with_uscc_check("91110108600037341")


def test_fixtures_are_what_they_claim():
    assert ric.is_valid(RID) and RID.endswith("X") and ric.is_valid(RID2)
    assert not ric.is_valid(RID_BAD_DATE) and ric.is_valid(RID_2021)
    assert luhn.is_valid(CARD16) and luhn.is_valid(CARD19) and not ric.is_valid(CARD19)
    assert uscc.is_valid(USCC_CODE) and uscc.is_valid(USCC_DIGITS)


def doc(text: str, where: str = BODY) -> Document:
    return Document("text", (TextPart(where, text),))


def count(detector, text: str) -> int:
    found = detector.detect(doc(text))
    return found.count if found else 0


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"身份证号：{RID}", 1),
        (f"身份证号:{RID.lower()}", 1),
        (f"{RID2},{RID}", 2),
        (f"ID{RID2}abc", 1),
        ("".join(chr(ord(c) + 0xFEE0) for c in RID2), 1),  # full-width digits
        (wrong_last(RID2), 0),
        (RID_BAD_DATE, 0),  # 1999-02-30
        (with_ric_check("00000019900307123"), 0),  # no such region
        (RID_2021, 1),
        (f"1{RID2}", 0),
        (f"{RID2}7", 0),
        (RID2[:-1], 0),
        (f"{RID}5", 0),
    ],
)
def test_resident_id(text, expected):
    assert count(ResidentIdDetector(today=lambda: TODAY), text) == expected


def test_resident_id_born_in_the_future_does_not_count():
    assert count(ResidentIdDetector(today=lambda: date(2020, 12, 31)), RID_2021) == 0
    assert count(ResidentIdDetector(today=lambda: date(2021, 1, 1)), RID_2021) == 1


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"卡号 {CARD16}", 1),
        (f"卡号 {CARD19}", 1),
        (" ".join(CARD16[i : i + 4] for i in range(0, 16, 4)), 1),
        ("-".join(CARD16[i : i + 4] for i in range(0, 16, 4)), 1),
        (" ".join(CARD19[i : i + 4] for i in range(0, 19, 4)), 1),
        (f"{CARD16} 和 {CARD19}", 2),
        (wrong_last(CARD16), 0),
        (f"12345{CARD16}", 0),  # embedded in a longer digit run
        (CARD16[:15], 0),
        (RID2, 0),  # a valid resident ID is not also a bank card
        (USCC_DIGITS, 0),
        ("订单号 2024 0101 1234", 0),
    ],
)
def test_bank_card(text, expected):
    assert count(BankCardDetector(today=lambda: TODAY), text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"统一社会信用代码：{USCC_CODE}", 1),
        (f"代码 {USCC_CODE.lower()}", 1),
        (USCC_DIGITS, 1),
        (wrong_last(USCC_CODE), 0),
        (f"X{USCC_CODE}", 0),
        (f"{USCC_CODE}0", 0),
        (RID2, 0),
    ],
)
def test_uscc(text, expected):
    assert count(UsccDetector(today=lambda: TODAY), text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("手机：13812345678", 1),
        ("联系电话 139-1234-5678", 1),
        ("Tel: 138 1234 5678", 1),
        ("Mobile 15912345678", 1),
        ("联系人 张三（销售部）负责华东区客户，号码 18612345678", 1),
        ("13812345678", 0),
        ("订单号 13812345678", 0),
        ("手机 12812345678", 0),
        ("手机 138123456789", 0),
        ("手机 913812345678", 0),
        ("手机" + "。" * 31 + "13812345678", 0),
        ("13812345678" + "。" * 31 + "电话", 0),
        ("hotel13812345678", 0),
    ],
)
def test_mobile_needs_context(text, expected):
    assert count(MobileDetector(), text) == expected


def test_mobile_in_a_column_whose_header_names_it():
    rows = "\n".join(f"客户{i},华东区某某有限公司的长名称用于拉开距离,{13800000000 + i},备注" for i in range(20))
    table = "姓名,公司,手机号,备注\n" + rows
    assert count(MobileDetector(), table) == 20
    assert count(MobileDetector(), table.replace("手机号", "编号")) == 0
    tsv = "姓名\t公司\t联系方式\n" + rows.replace(",", "\t")
    assert count(MobileDetector(), tsv) == 20


def test_mobile_in_another_column_does_not_count():
    rows = "\n".join(f"x,{13800000000 + i},华东区某某有限公司的长名称用于拉开距离" for i in range(5))
    header = "手机,编号,公司名称（全称，与营业执照上的名称一致，不得简写）\n"
    assert count(MobileDetector(), header + rows) == 0
    assert count(MobileDetector(), header.replace("手机,编号", "编号,手机") + rows) == 5


@pytest.mark.parametrize(
    "detector, text, raw, sample",
    [
        (ResidentIdDetector(today=lambda: TODAY), f"身份证 {RID}", RID, "1101**********002X"),
        (BankCardDetector(), f"卡号 {CARD19}", CARD19, CARD19[:6] + "*" * 9 + CARD19[-4:]),
        (MobileDetector(), "手机 13812345678", "13812345678", "138****5678"),
        (UsccDetector(), USCC_CODE, USCC_CODE, "9133" + "*" * 12 + USCC_CODE[-2:]),
    ],
)
def test_samples_are_masked(detector, text, raw, sample):
    found = detector.detect(Document("text", (TextPart(BODY, text), TextPart(NAME, text))))
    assert found is not None and found.count == 2 and found.sample == sample
    assert all(raw not in str(value) for value in dataclasses.astuple(found))


def test_an_endless_line_of_short_digit_groups_is_scanned_in_bounded_pieces():
    """'1 1 1 ...' must not become one match of millions of runs (memory), and a grouped card
    in ordinary text is still found."""
    from datetime import date

    from stdnum import luhn

    from agent.content.identifiers import scan_digits

    assert list(scan_digits("1 " * 1_000_000, date(2026, 11, 26))) == []
    card = "622202123456789" + luhn.calc_check_digit("622202123456789")
    grouped = " ".join(card[i : i + 4] for i in range(0, 16, 4))
    found = list(scan_digits(f"{'1 ' * 40}卡号 {grouped} 到期", date(2026, 11, 26)))
    assert [(f.kind, f.value) for f in found] == [("bank_card", card)]
