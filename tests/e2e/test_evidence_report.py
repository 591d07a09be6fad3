"""The reports a person reads, end to end with real processes: a real agent's classified copy raises
an incident; an analyst's pack (Chinese) holds report.html and report.pdf naming the file, the PC,
the stick and the agent's continuity, verified with verify-pack; `miwei-server assessor-report`
writes the period's XLSX (opened with openpyxl) and PDF (rendered with pdftoppm)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile
from datetime import datetime, timedelta

import pytest
import requests
from openpyxl import load_workbook

from server import pdffont
from tests.e2e.conftest import copy
from tests.e2e.harness import BIN, wait_for

PASSWORD = "correct-horse-battery-7"
POPPLER = all(shutil.which(t) for t in ("pdftoppm", "pdftotext"))


def _server(d, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "miwei-server"), *args, "-c", str(d.config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(
    not POPPLER, reason="poppler-utils (pdftoppm, pdftotext) not installed: apt-get install poppler-utils"
)
@pytest.mark.skipif(pdffont.find() is None, reason="no CJK font installed: apt-get install fonts-noto-cjk")
def test_a_real_incidents_report_and_the_assessors_report(deployment, classified, tmp_path):
    d = deployment
    d.start_server()
    d.start_agent()
    copy(classified["drawings"] / "pump-impeller.dwg", d.usb / "pump-impeller.dwg")
    [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 30, what="a classified-egress alert")

    assert (
        _server(d, "create-user", "li.na", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n").returncode
        == 0
    )
    browser = requests.Session()
    browser.cookies.set("mw_lang", "zh")
    csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get(d.url + "/console/login", timeout=10).text).group(1)
    browser.post(
        d.url + "/console/login",
        data={"csrf": csrf, "name": "li.na", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    answer = browser.get(f"{d.url}/console/alerts/{alert['id']}/evidence.zip", timeout=60)
    assert answer.status_code == 200
    pack = tmp_path / "pack.zip"
    pack.write_bytes(answer.content)
    checked = _server(d, "verify-pack", str(pack))
    assert checked.returncode == 0, checked.stdout + checked.stderr  # the reports are signed with the rest

    files = zipfile.ZipFile(io.BytesIO(answer.content))
    html = files.read("report.html").decode()
    assert f"证据报告：告警 #{alert['id']}" in html and "pump-impeller.dwg" in html and "终端连续性" in html
    assert f"<td>{alert['host']}</td>" in html
    assert "外发目录" in html and "Product drawings" in html and "完全相同的副本" in html  # the harness's egress folder
    (tmp_path / "report.pdf").write_bytes(files.read("report.pdf"))
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "report.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "证据报告" in text and "pump-impeller.dwg" in text and "在线比例" in text

    today = datetime.now().date()
    period = ["--from", (today - timedelta(days=1)).isoformat(), "--until", (today + timedelta(days=1)).isoformat()]
    made = _server(d, "assessor-report", *period, "--out", str(tmp_path / "a.xlsx"), "--lang", "zh")
    assert made.returncode == 0, made.stderr
    book = load_workbook(tmp_path / "a.xlsx")
    summary = {r[0].value: r[1].value for r in book["概况"].iter_rows(min_row=2)}
    assert summary["期间内告警数"] >= 1 and summary["终端数"] == 1
    (coverage,) = [[c.value for c in r] for r in book["终端覆盖"].iter_rows(min_row=2)]
    assert coverage[0] == alert["host"] and 0 < coverage[9] <= 1  # the real agent was online
    assert any(r[0].value == alert["id"] for r in book["处置时效"].iter_rows(min_row=2))

    made = _server(d, "assessor-report", *period, "--out", str(tmp_path / "a.pdf"))
    assert made.returncode == 0, made.stderr
    subprocess.run(
        ["pdftoppm", "-r", "40", "-f", "1", "-l", "1", "-gray", str(tmp_path / "a.pdf"), str(tmp_path / "p")],
        check=True,
    )
    pixels = next(tmp_path.glob("p*.pgm")).read_bytes().split(b"\n", 3)[3]
    assert sum(1 for b in pixels if b < 128) > 0.003 * len(pixels), "page 1 is blank"
