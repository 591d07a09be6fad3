"""A group's rule files and agent limits on the collector (server/groups.py, server/store.py): the
collector judges each agent's events with the rules its group chooses, as the agent does, keeps
the agent-health pack for every group, and refuses a file the policy does not hold or a limit out
of range with the reason."""

from __future__ import annotations

import pytest

from rules.grouppolicy import group_from_payload
from tests.server.factories import make_egress, make_event


def _group(client, reader, **body) -> int:
    r = client.post("/api/v1/groups", json={"name": "前台", **body}, headers=reader)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _placed(client, reader, group_id: int, enroll, host: str):
    client.put("/api/v1/groups/rules", json={"rules": [{"group_id": group_id, "hostname": "front-*"}]}, headers=reader)
    agent = enroll(host)
    r = client.post("/api/v1/heartbeat", json={"hostname": host, "os": "linux"}, headers=agent.headers)
    assert r.status_code == 200, r.text
    return agent


def _rules_alerted(client, reader) -> list[str]:
    return sorted(a["rule_id"] for a in client.get("/api/v1/alerts", headers=reader).json()["alerts"])


def test_an_agent_of_a_group_without_the_egress_pack_raises_no_egress_alert_and_others_still_do(
    client, reader, enroll, send
):
    group_id = _group(client, reader, rule_files=["packs/reads.yaml"])
    front = _placed(client, reader, group_id, enroll, "front-01")
    other = enroll("rnd-01")
    result = send(make_egress("core", host="front-01"), as_agent=front)
    assert result["accepted"] == 1  # stored all the same
    assert _rules_alerted(client, reader) == []
    send(make_egress("core", host="rnd-01", sha256="b" * 64), as_agent=other)
    assert _rules_alerted(client, reader) == ["MW-EGRESS-CLASSIFIED"]


def test_the_agent_pack_stays_in_force_for_a_group_that_chooses_other_files(client, reader, enroll, send):
    group_id = _group(client, reader, rule_files=["packs/reads.yaml"])
    front = _placed(client, reader, group_id, enroll, "front-02")
    send(make_event("agent.tamper", host="front-02", error="config changed", details={"kind": "config_changed"}),
         as_agent=front)  # fmt: skip
    assert [a["category"] for a in client.get("/api/v1/alerts", headers=reader).json()["alerts"]] == ["agent-tamper"]


def test_a_batch_of_two_groups_agents_is_judged_per_group(store, client, reader, enroll):
    """The store's ingest takes events of several agents at once (the demo and tools do)."""
    from rules.events import Event, Match

    group_id = _group(client, reader, rule_files=["packs/reads.yaml"])
    front = _placed(client, reader, group_id, enroll, "front-03")
    other = enroll("rnd-03")
    batch = []
    for agent, sha in ((front, "c"), (other, "d")):
        event = Event("egress.file", agent_id=agent.agent_id, host="h", user="zhang", path="/media/u/x.dwg",
                      sha256=sha * 64, level="core", egress="removable", match=Match("exact", 1.0))  # fmt: skip
        batch.append((event, "{}"))
    store.ingest(batch)
    alerts = client.get("/api/v1/alerts", headers=reader).json()["alerts"]
    assert [a["agent_id"] for a in alerts] == [other.agent_id]


def test_the_files_and_limits_travel_to_the_agent_and_null_gives_the_agents_own_back(client, reader, enroll):
    group_id = _group(client, reader, rule_files=["packs/egress.yaml"], cpu_percent=10, memory_mb=150, spool_mb=64)
    agent = _placed(client, reader, group_id, enroll, "front-04")
    group = group_from_payload(client.get("/api/v1/policy", headers=agent.headers).json()["group"])
    assert group.rule_files == ("packs/egress.yaml",)
    assert dict(group.limits) == {"cpu_percent": 10.0, "memory_mb": 150, "spool_mb": 64}
    r = client.patch(f"/api/v1/groups/{group_id}", json={"rule_files": None, "cpu_percent": None}, headers=reader)
    assert r.status_code == 200, r.text
    assert (r.json()["rule_files"], r.json()["cpu_percent"], r.json()["memory_mb"]) == (None, None, 150)
    group = group_from_payload(client.get("/api/v1/policy", headers=agent.headers).json()["group"])
    assert (group.rule_files, dict(group.limits)) == (None, {"memory_mb": 150, "spool_mb": 64})


@pytest.mark.parametrize(
    "body,says",
    [
        ({"rule_files": ["packs/egres.yaml"]}, "'packs/egres.yaml' is not a file of the policy in force"),
        ({"rule_files": "packs/egress.yaml"}, "rule_files: a list"),
        ({"rule_files": ["packs/egress.yaml", "packs/egress.yaml"]}, "named twice"),
        ({"cpu_percent": 0.5}, "cpu_percent: a number from 1 to 400"),
        ({"cpu_percent": "10"}, "cpu_percent: a number"),
        ({"memory_mb": 100.5}, "memory_mb: a whole number from 32 to 65536"),
        ({"spool_mb": 2_000_000}, "spool_mb: a whole number"),
    ],
)
def test_a_bad_file_or_limit_is_refused_with_the_reason_and_nothing_changes(client, reader, body, says):
    r = client.post("/api/v1/groups", json={"name": "前台", **body}, headers=reader)
    assert r.status_code == 400 and says in r.json()["detail"], r.text
    assert [g["name"] for g in client.get("/api/v1/groups", headers=reader).json()["groups"]] == ["default"]
