"""Where each register item was found (issue 18): the heartbeat's indexed_by_item, checked on the
collector, summed per item over the agents that are not retired, in GET /api/v1/register, on the
register page and per agent on the fleet page."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select, update

from server.auth import API_TOKEN_PREFIX, new_token
from server.foundin import found_in, indexed_by_item
from server.schema import agents

ITEM = {
    "level": "core",
    "category": "技术信息",
    "period": "长期",
    "locations": [{"os": "linux", "pattern": "/srv/研发"}],
}


@pytest.fixture
def admin_h(store) -> dict[str, str]:
    token = new_token(API_TOKEN_PREFIX)
    store.create_api_token("boss", token, role="admin")
    return {"Authorization": f"Bearer {token}"}


def _item(client, admin_h, name: str) -> int:
    answer = client.post("/api/v1/register", json={**ITEM, "name": name}, headers=admin_h)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _beat(client, agent, counts, hostname: str = "pc-0042"):
    return client.post(
        "/api/v1/heartbeat", json={"hostname": hostname, "indexed_by_item": counts}, headers=agent.headers
    )


def _status(engine, agent_id: str) -> dict:
    with engine.connect() as conn:
        return json.loads(conn.execute(select(agents.c.status).where(agents.c.agent_id == agent_id)).scalar() or "{}")


@pytest.mark.parametrize(
    "counts",
    [
        {"x": 1},  # a string as id
        {"-1": 1},
        {"1.5": 1},
        {" 7": 1},
        {"0": 1},
        {"7": -1},  # a negative count
        {"7": "3"},
        {"7": 2.5},
        {"7": True},
        {"7": 2**63},
        [[7, 1]],
        "7:1",
        {str(i): 1 for i in range(1, 10_001)},  # 10,000 entries
    ],
)
def test_the_collector_refuses_bad_shapes_and_keeps_the_last_good_report(client, enroll, engine, counts):
    agent = enroll()
    assert _beat(client, agent, {"7": 4}).status_code == 200
    assert _beat(client, agent, counts).status_code == 422
    assert _status(engine, agent.agent_id)["indexed_by_item"] == {"7": 4}


def test_an_old_agent_without_the_field_is_accepted(client, enroll, engine):
    agent = enroll()
    assert client.post("/api/v1/heartbeat", json={"hostname": "pc-0042"}, headers=agent.headers).status_code == 200
    assert "indexed_by_item" not in _status(engine, agent.agent_id)
    assert _beat(client, agent, {str(i): i for i in range(1, 2001)}).status_code == 200  # the bound itself


def test_stored_status_is_read_defensively():
    text = json.dumps({"indexed_by_item": {"1": 2, "x": 3, "2": -1, "3": "4", "4": True, "5": 1.5, "06": 1, "7": 0}})
    assert indexed_by_item(text) == {1: 2, 7: 0}
    for bad in (None, "", "not json", "[]", '{"indexed_by_item": [1]}', '{"indexed_by_item": null}'):
        assert indexed_by_item(bad) == {}


def test_register_api_and_pages_sum_over_the_agents_not_retired(client, enroll, admin, admin_h, store, engine):
    pump = _item(client, admin_h, "泵叶轮图纸")
    price = _item(client, admin_h, "报价单")
    nowhere = _item(client, admin_h, "未见")
    one, two, gone = enroll("pc-1"), enroll("pc-2"), enroll("pc-3")
    assert _beat(client, one, {str(pump): 3, str(price): 0}, "pc-1").status_code == 200
    assert _beat(client, two, {str(pump): 5, str(price): 2, "999": 8}, "pc-2").status_code == 200
    assert _beat(client, gone, {str(pump): 100, str(nowhere): 50}, "pc-3").status_code == 200
    assert store.fleet.retire(gone.agent_id, "test") is not None

    answer = client.get("/api/v1/register", headers=admin_h)
    assert answer.status_code == 200, answer.text
    got = {i["name"]: (i["pcs"], i["files"]) for i in answer.json()["items"]}
    # price: pc-1 reported 0 files (not counted as a PC); nowhere: only the retired agent found it
    assert got == {"泵叶轮图纸": (2, 8), "报价单": (1, 2), "未见": (0, 0)}

    page = admin.get("/console/register")
    assert page.status_code == 200
    rows = {name: cells for name, cells in re.findall(r">([^<]+)</a></td>(.*?)</tr>", page.text, re.S)}
    assert re.findall(r'<td class="num">(\d+)</td>', rows["泵叶轮图纸"]) == ["2", "8"]
    assert re.findall(r'<td class="num">(\d+)</td>', rows["报价单"]) == ["1", "2"]
    assert re.findall(r'<td class="num">(\d+)</td>', rows["未见"]) == ["0", "0"]

    fleet = admin.get("/console/agents", params={"host": "pc-2"})
    assert fleet.status_code == 200
    assert "泵叶轮图纸</a>: 5" in fleet.text and "报价单</a>: 2" in fleet.text
    assert "item 999 (not in the register): 8" in fleet.text


def test_what_an_agent_stored_is_shown_as_text(client, enroll, admin, engine):
    agent = enroll("pc-evil")
    evil = json.dumps({"indexed_by_item": {"<script>alert(1)</script>": 1, "5": "<b>x</b>", "6": 2}})
    with engine.begin() as conn:
        conn.execute(update(agents).where(agents.c.agent_id == agent.agent_id).values(status=evil))
    with engine.connect() as conn:
        assert found_in(conn)[6].files == 2 and 5 not in found_in(conn)
    page = admin.get("/console/agents", params={"host": "pc-evil"})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and "<b>x</b>" not in page.text
    assert "item 6 (not in the register): 2" in page.text
