"""The assessor's report in the console (server/console/routes_assessor.py): an analyst downloads it
as XLSX and PDF in the page's language, each download audited with its SHA-256."""

from __future__ import annotations

import hashlib
import io

import pytest
from openpyxl import load_workbook

from server import pdffont
from tests.server.factories import make_egress

PERIOD = {"from": "2026-03-01", "until": "2026-03-31"}  # the test clock: 2026-03-02


def test_analyst_page_in_chinese_and_the_xlsx_download(analyst, send, store):
    send(make_egress("core"))
    analyst.cookies.set("mw_lang", "zh")
    page = analyst.get("/console/assessor")
    assert page.status_code == 200
    assert "评估报告" in page.text and 'href="/console/assessor"' in page.text  # in the menu
    assert 'value="2026-02-01"' in page.text and 'value="2026-02-28"' in page.text  # last month by default
    for english in ("Assessor's report", "Download the report", "Coverage is the share", "File type"):
        assert english not in page.text

    answer = analyst.get("/console/assessor/export", params={**PERIOD, "format": "xlsx"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert 'filename="miwei-assessor-2026-03-01_2026-03-31.xlsx"' in answer.headers["content-disposition"]
    book = load_workbook(io.BytesIO(answer.content))
    assert (
        book.sheetnames[0] == "概况"
        and dict((r[0].value, r[1].value) for r in book["概况"].iter_rows(min_row=2))["期间内告警数"] == 1
    )
    (entry,) = store.list_audit(action="export.assessor").items
    assert (
        entry["actor"] == "console:li.na" and entry["details"]["sha256"] == hashlib.sha256(answer.content).hexdigest()
    )
    assert entry["details"]["lang"] == "zh"


@pytest.mark.skipif(pdffont.find() is None, reason="no CJK font installed: apt-get install fonts-noto-cjk")
def test_pdf_in_english(admin):
    answer = admin.get("/console/assessor/export", params={**PERIOD, "format": "pdf"})
    assert (
        answer.status_code == 200
        and answer.content.startswith(b"%PDF")
        and answer.headers["content-type"] == "application/pdf"
    )


def test_a_bad_period_or_format_is_refused(admin):
    refused = admin.get("/console/assessor/export", params={"from": "2026-03-31", "until": "2026-03-01"})
    assert (
        refused.status_code == 422
        and "The period is not valid" in refused.text
        and 'value="2026-03-31"' in refused.text
    )
    assert admin.get("/console/assessor/export", params={**PERIOD, "format": "docx"}).status_code == 422


def test_without_a_cjk_font_the_pdf_is_refused_with_the_reason(admin, monkeypatch):
    monkeypatch.setattr("server.reportdoc.pdffont.find", lambda: None)
    answer = admin.get("/console/assessor/export", params={**PERIOD, "format": "pdf"})
    assert answer.status_code == 503 and "fonts-noto-cjk" in answer.text
    assert admin.get("/console/assessor/export", params={**PERIOD, "format": "xlsx"}).status_code == 200


def test_signed_out_is_sent_to_sign_in(client):
    answer = client.get("/console/assessor/export", params=PERIOD, follow_redirects=False)
    assert answer.status_code in (302, 303) and "/console/login" in answer.headers["location"]
