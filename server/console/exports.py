"""Exports for assessors and courts: tables as CSV and XLSX (an alert's signed evidence pack is
server/packexport.py's, its report server/packreport.py's).

A cell that starts with = + - @ (or a tab or carriage return) is read as a formula by Excel,
LibreOffice and WPS, so text from agents (a file named `=HYPERLINK(...)`) could run in the
assessor's spreadsheet: such text gets a leading single quote (OWASP's advice). In a CSV file a
cell is also split wherever an import ignores the quotes or uses another separator (`,` `;` tab,
CR, LF): what follows the separator becomes a cell of its own, so `a,=1+1` or `x\n@SUM(1)` would
start a formula there (measured: LibreOffice, comma separator without a text delimiter, reads
`=1+1` as a formula). A leading quote on the whole cell does not reach those pieces: a single
quote goes after every such separator instead (`a,'=1+1`), which no split can take away. XLSX
cells are never split and only get the leading quote. Numbers stay numbers.

Times (a Table's `times` columns, and any datetime value) are the firm's wall clock
(`server.timezone`, server/firmtime.py): in XLSX real Excel date-times (Excel has no time zones:
the local value, formatted yyyy-mm-dd hh:mm:ss), in CSV `YYYY-MM-DD HH:MM:SS`; either way the
column's header names the zone. An XLSX sheet is laid out for a person: the header row frozen,
filters on it, columns as wide as their content (measured on the first WIDTH_SAMPLE_ROWS rows,
wide CJK characters counting two). The routes audit every export with the file's SHA-256.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter

from rules.explain import in_language as explained
from server import firmtime

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# a separator a CSV import may split a cell at, spaces, then what starts a formula
FORMULA_AFTER_SEPARATOR = re.compile(r"([,;\t\r\n][ \t]*)([=+\-@])")
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP_TYPE = "application/zip"
XLSX_TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
WIDTH_SAMPLE_ROWS = 2000  # rows a column's width is measured on
MIN_WIDTH, MAX_WIDTH = 8, 60


@dataclass(frozen=True)
class Table:
    name: str  # file name stem and sheet title, e.g. "alerts"
    columns: Sequence[str]
    rows: Iterable[Sequence[object]]
    times: Sequence[str] = ()  # columns holding moments (ISO 8601 UTC text or datetimes): the firm's clock
    headers: Sequence[str] = ()  # what the header row says (the viewer's language); empty: the column names


# the header row of an export read in Chinese (the column names are the English one's)
COLUMNS_ZH = {
    "id": "编号", "seq": "序号", "created_at": "创建时间", "updated_at": "更新时间", "severity": "严重程度",
    "status": "状态", "category": "类别", "rule_id": "规则", "title": "标题", "host": "主机", "user": "用户",
    "agent_id": "代理编号", "count": "次数", "explanation": "说明", "ts": "时间", "type": "事件类型", "path": "路径",
    "size": "大小（字节）", "sha256": "SHA-256", "level": "密级", "source_path": "源文件", "identity": "设备标识",
    "vendor": "厂商", "model": "型号", "serial": "序列号", "label": "卷标", "fstype": "文件系统", "bus": "总线",
    "first_seen": "首次出现", "last_seen": "最近出现", "last_host": "最近主机", "last_user": "最近用户",
    "times_seen": "出现次数", "allowed": "已允许", "kind": "种类", "folder": "目录", "files": "文件数", "last": "最近时间",
    "assignee": "处理人", "destination": "去向", "file_count": "文件数", "total_bytes": "总大小（字节）",
    "top_level": "最高密级", "first_file": "首个文件", "register_item": "台账事项", "device_label": "设备",
    "place_kind": "外发位置类型", "app": "应用",
    "device_vendor": "设备厂商", "match": "匹配方式", "history": "处置记录", "media_identity": "介质标识",
    "media_vendor": "介质厂商", "media_model": "介质型号", "media_serial": "介质序列号", "media_label": "介质卷标",
    "media_fstype": "介质文件系统", "mountpoint": "挂载点",
}  # fmt: skip


def in_language(table: Table, lang: str) -> Table:
    """The table as a viewer reading `lang` gets it: the header row in that language (column names
    without a Chinese name stay as they are) and each explanation in that language only."""
    headers = [COLUMNS_ZH.get(c, c) for c in table.columns] if lang == "zh" else list(table.columns)
    if "explanation" not in table.columns:
        return replace(table, headers=headers)
    at = list(table.columns).index("explanation")
    rows = (
        [explained(v, lang) if i == at and isinstance(v, str) else v for i, v in enumerate(row)] for row in table.rows
    )
    return replace(table, headers=headers, rows=rows)


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


def _time_columns(table: Table, rows: list[Sequence[object]]) -> set[int]:
    """Indexes of the columns that hold times: named in `times`, or holding a datetime."""
    named = {i for i, c in enumerate(table.columns) if c in table.times}
    return named | {i for row in rows for i, v in enumerate(row) if isinstance(v, datetime)}


def _headers(table: Table, times: set[int], zone: str) -> list[str]:
    """'created_at (Asia/Shanghai, UTC+08:00)': the zone named on every time column."""
    where = firmtime.header_label(zone)
    names = table.headers or table.columns
    return [f"{c} ({where})" if i in times else str(c) for i, c in enumerate(names)]


def _moment(value: object, zone: str) -> datetime | None:
    """The firm's wall-clock time of a datetime or ISO text, without tzinfo (as Excel keeps it)."""
    if isinstance(value, datetime) or (isinstance(value, str) and value):
        try:
            return firmtime.local(value, zone).replace(tzinfo=None)
        except (ValueError, OverflowError):
            return None
    return None


def to_csv(table: Table, zone: str = firmtime.DEFAULT_ZONE) -> bytes:
    """UTF-8 with a byte-order mark, so Excel on a Chinese Windows reads the Chinese right."""
    rows = list(table.rows)
    times = _time_columns(table, rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_csv_cell(c) for c in _headers(table, times, zone)])
    for row in rows:
        writer.writerow([safe_csv_cell(_csv_time(v, zone) if i in times else v) for i, v in enumerate(row)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _csv_time(value: object, zone: str) -> object:
    moment = _moment(value, zone)
    return moment.strftime(firmtime.SHOWN) if moment is not None else value


def to_xlsx(table: Table, zone: str = firmtime.DEFAULT_ZONE) -> bytes:
    rows = list(table.rows)
    times = _time_columns(table, rows)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=table.name[:31])
    headers = _headers(table, times, zone)
    for i, width in enumerate(_widths(headers, rows[:WIDTH_SAMPLE_ROWS], times), 1):  # before any row: write-only
        sheet.column_dimensions[get_column_letter(i)].width = width
    sheet.freeze_panes = "A2"
    if headers:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(rows) + 1}"
    sheet.append([_xlsx_text(safe_cell(c)) for c in headers])
    for row in rows:
        sheet.append([_xlsx_time(sheet, v, zone) if i in times else _xlsx_text(safe_cell(v)) for i, v in enumerate(row)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _widths(headers: list[str], rows: list[Sequence[object]], times: set[int]) -> list[float]:
    """Each column as wide as its widest cell (a time: its 19 characters), within MIN/MAX_WIDTH."""
    widths = [_shown_width(h) for h in headers]
    for row in rows:
        for i, value in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], 19 if i in times else _shown_width(value))
    return [min(MAX_WIDTH, max(MIN_WIDTH, w + 2)) for w in widths]


def _shown_width(value: object) -> int:
    text = "" if value is None else str(value)
    line = max(text.split("\n"), key=len) if text else ""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line[:200])


def _xlsx_time(sheet, value: object, zone: str) -> object:
    """A real Excel date-time holding the firm's wall-clock time; text that is no time stays text."""
    moment = _moment(value, zone)
    if moment is None:
        return _xlsx_text(safe_cell(value))
    cell = WriteOnlyCell(sheet, value=moment)
    cell.number_format = XLSX_TIME_FORMAT
    return cell


def _xlsx_text(value: object) -> object:
    """openpyxl refuses control characters other than tab, newline and carriage return."""
    if isinstance(value, str):
        return "".join(c if c >= " " or c in "\t\n\r" else f"\\x{ord(c):02x}" for c in value)
    return value
