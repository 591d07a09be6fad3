"""Whether a value is a resident ID, a USCC or a bank card by its structure, not one check digit.

- Resident ID (GB 11643): 17 digits and a check character, a birth date between 1900 and today,
  and an area code that existed in any era (regions.py): never stdnum's birth-year rule.
- USCC (GB 32100): registration authority (char 1), entity type allowed for it (char 2), a real
  division code (chars 3-8; 100000 for national registrations), the organisation code (chars
  9-17, GB 11714, with its own check digit) and the final check character. An 18-digit number
  whose last character happens to fit (1 in 31) is not one.
- Bank card: Luhn and an issuer range with that issuer's lengths. Strong ranges (UnionPay 62/81,
  Visa, Mastercard, Amex, JCB, Discover) count on their own; weak ones (Diners, Maestro, the old
  domestic 9558/9559x) only with card context. ICCIDs (89...) fall in no range.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

from stdnum import luhn

from agent.content.ids.regions import is_division

EARLIEST_BIRTH = date(1900, 1, 1)


def resident_check(first17: str) -> str:
    checksum = (1 - 2 * int(first17, 13)) % 11
    return "X" if checksum == 10 else str(checksum)


@functools.lru_cache(maxsize=65536)  # a roster's birth dates repeat: some 40 years of days
def _birth_date(digits: str) -> date | None:
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def looks_like_resident_id(value: str, today: date) -> bool:
    """18 characters laid out as a resident ID (real area, real past date), check not weighed: such
    a number is a mistyped ID, never a bank card."""
    if len(value) != 18 or not value[:17].isdigit() or not (value[17].isdigit() or value[17] in "Xx"):
        return False
    birth = _birth_date(value[6:14])
    return birth is not None and EARLIEST_BIRTH <= birth <= today and is_division(value[:6])


def is_resident_id(value: str, today: date) -> bool:
    """value: 17 digits and a digit or upper-case X."""
    return looks_like_resident_id(value, today) and value[17] == resident_check(value[:17])


USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 32100-2015 table 1 (with the 2018 additions A and N): authority -> the entity types it registers
USCC_TYPES = {
    "1": "1239",  # 机构编制: 机关, 事业单位, 编办直管群众团体, 其他
    "2": "19",  # 外交
    "3": "123459",  # 司法行政: 律师事务所, 公证处, 基层法律服务所, 司法鉴定机构, 仲裁委员会, 其他
    "4": "19",  # 文化
    "5": "1239",  # 民政: 社会团体, 民办非企业单位, 基金会, 其他
    "6": "129",  # 旅游
    "7": "129",  # 宗教
    "8": "19",  # 工会
    "9": "123",  # 工商: 企业, 个体工商户, 农民专业合作社
    "A": "19",  # 中央军委改革和编制办公室
    "N": "1239",  # 农业: 组级, 村级, 乡镇级集体经济组织, 其他
    "Y": "1",  # 其他
}
NATIONAL_DIVISION = "100000"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def uscc_check(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def organisation_check(body8: str) -> str:
    """GB 11714 check character of an 8-character organisation code body (digits, A-Z)."""
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def is_uscc(value: str) -> bool:
    """value: 18 upper-case ASCII letters and digits."""
    if len(value) != 18 or value[1] not in USCC_TYPES.get(value[0], ""):
        return False
    division, organisation = value[2:8], value[8:17]
    if not division.isdigit() or not (division == NATIONAL_DIVISION or is_division(division)):
        return False
    if any(c not in USCC_ALPHABET for c in value[8:]) or not organisation[:8].isalnum():
        return False
    return organisation[8] == organisation_check(organisation[:8]) and value[17] == uscc_check(value[:17])


@dataclass(frozen=True)
class Issuer:
    name: str
    low: int  # prefix range, inclusive, compared on len(str(low)) leading digits
    high: int
    lengths: tuple[int, ...]
    strong: bool  # counts without card context


ISSUERS = (
    Issuer("unionpay", 62, 62, (16, 17, 18, 19), True),
    Issuer("unionpay", 81, 81, (16, 17, 18, 19), True),
    Issuer("visa", 4, 4, (16, 19), True),
    Issuer("mastercard", 51, 55, (16,), True),
    Issuer("mastercard", 2221, 2720, (16,), True),
    Issuer("amex", 34, 34, (15,), True),
    Issuer("amex", 37, 37, (15,), True),
    Issuer("jcb", 3528, 3589, (16, 17, 18, 19), True),
    Issuer("discover", 6011, 6011, (16, 17, 18, 19), True),
    Issuer("discover", 644, 649, (16, 17, 18, 19), True),
    Issuer("discover", 65, 65, (16, 17, 18, 19), True),
    Issuer("diners", 300, 305, (14, 15, 16, 17, 18, 19), False),
    Issuer("diners", 36, 36, (14, 15, 16, 17, 18, 19), False),
    Issuer("diners", 38, 39, (16, 17, 18, 19), False),
    Issuer("maestro", 50, 50, (16, 17, 18, 19), False),
    Issuer("maestro", 56, 58, (16, 17, 18, 19), False),
    Issuer("maestro", 60, 60, (16, 17, 18, 19), False),  # 6011 is Discover, matched first
    Issuer("maestro", 63, 63, (16, 17, 18, 19), False),
    Issuer("maestro", 67, 69, (16, 17, 18, 19), False),
    Issuer("domestic", 9558, 9559, (16, 17, 18, 19), False),  # old ICBC and ABC debit cards
)
CARD_LENGTHS = frozenset(n for issuer in ISSUERS for n in issuer.lengths)


def card_issuer(value: str) -> Issuer | None:
    """The issuer whose range and length value fits, if it passes Luhn; None otherwise."""
    if len(value) not in CARD_LENGTHS or not value.isdigit():
        return None
    issuer = _issuer_of(value[:4], len(value))
    return issuer if issuer is not None and luhn_valid(value) else None


@functools.lru_cache(maxsize=4096)
def _issuer_of(head: str, length: int) -> Issuer | None:
    """The first issuer whose range holds a number starting with head (4 digits) and whose lengths
    hold length: a roster's cards share a few heads, so the ranges are walked once per head."""
    for issuer in ISSUERS:
        width = len(str(issuer.low))
        if issuer.low <= int(head[:width]) <= issuer.high and length in issuer.lengths:
            return issuer
    return None


# a doubled Luhn digit, its digits summed: 0 2 4 6 8 1 3 5 7 9
_DOUBLED = str.maketrans("0123456789", "".join(str(sum(divmod(2 * d, 10))) for d in range(10)))


def luhn_valid(value: str) -> bool:
    """stdnum's luhn.is_valid for ASCII digits, a tenth of its cost (a roster holds thousands)."""
    if not value.isascii():
        return luhn.is_valid(value)
    return sum(map(int, value[-1::-2] + value[-2::-2].translate(_DOUBLED))) % 10 == 0


def is_iccid(value: str) -> bool:
    """A SIM card's number (ITU-T E.118): 89, then 17 to 20 digits."""
    return value.startswith("89") and 19 <= len(value) <= 22
