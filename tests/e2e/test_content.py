"""Content inspection end to end: real files copied into an egress place raise the categories
that depend on detectors (marked-egress, personal-data-egress, state-secret-marking)."""

from __future__ import annotations

import json
import zipfile
from datetime import date, timedelta

from stdnum.cn import ric

from tests.agent.content import makers
from tests.e2e.conftest import copy
from tests.e2e.harness import wait_for


def _resident_ids(n: int) -> list[str]:
    """Valid GB 11643 numbers: Beijing Chaoyang, real birth dates, the check digit computed."""
    ids = []
    for i in range(n):
        body = "110105" + (date(1980, 1, 1) + timedelta(days=37 * i)).strftime("%Y%m%d") + f"{i % 1000:03d}"
        ids.append(body + ric.calc_check_digit(body + "0"))  # stdnum wants a placeholder check digit
    assert all(ric.is_valid(x) for x in ids)
    return ids


def test_marked_document_on_the_stick_raises_marked_egress(deployment):
    d = deployment
    d.start_server()
    d.start_agent()
    makers.docx(d.usb / "budget.docx")
    [alert] = wait_for(lambda: d.alerts(category="marked-egress"), 10, what="a marked-egress alert")
    assert alert["severity"] == "high"
    [event] = d.get(f"/api/v1/alerts/{alert['id']}")["events"]
    assert event["file_type"] == "docx" and event["type_mismatch"] is False
    markings = [x for x in event["detections"] if x["detector"] == "trade_secret_marking"]
    assert markings and markings[0]["count"] >= 1


def test_customer_list_with_many_id_numbers_raises_personal_data_egress_without_the_numbers(deployment):
    d = deployment
    d.start_server()
    d.start_agent()
    ids = _resident_ids(80)
    assert len(ids) >= 60
    rows = ["姓名,身份证号,城市"] + [f"客户{i},{x},杭州" for i, x in enumerate(ids)]
    (d.usb / "客户名单.csv").write_text("\n".join(rows) + "\n", encoding="gb18030")
    [alert] = wait_for(lambda: d.alerts(category="personal-data-egress"), 10, what="a personal-data-egress alert")
    detail = d.get(f"/api/v1/alerts/{alert['id']}")
    [event] = detail["events"]
    [found] = [x for x in event["detections"] if x["detector"] == "cn_resident_id"]
    assert found["count"] == len(ids)
    text = json.dumps(detail, ensure_ascii=False)
    assert not any(x in text for x in ids), "a raw ID number reached the collector"


def test_state_secret_mark_in_a_watched_file_is_critical(deployment, classified):
    d = deployment
    d.start_server()
    d.start_agent()
    (classified["drawings"] / "notice.txt").write_text("机密★5年\n关于某型号的通知\n", encoding="utf-8")
    [alert] = wait_for(lambda: d.alerts(category="state-secret-marking"), 10, what="a state-secret-marking alert")
    assert alert["severity"] == "critical"


def test_renamed_document_carries_its_true_type(deployment):
    d = deployment
    d.start_server()
    d.start_agent()
    makers.docx(d.usb / "holiday.jpg")
    [event] = wait_for(lambda: d.get("/api/v1/events", type="egress.file")["events"], 10, what="the egress event")
    assert event["file_type"] == "docx" and event["type_mismatch"] is True


def test_zipped_classified_drawing_is_traced_through_the_archive(deployment, classified, tmp_path):
    d = deployment
    d.start_server()
    d.start_agent()
    staging = tmp_path / "staging.zip"  # written outside the watched places, then copied in whole
    with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("readme.txt", "nothing to see")
        z.write(classified["drawings"] / "pump-impeller.dwg", "rev3/pump-impeller.dwg")
    copy(staging, d.usb / "drawings.zip")
    [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 10, what="an alert for the zipped drawing")
    [event] = d.get(f"/api/v1/alerts/{alert['id']}")["events"]
    assert event["path"] == str(d.usb / "drawings.zip") and event["file_type"] == "zip"
    assert event["match"] == {"method": "archive", "similarity": 1.0}
    assert _archive_details(event) == {"archive_member": "rev3/pump-impeller.dwg", "classified_members": 1}
    assert event["source_path"] == str(classified["drawings"] / "pump-impeller.dwg")
    assert event["level"] == "core" and alert["severity"] == "critical"


def test_classified_drawing_in_a_seven_zip_is_traced_through_the_archive(deployment, classified, tmp_path):
    import py7zr

    d = deployment
    d.start_server()
    d.start_agent()
    staging = tmp_path / "staging.7z"  # written outside the watched places, then copied in whole
    with py7zr.SevenZipFile(staging, "w") as z:  # one solid LZMA2 folder, the drawing second in it
        z.writestr(b"nothing to see", "readme.txt")
        z.write(classified["drawings"] / "pump-impeller.dwg", "图纸/pump-impeller.dwg")
    copy(staging, d.usb / "drawings.7z")
    [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 10, what="an alert for the 7z drawing")
    [event] = d.get(f"/api/v1/alerts/{alert['id']}")["events"]
    assert event["path"] == str(d.usb / "drawings.7z") and event["file_type"] == "7z"
    assert event["match"] == {"method": "archive", "similarity": 1.0}
    assert _archive_details(event) == {"archive_member": "图纸/pump-impeller.dwg", "classified_members": 1}
    assert event["source_path"] == str(classified["drawings"] / "pump-impeller.dwg")
    assert event["level"] == "core" and alert["severity"] == "critical"


def _archive_details(event: dict) -> dict:
    """What an archive match adds to details (the writer's attribution is there too, best effort)."""
    assert event["details"]["attribution"] in ("open-file", "same-burst", "not-seen")
    return {k: v for k, v in event["details"].items() if k in ("archive_member", "classified_members")}
