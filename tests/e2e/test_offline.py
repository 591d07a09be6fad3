"""Agent health with real processes: kill -9 -> agent-offline within agent_offline_s + 10 s; the
agent back -> the alert resolves itself with a note; SIGTERM -> shown stopped, no agent-offline."""

from __future__ import annotations

import signal
import time

import pytest

from tests.e2e.harness import wait_for

pytestmark = pytest.mark.e2e
AGENT_OFFLINE_S = 3
ABSENCE_CHECK_S = 5  # server.app.ABSENCE_CHECK_S: how often the collector looks


def _agent(d) -> dict | None:
    agents = d.get("/api/v1/agents")["agents"]
    return agents[0] if agents else None


def _offline(d) -> list[dict]:
    return d.all_pages("/api/v1/alerts", "alerts", category="agent-offline")


@pytest.fixture
def quick(deployment):
    deployment.config.write_text(deployment.config.read_text(encoding="utf-8") + f"  agent_offline_s: {AGENT_OFFLINE_S}\n", encoding="utf-8")
    deployment.start_server()
    deployment.start_agent()
    wait_for(lambda: (_agent(deployment) or {}).get("state") == "online", 20, 0.2, "the agent to be online")
    return deployment


def test_kill_9_raises_agent_offline_and_the_agent_back_resolves_it(quick):
    d = quick
    d.kill("agent", signal.SIGKILL)
    killed = time.monotonic()

    (alert,) = wait_for(lambda: _offline(d), AGENT_OFFLINE_S + 10, 0.2, "agent-offline within agent_offline_s + 10 s")
    print(f"\nagent-offline raised {time.monotonic() - killed:.1f} s after kill -9 (agent_offline_s {AGENT_OFFLINE_S})")
    assert (alert["status"], alert["severity"], alert["agent_id"]) == ("open", "high", _agent(d)["agent_id"])
    assert _agent(d)["state"] == "offline"

    d.start_agent()
    resolved = wait_for(lambda: [a for a in _offline(d) if a["status"] == "resolved"], 20, 0.2, "the alert to resolve itself")
    history = d.get(f"/api/v1/alerts/{resolved[0]['id']}")["history"]
    assert history[-1]["action"] == "auto_resolved" and history[-1]["comment"].startswith("agent back after ")
    assert _agent(d)["state"] == "online"


def test_sigterm_is_a_clean_stop_not_a_disappearance(quick):
    d = quick
    d.kill("agent", signal.SIGTERM)

    wait_for(lambda: _agent(d)["state"] == "stopped", 20, 0.2, "the agent to be shown stopped")
    time.sleep(AGENT_OFFLINE_S + 2 * ABSENCE_CHECK_S)  # two background rounds past the limit
    assert _offline(d) == []
    assert _agent(d)["state"] == "stopped"
