"""CSV exports read by an import that splits cells where it should not: no piece starts a formula.

Agent text such as a file named `a,=1+1` reaches the assessor's spreadsheet. A CSV import that
ignores the quotes (or splits on another separator) makes a cell of what follows the separator;
LibreOffice itself is the oracle where it is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from openpyxl import load_workbook

from server.console.exports import Table, safe_csv_cell, to_csv

ATTACKS = ["a,=1+1", "x\n@SUM(1)", "b;-2+3", "c\t+1", "d\r=2", "e, =3", "=HYPERLINK(\"http://evil.example\"),=1+1"]
SEPARATORS = ",;\t\r\n"
TRIGGERS = ("=", "+", "-", "@")


def _pieces(text: str) -> list[str]:
    """Every cell an import could make of `text` by splitting it at any separator, spaces trimmed."""
    return [p.strip(" \t") for p in re.split(r"[,;\t\r\n]", text)]


@pytest.mark.parametrize(
    "value, shown",
    [
        ("a,=1+1", "a,'=1+1"),
        ("x\n@SUM(1)", "x\n'@SUM(1)"),
        ("b;-2", "b;'-2"),
        ("c\t+1", "c\t'+1"),
        ("d\r=2", "d\r'=2"),
        ("e, =3", "e, '=3"),
        ("=1,+2", "'=1,'+2"),
        ("a,b;c", "a,b;c"),
        ("a=b, c-d", "a=b, c-d"),
        (-5, -5),
    ],
)
def test_csv_cell_quotes_what_follows_a_separator(value, shown):
    assert safe_csv_cell(value) == shown


@pytest.mark.reliability(
    area="input",
    fault="CSV cell that becomes a formula once split",
    how="agent text `a,=1+1`, `x\\n@SUM(1)` (each separator before = + - @) exported, then split at every separator",
    outcome="no piece starts a formula: a quote goes after the separator (`a,'=1+1`)",
)
def test_no_piece_of_an_exported_cell_starts_a_formula():
    data = to_csv(Table("t", ["name"], [[a] for a in ATTACKS])).decode("utf-8-sig")
    for piece in _pieces(data):
        assert not piece.lstrip('"').startswith(TRIGGERS), (piece, data)


@pytest.mark.skipif(not shutil.which("libreoffice"), reason="libreoffice is missing (Debian package libreoffice-calc-nogui)")
def test_libreoffice_without_text_delimiter_finds_no_formula(tmp_path):
    """LibreOffice reads the export with a comma separator and no text delimiter (the quotes are
    then text): a formula would be stored as one in the XLSX it converts to."""
    table = Table("t", ["name", "size"], [["a,=1+1,b", 1], ["x\n@SUM(1),y", 2], ["k;+1+1", 3]])
    (tmp_path / "export.csv").write_bytes(to_csv(table))
    done = subprocess.run(
        [
            "libreoffice", f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
            "--infilter=CSV:44,0,76,1,,0,false,false,false,false,false,-1,true",
            "--convert-to", "xlsx", "--outdir", str(tmp_path), str(tmp_path / "export.csv"),
        ],
        capture_output=True, text=True, timeout=120,
    )
    assert (tmp_path / "export.xlsx").exists(), done.stderr
    cells = [c for row in load_workbook(tmp_path / "export.xlsx").active.iter_rows() for c in row if c.value is not None]
    assert [c.value for c in cells if c.data_type == "f"] == []
    assert "'=1+1" in [c.value for c in cells]  # the piece is there, as text


def test_console_offers_xlsx_before_csv(admin):
    for page, name in (("/console/alerts", "alerts"), ("/console/events", "events"), ("/console/devices", "devices")):
        html = admin.get(page).text
        assert html.index(f"/export/{name}.xlsx") < html.index(f"/export/{name}.csv"), page
