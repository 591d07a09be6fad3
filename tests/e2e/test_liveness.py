"""Liveness reported, not assumed, with a real `miwei-server` (and `miwei-agent` where it can show it).

- kill -9 and a restart within agent_offline_s: no silence long enough for agent-offline, but the
  restarted agent says its previous run ended uncleanly, and MW-AGENT-KILLED raises agent-health;
  the third kill of the day raises MW-AGENT-KILLED-REPEATEDLY (critical).
- a pipeline stuck while heartbeats go on: MW-AGENT-STALLED once the stall is older than
  server.pipeline_stall_s. Made for real: another process holds the real agent's spool write lock
  while a file lands in its egress folder, so the pipeline cannot spool the event and finishes no
  step (its heartbeats go on); the alert resolves itself once the lock is let go. And with a script
  sending the heartbeats a stuck agent sends (stepped_at frozen), to time the alert against the
  threshold, while a real agent idling beside it for longer raises nothing.
"""

from __future__ import annotations

import signal
import sqlite3
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
import yaml

from tests.e2e.harness import Deployment, wait_for

pytestmark = pytest.mark.e2e
PIPELINE_STALL_S = 3


@pytest.fixture
def deployment(tmp_path):
    classified = tmp_path / "rnd"
    classified.mkdir()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    d = Deployment(tmp_path, [(classified, "core", "R&D")], egress_folders=[outbox])
    d.config.write_text(
        d.config.read_text(encoding="utf-8") + f"  pipeline_stall_s: {PIPELINE_STALL_S}\n", encoding="utf-8"
    )
    yield d
    d.close()


def _health(d: Deployment, rule_id: str) -> list[dict]:
    return [a for a in d.all_pages("/api/v1/alerts", "alerts", category="agent-health") if a["rule_id"] == rule_id]


def test_kill_9_and_restart_within_agent_offline_s_raises_agent_health_and_repeats_escalate(deployment):
    d = deployment
    d.start_server()
    d.start_agent()
    wait_for(lambda: d.all_pages("/api/v1/events", "events", type="agent.started"), 10, 0.1, "agent.started")

    took = []
    for kill in range(1, 4):
        d.kill("agent", signal.SIGKILL)
        d.start_agent()  # back at once: far within agent_offline_s (120 s)
        restarted = time.monotonic()
        wait_for(lambda n=kill: _alerted(d, n), 20, 0.1, f"the alert of kill {kill}")
        took.append(time.monotonic() - restarted)
    print(
        f"\nagent-health after kill -9 and restart: {', '.join(f'{s:.1f} s' for s in took)} after the agent was ready"
    )

    (killed,) = _health(d, "MW-AGENT-KILLED")
    assert (killed["severity"], killed["status"], killed["count"]) == ("high", "open", 3)
    assert "last known alive at 20" in killed["explanation"] and "the PC kept running" in killed["explanation"]
    (repeated,) = _health(d, "MW-AGENT-KILLED-REPEATEDLY")
    assert repeated["severity"] == "critical" and repeated["host"] == killed["host"]
    started = sorted(d.all_pages("/api/v1/events", "events", type="agent.started"), key=lambda e: e["seq"])
    assert [s["details"]["previous_stop"] for s in started] == ["none", "crash", "crash", "crash"]
    assert all(s["details"]["rebooted"] is False and s["details"]["last_alive"] for s in started[1:])
    assert d.alerts(category="agent-offline") == []  # the kills were too short for a silence

    d.kill("agent", signal.SIGTERM)  # a clean stop and start: no new kill
    d.start_agent()
    wait_for(
        lambda: len(d.all_pages("/api/v1/events", "events", type="agent.started")) == 5,
        20,
        0.1,
        "the fifth agent.started",
    )
    time.sleep(2)
    assert _health(d, "MW-AGENT-KILLED")[0]["count"] == 3


def _alerted(d: Deployment, kills: int) -> bool:
    """MW-AGENT-KILLED counts `kills`; from the third, MW-AGENT-KILLED-REPEATEDLY is raised too."""
    killed = _health(d, "MW-AGENT-KILLED")
    return (
        bool(killed) and killed[0]["count"] == kills and (kills < 3 or bool(_health(d, "MW-AGENT-KILLED-REPEATEDLY")))
    )


class StuckAgent:
    """Heartbeats as a stuck agent sends them: on time, with the pipeline's stepped_at frozen."""

    def __init__(self, d: Deployment):
        self.url = d.url
        secret = yaml.safe_load(d.config.read_text(encoding="utf-8"))["server"]["enroll_secret"]
        body = {"enroll_secret": secret, "agent_id": str(uuid.uuid4()), "hostname": "pc-stuck", "version": "test"}
        answer = requests.post(self.url + "/api/v1/enroll", json=body, timeout=10)
        answer.raise_for_status()
        self.agent_id, self.headers = answer.json()["agent_id"], {"Authorization": f"Bearer {answer.json()['token']}"}

    def beat(self, stepped_at: float, queued: int) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = {"hostname": "pc-stuck", "agent_time": now, "pipeline": {"stepped_at": stepped_at, "queued": queued}}
        requests.post(self.url + "/api/v1/heartbeat", json=body, headers=self.headers, timeout=10).raise_for_status()


def test_a_pipeline_stuck_while_heartbeats_go_on_raises_agent_health_and_an_idle_one_does_not(deployment):
    d = deployment
    d.start_server()
    d.start_agent()  # a real agent, idle all along: its pipeline keeps stepping
    stuck = StuckAgent(d)
    stuck.beat(time.time(), 0)
    stuck_at = time.time()  # from here its pipeline finishes no step

    deadline, alert = time.monotonic() + PIPELINE_STALL_S + 10, None
    while alert is None:
        assert time.monotonic() < deadline, "no MW-AGENT-STALLED within pipeline_stall_s + 10 s"
        stuck.beat(stuck_at, 42)  # every heartbeat_s (1 s in this deployment)
        alert = next(iter(_health(d, "MW-AGENT-STALLED")), None)
        time.sleep(1)
    took = time.time() - stuck_at
    print(f"\nMW-AGENT-STALLED {took:.1f} s after the pipeline's last step (pipeline_stall_s {PIPELINE_STALL_S})")
    assert PIPELINE_STALL_S < took <= PIPELINE_STALL_S + 5  # one heartbeat (1 s) and the API round trips
    assert (alert["agent_id"], alert["severity"], alert["status"]) == (stuck.agent_id, "high", "open")
    assert "pc-stuck" in alert["explanation"] and "42 changes queued" in alert["explanation"]

    stuck.beat(time.time(), 0)  # it moves again
    wait_for(lambda: _health(d, "MW-AGENT-STALLED")[0]["status"] == "resolved", 10, 0.1, "the alert to resolve itself")
    real = next(a for a in d.get("/api/v1/agents")["agents"] if a["hostname"] != "pc-stuck")
    assert real["state"] == "online" and real["pipeline_stepped_at"] is not None
    assert [a["agent_id"] for a in _health(d, "MW-AGENT-STALLED")] == [stuck.agent_id]  # the idle agent: none


def test_a_real_agent_whose_pipeline_cannot_spool_raises_agent_health_until_it_can(deployment, tmp_path):
    d = deployment
    d.start_server()
    d.start_agent()
    wait_for(lambda: d.all_pages("/api/v1/events", "events", type="agent.started"), 10, 0.1, "agent.started")
    locker = sqlite3.connect(str(d.state_dir / "spool.db"), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # as a backup tool or a hostile process holding the file could
    try:
        (tmp_path / "outbox" / "plan.txt").write_bytes(b"quarterly plan\n" * 100)
        locked = time.monotonic()
        (alert,) = wait_for(lambda: _health(d, "MW-AGENT-STALLED"), PIPELINE_STALL_S + 20, 0.2, "MW-AGENT-STALLED")
        took = time.monotonic() - locked
        agent = d.get("/api/v1/agents")["agents"][0]
        assert agent["state"] == "online"  # heartbeats went on
        assert d.all_pages("/api/v1/events", "events", type="egress.file") == []  # the file is not seen yet
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    unlocked = time.monotonic()
    wait_for(lambda: _health(d, "MW-AGENT-STALLED")[0]["status"] == "resolved", 45, 0.2, "the alert to resolve itself")
    print(
        f"\nreal stall: MW-AGENT-STALLED {took:.1f} s after the spool was locked (pipeline_stall_s {PIPELINE_STALL_S}),"
        f" resolved {time.monotonic() - unlocked:.1f} s after it was let go"
    )
    assert alert["host"] and alert["host"] in alert["explanation"]
    wait_for(
        lambda: d.all_pages("/api/v1/events", "events", type="egress.file"),
        30,
        0.2,
        "the file, once the pipeline moves",
    )
