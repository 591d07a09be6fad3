"""The register as an assessor's spreadsheet: export to XLSX, import from it, all or nothing.

One sheet, 保密台账, a bilingual header row and one row per item (every state, by 编号):
编号, 名称, 密级, 类别, 责任部门, 责任人, 知悉范围, 保密期限, 存放位置 (one location a line,
`linux:/home/*/研发/图纸`, `windows:D:\\图纸`), 状态. 密级 and 状态 are written in Chinese
(核心商业秘密, 有效) and read in Chinese or as the keys (core, active).

Import reads every row before it writes anything: a row with a 编号 is that item (changed where it
differs, declassified or destroyed when its 状态 says so), a row without one is a new item (状态
有效). Items the sheet does not name are left as they are: an import never deletes. Any error in
any row and nothing is written; each error is reported as `row:column (header): message`. A row
equal to its item writes nothing, so exporting and importing back leaves the register, its
history and the audit log as they were.

Text that starts with = + - @ gets a leading ' on export (server/console/exports.py, so it is not a
formula in Excel or WPS) and loses it again on import. The file is bounded before openpyxl opens
it: MAX_XLSX_BYTES on the wire, MAX_UNZIPPED_BYTES inside (a zip bomb stops there), MAX_ITEMS rows.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime

from loguru import logger
from openpyxl import Workbook, load_workbook
from sqlalchemy.engine import Connection, Engine

from server import audit, register
from server.console.exports import FORMULA_STARTS, safe_cell
from server.database import writing
from server.register_check import RegisterError, check_fields, parse_location_lines
from server.times import Clock

SHEET = "保密台账"
MAX_XLSX_BYTES = 5 * 1024 * 1024
MAX_UNZIPPED_BYTES = 64 * 1024 * 1024
# (field, 中文, English): the sheet's columns, in order
COLUMNS = (
    ("id", "编号", "No."),
    ("name", "名称", "Name"),
    ("level", "密级", "Level"),
    ("category", "类别", "Category"),
    ("owner_department", "责任部门", "Department"),
    ("owner_person", "责任人", "Owner"),
    ("scope", "知悉范围", "Who may know"),
    ("period", "保密期限", "Period"),
    ("locations", "存放位置", "Locations"),
    ("state", "状态", "State"),
)
LEVEL_NAMES = {"core": "核心商业秘密", "important": "重要商业秘密", "general": "一般商业秘密", "internal": "内部资料"}
LEVEL_ALIASES = {"核心商密": "core", "普通商密": "general", **{v: k for k, v in LEVEL_NAMES.items()}}
STATE_NAMES = {"active": "有效", "declassified": "已解密", "destroyed": "已销毁"}
STATE_ALIASES = {v: k for k, v in STATE_NAMES.items()}
LETTERS = "ABCDEFGHIJ"
XLSX_HEADER_ZH = tuple(zh for _, zh, _ in COLUMNS)


class SheetError(ValueError):
    """The sheet cannot be imported; `errors` lists every `row:column (header): message`."""

    def __init__(self, errors: list[str]):
        super().__init__(f"{len(errors)} error(s): " + "; ".join(errors[:20]))
        self.errors = tuple(errors)


@dataclass(frozen=True)
class ImportResult:
    created: int
    changed: int
    declassified: int
    destroyed: int
    unchanged: int


@dataclass(frozen=True)
class _Row:
    number: int  # the sheet's row number
    item_id: int | None
    raw: dict  # the fields as check_fields reads them
    state: str


def export_xlsx(conn: Connection) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    sheet.append([f"{zh} / {en}" for _, zh, en in COLUMNS])
    for item in register.list_items(conn, active_only=False):
        locations = "\n".join(f"{os_name}:{pattern}" for os_name, pattern in item.locations)
        values = (item.id, item.name, LEVEL_NAMES[item.level], item.category, item.owner_department, item.owner_person,
                  item.scope, item.period, locations, STATE_NAMES[item.state])  # fmt: skip
        sheet.append([safe_cell(v) for v in values])
    for letter, width in zip(LETTERS, (8, 30, 14, 10, 16, 10, 30, 12, 44, 8), strict=True):
        sheet.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def import_xlsx(conn: Connection, data: bytes, actor: str, reason: str, now: datetime) -> ImportResult:
    """Check every row, then apply them all in `conn`'s transaction; SheetError and nothing written."""
    rows, errors = _read(data)
    plan, plan_errors = _plan(conn, rows)
    errors = sorted(errors + plan_errors, key=lambda e: int(e.split(":")[0]) if e.split(":")[0].isdigit() else 0)
    if errors:
        raise SheetError(errors)
    counts = {"created": 0, "changed": 0, "declassified": 0, "destroyed": 0, "unchanged": 0}
    for row, item in plan:
        touched = False
        if item is None:
            register.create(conn, row.raw, actor, reason, now)
            counts["created"] += 1
            continue
        if register.update(conn, item.id, row.raw, actor, reason, now)[1]:
            counts["changed"] += 1
            touched = True
        if row.state != item.state:
            change = register.declassify if row.state == "declassified" else register.destroy
            change(conn, item.id, actor, reason, now)
            counts[row.state] += 1
            touched = True
        counts["unchanged"] += not touched
    return ImportResult(**counts)


def import_audited(engine: Engine, clock: Clock, data: bytes, actor: str, reason: str) -> ImportResult:
    """import_xlsx in its own transaction with one register.import audit row (each item's change has its own)."""
    with writing(engine) as conn:
        try:
            result = import_xlsx(conn, data, actor, reason, clock())
        except RegisterError as exc:  # checked per row before; a limit reached meanwhile
            raise SheetError([str(exc)]) from None
        audit.record(conn, clock(), actor, "register.import", "register.xlsx", dataclasses.asdict(result))
    logger.info(
        "register imported by={!r} {}", actor, " ".join(f"{k}={v}" for k, v in dataclasses.asdict(result).items())
    )
    return result


def _where(number: int, field: str) -> str:
    index = next(i for i, (f, _, _) in enumerate(COLUMNS) if f == field.split("[")[0])
    return f"{number}:{LETTERS[index]} ({COLUMNS[index][1]})"


def _plan(conn: Connection, rows: list[_Row]) -> tuple[list[tuple[_Row, register.RegisterItem | None]], list[str]]:
    errors: list[str] = []
    plan = []
    seen: dict[int, int] = {}
    for row in rows:
        try:
            fields = check_fields(row.raw)
        except RegisterError as exc:
            errors += [f"{_where(row.number, e.field)}: {e.message}" for e in exc.errors]
            continue
        if row.item_id is None:
            if row.state != "active":
                errors.append(
                    f"{_where(row.number, 'state')}: a new item (no 编号) is 有效; declassify or destroy it after"
                )
            plan.append((row, None))
            continue
        if row.item_id in seen:
            errors.append(f"{_where(row.number, 'id')}: {row.item_id} is also on row {seen[row.item_id]}")
            continue
        seen[row.item_id] = row.number
        item = register.get(conn, row.item_id)
        if item is None:
            errors.append(
                f"{_where(row.number, 'id')}: no item {row.item_id} in the register (leave 编号 empty for a new item)"
            )
            continue
        if fields != item.fields and item.state != "active":
            errors.append(
                f"{_where(row.number, 'state')}: item {item.id} is {STATE_NAMES[item.state]}; only an active item is changed"
            )
        allowed = {
            "active": ("active", "declassified", "destroyed"),
            "declassified": ("declassified", "destroyed"),
            "destroyed": ("destroyed",),
        }
        if row.state not in allowed[item.state]:
            errors.append(
                f"{_where(row.number, 'state')}: item {item.id} is {STATE_NAMES[item.state]} and cannot become {STATE_NAMES[row.state]}"
            )
        plan.append((row, item))
    if len([p for p in plan if p[1] is None]) + len(register.list_items(conn, active_only=False)) > register.MAX_ITEMS:
        errors.append(f"the register would hold more than {register.MAX_ITEMS} items")
    return plan, errors


def _read(data: bytes) -> tuple[list[_Row], list[str]]:
    if len(data) > MAX_XLSX_BYTES:
        raise SheetError([f"the file is {len(data)} bytes, at most {MAX_XLSX_BYTES}"])
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(i.file_size for i in archive.infolist()) > MAX_UNZIPPED_BYTES:
                raise SheetError([f"the workbook unpacks to more than {MAX_UNZIPPED_BYTES} bytes"])
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except SheetError:
        raise
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise SheetError([f"not an XLSX workbook ({type(exc).__name__})"]) from None
    try:
        sheet = book[SHEET] if SHEET in book.sheetnames else book.worksheets[0]
        return _rows(sheet.iter_rows(min_row=1, max_col=len(COLUMNS), values_only=True))
    finally:
        book.close()


def _rows(cells) -> tuple[list[_Row], list[str]]:
    header = next(cells, None)
    errors: list[str] = []
    for i, (_, zh, _) in enumerate(COLUMNS):
        found = str((header or ())[i] if header and i < len(header) and header[i] is not None else "").strip()
        if not found.startswith(zh):
            errors.append(f"1:{LETTERS[i]}: the header should be {zh} (found {found[:40]!r})")
    if errors:
        raise SheetError(errors)
    rows: list[_Row] = []
    for number, values in enumerate(cells, start=2):
        values = [_text(v) for v in (list(values) + [None] * len(COLUMNS))[: len(COLUMNS)]]
        if not any(values):
            continue
        if len(rows) >= register.MAX_ITEMS:
            raise SheetError([f"{number}: more than {register.MAX_ITEMS} rows"])
        row = _row(number, dict(zip((c[0] for c in COLUMNS), values, strict=True)), errors)
        if row:
            rows.append(row)
    return rows, errors


def _row(number: int, cell: dict[str, str], errors: list[str]) -> _Row | None:
    before = len(errors)
    item_id = None
    if cell["id"]:
        if cell["id"].isascii() and cell["id"].isdigit() and 0 < int(cell["id"]) < 2**31:
            item_id = int(cell["id"])
        else:
            errors.append(f"{_where(number, 'id')}: {cell['id'][:40]!r} is not a 编号 (a whole number)")
    level = LEVEL_ALIASES.get(cell["level"], cell["level"])
    state = STATE_ALIASES.get(cell["state"], cell["state"] or "active")
    if state not in STATE_NAMES:
        errors.append(f"{_where(number, 'state')}: {cell['state'][:40]!r} is not 有效, 已解密 or 已销毁")
    locations, bad_lines = parse_location_lines(cell["locations"])
    errors += [f"{_where(number, 'locations')}: {message}" for message in bad_lines]
    raw = {"name": cell["name"], "level": level, "category": cell["category"], "owner_department": cell["owner_department"],
           "owner_person": cell["owner_person"], "scope": cell["scope"], "period": cell["period"], "locations": locations}  # fmt: skip
    if len(errors) > before:  # the row's other fields are still checked, so every error is reported at once
        try:
            check_fields(raw)
        except RegisterError as exc:
            errors += [f"{_where(number, e.field)}: {e.message}" for e in exc.errors]
        return None
    return _Row(number, item_id, raw, state)


def _text(value: object) -> str:
    """A cell as text: a date cell as YYYY-MM-DD, a whole number without '.0', the export's ' gone."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text
