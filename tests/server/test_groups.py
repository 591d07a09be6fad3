"""Agent groups (server/groups.py): placement rules, manual moves, and the register locations
each agent's policy carries, with a version per agent that changes when its group's does."""

from __future__ import annotations

import pytest

from rules.grouppolicy import group_from_payload
from server.groups import PlacementRule, place

ITEM = {"name": "泵叶轮图纸", "level": "core", "category": "技术信息", "owner_department": "研发部", "owner_person": "张工",
        "period": "长期", "locations": [{"os": "linux", "pattern": "/home/*/研发/图纸"}, {"os": "windows", "pattern": "D:\\图纸"}]}  # fmt: skip


@pytest.mark.parametrize(
    ("hostname", "os_name", "key_id", "group"),
    [
        ("RD-PC-01", "linux", None, 2),  # case-folded, first match wins
        ("rd-pc-01", "windows", None, 3),
        ("sales-7", "linux", 9, 4),
        ("sales-7", "linux", None, 1),  # no rule: the default group
        ("rd[1]", "linux", None, 2),  # a bracket in a host name is a letter, not a set
    ],
)
def test_first_matching_rule_places_the_agent(hostname, os_name, key_id, group):
    rules = [PlacementRule(3, "rd-*", "windows"), PlacementRule(2, "rd?*", None), PlacementRule(4, "*", None, 9)]
    assert place(rules, hostname, os_name, key_id) == group


def _make_group(client, admin, **body) -> int:
    r = client.post("/api/v1/groups", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_two_groups_get_different_items_and_a_change_moves_the_version(client, enroll, reader):
    r = client.post("/api/v1/register", json={**ITEM, "reason": "定密"}, headers=reader)
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    other = client.post("/api/v1/register", json={**ITEM, "name": "客户名单", "level": "important", "category": "经营信息",
                                                   "locations": [{"os": "linux", "pattern": "/srv/销售"}]}, headers=reader).json()["id"]  # fmt: skip
    rd = _make_group(client, reader, name="研发", register_items=[item_id])
    sales = _make_group(
        client,
        reader,
        name="销售",
        register_items=[other],
        egress=[{"path": "/srv/out", "kind": "share", "app": "NAS"}],
    )
    r = client.put(
        "/api/v1/groups/rules",
        json={"rules": [{"group_id": rd, "hostname": "rd-*"}, {"group_id": sales, "hostname": "sales-*"}]},
        headers=reader,
    )
    assert r.status_code == 200, r.text
    a, b = enroll("rd-01"), enroll("sales-01")

    def policy(agent):
        beat = client.post("/api/v1/heartbeat", json={"hostname": "x", "os": "linux"}, headers=agent.headers).json()
        payload = client.get("/api/v1/policy", headers=agent.headers)
        assert payload.headers["etag"] == f'"{beat["policy_version"]}"'
        return beat["policy_version"], group_from_payload(payload.json()["group"])

    version_a, group_a = policy(a)
    version_b, group_b = policy(b)
    assert [(i.name, i.level, i.owner, i.patterns) for i in group_a.register] == [
        ("泵叶轮图纸", "core", "研发部 张工", ("/home/*/研发/图纸",))
    ]
    assert [i.name for i in group_b.register] == ["客户名单"] and group_b.egress[0].app == "NAS"
    assert version_a != version_b
    r = client.patch(
        f"/api/v1/register/{item_id}",
        json={"locations": [{"os": "linux", "pattern": "/data/图纸"}], "reason": "搬迁"},
        headers=reader,
    )
    assert r.status_code == 200, r.text
    moved, group_a = policy(a)
    assert moved != version_a and group_a.register[0].patterns == ("/data/图纸",)
    assert policy(b)[0] == version_b  # not its item
    # a manual move is sticky: the heartbeat does not place it back
    assert (
        client.post("/api/v1/groups/move", json={"agents": [a.agent_id], "group_id": sales}, headers=reader).json()[
            "moved"
        ]
        == 1
    )
    assert [i.name for i in policy(a)[1].register] == ["客户名单"]
    assert client.delete(f"/api/v1/groups/{sales}", headers=reader).status_code == 409  # it holds agents
    actions = {row["action"] for row in client.get("/api/v1/audit", headers=reader).json()["audit"]}
    assert {"group.create", "group.rules", "group.move"} <= actions


def test_without_a_register_the_version_is_the_rules(client, agent, store):
    beat = client.post("/api/v1/heartbeat", json={"hostname": "pc-0042"}, headers=agent.headers).json()
    assert beat["policy_version"] == store.active_policy_version()
    assert "group" not in client.get("/api/v1/policy", headers=agent.headers).json()


def test_analysts_read_admins_change(client, store):
    from server.auth import API_TOKEN_PREFIX, new_token

    token = new_token(API_TOKEN_PREFIX)
    store.create_api_token("analyst", token, role="analyst")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/groups", headers=headers).json()["groups"][0]["name"] == "default"
    assert client.post("/api/v1/groups", json={"name": "x"}, headers=headers).status_code == 403
    assert client.delete("/api/v1/groups/1", headers=headers).status_code == 403
