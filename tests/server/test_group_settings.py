"""A group's agent settings through the API (server/groups.py): notify_severities is checked
against the severity names, kept beside heartbeat_s, and carried in the agent's policy."""

from __future__ import annotations

import pytest

from rules.grouppolicy import group_from_payload


@pytest.mark.parametrize("bad", [["urgent"], ["info"], "high", ["high", "high"], [None]])
def test_the_api_refuses_a_bad_severity(client, reader, bad):
    r = client.post("/api/v1/groups", json={"name": "销售", "notify_severities": bad}, headers=reader)
    assert r.status_code == 400 and r.json()["detail"].startswith("notify_severities: "), r.text
    assert [g["name"] for g in client.get("/api/v1/groups", headers=reader).json()["groups"]] == ["default"]


def test_a_change_of_one_setting_keeps_the_other_and_the_agent_gets_both(client, reader, enroll):
    r = client.post("/api/v1/groups", json={"name": "销售", "heartbeat_s": 60, "notify_severities": ["critical"]},
                    headers=reader)  # fmt: skip
    assert r.status_code == 201, r.text
    group_id = r.json()["id"]
    r = client.patch(f"/api/v1/groups/{group_id}", json={"notify_severities": ["critical", "high"]}, headers=reader)
    assert r.status_code == 200 and r.json()["heartbeat_s"] == 60, r.text
    assert r.json()["notify_severities"] == ["critical", "high"]
    client.put("/api/v1/groups/rules", json={"rules": [{"group_id": group_id, "hostname": "sales-*"}]}, headers=reader)
    agent = enroll("sales-01")
    client.post("/api/v1/heartbeat", json={"hostname": "sales-01", "os": "linux"}, headers=agent.headers)
    group = group_from_payload(client.get("/api/v1/policy", headers=agent.headers).json()["group"])
    assert (group.heartbeat_s, group.notify_severities) == (60, ("critical", "high"))
    r = client.patch(f"/api/v1/groups/{group_id}", json={"notify_severities": None}, headers=reader)
    assert r.json()["notify_severities"] is None and r.json()["heartbeat_s"] == 60


def test_a_group_id_beyond_the_database_integer_is_a_422_not_a_500(client, reader):
    r = client.patch("/api/v1/groups/999999999999999999999", json={"name": "x"}, headers=reader)
    assert r.status_code == 422, r.text
