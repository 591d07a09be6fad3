"""The agent watches its own footprint: over its memory cap it says so through the collector."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.e2e.harness import Deployment, wait_for

pytestmark = pytest.mark.e2e


@pytest.mark.reliability(area="fault", fault="Agent over its memory cap", how="`limits: {memory_mb: 32}` on a real agent", outcome="`agent.limit` reported")
def test_an_agent_over_its_memory_cap_reports_agent_limit(tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    classified = tmp_path / "classified"
    classified.mkdir()
    # 32 MB (the least the config takes) is below what the agent holds resident (its interpreter
    # and imports, some 45 MB): the cap is exceeded from the start, and a restart (twice the cap
    # for a minute) is not reached
    d = Deployment(tmp_path, [(classified, "core", "Limits")], egress_folders=[usb], agent_extra="  limits: {memory_mb: 32}\n")
    try:
        d.start_server()
        d.start_agent()
        wait_for(lambda: d.stored_count("agent.limit") >= 1, 30, 0.5, "an agent.limit event")
        with sqlite3.connect(d.db_path) as conn:
            (body,) = conn.execute("SELECT body FROM events WHERE type = 'agent.limit'").fetchone()
        details = json.loads(body)["details"]
        assert details["limit"] == "memory" and details["cap"] == 32 and details["value"] > 32
        assert d.agent.poll() is None  # reported, not fatal: a restart needs twice the cap for a minute
    finally:
        d.close()
