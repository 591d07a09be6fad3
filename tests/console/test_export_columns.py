"""Exports fit for evidence (server/console/exporttables.py, exports.py): alerts with the device,
place, app, match, register item and handling history; events with their medium; XLSX laid out
(widths, frozen header, filters); every export audited with the file's SHA-256."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest
from openpyxl import load_workbook

from tests.server.factories import make_egress, make_event


def _csv(answer) -> list[dict]:
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))


@pytest.fixture
def handled(admin, send, post_form):
    send(
        make_egress(
            "core",
            match={"method": "partial", "similarity": 0.83},
            detections=[{"detector": "cn_resident_id", "count": 3}],
        )
    )
    send(make_event("file.modified", level="core"))
    post_form(admin, "/console/alerts/1", "/console/alerts/1", {"status": "acknowledged", "comment": "问过张伟"})
    post_form(admin, "/console/alerts/1", "/console/alerts/1/assign", {"assignee": "boss"})
    return admin


def test_alert_export_has_device_place_match_register_and_history(handled):
    (row,) = [r for r in _csv(handled.get("/console/export/alerts.csv")) if r["id"] == "1"]
    assert row["kind"] == "incident" and row["place_kind"] == "removable" and row["device_label"] == "KINGSTON"
    assert (
        row["device_vendor"] == "Kingston" and row["register_item"] == "Product drawings" and row["assignee"] == "boss"
    )
    assert "partial 83%" in row["match"] and "cn_resident_id ×3" in row["match"]
    history = row["history"].splitlines()
    assert (
        history[0].endswith("System: Open")
        and "Open → Acknowledged — 问过张伟" in history[1]
        and "→ @boss" in history[2]
    )
    assert history[1].startswith("2026-03-02 17:00:00 console:boss: ")  # the firm's clock, who


def test_chinese_xlsx_is_laid_out_with_chinese_headers_and_history(handled):
    handled.cookies.set("mw_lang", "zh")
    sheet = load_workbook(io.BytesIO(handled.get("/console/export/alerts.xlsx").content)).active
    header = [c.value for c in sheet[1]]
    for name in ("去向", "外发位置类型", "设备", "设备厂商", "匹配方式", "台账事项", "处置记录", "处理人"):
        assert name in header, name
    row = {h: c.value for h, c in zip(header, sheet[2], strict=True)}
    assert "未处理 → 已确认 — 问过张伟" in row["处置记录"]
    assert (
        sheet.freeze_panes == "A2"
        and sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(header)).column_letter}{sheet.max_row}"
    )
    explanation = header.index("说明") + 1
    assert (
        sheet.column_dimensions[sheet.cell(1, explanation).column_letter].width == 60
    )  # long text: the widest allowed
    assert sheet.column_dimensions["A"].width == 8  # 编号 and small ids: the narrowest


def test_event_export_has_the_medium_place_match_and_register_item(handled):
    rows = {r["type"]: r for r in _csv(handled.get("/console/export/events.csv"))}
    egress = rows["egress.file"]
    assert egress["media_identity"] == "0951:1666:60a44c3fae22f0b1" and egress["media_vendor"] == "Kingston"
    assert (
        egress["media_serial"] == "60A44C3FAE22F0B1"
        and egress["media_label"] == "KINGSTON"
        and egress["mountpoint"] == "/media/zhang/KINGSTON"
    )
    assert (
        egress["place_kind"] == "removable"
        and egress["register_item"] == "Product drawings"
        and egress["match"].startswith("partial 83%")
    )
    assert rows["file.modified"]["media_identity"] == "" and rows["file.modified"]["place_kind"] == ""


@pytest.mark.parametrize("path", ["/console/export/alerts.xlsx", "/console/export/events.csv", "/console/export/devices.xlsx",
                                  "/console/export/register.csv", "/console/audit/export.xlsx", "/console/register/items.xlsx"])  # fmt: skip
def test_every_export_is_audited_with_its_digest(handled, store, path):
    answer = handled.get(path)
    assert answer.status_code == 200
    entry = next(e for e in store.list_audit(action="export.", limit=5).items if e["action"].startswith("export."))
    assert entry["details"]["sha256"] == hashlib.sha256(answer.content).hexdigest()


def test_the_apis_register_export_is_audited_with_its_digest(client, reader, store):
    answer = client.get("/api/v1/register/export.xlsx", headers=reader)
    assert answer.status_code == 200
    (entry,) = store.list_audit(action="export.register_items").items
    assert entry["actor"] == "token:secops" and entry["details"]["sha256"] == hashlib.sha256(answer.content).hexdigest()
