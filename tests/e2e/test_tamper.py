"""Tamper evidence end to end, with real `miwei-server` and `miwei-agent` processes.

A clean stop (SIGTERM) and a kill (SIGKILL) read differently on the collector; an edit of the
agent's config file while it runs is reported; an event deleted from the agent's spool before it
was sent is found by the collector as a gap in the agent's event chain.
"""

from __future__ import annotations

import signal
import sqlite3

import pytest

from tests.e2e.harness import Deployment, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def deployment(tmp_path):
    classified = tmp_path / "rnd"
    classified.mkdir()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    d = Deployment(tmp_path, [(classified, "core", "R&D")], egress_folders=[outbox])
    d.outbox = outbox
    yield d
    d.close()


def _events(d: Deployment, event_type: str) -> list[dict]:
    return sorted(d.all_pages("/api/v1/events", "events", type=event_type), key=lambda e: e["seq"])


@pytest.mark.reliability(area="fault", fault="Agent stopped cleanly vs killed", how="`SIGTERM` vs `SIGKILL`", outcome="told apart (a clean stop reads 'stopped'; a kill is an agent-offline silence)")
def test_a_clean_stop_and_a_kill_read_differently(deployment):
    d = deployment
    d.start_server()
    d.start_agent()
    [first] = wait_for(lambda: _events(d, "agent.started"), 10, what="agent.started")
    assert first["details"]["previous_stop"] == "none"

    d.kill("agent", signal.SIGTERM)
    [stopped] = wait_for(lambda: _events(d, "agent.stopped"), 10, what="agent.stopped of the clean stop")
    assert stopped["details"]["reason"] == "clean"
    d.start_agent()
    started = wait_for(lambda: (s := _events(d, "agent.started"))[1:] and s, 10, what="the second agent.started")
    assert started[1]["details"]["previous_stop"] == "clean"
    assert started[1]["seq"] == stopped["seq"] + 1  # the chain goes on across the restart

    d.kill("agent", signal.SIGKILL)
    d.start_agent()
    started = wait_for(lambda: (s := _events(d, "agent.started"))[2:] and s, 10, what="the third agent.started")
    assert started[2]["details"]["previous_stop"] == "crash"
    assert len(_events(d, "agent.stopped")) == 1  # the kill left no agent.stopped
    # neither the stop nor the kill broke the chain: no event went missing
    assert all("never arrived" not in a["explanation"] for a in d.alerts(category="agent-tamper"))


@pytest.mark.reliability(area="fault", fault="Agent config edited while running", how="the config file rewritten under the agent", outcome="reported as a config change event")
def test_editing_the_agents_config_while_it_runs_is_reported(deployment):
    d = deployment
    d.start_server()
    d.start_agent()
    wait_for(lambda: _events(d, "agent.started"), 10, what="agent.started")
    before = d.config.read_bytes()
    d.config.write_bytes(before + b"# edited on the PC\n")

    [event] = wait_for(lambda: _events(d, "agent.tamper"), 15, what="the agent.tamper of the config change")
    assert event["details"]["kind"] == "config_changed" and event["details"]["file"] == "config"
    assert event["details"]["path"] == str(d.config)
    assert event["details"]["new_sha256"] == event["sha256"] != event["details"]["old_sha256"]
    [alert] = wait_for(lambda: d.alerts(category="agent-tamper"), 10, what="the agent-tamper alert")
    assert alert["rule_id"] == "MW-AGENT-TAMPER" and str(d.config) in alert["explanation"]


@pytest.mark.reliability(area="fault", fault="Event deleted from the spool by hand", how="a row removed from `spool.db` under a running agent", outcome="the collector's chain check finds the gap and raises an alert")
def test_an_event_deleted_from_the_spool_is_found_as_a_gap(deployment):
    d = deployment
    d.start_server()
    d.start_agent()
    wait_for(lambda: _events(d, "agent.started"), 10, what="agent.started delivered")
    d.kill("server")  # the agent keeps events in its spool meanwhile

    for i in range(5):
        (d.outbox / f"offer-{i}.txt").write_bytes(f"quotation {i}\n".encode())
    spool = d.state_dir / "spool.db"
    wait_for(lambda: _spooled_egress(spool) >= 5, 20, what="five egress events spooled")
    with sqlite3.connect(spool, timeout=10) as conn:
        [(victim,)] = conn.execute(
            "SELECT chain_seq FROM spool WHERE body LIKE '%\"type\":\"egress.file\"%' ORDER BY chain_seq LIMIT 1 OFFSET 2"
        ).fetchall()
        conn.execute("DELETE FROM spool WHERE chain_seq = ?", (victim,))
    d.start_server()

    [alert] = wait_for(
        lambda: [a for a in d.alerts(category="agent-tamper") if "never arrived" in a["explanation"]], 60, what="the chain gap alert"
    )
    assert f"events {victim}..{victim} of the agent's event chain never arrived" in alert["explanation"]
    assert len(_events(d, "egress.file")) == 4


def _spooled_egress(spool) -> int:
    if not spool.exists():
        return 0
    with sqlite3.connect(spool, timeout=10) as conn:
        return conn.execute("SELECT count(*) FROM spool WHERE body LIKE '%\"type\":\"egress.file\"%'").fetchone()[0]
