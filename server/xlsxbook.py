"""A workbook of several sheets as a person opens it: header row frozen, filters on, columns as wide
as their content, times as real Excel date-times on the firm's clock (the header names the zone).

Text an agent or a user typed may start with = + - @: it gets a leading ' so Excel and WPS show it
as text, never as a formula (as server/console/exports.py does), and control characters openpyxl
refuses are shown as escapes.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from server import firmtime

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
FORMATS = {"time": TIME_FORMAT, "percent": "0.0%", "hours": "0.00", "int": "0", "float": "0.00"}
MIN_WIDTH, MAX_WIDTH = 8, 60
INVALID_SHEET_CHARS = str.maketrans({c: "_" for c in "[]:*?/\\"})


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = "text"  # text | time | int | float | percent | hours


@dataclass(frozen=True)
class Sheet:
    name: str  # at most 31 characters in Excel: cut to fit
    columns: tuple[Column, ...]
    rows: tuple[tuple[object, ...], ...]


def sheet_name(name: str) -> str:
    return name.translate(INVALID_SHEET_CHARS)[:31] or "Sheet"


def safe_text(value: object) -> object:
    """Numbers and datetimes as they are; text that could start a formula quoted; controls escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, datetime)):
        return value
    text = "".join(c if c >= " " or c in "\n" else f"\\x{ord(c):02x}" for c in str(value))
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def shown_width(value: object) -> int:
    """Characters a cell needs: CJK and other wide characters count two."""
    text = value.strftime(firmtime.SHOWN) if isinstance(value, datetime) else str(value)
    line = max(text.split("\n"), key=len) if text else ""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def workbook(sheets: list[Sheet], zone: ZoneInfo | str) -> bytes:
    book = Workbook()
    book.remove(book.active)
    where = firmtime.header_label(zone)
    used: set[str] = set()
    for spec in sheets:
        name = sheet_name(spec.name)
        while name in used:  # two sheets cut to the same 31 characters
            name = sheet_name(name[:28] + f"~{len(used)}")
        used.add(name)
        _sheet(book.create_sheet(title=name), spec, zone, where)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet(ws, spec: Sheet, zone: ZoneInfo | str, where: str) -> None:
    headers = [f"{c.header} ({where})" if c.kind == "time" else c.header for c in spec.columns]
    ws.append([safe_text(h) for h in headers])
    widths = [shown_width(h) for h in headers]
    for row in spec.rows:
        values = []
        for i, (column, value) in enumerate(zip(spec.columns, row, strict=True)):
            if column.kind == "time" and value:
                value = firmtime.local(value, zone).replace(tzinfo=None)  # Excel keeps no zone: the header names it
            value = safe_text(value)
            values.append(value)
            widths[i] = max(widths[i], shown_width(value))
        ws.append(values)
    for i, column in enumerate(spec.columns, 1):
        if column.kind in FORMATS:
            for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.number_format = FORMATS[column.kind]
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = min(MAX_WIDTH, max(MIN_WIDTH, widths[i - 1] + 2))
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDDDDD")
        cell.alignment = Alignment(vertical="top", wrap_text=True)
    ws.freeze_panes = "A2"
    if spec.columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(spec.columns))}{max(1, len(spec.rows) + 1)}"
