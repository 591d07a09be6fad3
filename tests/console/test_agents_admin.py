"""The Agents page: an admin approves a pending agent and retires one (its token refused, its host
name blocked on request), with the session's CSRF token; an analyst cannot; audit-logged."""

from __future__ import annotations

import uuid

import pytest

from tests.console.conftest import FORM
from tests.server.factories import ENROLL_SECRET


@pytest.mark.reliability(area="access", fault="Retiring and approving agents from the console", how="the Agents page's forms: as an admin, without the CSRF token, as an analyst", outcome="admin: pending agent approved, agent retired (token 401 at once, host name blocked); no CSRF token or an analyst: 403, nothing changes; audit-logged")
def test_an_admin_approves_and_retires_agents_from_the_console(admin, analyst, agent, post_form, store):
    body = {"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": "pc-0042"}
    twin = admin.post("/api/v1/enroll", json=body).json()
    assert twin["state"] == "pending" and "pending approval" in admin.get("/console/agents").text

    assert admin.post(f"/console/agents/{twin['agent_id']}/approve", content="csrf=wrong", headers=FORM).status_code == 403
    assert post_form(analyst, "/console/agents", f"/console/agents/{twin['agent_id']}/approve").status_code == 403
    answer = post_form(admin, "/console/agents", f"/console/agents/{twin['agent_id']}/approve")
    assert answer.headers["location"].endswith("msg=agent_approved")

    answer = post_form(admin, "/console/agents", f"/console/agents/{agent.agent_id}/retire", {"block_host": "1"})
    assert answer.headers["location"].endswith("msg=agent_retired")
    assert admin.post("/api/v1/heartbeat", json={"hostname": "pc-0042"}, headers=agent.headers).status_code == 401
    assert [h["hostname"] for h in store.fleet.blocked()] == ["pc-0042"]
    actions = [e["action"] for e in store.list_audit().items]
    assert {"agent.approve", "agent.retire", "host.block"} <= set(actions)
    assert "retired" in admin.get("/console/agents").text


def test_the_dashboard_counts_neither_pending_nor_retired_agents_as_offline(admin, agent, store):
    """A retired agent is never coming back and a pending one never reported: 'offline' would send
    the officer after PCs that are fine."""
    import re

    body = {"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": "pc-0042"}
    assert admin.post("/api/v1/enroll", json=body).json()["state"] == "pending"
    store.fleet.retire(agent.agent_id, "test")
    page = admin.get("/console").text
    counts = re.search(r'<span class="ok">(\d+)</span>.*?<span class="bad">(\d+)</span>', page, re.S)
    assert counts is not None and counts.groups() == ("0", "0"), counts
