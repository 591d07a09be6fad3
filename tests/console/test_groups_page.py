"""The console's groups page (server/console/routes_groups.py): admins create, change and delete
groups and order the placement rules through forms that go through server/groups.py (so the API
reads what the forms did, and the audit log has it); analysts read only."""

from __future__ import annotations

import pytest

from tests.console.conftest import FORM, csrf_of

PAGE = "/console/groups"


def _api(client, reader) -> dict:
    return client.get("/api/v1/groups", headers=reader).json()


def _group(client, reader, name: str) -> dict:
    return next(g for g in _api(client, reader)["groups"] if g["name"] == name)


def _create(admin, post_form, **fields):
    data = {"name": "研发", "description": "", "egress": "", "heartbeat_s": "", "agent_version": "", "notify_mode": "own",
            **fields}  # fmt: skip
    return post_form(admin, PAGE, PAGE, data)


def test_the_admin_creates_changes_and_deletes_a_group_through_the_forms(admin, post_form, client, reader):
    item = client.post("/api/v1/register", json={"name": "泵叶轮图纸", "level": "core", "category": "技术信息",
                       "period": "长期", "locations": [{"os": "linux", "pattern": "/home/*/研发/图纸"}], "reason": "定密"},
                       headers=reader).json()["id"]  # fmt: skip
    r = post_form(admin, PAGE, PAGE, [("name", "研发"), ("description", "R&D"), ("item", str(item)),
                  ("egress", "/srv/外发 | share | NAS\n~/同步 | sync"), ("heartbeat_s", "60"), ("agent_version", "0.2.0"),
                  ("notify_mode", "set"), ("severity", "critical"), ("severity", "high")])  # fmt: skip
    assert r.status_code == 303 and "msg=group_saved" in r.headers["location"], r.text
    group = _group(client, reader, "研发")
    assert group["register_items"] == [item] and group["heartbeat_s"] == 60 and group["agent_version"] == "0.2.0"
    assert group["egress"] == [
        {"path": "/srv/外发", "kind": "share", "app": "NAS"},
        {"path": "~/同步", "kind": "sync", "app": ""},
    ]
    assert group["notify_severities"] == ["critical", "high"]
    page = admin.get(r.headers["location"]).text
    assert "泵叶轮图纸" in page and "/srv/外发" in page and 'value="60"' in page
    # change: the form as it stands, with the notices back to the agent's own and all items
    r = post_form(admin, PAGE, f"{PAGE}/{group['id']}", [("name", "研发部"), ("item", "all"), ("egress", ""),
                  ("heartbeat_s", ""), ("agent_version", ""), ("notify_mode", "own"), ("severity", "low")])  # fmt: skip
    assert r.status_code == 303, r.text
    changed = _group(client, reader, "研发部")
    assert (
        changed["register_items"] == "all" and changed["heartbeat_s"] is None and changed["notify_severities"] is None
    )
    r = post_form(admin, PAGE, f"{PAGE}/{group['id']}/delete", {})
    assert r.status_code == 303 and "msg=group_deleted" in r.headers["location"]
    assert [g["name"] for g in _api(client, reader)["groups"]] == ["default"]
    actions = [row["action"] for row in client.get("/api/v1/audit", headers=reader).json()["audit"]]
    assert {"group.create", "group.change", "group.delete"} <= set(actions)
    audited = client.get("/api/v1/audit", headers=reader).json()["audit"]
    assert all(row["actor"] == "console:boss" for row in audited if row["action"].startswith("group."))


def test_a_refused_form_shows_why_and_keeps_the_input(admin, post_form, client, reader):
    assert _create(admin, post_form).status_code == 303
    r = _create(admin, post_form, description="第二个", egress="/srv/out | usb")  # a bad kind
    assert r.status_code == 422 and "egress[0].kind" in r.text and "第二个" in r.text and "/srv/out | usb" in r.text
    r = _create(admin, post_form, description="第二个")  # the name exists
    assert r.status_code == 409 and "exists" in r.text and "第二个" in r.text
    r = _create(admin, post_form, name="销售", heartbeat_s="1")
    assert r.status_code == 422 and "heartbeat_s" in r.text and 'value="销售"' in r.text
    r = post_form(admin, PAGE, PAGE, [("name", "销售"), ("notify_mode", "set"), ("severity", "urgent")])
    assert r.status_code == 422 and "notify_severities" in r.text
    assert [g["name"] for g in _api(client, reader)["groups"]] == ["default", "研发"]


def test_rules_are_added_reordered_and_removed_through_the_forms(admin, post_form, client, reader, enroll):
    for name in ("研发", "销售"):
        assert _create(admin, post_form, name=name).status_code == 303
    rd, sales = _group(client, reader, "研发")["id"], _group(client, reader, "销售")["id"]
    for group_id, host, os_name in ((rd, "rd-*", ""), (sales, "*", "linux")):
        r = post_form(
            admin, PAGE, f"{PAGE}/rules", {"action": "add", "group_id": group_id, "hostname": host, "os": os_name}
        )
        assert r.status_code == 303 and "msg=group_rules_saved" in r.headers["location"], r.text
    assert [(x["group_id"], x["hostname"], x["os"]) for x in _api(client, reader)["rules"]] == [
        (rd, "rd-*", None), (sales, "*", "linux")]  # fmt: skip
    assert post_form(admin, PAGE, f"{PAGE}/rules", {"action": "up", "position": 1}).status_code == 303
    assert [x["group_id"] for x in _api(client, reader)["rules"]] == [sales, rd]
    assert post_form(admin, PAGE, f"{PAGE}/rules", {"action": "down", "position": 0}).status_code == 303
    assert [x["group_id"] for x in _api(client, reader)["rules"]] == [rd, sales]
    r = post_form(admin, PAGE, f"{PAGE}/rules", {"action": "add", "group_id": rd, "os": "beos"})
    assert r.status_code == 422 and "os" in r.text
    r = post_form(admin, PAGE, f"{PAGE}/{sales}/delete", {})  # a rule names it
    assert r.status_code == 409 and "placement rules name the group" in r.text
    assert post_form(admin, PAGE, f"{PAGE}/rules", {"action": "remove", "position": 1}).status_code == 303
    assert [x["group_id"] for x in _api(client, reader)["rules"]] == [rd]
    assert "group.rules" in {row["action"] for row in client.get("/api/v1/audit", headers=reader).json()["audit"]}


def test_the_analyst_reads_without_forms_and_is_refused_a_post(admin, analyst, post_form, client, reader):
    assert _create(admin, post_form, name="研发").status_code == 303
    page = analyst.get(PAGE)
    assert page.status_code == 200 and "研发" in page.text
    assert 'action="/console/groups' not in page.text and 'name="hostname"' not in page.text
    token = csrf_of(page.text)  # the sign-out form's: the analyst's own session token
    for action in (PAGE, f"{PAGE}/rules", f"{PAGE}/2", f"{PAGE}/2/delete"):
        r = analyst.post(
            action, content=f"csrf={token}&name=x&action=add&group_id=1", headers=FORM, follow_redirects=False
        )
        assert r.status_code == 403, action
    assert [g["name"] for g in _api(client, reader)["groups"]] == ["default", "研发"]


@pytest.mark.parametrize("action", [PAGE, f"{PAGE}/rules", f"{PAGE}/1"])
def test_a_form_without_the_csrf_token_is_refused(admin, client, reader, action):
    r = admin.post(action, content="csrf=wrong&name=x&action=add&group_id=1", headers=FORM, follow_redirects=False)
    assert r.status_code == 403
    api = _api(client, reader)
    assert [g["name"] for g in api["groups"]] == ["default"] and api["rules"] == []


def test_names_are_escaped_and_the_nav_and_fleet_link_here(admin, post_form, client, reader, enroll):
    evil = '<script>alert("x")</script>'
    assert (
        _create(admin, post_form, name=evil, description=evil, egress=f"/srv/{evil} | share | {evil}").status_code
        == 303
    )
    page = admin.get(PAGE).text
    assert evil not in page and "&lt;script&gt;alert(" in page
    assert 'href="/console/groups"' in page  # the nav
    enroll("pc-0001")
    assert 'href="/console/groups?group=1"' in admin.get("/console/agents").text


def test_the_chinese_page_says_groups_in_chinese(admin, post_form):
    from tests.console.test_i18n import _catalogue, _Texts

    assert _create(admin, post_form, name="研发", heartbeat_s="60").status_code == 303
    post_form(admin, PAGE, f"{PAGE}/rules", {"action": "add", "group_id": 2, "hostname": "rd-*"})
    admin.cookies.set("mw_lang", "zh")
    page = admin.get(f"{PAGE}?group=2").text
    assert ">分组<" in page and "分组规则" in page and "心跳间隔 60 秒" in page
    english = {m.id for m in _catalogue("zh") if m.id}
    parser = _Texts()
    parser.feed(page)
    assert [t for t in parser.texts if t in english or any(len(m) > 12 and m in t for m in english)] == []


def test_the_admin_chooses_the_groups_rule_files_and_limits_in_the_form(admin, post_form, client, reader):
    page = admin.get(PAGE).text
    assert "packs/egress.yaml" in page and 'name="cpu_percent"' in page
    assert 'value="packs/agent.yaml"' not in page  # shown ticked and fixed: it cannot be left out
    form = {"name": "研发", "description": "", "egress": "", "heartbeat_s": "", "agent_version": "", "notify_mode": "own"}
    r = post_form(admin, PAGE, PAGE, [*form.items(), ("rule_file", "packs/egress.yaml"), ("rule_file", "packs/reads.yaml"),
                  ("cpu_percent", "12.5"), ("memory_mb", "150"), ("spool_mb", "")])  # fmt: skip
    assert r.status_code == 303, r.text
    group = _group(client, reader, "研发")
    assert group["rule_files"] == ["packs/egress.yaml", "packs/reads.yaml"]
    assert (group["cpu_percent"], group["memory_mb"], group["spool_mb"]) == (12.5, 150, None)
    shown = admin.get(f"{PAGE}?group={group['id']}").text
    assert 'value="packs/reads.yaml" checked' in shown and 'value="12.5"' in shown
    r = post_form(admin, PAGE, f"{PAGE}/{group['id']}", {**form, "rule_file": "*", "memory_mb": "20"})
    assert r.status_code == 422 and "memory_mb: a whole number from 32 to 65536" in r.text
    assert _group(client, reader, "研发")["memory_mb"] == 150  # nothing changed
    r = post_form(admin, PAGE, f"{PAGE}/{group['id']}", {**form, "rule_file": "*"})
    assert r.status_code == 303
    group = _group(client, reader, "研发")
    assert (group["rule_files"], group["cpu_percent"], group["memory_mb"]) == (None, None, None)
