"""The report a person reads inside every evidence pack (server/packreport.py, server/reportdoc.py):
report.html and report.pdf in the viewer's language, signed with the pack, Chinese rendered with an
embedded CJK font, every agent-sent value escaped."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from server import pdffont
from server.packcheck import verify_pack
from tests.server.factories import make_egress, make_event

HOSTILE = "/media/zhang/KINGSTON/<script>alert(1)</script>\u202egpj.泵叶轮图纸.dwg"
POPPLER = all(shutil.which(tool) for tool in ("pdftoppm", "pdftotext", "pdffonts"))
needs_poppler = pytest.mark.skipif(
    not POPPLER, reason="poppler-utils (pdftoppm, pdftotext, pdffonts) not installed: apt-get install poppler-utils"
)
HAS_FONT = pdffont.find() is not None  # the PDF report is made only with a CJK font (the HTML always)
needs_font = pytest.mark.skipif(not HAS_FONT, reason="no CJK font installed: apt-get install fonts-noto-cjk")


@pytest.fixture
def incident(admin, send, post_form):
    """A hostile-named classified copy, a file the user opened the day before, handled by an analyst."""
    send(make_egress("core", path=HOSTILE, register_entry="泵叶轮设计图"))  # alert 1
    send(make_event("file.opened", ts="2026-03-01T10:00:00.000Z", path="/srv/rnd/研发/图纸/前一天.dwg", level="core"))
    send(make_event("file.opened", ts="2026-02-27T10:00:00.000Z", path="/srv/rnd/too-early.dwg", level="core"))
    post_form(
        admin, "/console/alerts/1", "/console/alerts/1", {"status": "acknowledged", "comment": "已约谈 <b>张伟</b>"}
    )
    return admin


def _pack(answer) -> zipfile.ZipFile:
    assert answer.status_code == 200, answer.text
    return zipfile.ZipFile(io.BytesIO(answer.content))


def _signer_pem(client) -> bytes:
    return client.app.state.signer.key().public_pem.encode()


def test_pack_holds_a_signed_chinese_report_with_everything_escaped(incident, store):
    incident.cookies.set("mw_lang", "zh")
    answer = incident.get("/console/alerts/1/evidence.zip")
    pack = _pack(answer)

    listed = {f["name"] for f in json.loads(pack.read("manifest.json"))["files"]}
    assert {"report.html"} | ({"report.pdf"} if HAS_FONT else set()) <= listed  # signed like every file
    assert verify_pack(answer.content, _signer_pem(incident)).ok
    html = pack.read("report.html").decode()
    assert "证据报告：告警 #1" in html and "事件概况" in html and "如何核验" in html and "终端连续性" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\u202e" not in html and "\\u202e" in html  # a right-to-left override shown, not obeyed
    assert "泵叶轮设计图" in html and "核心商业秘密" in html  # register item, level in words
    assert "移动存储介质" in html  # the kind of place in words
    assert "已约谈 &lt;b&gt;张伟&lt;/b&gt;" in html  # the handling history, escaped
    assert "/srv/rnd/研发/图纸/前一天.dwg" in html and "too-early.dwg" not in html  # 24 hours either side
    assert "2026-03-02 16:59:00" in html and "北京时间 (UTC+08:00)" in html  # the firm's clock
    assert "Evidence report" not in html and "How to verify" not in html


def test_api_gives_the_report_in_the_asked_language_default_the_firms(incident, client, reader):
    english = _pack(client.get("/api/v1/alerts/1/evidence.zip", params={"lang": "en"}, headers=reader))
    html = english.read("report.html").decode()
    assert "Evidence report: alert #1" in html and "How to verify" in html and "China Standard Time (UTC+08:00)" in html
    assert "证据报告" not in html and "如何核验" not in html
    default = _pack(client.get("/api/v1/alerts/1/evidence.zip", headers=reader))  # server.language: zh
    assert "证据报告：告警 #1" in default.read("report.html").decode()
    assert client.get("/api/v1/alerts/1/evidence.zip", params={"lang": "fr"}, headers=reader).status_code == 422
    assert client.get("/api/v1/alerts/99/evidence.zip", headers=reader).status_code == 404
    assert client.get("/api/v1/alerts/1/evidence.zip").status_code == 401
    audit = client.get("/api/v1/audit", params={"action": "export.evidence"}, headers=reader).json()["audit"]
    assert {e["details"]["lang"] for e in audit} >= {"en", "zh"} and all(e["details"]["pdf"] is HAS_FONT for e in audit)


@needs_poppler
@needs_font
def test_pdf_embeds_a_cjk_font_and_renders_chinese(incident, tmp_path: Path):
    incident.cookies.set("mw_lang", "zh")
    pdf = _pack(incident.get("/console/alerts/1/evidence.zip")).read("report.pdf")
    (tmp_path / "report.pdf").write_bytes(pdf)
    if os.environ.get("MIWEI_KEEP_REPORT"):  # to look at it: MIWEI_KEEP_REPORT=/tmp/report.pdf
        Path(os.environ["MIWEI_KEEP_REPORT"]).write_bytes(pdf)

    fonts = subprocess.run(
        ["pdffonts", str(tmp_path / "report.pdf")], capture_output=True, text=True, check=True
    ).stdout
    cjk = [line for line in fonts.splitlines() if "CJK" in line or "Hei" in line or "Han" in line]
    assert cjk and all(" yes yes yes " in line for line in cjk), fonts  # embedded, subset, with a Unicode map
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "report.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "证据报告：告警 #1" in text and "泵叶轮设计图" in text and "如何核验" in text
    assert "<script>alert(1)</script>" in text  # written as text, not read as markup

    subprocess.run(
        ["pdftoppm", "-r", "50", "-f", "1", "-l", "1", "-gray", str(tmp_path / "report.pdf"), str(tmp_path / "page")],
        check=True,
    )
    page = next(tmp_path.glob("page*.pgm")).read_bytes()
    pixels = page.split(b"\n", 3)[3]  # binary PGM: P5, size, max, then one byte a pixel
    dark = sum(1 for b in pixels if b < 128)
    assert dark > 0.005 * len(pixels), "page 1 is blank"


def test_without_a_cjk_font_the_pack_says_so_and_keeps_the_html(incident, monkeypatch):
    monkeypatch.setattr("server.reportdoc.pdffont.find", lambda: None)
    answer = incident.get("/console/alerts/1/evidence.zip")
    pack = _pack(answer)
    names = set(pack.namelist())
    assert "report.pdf" not in names and "report.html" in names
    assert "fonts-noto-cjk" in pack.read("report-pdf-missing.txt").decode()
    assert verify_pack(answer.content, _signer_pem(incident)).ok


def test_a_long_incident_lists_its_first_files_and_says_where_the_rest_are(incident, send, monkeypatch):
    send(make_egress("core", path="/media/zhang/KINGSTON/second.dwg", sha256="b" * 64))  # joins incident 1
    monkeypatch.setattr("server.packreport.MAX_FILES", 1)
    incident.cookies.set("mw_lang", "zh")
    html = _pack(incident.get("/console/alerts/1/evidence.zip")).read("report.html").decode()
    assert "gpj.泵叶轮图纸.dwg" in html and "second.dwg" not in html.split("处理经过")[0]
    assert "另有 1 个文件未列出（见控制台告警页面或 API /api/v1/alerts/1/files）" in html
