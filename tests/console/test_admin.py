"""Rules, users and tokens in the console: uploads checked with their errors at their lines, one-time tokens."""

from __future__ import annotations

import pytest

from server.console.rulefiles import locate, set_enabled

GOOD = """# the firm's own rule
- id: FIRM-SALES-EGRESS
  title: Sales folder content leaving
  category: classified-egress
  severity: high
  when:
    type: egress.file
    level: [general]
"""
BAD = """- id: FIRM-BAD
  title: t
  category: classified-egress
  severity: high
  when:
    type: egress.file
    bogus: 1
"""


def test_upload_with_errors_is_refused_and_shows_them_at_their_lines(admin, post_form, store):
    before = store.policies.active().version
    answer = post_form(admin, "/console/rules", "/console/rules/upload", {"name": "firm.yaml", "text": BAD})

    assert answer.status_code == 422
    assert "The rule set has errors; the active one is unchanged." in answer.text
    assert '<li class="has-error"><code>    bogus: 1</code><span class="line-error">line 7: FIRM-BAD.when.bogus: unknown field' in answer.text
    assert store.policies.active().version == before


def test_good_upload_becomes_active_and_can_be_disabled_and_removed(admin, post_form, store):
    answer = post_form(admin, "/console/rules", "/console/rules/upload", {"name": "firm.yaml", "text": GOOD})
    assert answer.status_code == 303 and answer.headers["location"].endswith("msg=policy")
    assert store.policies.active().ruleset.event_rule("FIRM-SALES-EGRESS").enabled

    assert post_form(admin, "/console/rules", "/console/rules/FIRM-SALES-EGRESS/toggle").status_code == 303
    policy = store.policies.active()
    assert not policy.ruleset.event_rule("FIRM-SALES-EGRESS").enabled
    assert "# the firm's own rule" in dict(policy.sources)["firm.yaml"]  # comments survive

    assert post_form(admin, "/console/rules", "/console/rules/FIRM-SALES-EGRESS/toggle").status_code == 303
    assert store.policies.active().ruleset.event_rule("FIRM-SALES-EGRESS").enabled

    post_form(admin, "/console/rules", "/console/rules/upload", {"name": "firm.yaml", "text": "", "remove": "1"})
    assert store.policies.active().ruleset.event_rule("FIRM-SALES-EGRESS") is None


def test_pack_rules_cannot_be_switched_off_here(admin, post_form):
    assert post_form(admin, "/console/rules", "/console/rules/MW-EGRESS-CLASSIFIED/toggle").status_code == 409
    assert post_form(admin, "/console/rules", "/console/rules/NO-SUCH-RULE/toggle").status_code == 404


@pytest.mark.parametrize("name", ["../x.yaml", "rules.txt", "packs/agent.yaml", ""])
def test_bad_file_names_are_refused(admin, post_form, name):
    assert post_form(admin, "/console/rules", "/console/rules/upload", {"name": name, "text": GOOD}).status_code == 422


def test_set_enabled_edits_only_the_rules_block():
    text = "- id: A-1\n  title: a\n  enabled: true  # on\n- id: B-2\n  title: b\n"
    assert set_enabled(text, 1, 3, False) == "- id: A-1\n  title: a\n  enabled: false  # on\n- id: B-2\n  title: b\n"
    assert set_enabled(text, 4, 3, False) == "- id: A-1\n  title: a\n  enabled: true  # on\n- id: B-2\n  enabled: false\n  title: b\n"


def test_locate_splits_file_line_and_message():
    found = locate(["firm.yaml:7:5: [0].when.bogus: unknown field 'bogus'", "at most 100 rule files, got 101"])
    assert (found[0].file, found[0].line, found[0].message) == ("firm.yaml", 7, "[0].when.bogus: unknown field 'bogus'")
    assert found[1].line == 0


def test_admin_creates_and_removes_a_user_but_never_the_last_admin(admin, post_form, store):
    assert post_form(admin, "/console/users", "/console/users", {"name": "wang.fang", "role": "analyst", "password": "short"}).status_code == 422
    assert post_form(admin, "/console/users", "/console/users", {"name": "wang.fang", "role": "analyst", "password": "long-enough-pass"}).status_code == 303
    assert store.user_exists("wang.fang")
    assert post_form(admin, "/console/users", "/console/users", {"name": "wang.fang", "role": "analyst", "password": "long-enough-pass"}).status_code == 422
    assert post_form(admin, "/console/users", "/console/users/2/remove").headers["location"].endswith("msg=user_removed")
    assert not store.user_exists("wang.fang")
    assert post_form(admin, "/console/users", "/console/users/1/remove").headers["location"].endswith("msg=last_admin")


def test_new_token_is_shown_once_and_revoking_it_locks_the_api(admin, post_form, client):
    answer = post_form(admin, "/console/tokens", "/console/tokens", {"name": "siem"})
    assert answer.status_code == 200
    token = answer.text.split('id="new-token">')[1].split("<")[0]
    assert token.startswith("mwt_")
    assert client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert token not in admin.get("/console/tokens").text

    assert post_form(admin, "/console/tokens", "/console/tokens/1/revoke").headers["location"].endswith("msg=token_revoked")
    assert client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert post_form(admin, "/console/tokens", "/console/tokens/1/revoke").headers["location"].endswith("msg=not_found")


def test_devices_allow_and_deny(admin, post_form, send, store):
    from tests.server.factories import make_egress, make_event

    send(make_event("media.mounted", path=None, media=make_egress()["media"]))
    identity = store.devices.list(None, None, None, None, 10, None)[0][0]["identity"]
    assert post_form(admin, "/console/devices", "/console/devices/allow", {"pattern": identity, "owner": "zhang.wei", "days": "30"}).status_code == 303
    assert store.devices.list(None, None, None, None, 10, None)[0][0]["allowed"]
    assert post_form(admin, "/console/devices", "/console/devices/allow", {"pattern": "nonsense"}).status_code == 422
    assert post_form(admin, "/console/devices", "/console/devices/allow", {"pattern": identity, "days": "0"}).status_code == 422
    entry = store.devices.allow_entries()[0]["id"]
    assert post_form(admin, "/console/devices", f"/console/devices/allow/{entry}/remove").headers["location"].endswith("msg=disallowed")
    assert not store.devices.list(None, None, None, None, 10, None)[0][0]["allowed"]


def test_channels_page_names_channels_without_their_urls(admin):
    html = admin.get("/console/channels").text
    assert "Notification channels" in html
    assert "/api/v1/channels" in html  # the notifications API exists in this collector
