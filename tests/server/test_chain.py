"""Tamper evidence on the collector: each agent's event chain (seq, prev_hash) and its clock.

Events are chained here as an agent chains them: prev_hash is rules.events.chain_digest of the
previous event as it travels (every field of the Event). Gaps are judged when a heartbeat says
what was delivered (`chain.unsent_from`), so batches may arrive in any order.
"""

from __future__ import annotations

import copy
import uuid

import pytest

from rules.events import Event, chain_digest
from tests.server.factories import ENROLL_SECRET, Agent, alerts_of, at, make_event


def chain(n: int, start: int = 1, prev_hash: str | None = None, **fields) -> list[dict]:
    """n events with seq start.. and their links, as the agent's spool makes them."""
    bodies = []
    for seq in range(start, start + n):
        body = Event.from_dict(make_event(path=f"/srv/rnd/{seq}.dwg", ts=at(seq), seq=seq, prev_hash=prev_hash, **fields)).to_dict()
        bodies.append(body)
        prev_hash = chain_digest(body)
    return bodies


def beat(client, agent: Agent, seq: int, unsent_from: int | None = None, **fields) -> None:
    body = {"hostname": "pc-0042", "chain": {"seq": seq, "unsent_from": unsent_from}, **fields}
    response = client.post("/api/v1/heartbeat", json=body, headers=agent.headers)
    assert response.status_code == 200, response.text


def tampers(client, reader) -> list[dict]:
    return alerts_of(client, reader, category="agent-tamper")


def kinds(client, reader) -> list[str]:
    found = []
    for alert in tampers(client, reader):
        (event,) = client.get(f"/api/v1/alerts/{alert['id']}", headers=reader).json()["events"]
        found.append(event["details"]["kind"])
    return sorted(found)


def test_an_unbroken_chain_raises_nothing(client, reader, send, agent):
    events = chain(6)
    send(*events[:3])
    beat(client, agent, 6, unsent_from=4)
    send(*events[3:])
    beat(client, agent, 6)
    assert alerts_of(client, reader) == []


def test_an_event_deleted_before_it_was_sent_is_a_gap_raised_once(client, reader, send, agent):
    events = chain(6)
    send(*events[:3])
    send(*events[4:])  # seq 4 was deleted from the spool
    assert tampers(client, reader) == []  # not judged until the agent says it delivered all
    beat(client, agent, 6)
    beat(client, agent, 6)

    (alert,) = tampers(client, reader)
    assert (alert["rule_id"], alert["severity"]) == ("MW-AGENT-TAMPER", "high")
    assert "events 4..4 of the agent's event chain never arrived" in alert["explanation"]
    (event,) = client.get(f"/api/v1/alerts/{alert['id']}", headers=reader).json()["events"]
    assert event["type"] == "agent.tamper" and event["agent_id"] == agent.agent_id
    assert event["details"] == {"kind": "chain_gap", "seq_from": 4, "seq_to": 4, "expected": 4, "got": 5, "detected_by": "collector"}


def test_a_gap_at_the_end_is_found_from_the_agents_count(client, reader, send, agent):
    send(*chain(3))
    beat(client, agent, 5)  # the agent gave out 5 seqs, has nothing left to send, we got 3
    (alert,) = tampers(client, reader)
    assert "events 4..5" in alert["explanation"]


def test_resent_batches_change_nothing(client, reader, send, agent):
    events = chain(4)
    send(*events[:2])
    assert send(*events[:2]) == {"accepted": 0, "duplicates": 2}
    send(*events)
    beat(client, agent, 4)
    assert alerts_of(client, reader) == []


def test_batches_arriving_out_of_order_raise_nothing(client, reader, send, agent):
    events = chain(9)
    send(*events[6:])
    beat(client, agent, 9, unsent_from=1)  # the agent still holds 1..6
    send(*events[3:6])
    send(*events[:3])
    beat(client, agent, 9)
    assert alerts_of(client, reader) == []


def test_a_rewritten_event_breaks_the_chain_whichever_arrives_first(client, reader, send, agent):
    events = chain(5)
    forged = copy.deepcopy(events[2])
    forged["path"] = "/srv/rnd/harmless.txt"  # seq 3 changed after seq 4 linked to it
    send(*events[3:])
    send(events[0], events[1], forged)
    beat(client, agent, 5)

    (alert,) = tampers(client, reader)
    assert "broken at seq 4" in alert["explanation"]
    (event,) = client.get(f"/api/v1/alerts/{alert['id']}", headers=reader).json()["events"]
    assert event["details"]["kind"] == "chain_break"
    assert event["details"]["expected"] == chain_digest(forged) and event["details"]["got"] == chain_digest(events[2])


def test_a_forged_successor_breaks_the_chain(client, reader, send):
    events = chain(3)
    events[2]["prev_hash"] = "0" * 64
    send(*events)
    assert kinds(client, reader) == ["chain_break"]


def test_two_events_claiming_one_seq_are_reported(client, reader, send):
    events = chain(3)
    other = {**events[1], "id": str(uuid.uuid4()), "path": "/srv/rnd/other.dwg"}
    send(*events)
    send(other)
    assert "seq_reused" in kinds(client, reader)


def test_a_gap_the_agent_explained_is_not_a_chain_gap(client, reader, send, agent):
    events = chain(3)
    explanation = chain(1, start=4, prev_hash=chain_digest(events[2]), type="agent.gap", details={"seq_from": 2, "seq_to": 2, "reason": "refused by the collector"})
    send(events[0], events[2], *explanation)  # seq 2 was refused and quarantined
    beat(client, agent, 4)
    assert all("never arrived" not in a["explanation"] for a in tampers(client, reader))


def test_an_agent_enrolling_again_keeps_its_chain_without_a_false_alarm(client, reader, send, agent, store):
    events = chain(6)
    send(*events[:3])
    beat(client, agent, 6, unsent_from=4)
    again = client.post(
        "/api/v1/enroll", json={"enroll_secret": ENROLL_SECRET, "agent_id": agent.agent_id, "hostname": "pc-0042"}
    ).json()
    renewed = Agent(again["agent_id"], again["token"])
    assert renewed.agent_id != agent.agent_id  # the id was taken: the collector gave a new one
    assert again["state"] == "pending"  # its host name is a live agent's: an admin approves it (server/fleet.py)
    assert store.fleet.approve(renewed.agent_id, "test")
    beat(client, renewed, 6, unsent_from=4)
    send(*events[3:], as_agent=renewed)
    beat(client, renewed, 6)
    assert alerts_of(client, reader) == []


def test_events_without_a_chain_are_not_judged(client, reader, send, agent):
    send(make_event(), make_event())  # an agent older than the chain
    beat(client, agent, 0)
    assert alerts_of(client, reader) == []


@pytest.mark.parametrize("bad", [{"seq": -1}, {"seq": "x"}, {"seq": 3, "unsent_from": 0}])
def test_a_malformed_chain_in_a_heartbeat_is_422(client, agent, bad):
    response = client.post("/api/v1/heartbeat", json={"hostname": "pc", "chain": bad}, headers=agent.headers)
    assert response.status_code == 422


# --- clock skew ---------------------------------------------------------------------------------------


def test_clock_skew_in_a_heartbeat_is_reported_once_per_agent(client, reader, agent, enroll):
    beat(client, agent, 0, agent_time="2026-03-02T09:04:00Z")  # 240 s ahead: within 300 s
    assert alerts_of(client, reader, category="agent-health") == []
    beat(client, agent, 0, agent_time="2026-03-02T08:00:00Z")  # an hour behind
    beat(client, agent, 0, agent_time="2026-03-02T07:00:00Z")
    (alert,) = alerts_of(client, reader, category="agent-health")
    assert (alert["rule_id"], alert["severity"]) == ("MW-AGENT-CLOCK-SKEW", "low")
    assert "3600 s behind the collector's" in alert["explanation"]

    other = enroll(hostname="pc-0043")
    beat(client, other, 0, agent_time="2026-03-02T10:00:00+01:00")  # the same moment in another zone
    beat(client, other, 0, agent_time="2026-03-02T11:00:00Z")
    assert len(alerts_of(client, reader, category="agent-health")) == 2


def test_event_times_alone_do_not_report_clock_skew(client, reader, send):
    # events wait in the spool and may be dated as an import likes: only heartbeats are judged
    send(make_event(ts="2026-03-02T12:00:00Z"), make_event(ts="2026-03-01T12:00:00Z"))
    assert alerts_of(client, reader, category="agent-health") == []


def test_the_skew_threshold_is_a_config_key(tmp_path):
    from server.config import load_server_config

    path = tmp_path / "config.yaml"
    path.write_text("server:\n  enroll_secret: a-long-enough-secret-for-tests\n  clock_skew_s: 2m\n")
    assert load_server_config(str(path)).clock_skew_s == 120.0
