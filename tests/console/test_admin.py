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


def _row(html: str, rule_id: str) -> str:
    start = html.index(f'<tr id="rule-{rule_id}"')
    return html[start : html.index("</tr>", start)]


def _audited(engine, action: str) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from server.schema import audit_log

    with engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.actor, audit_log.c.target).where(audit_log.c.action == action).order_by(audit_log.c.id)).all()
    return [tuple(r) for r in rows]


def test_a_shipped_rule_is_switched_off_and_on_by_an_admin_and_audited(admin, post_form, store, engine):
    before = store.policies.active()
    row = _row(admin.get("/console/rules").text, "MW-UNKNOWN-DEVICE")
    assert "shipped pack" in row and ">enabled<" in row and "/console/rules/MW-UNKNOWN-DEVICE/toggle" in row

    answer = post_form(admin, "/console/rules", "/console/rules/MW-UNKNOWN-DEVICE/toggle")
    assert answer.status_code == 303 and answer.headers["location"].endswith("msg=policy")
    off = store.policies.active()
    assert off.version != before.version and off.disabled == ("MW-UNKNOWN-DEVICE",)
    assert not off.ruleset.event_rule("MW-UNKNOWN-DEVICE").enabled
    assert off.sources == before.sources  # the pack itself is untouched
    page = admin.get("/console/rules").text
    assert ">switched off<" in _row(page, "MW-UNKNOWN-DEVICE") and ">Enable<" in _row(page, "MW-UNKNOWN-DEVICE")
    assert "<td>MW-UNKNOWN-DEVICE</td>" in page  # the history names the switched-off rules of each version

    assert post_form(admin, "/console/rules", "/console/rules/MW-UNKNOWN-DEVICE/toggle").status_code == 303
    on = store.policies.active()
    assert on.disabled == () and on.ruleset.event_rule("MW-UNKNOWN-DEVICE").enabled and on.version == before.version
    assert _audited(engine, "policy.rule_disabled") == [("console:boss", "rule:MW-UNKNOWN-DEVICE")]
    assert _audited(engine, "policy.rule_enabled") == [("console:boss", "rule:MW-UNKNOWN-DEVICE")]


def test_a_rule_counted_by_a_correlation_rule_that_stays_on_is_not_switched_off(admin, post_form, store):
    before = store.policies.active().version
    answer = post_form(admin, "/console/rules", "/console/rules/MW-EGRESS-CLASSIFIED/toggle")
    assert answer.status_code == 409
    assert "MW-EGRESS-CLASSIFIED is counted by MW-BULK-EGRESS, which stays on" in answer.text
    assert store.policies.active().version == before
    # switched off in order, both go
    assert post_form(admin, "/console/rules", "/console/rules/MW-BULK-EGRESS/toggle").status_code == 303
    assert post_form(admin, "/console/rules", "/console/rules/MW-EGRESS-CLASSIFIED/toggle").status_code == 303
    assert store.policies.active().disabled == ("MW-BULK-EGRESS", "MW-EGRESS-CLASSIFIED")
    assert post_form(admin, "/console/rules", "/console/rules/NO-SUCH-RULE/toggle").status_code == 404


def test_an_analyst_cannot_switch_a_shipped_rule(analyst, post_form, store):
    before = store.policies.active().version
    assert post_form(analyst, "/console/", "/console/rules/MW-UNKNOWN-DEVICE/toggle").status_code == 403
    assert store.policies.active().version == before
    assert "/toggle" not in analyst.get("/console/rules").text  # nor is the button shown


def test_switched_off_rules_stay_off_when_a_file_is_uploaded(admin, post_form, store):
    assert post_form(admin, "/console/rules", "/console/rules/MW-UNKNOWN-DEVICE/toggle").status_code == 303
    assert post_form(admin, "/console/rules", "/console/rules/upload", {"name": "firm.yaml", "text": GOOD}).status_code == 303
    policy = store.policies.active()
    assert policy.disabled == ("MW-UNKNOWN-DEVICE",) and policy.ruleset.event_rule("FIRM-SALES-EGRESS").enabled


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

    from server.authguard import digest

    assert client.app.state.auth_budget.is_verified(digest(token))  # let past the bad-token guard's budget
    assert post_form(admin, "/console/tokens", "/console/tokens/1/revoke").headers["location"].endswith("msg=token_revoked")
    assert not client.app.state.auth_budget.is_verified(digest(token))  # out of the guard's cache at once
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
    assert "Add a channel" in html  # changed here now (tests/console/test_channels_page.py), not only through /api/v1/channels
