"""The incident page (issue 19 item 1): who, where (device label and vendor, place kind and app), when,
how many files and bytes, the highest level and register item, then the files paged 100 at a time
with each file's facets; in Chinese for a Chinese viewer. Events go through the ingest API."""

from __future__ import annotations

import re

from tests.console.conftest import sign_in
from tests.server.factories import at, make_egress


def _files(n: int, **fields) -> list[dict]:
    return [
        make_egress(
            "core" if i == 2 else "general", ts=at(i), path=f"/media/zhang/KINGSTON/图纸-{i:03d}.dwg", sha256=f"{i:064x}", size=2048,
            register_entry="泵叶轮图纸" if i == 2 else "Product drawings", **fields,
        )
        for i in range(n)
    ]  # fmt: skip


def _rows(html: str) -> list[str]:
    body = html.split('class="list incident-files"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<td class="num">(\d+)</td>', body)


def test_the_incident_page_sums_up_the_session_and_pages_its_files(admin, send):
    send(*_files(150))
    html = admin.get("/console/alerts/1").text

    for words in ("Incident", "KINGSTON", "Kingston DataTraveler 3.0 (serial 60A44C3FAE22F0B1)", "(Kingston)", "removable media", "150",
                  "300.0 KB", "Core trade secret", "泵叶轮图纸", "Classified content leaving", "图纸-000.dwg", "Page 1 of 2"):  # fmt: skip
        assert words in html, words
    assert _rows(html)[::50] == ["1", "51"] and len(_rows(html)) == 100
    assert "Evidence events" not in html  # the files replace the events table
    second = admin.get("/console/alerts/1?page=2").text
    table = second.split('class="list incident-files"', 1)[1].split("</table>", 1)[0]
    assert _rows(second) == [str(n) for n in range(101, 151)] and "图纸-149.dwg" in table and "图纸-000.dwg" not in table
    assert admin.get("/console/alerts/1?page=0").status_code == 422


def test_a_file_with_three_detections_shows_three_facets(admin, send):
    detections = [{"detector": "trade_secret_marking", "count": 1, "sample": "商业秘密"}, {"detector": "cn_resident_id", "count": 12, "sample": "3301**"}]
    send(make_egress("core", detections=detections))
    html = admin.get("/console/alerts/1").text
    files = html.split('class="list incident-files"', 1)[1].split("</table>", 1)[0]
    assert [t for t in re.findall(r'<span class="tag" title="([^"]+)">', files)] == ["MW-EGRESS-CLASSIFIED", "MW-EGRESS-MARKED", "MW-PII-RESIDENT-ID"]
    assert "cn_resident_id × 12" in files and "exact copy" in files


def test_the_incident_page_in_chinese(client, make_user, send):
    send(*_files(3))
    make_user("wang.fang", "analyst")
    assert sign_in(client, "wang.fang", lang="zh").status_code == 303
    html = client.get("/console/alerts/1").text
    for words in ("外发会话", "第一个文件", "最后一个文件", "总大小", "最高密级", "匹配方式", "检出"):
        assert words in html, words
    for english in ("Total size", "Highest level", "How it matched", "First file"):
        assert english not in html, english


def test_an_alert_that_is_not_an_incident_keeps_its_events_table(admin, send):
    from tests.server.factories import KINGSTON, make_event

    send(make_event("media.mounted", media=dict(KINGSTON), egress="removable"))
    html = admin.get("/console/alerts/1").text
    assert "Evidence events" in html and 'class="list incident-files"' not in html
