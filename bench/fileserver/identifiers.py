"""Identifiers as a firm holds them, valid by construction, and look-alikes that are not identifiers.

Resident IDs use real county codes, current and abolished ones (an ID keeps the code of the county
that issued it), a real past birth date and the ISO 7064 MOD 11-2 check character. USCCs follow
GB 32100: registration authority, institution type, a real division, a GB 11714 organisation code
with its own check character, then the MOD 31 check character. Bank cards carry real issuer
prefixes and the Luhn digit. The negatives (ICCIDs, IMEIs, order numbers, corporate accounts,
masked values, checksum failures) are what an honest detector must leave alone.
"""

from __future__ import annotations

import random

# County-level codes that exist or existed (GB/T 2260): Hangzhou's 上城 330102, 下城 330103 and
# 江干 330104 were merged away in 2021, 滨江 330108 dates from 1996, 浦东新区 310115 from 1993,
# 玉环县 331021 became 331083 in 2017, 衢江 330803 from 2001.
AREA_CODES = (
    "330102",
    "330103",
    "330104",
    "330105",
    "330106",
    "330108",
    "330109",
    "330110",
    "330111",
    "331081",
    "331002",
    "331003",
    "331004",
    "331082",
    "331021",
    "331023",
    "330803",
    "330802",
    "330203",
    "330212",
    "330402",
    "330424",
    "330681",
    "330782",
    "310101",
    "310104",
    "310105",
    "310110",
    "310112",
    "310115",
    "320102",
    "320106",
    "320505",
    "320583",
    "340104",
    "360102",
    "410105",
    "420106",
    "430102",
    "440103",
    "440106",
    "440305",
    "440306",
    "500103",
    "510107",
    "110105",
    "110108",
    "120101",
    "370202",
    "350203",
)
WEIGHTS_ID = [pow(2, 17 - i, 11) for i in range(17)]
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS_USCC = [pow(3, i, 31) for i in range(17)]
WEIGHTS_ORG = (3, 7, 9, 10, 5, 8, 4, 2)
# Issuer prefixes and lengths: 工商 622202 (19), 建设 621700 (19), 农业 622848 (19), 中国银行 621661
# (19), 招商 622588 (16), 交通 622262 (19), 浦发 622521 (16); Visa, Mastercard for English lists.
CARD_ISSUERS = (
    ("622202", 19),
    ("621700", 19),
    ("622848", 19),
    ("621661", 19),
    ("622588", 16),
    ("622262", 19),
    ("622521", 16),
    ("436742", 16),
    ("524047", 16),
)
MOBILE_PREFIXES = (
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 171 173 "
    "175 176 177 178 180 181 182 183 184 185 186 187 188 189 191 193 195 198 199"
).split()


def id_check(body17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(body17, WEIGHTS_ID, strict=True)) % 11]


def resident_id(rng: random.Random, area: str | None = None) -> str:
    area = area or rng.choice(AREA_CODES)
    body = f"{area}{rng.randint(1958, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + id_check(body)


def bad_resident_id(rng: random.Random) -> str:
    """The right shape with a wrong check character (a typo): not an identifier."""
    good = resident_id(rng)
    return good[:17] + rng.choice([c for c in "0123456789X" if c != good[17]])


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):  # the check digit will follow: these double first
        d = int(ch) * 2 if i % 2 == 0 else int(ch)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    return luhn_digit(number[:-1]) == number[-1]


def bank_card(rng: random.Random, english: bool = False) -> str:
    issuers = CARD_ISSUERS[-2:] if english else CARD_ISSUERS[:-2]
    prefix, length = rng.choice(issuers)
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return body + luhn_digit(body)


def bad_bank_card(rng: random.Random) -> str:
    good = bank_card(rng)
    return good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"


def bad_mobile(rng: random.Random) -> str:
    """Eleven digits starting 12 or 10: no carrier's range."""
    return rng.choice(("120", "121", "104", "109")) + f"{rng.randint(0, 99_999_999):08d}"


def _org_code(rng: random.Random) -> str:
    if rng.random() < 0.4:  # codes issued with a USCC since 2015 start MA
        body = "MA" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, WEIGHTS_ORG, strict=True))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def uscc_check(body17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(body17, WEIGHTS_USCC, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def uscc(rng: random.Random, area: str | None = None) -> str:
    """An enterprise's code (registration authority 9, type 1 or 2), valid on structure and both checks."""
    body = "9" + rng.choice("1112") + (area or rng.choice(AREA_CODES)) + _org_code(rng)
    return body + uscc_check(body)


def bad_uscc(rng: random.Random) -> str:
    good = uscc(rng)
    return good[:-1] + rng.choice([c for c in USCC_CHARS if c != good[-1]])


def iccid(rng: random.Random) -> str:
    """A SIM card's number: 89 86 (China), issuer, then digits and a Luhn digit: not a bank card."""
    body = "8986" + rng.choice(("00", "01", "03", "11")) + "".join(rng.choice("0123456789") for _ in range(13))
    return body + luhn_digit(body)


def imei(rng: random.Random) -> str:
    body = rng.choice(("35", "86", "99")) + "".join(rng.choice("0123456789") for _ in range(12))
    return body + luhn_digit(body)


def order_number(rng: random.Random) -> str:
    """An ERP order number: date, then a sequence (16-19 digits, no checksum)."""
    return f"{rng.randint(2019, 2025)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}" + "".join(
        rng.choice("0123456789") for _ in range(rng.randint(8, 11))
    )


def corporate_account(rng: random.Random) -> str:
    """A firm's bank account (对公账户): 12-20 digits, no Luhn, not a card."""
    return "".join(rng.choice("0123456789") for _ in range(rng.choice((12, 17, 19, 20))))


def masked(kind: str, value: str) -> str:
    if kind == "cn_resident_id":
        return value[:4] + "*" * 10 + value[-4:]
    if kind == "bank_card":
        return value[:4] + " **** **** " + value[-4:]
    return value[:3] + "****" + value[-4:]


def grouped(kind: str, value: str, sep: str = " ") -> str:
    if kind == "cn_resident_id":
        return sep.join((value[:6], value[6:14], value[14:]))
    if kind == "cn_mobile":
        return sep.join((value[:3], value[3:7], value[7:]))
    return sep.join(value[i : i + 4] for i in range(0, len(value), 4))
