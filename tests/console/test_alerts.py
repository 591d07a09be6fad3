"""Handling alerts in the console: acknowledge with a comment, bulk changes, the evidence pack."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from tests.server.factories import make_egress, make_event


def test_acknowledge_with_a_comment_is_recorded_in_the_history(admin, send, post_form, store):
    send(make_egress("core"))
    answer = post_form(admin, "/console/alerts/1", "/console/alerts/1", {"status": "acknowledged", "comment": "asked Zhang: <b>backup</b>"})

    assert answer.status_code == 303 and answer.headers["location"] == "/console/alerts/1?msg=updated"
    alert = store.get_alert(1)
    assert alert["status"] == "acknowledged"
    assert alert["history"][-1] == {
        "at": alert["updated_at"], "actor": "console:boss", "action": "status", "from_status": "open", "to_status": "acknowledged",
        "status": "acknowledged", "comment": "asked Zhang: <b>backup</b>",
    }
    page = admin.get(answer.headers["location"]).text
    assert "The alerts were updated." in page and "asked Zhang: &lt;b&gt;backup&lt;/b&gt;" in page


def test_unknown_status_and_missing_alert(admin, send, post_form):
    send(make_egress("core"))
    assert post_form(admin, "/console/alerts/1", "/console/alerts/1", {"status": "deleted"}).status_code == 422
    assert post_form(admin, "/console/alerts/1", "/console/alerts/999", {"status": "resolved"}).status_code == 404
    assert admin.get("/console/alerts/999").status_code == 404
    assert admin.get("/console/alerts/0").status_code == 404


def test_bulk_resolve_changes_only_the_selected_alerts(admin, send, post_form, store):
    for i in range(3):
        send(make_egress("core", path=f"/media/zhang/KINGSTON/copy-{i}.dwg", sha256=str(i) * 64, user=f"user{i}"))  # three incidents
    answer = post_form(admin, "/console/alerts", "/console/alerts/bulk", [("id", "1"), ("id", "3"), ("status", "resolved"), ("comment", "weekly review")])

    assert answer.status_code == 303
    assert [store.get_alert(i)["status"] for i in (1, 2, 3)] == ["resolved", "open", "resolved"]
    assert post_form(admin, "/console/alerts", "/console/alerts/bulk", [("status", "resolved")]).headers["location"].endswith("msg=nothing")
    assert post_form(admin, "/console/alerts", "/console/alerts/bulk", [("id", "2"), ("status", "open!")]).status_code == 422


def test_alert_page_shows_explanation_evidence_and_the_users_day(admin, send):
    send(make_event("file.opened", ts="2026-03-01T10:00:00.000Z", path="/srv/rnd/drawings/a.dwg", level="core"))
    send(make_event("file.opened", ts="2026-02-27T10:00:00.000Z", path="/srv/rnd/drawings/too-early.dwg", level="core"))
    send(make_egress("core", ts="2026-03-02T08:59:00.000Z"))
    send(make_event("file.deleted", ts="2026-03-02T09:30:00.000Z", user="someone.else", path="/srv/rnd/other.dwg"))
    html = admin.get("/console/alerts/1").text

    assert "/media/zhang/KINGSTON/pump-impeller.dwg" in html  # evidence
    assert "/srv/rnd/drawings/a.dwg" in html  # same user, within 24 hours
    assert "too-early.dwg" not in html and "/srv/rnd/other.dwg" not in html
    assert 'class="evidence"' in html
    assert "Why" in html and "Download evidence pack (ZIP)" in html


def test_evidence_pack_holds_the_alert_its_events_and_their_digests(admin, send, store):
    send(make_egress("core", path="/media/zhang/KINGSTON/=cmd|' /C calc'!A0.dwg"))
    answer = admin.get("/console/alerts/1/evidence.zip")

    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    assert 'filename="miwei-alert-1-evidence.zip"' in answer.headers["content-disposition"]
    pack = zipfile.ZipFile(io.BytesIO(answer.content))
    manifest = json.loads(pack.read("manifest.json"))
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) == set(pack.namelist()) - {"manifest.json", "manifest.sig", "SHA256SUMS"}  # signed: tests/console/test_signed_packs.py
    for name, entry in listed.items():
        data = pack.read(name)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
    alert = json.loads(pack.read("alert.json"))
    events = json.loads(pack.read("events.json"))
    stored = store.get_alert(1)
    assert alert["id"] == 1 and alert["event_ids"] == stored["event_ids"] and alert["explanation"] == stored["explanation"]
    assert events == stored["events"]
    assert f"events/{events[0]['id']}.json" in listed
    assert manifest["generated_by"] == "console:boss" and manifest["alert_id"] == 1
