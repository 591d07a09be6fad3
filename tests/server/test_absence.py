"""Absence: an agent silent longer than agent_offline_s (or a rule's own time) raises one alert per silence."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from server.app import create_app
from server.store import Store
from tests.server.factories import AGENT_OFFLINE_S, Agent, alerts_of, put_policy


def _heartbeat(client, agent) -> None:
    response = client.post("/api/v1/heartbeat", json={"hostname": "pc-0042"}, headers=agent.headers)
    assert response.status_code == 200, response.text


def _offline(client, reader) -> list[dict]:
    return alerts_of(client, reader, category="agent-offline")


def test_an_agent_silent_longer_than_agent_offline_s_raises_one_alert(client, reader, agent, store, clock):
    _heartbeat(client, agent)
    clock.advance(AGENT_OFFLINE_S)
    assert store.check_absence(AGENT_OFFLINE_S) == 0

    clock.advance(1)
    assert store.check_absence(AGENT_OFFLINE_S) == 1
    clock.advance(AGENT_OFFLINE_S)  # below the first escalation (3 x): tests/server/test_offline.py
    assert store.check_absence(AGENT_OFFLINE_S) == 0  # the same silence: no second alert

    (alert,) = _offline(client, reader)
    assert (alert["rule_id"], alert["severity"], alert["title"]) == ("MW-AGENT-OFFLINE", "high", "Agent silent")
    assert (alert["agent_id"], alert["host"], alert["count"], alert["event_ids"]) == (agent.agent_id, "pc-0042", 0, [])
    assert alert["created_at"] == "2026-03-02T09:02:01.000Z"
    assert alert["explanation"].splitlines()[0] == (
        f"No heartbeat from the agent on host pc-0042 (agent {agent.agent_id}) since 2026-03-02 17:00:00 CST: "
        "silent for 121 s; threshold: 2 min (server.agent_offline_s)."
    )
    assert "没有心跳" in alert["explanation"]


def test_each_silence_raises_its_own_alert(client, reader, agent, store, clock):
    _heartbeat(client, agent)
    clock.advance(AGENT_OFFLINE_S + 1)
    store.check_absence(AGENT_OFFLINE_S)
    _heartbeat(client, agent)  # back
    clock.advance(AGENT_OFFLINE_S / 2)
    assert store.check_absence(AGENT_OFFLINE_S) == 0

    clock.advance(AGENT_OFFLINE_S)  # silent again
    assert store.check_absence(AGENT_OFFLINE_S) == 1
    assert len(_offline(client, reader)) == 2


def test_a_collector_back_from_downtime_gives_agents_their_time_first(client, reader, agent, store, clock):
    _heartbeat(client, agent)
    clock.advance(3600)  # the collector was down for an hour
    started = clock()

    assert store.check_absence(AGENT_OFFLINE_S, started) == 0
    clock.advance(AGENT_OFFLINE_S / 2)
    _heartbeat(client, agent)  # the agent checks in as usual
    clock.advance(AGENT_OFFLINE_S)
    assert store.check_absence(AGENT_OFFLINE_S, started) == 0

    clock.advance(1)  # and now it is silent
    assert store.check_absence(AGENT_OFFLINE_S, started) == 1
    assert "silent for 121 s" in _offline(client, reader)[0]["explanation"]


def test_only_the_silent_agent_is_reported(client, reader, enroll, store, clock):
    quiet, busy = enroll("pc-a"), enroll("pc-b")
    _heartbeat(client, quiet)  # an agent that never sent a heartbeat is not judged (server/fleet.py)
    clock.advance(AGENT_OFFLINE_S)
    _heartbeat(client, busy)
    clock.advance(AGENT_OFFLINE_S / 2)

    store.check_absence(AGENT_OFFLINE_S)

    (alert,) = _offline(client, reader)
    assert alert["agent_id"] == quiet.agent_id


FIVE_MINUTES = """\
- id: ACME-AGENT-SILENT-LONG
  title: Agent silent for five minutes
  category: agent-offline
  severity: critical
  correlate:
    absence: {heartbeat: 5m}
"""


def test_a_rule_may_set_its_own_silence(client, reader, agent, store, clock):
    put_policy(client, reader, ("acme.yaml", FIVE_MINUTES))
    _heartbeat(client, agent)
    clock.advance(AGENT_OFFLINE_S + 1)
    store.check_absence(AGENT_OFFLINE_S)
    assert [a["rule_id"] for a in _offline(client, reader)] == ["MW-AGENT-OFFLINE"]

    clock.advance(300)
    store.check_absence(AGENT_OFFLINE_S)

    long, short = _offline(client, reader)
    assert (long["rule_id"], long["severity"]) == ("ACME-AGENT-SILENT-LONG", "critical")
    assert "threshold: 5 min (rule ACME-AGENT-SILENT-LONG)" in long["explanation"]


def test_two_collectors_on_one_database_raise_one_alert(client, reader, agent, engine, clock):
    _heartbeat(client, agent)
    clock.advance(AGENT_OFFLINE_S + 1)
    one, two = Store(engine, clock=clock), Store(engine, clock=clock)

    assert one.check_absence(AGENT_OFFLINE_S) + two.check_absence(AGENT_OFFLINE_S) == 1
    assert len(_offline(client, reader)) == 1


def test_the_collector_checks_by_itself_in_the_background(config, store, clock, reader):
    with TestClient(create_app(config, store, absence_check_s=0.02)) as client:
        enrolled = client.post(
            "/api/v1/enroll",
            json={"enroll_secret": config.enroll_secret, "agent_id": "a7c1e0a4-41d4-4a7e-9d6e-0d6c2f2a9d11", "hostname": "pc-0042"},
        ).json()
        _heartbeat(client, Agent(enrolled["agent_id"], enrolled["token"]))
        time.sleep(0.2)
        assert _offline(client, reader) == []

        clock.advance(AGENT_OFFLINE_S + 1)
        deadline = time.monotonic() + 10
        while not _offline(client, reader):
            assert time.monotonic() < deadline, "no agent-offline alert within 10 s"
            time.sleep(0.02)
        time.sleep(0.2)  # several more rounds

        (alert,) = _offline(client, reader)
        assert alert["agent_id"] == enrolled["agent_id"]
