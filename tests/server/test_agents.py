"""GET /api/v1/agents: enrolled agents, what their last heartbeat said, online by agent_offline_s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.server.factories import AGENT_OFFLINE_S


def _heartbeat(client, agent, **fields):
    body = {"hostname": "pc-0042", "version": "0.1.1", "spool_depth": 17, "policy_version": "p-2026-03-01", **fields}
    response = client.post("/api/v1/heartbeat", json=body, headers=agent.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    return response.json()


def _agents(client, reader) -> list[dict]:
    response = client.get("/api/v1/agents", headers=reader)
    assert response.status_code == 200, response.text
    return response.json()["agents"]


def test_enrolled_agent_is_listed_online_after_a_heartbeat(client, reader, agent, clock):
    clock.advance(30)
    _heartbeat(client, agent)

    (listed,) = _agents(client, reader)
    assert listed == {
        "agent_id": agent.agent_id,
        "hostname": "pc-0042",
        "last_seen": "2026-03-02T09:00:30.000Z",
        "online": True,
        "state": "online",
        "stopped_at": None,
        "version": "0.1.1",
        "policy_version": "p-2026-03-01",
        "spool_depth": 17,
        "pipeline_stepped_at": None,  # an agent that sends no pipeline progress (older versions)
        "pipeline_queued": None,
        "enrolled_at": "2026-03-02T09:00:00.000Z",
        "enrolled_from": "testclient",
        "enroll_key_id": None,  # the shared secret
        "approved_at": "2026-03-02T09:00:00.000Z",  # active at once: no other live agent of this name
        "retired_at": None,
        "claimed_host": None,
        # the fleet page's fields (server/fleetlist.py)
        "stalled": False,
        "watched": [],
        "last_user": None,
        "indexed_files": None,
        "indexed_by_item": [],
        "lags": False,
        "target_version": "0.1.1",  # the newest any agent reports: its own
        "group_id": 1,  # the default group
        "group_name": "default",
        "os": None,  # this heartbeat names none
    }


@pytest.mark.parametrize(
    "silent_s,online",
    [(0, True), (AGENT_OFFLINE_S - 1, True), (AGENT_OFFLINE_S, True), (AGENT_OFFLINE_S + 1, False), (86_400, False)],
)
def test_agent_is_offline_once_silent_longer_than_agent_offline_s(client, reader, agent, clock, silent_s, online):
    _heartbeat(client, agent)
    clock.advance(silent_s)
    assert _agents(client, reader)[0]["online"] is online


def test_heartbeat_brings_an_offline_agent_back(client, reader, agent, clock):
    _heartbeat(client, agent)
    clock.advance(AGENT_OFFLINE_S * 10)
    assert _agents(client, reader)[0]["online"] is False

    _heartbeat(client, agent, spool_depth=0)

    (listed,) = _agents(client, reader)
    assert listed["online"] is True and listed["spool_depth"] == 0


def test_events_do_not_count_as_heartbeats(client, reader, agent, clock, send):
    clock.advance(AGENT_OFFLINE_S + 1)
    send()
    assert _agents(client, reader)[0]["online"] is False


def test_each_agent_has_its_own_liveness(client, reader, enroll, clock):
    quiet, busy = enroll("pc-a"), enroll("pc-b")
    clock.advance(AGENT_OFFLINE_S)
    _heartbeat(client, busy, hostname="pc-b")
    clock.advance(AGENT_OFFLINE_S / 2)

    online = {a["hostname"]: a["online"] for a in _agents(client, reader)}
    assert online == {"pc-a": False, "pc-b": True}
    assert {a["agent_id"] for a in _agents(client, reader)} == {quiet.agent_id, busy.agent_id}


def test_heartbeat_is_stamped_for_the_token_owner(client, reader, enroll, clock):
    a, b = enroll("pc-a"), enroll("pc-b")
    clock.advance(AGENT_OFFLINE_S + 1)
    _heartbeat(client, a, hostname="pc-a", agent_id=b.agent_id)  # unknown fields are ignored

    online = {x["agent_id"]: x["online"] for x in _agents(client, reader)}
    assert online == {a.agent_id: True, b.agent_id: False}


def test_heartbeat_answers_the_server_time_in_utc(client, agent):
    server_time = datetime.fromisoformat(_heartbeat(client, agent)["server_time"].replace("Z", "+00:00"))  # the real clock: for skew checks
    assert server_time.utcoffset() == timedelta(0)
    assert abs(server_time - datetime.now(UTC)) < timedelta(minutes=1)
