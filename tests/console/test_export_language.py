"""Exports in the viewer's language: the header row and the explanations (values stay as stored)."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook

from tests.server.factories import make_egress

CJK = re.compile(r"[\u4e00-\u9fff]")


def _csv(answer) -> list[list[str]]:
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_alert_export_is_in_the_viewers_language(admin, send, lang):
    send(make_egress("core", register_entry="drawings"))
    admin.cookies.set("mw_lang", lang)
    header, *rows = _csv(admin.get("/console/export/alerts.csv"))
    explanation = rows[0][header.index("说明" if lang == "zh" else "explanation")]
    if lang == "zh":
        assert header[:2] == ["编号", "创建时间 (Asia/Shanghai, UTC+08:00)"] and "严重程度" in header
        assert "复制到移动存储介质" in explanation and "written to" not in explanation and "Rule " not in explanation
    else:
        assert header[0] == "id" and not CJK.search(" ".join(header))
        assert "written to removable media" in explanation and not CJK.search(explanation)
    book = load_workbook(io.BytesIO(admin.get("/console/export/alerts.xlsx").content))
    first_row = [c.value for c in next(book.active.iter_rows(max_row=1))]
    assert first_row[0] == ("编号" if lang == "zh" else "id")
