"""What an officer does in the console lands in the audit log, with the officer as the actor."""

from __future__ import annotations

import hashlib

from tests.server.factories import make_egress


def _audit(store) -> list[dict]:
    return store.list_audit(limit=1000).items


def test_console_account_changes_are_audited_with_the_console_user(admin, post_form, store):
    post_form(admin, "/console/users", "/console/users", {"name": "wang.wu", "role": "analyst", "password": "a long enough password"})
    wang = next(e for e in _audit(store) if e["action"] == "user.create" and e["target"] == "user:wang.wu")
    assert wang["actor"] == "console:boss"
    post_form(admin, "/console/users", f"/console/users/{wang['details']['id']}/remove")
    post_form(admin, "/console/tokens", "/console/tokens", {"name": "siem"})
    token_id = next(e for e in _audit(store) if e["action"] == "token.create")["target"].removeprefix("token:")
    post_form(admin, "/console/tokens", f"/console/tokens/{token_id}/revoke")
    actions = {(e["action"], e["actor"]) for e in _audit(store)}
    assert {("user.remove", "console:boss"), ("token.create", "console:boss"), ("token.revoke", "console:boss")} <= actions


def test_exports_and_evidence_packs_are_audited(admin, send, store):
    send(make_egress("core"))
    alert_id = store.list_alerts(None, None, None, None, 10, None).items[0]["id"]
    exported = admin.get("/console/export/events.csv?type=egress.file")
    assert exported.status_code == 200
    assert admin.get(f"/console/alerts/{alert_id}/evidence.zip").status_code == 200
    exports = [e for e in _audit(store) if e["action"].startswith("export.")]
    by_action = {e["action"]: e for e in exports}
    assert by_action["export.events"]["actor"] == "console:boss"
    digest = hashlib.sha256(exported.content).hexdigest()  # the file handed on matches its export
    assert by_action["export.events"]["details"] == {"rows": 1, "filters": {"type": "egress.file"}, "sha256": digest, "bytes": len(exported.content)}
    assert by_action["export.evidence"]["target"] == f"alert:{alert_id}"
