"""Exports for assessors and courts: tables as CSV and XLSX, and one alert's evidence pack as a ZIP.

A cell that starts with = + - @ (or a tab or carriage return) is read as a formula by Excel,
LibreOffice and WPS, so text from agents (a file named `=HYPERLINK(...)`) could run in the
assessor's spreadsheet: such text gets a leading single quote (OWASP's advice). In a CSV file a
cell is also split wherever an import ignores the quotes or uses another separator (`,` `;` tab,
CR, LF): what follows the separator becomes a cell of its own, so `a,=1+1` or `x\n@SUM(1)` would
start a formula there (measured: LibreOffice, comma separator without a text delimiter, reads
`=1+1` as a formula). A leading quote on the whole cell does not reach those pieces: a single
quote goes after every such separator instead (`a,'=1+1`), which no split can take away. XLSX
cells are never split and only get the leading quote. Numbers stay numbers. The evidence pack holds the alert and its events as JSON exactly as stored, and a
manifest with the SHA-256 of every other file in the ZIP, so a copy can be checked later.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from openpyxl import Workbook

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# a separator a CSV import may split a cell at, spaces, then what starts a formula
FORMULA_AFTER_SEPARATOR = re.compile(r"([,;\t\r\n][ \t]*)([=+\-@])")
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP_TYPE = "application/zip"


@dataclass(frozen=True)
class Table:
    name: str  # file name stem and sheet title, e.g. "alerts"
    columns: Sequence[str]
    rows: Iterable[Sequence[object]]


def safe_cell(value: object) -> object:
    """A value a spreadsheet shows as written: text that could start a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_csv_cell(value: object) -> object:
    """safe_cell, and a quote after every separator that a formula would follow: a CSV import that
    splits the cell anywhere gets text from each piece."""
    value = safe_cell(value)
    return FORMULA_AFTER_SEPARATOR.sub(r"\1'\2", value) if isinstance(value, str) else value


def to_csv(table: Table) -> bytes:
    """UTF-8 with a byte-order mark, so Excel on a Chinese Windows reads the Chinese right."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_csv_cell(c) for c in table.columns])
    for row in table.rows:
        writer.writerow([safe_csv_cell(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(table: Table) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=table.name[:31])
    sheet.append([safe_cell(c) for c in table.columns])
    for row in table.rows:
        sheet.append([_xlsx_text(safe_cell(v)) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_text(value: object) -> object:
    """openpyxl refuses control characters other than tab, newline and carriage return."""
    if isinstance(value, str):
        return "".join(c if c >= " " or c in "\t\n\r" else f"\\x{ord(c):02x}" for c in value)
    return value


def evidence_pack(alert: dict, events: list[dict], generated_at: str, generated_by: str) -> bytes:
    """ZIP: alert.json, events.json, one file per event, and manifest.json with their SHA-256."""
    files: dict[str, bytes] = {
        "alert.json": _json(alert),
        "events.json": _json(events),
    }
    for event in events:
        files[f"events/{event.get('id', 'unknown')}.json"] = _json(event)
    manifest = {
        "alert_id": alert.get("id"),
        "generated_at": generated_at,
        "generated_by": generated_by,
        "algorithm": "sha256",
        "files": [{"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in files.items()],
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as pack:
        for name, data in files.items():
            pack.writestr(name, data)
        pack.writestr("manifest.json", _json(manifest))
    return out.getvalue()


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
