"""Every administrative division code (GB/T 2260) that ever existed, from python-stdnum's table.

A resident ID keeps the county where it was issued, so a code counts whatever the holder's birth
year: stdnum's own rule (the county must have existed in the birth year) rejects people born
before their district was created (330102, 330108, 310115, 330803). The table (stdnum/cn/loc.dat,
historical codes with their year ranges) is read once into a set: a lookup is a set membership,
not stdnum's ~70 µs walk of the table.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

# residence permits of Hong Kong, Macao and Taiwan residents (2018) use 810000, 820000, 830000
PERMIT_CODES = frozenset({"810000", "820000", "830000"})
_PROVINCE = re.compile(r"([0-9]{2}) ")
_COUNTY = re.compile(r" {2}([0-9]{4}) ")


@functools.cache
def division_codes() -> frozenset[str]:
    """Six-digit codes of every province, prefecture and county in any era."""
    text = resources.files("stdnum.cn").joinpath("loc.dat").read_text(encoding="utf-8")
    codes: set[str] = set(PERMIT_CODES)
    province = ""
    for line in text.splitlines():
        if m := _PROVINCE.match(line):
            province = m.group(1)
            codes.add(province + "0000")
        elif province and (m := _COUNTY.match(line)):
            codes.add(province + m.group(1))
    return frozenset(codes)


def is_division(code: str) -> bool:
    return code in division_codes()
