"""checks.py's tests on many candidates at once, with numpy: a roster holds thousands of resident
IDs, cards and mobiles a megabyte, and one Python call each (a few microseconds) was most of its
inspection. Each function answers what checks.py answers for every row of a matrix of candidates
of one length (ASCII codes, one row a candidate); identifiers.py uses them for the digit runs that
stand alone and the 18-character alphanumeric runs, and checks.py stays the reference
(tests/agent/content/test_identifier_vector.py compares them on random and corpus values).
"""

from __future__ import annotations

import functools
from datetime import date

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from agent.content.ids import checks
from agent.content.ids.regions import division_codes

ZERO = ord("0")
_RESIDENT_WEIGHTS = np.array([pow(13, 16 - i, 11) for i in range(17)], dtype=np.int64)  # int(first17, 13) mod 11
_USCC_WEIGHTS = np.array(checks._USCC_WEIGHTS, dtype=np.int64)
_ORG_WEIGHTS = np.array(checks._ORG_WEIGHTS, dtype=np.int64)
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def code_points(text: str) -> np.ndarray:
    """The characters of text as integers, one per character (offsets are str offsets)."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def ascii_codes(text: str) -> np.ndarray:
    """The characters of text as bytes, one per character (offsets are str offsets): an ASCII
    character as its code, any other as its Latin-1 code or 255, never an ASCII one. Enough
    wherever only ASCII characters are told apart (digits, letters, separators, delimiters), and
    every pass over it reads a quarter of code_points' bytes for a text that is not ASCII."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return np.minimum(points, 255, out=np.empty(len(points), dtype=np.uint8), casting="unsafe")


def window(points: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """The length characters from each start: one row per start (rows of a strided view of points,
    copied once: half the cost of an index matrix)."""
    if len(points) < length or not len(starts):
        return points[starts[:, None] + np.arange(length)].astype(np.int64)
    return sliding_window_view(points, length)[starts].astype(np.int64)


@functools.cache
def _divisions() -> np.ndarray:
    table = np.zeros(1_000_000, dtype=bool)
    table[np.array(sorted(int(code) for code in division_codes()), dtype=np.int64)] = True
    return table


def _number(digits: np.ndarray) -> np.ndarray:
    """Rows of digit values read as decimal numbers."""
    return digits @ (10 ** np.arange(digits.shape[1] - 1, -1, -1, dtype=np.int64))


def looks_like_resident_id(codes: np.ndarray, today: date) -> np.ndarray:
    """checks.looks_like_resident_id of rows of 18 codes whose first 17 are ASCII digits."""
    digits = codes[:, :17] - ZERO
    last = codes[:, 17]
    shape = ((last >= ZERO) & (last <= ZERO + 9)) | (last == ord("X")) | (last == ord("x"))
    year, month, day = _number(digits[:, 6:10]), _number(digits[:, 10:12]), _number(digits[:, 12:14])
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = _DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    real = (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)
    stamp = year * 10_000 + month * 100 + day
    dated = (stamp >= 19_000_101) & (stamp <= today.year * 10_000 + today.month * 100 + today.day)
    return shape & real & dated & _divisions()[_number(digits[:, :6])]


def is_resident_id(codes: np.ndarray, today: date) -> np.ndarray:
    """checks.is_resident_id of rows of 18 codes (17 ASCII digits, then a digit or X)."""
    return looks_like_resident_id(codes, today) & resident_check_holds(codes)


def resident_check_holds(codes: np.ndarray) -> np.ndarray:
    """Whether the 18th code of each row is the GB 11643 check character of the first 17 digits
    (is_resident_id is looks_like_resident_id and this)."""
    check = (1 - 2 * ((codes[:, :17] - ZERO) @ _RESIDENT_WEIGHTS)) % 11
    return codes[:, 17] == np.where(check == 10, ord("X"), ZERO + check)


_ALPHABET = np.full(128, -1, dtype=np.int64)
_ALPHABET[[ord(c) for c in checks.USCC_ALPHABET]] = np.arange(len(checks.USCC_ALPHABET))
_TYPES = np.zeros((128, 128), dtype=bool)
for _authority, _types in checks.USCC_TYPES.items():
    _TYPES[ord(_authority), [ord(t) for t in _types]] = True
_NATIONAL = int(checks.NATIONAL_DIVISION)


def is_uscc(codes: np.ndarray) -> np.ndarray:
    """checks.is_uscc of rows of 18 codes of upper-case ASCII letters and digits (the cheap tests
    first: the check characters are computed for the rows that pass them)."""
    out = np.zeros(len(codes), dtype=bool)
    rows = np.flatnonzero(_TYPES[codes[:, 0], codes[:, 1]])
    division_digits = codes[rows, 2:8] - ZERO
    numeric = ((division_digits >= 0) & (division_digits <= 9)).all(axis=1)
    rows, division_digits = rows[numeric], division_digits[numeric]
    division = _number(division_digits)
    rows = rows[(division == _NATIONAL) | _divisions()[division]]
    index = _ALPHABET[codes[rows]]
    alphabet = (index[:, 8:] >= 0).all(axis=1)
    rows, index = rows[alphabet], index[alphabet]
    body = codes[rows, 8:16]
    values = np.where(body <= ZERO + 9, body - ZERO, body - 55)
    org = 11 - (values @ _ORG_WEIGHTS) % 11
    org_char = np.where(org == 10, ord("X"), np.where(org == 11, ZERO, ZERO + org))
    final = _ALPHABET_CODES[(31 - (index[:, :17] @ _USCC_WEIGHTS) % 31) % 31]
    out[rows[(codes[rows, 16] == org_char) & (codes[rows, 17] == final)]] = True
    return out


_ALPHABET_CODES = np.array([ord(c) for c in checks.USCC_ALPHABET], dtype=np.int64)
MAX_CARD_LENGTH = max(checks.CARD_LENGTHS)


@functools.cache
def _issuers() -> np.ndarray:
    """The index in checks.ISSUERS of the issuer of each 4-digit head and length (-1: none), as
    checks._issuer_of walks them: the first issuer whose range and lengths hold it."""
    table = np.full((10_000, MAX_CARD_LENGTH + 1), -1, dtype=np.int8)  # 20 issuers
    heads = np.arange(10_000)
    for index, issuer in enumerate(checks.ISSUERS):
        width = len(str(issuer.low))
        prefix = heads // 10 ** (4 - width)
        inside = (prefix >= issuer.low) & (prefix <= issuer.high)
        for length in issuer.lengths:
            column = table[:, length]
            column[inside & (column < 0)] = index
    return table


STRONG = np.array([issuer.strong for issuer in checks.ISSUERS], dtype=bool)
_DOUBLED = np.array([sum(divmod(2 * d, 10)) for d in range(10)], dtype=np.int64)


def luhn_valid(digits: np.ndarray) -> np.ndarray:
    """checks.luhn_valid of rows of digit values: a doubled digit d adds the digits of 2d, which
    are 2d - 9 when d >= 5, so the sum is two products of the rows with weights (no strided sums)."""
    doubled = np.arange(digits.shape[1])[::-1] % 2 == 1  # every second digit from the right
    total = digits @ np.where(doubled, 2, 1) - (digits >= 5) @ np.where(doubled, 9, 0)
    return total % 10 == 0


def luhn_valid_by_table(digits: np.ndarray) -> np.ndarray:
    """luhn_valid by a table of the doubled digits' sums: its reference."""
    flipped = digits[:, ::-1]
    return (flipped[:, 0::2].sum(axis=1) + _DOUBLED[flipped[:, 1::2]].sum(axis=1)) % 10 == 0


def card_issuers(codes: np.ndarray) -> np.ndarray:
    """checks.card_issuer of rows of ASCII digits of one length, as indices into checks.ISSUERS (-1: none)."""
    digits = codes - ZERO
    length = codes.shape[1]
    if length > MAX_CARD_LENGTH:
        return np.full(len(codes), -1, dtype=np.int64)
    issuer = _issuers()[_number(digits[:, :4]), length]
    return np.where(luhn_valid(digits), issuer, -1)
