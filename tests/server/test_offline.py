"""Agent health: agent-offline escalates at multiples of its limit, resolves itself with a note when
the agent is back, and a clean stop is not a disappearance."""

from __future__ import annotations

from sqlalchemy import select

from server.absence import Health
from server.notify.tables import notifications
from server.store import Store
from tests.server.factories import AGENT_OFFLINE_S, alerts_of, make_event

HEALTH = Health(AGENT_OFFLINE_S, (3.0, 10.0), 3600.0)


def _heartbeat(client, agent) -> None:
    response = client.post("/api/v1/heartbeat", json={"hostname": "pc-0042"}, headers=agent.headers)
    assert response.status_code == 200, response.text


def _offline(client, reader) -> list[dict]:
    return alerts_of(client, reader, category="agent-offline")


def _history(client, reader, alert_id: int) -> list[dict]:
    return client.get(f"/api/v1/alerts/{alert_id}", headers=reader).json()["history"]


def _state(client, reader) -> str:
    (agent,) = client.get("/api/v1/agents", headers=reader).json()["agents"]
    return agent["state"]


def test_a_silence_escalates_at_each_multiple_once(client, reader, agent, store, clock):
    _heartbeat(client, agent)
    clock.advance(AGENT_OFFLINE_S + 1)
    assert store.check_absence(AGENT_OFFLINE_S, None, HEALTH) == 1
    assert _offline(client, reader)[0]["severity"] == "high"

    clock.advance(2 * AGENT_OFFLINE_S)  # 3 x the limit
    store.check_absence(AGENT_OFFLINE_S, None, HEALTH)
    store.check_absence(AGENT_OFFLINE_S, None, HEALTH)
    (alert,) = _offline(client, reader)
    assert alert["severity"] == "critical"
    actions = [h["action"] for h in _history(client, reader, alert["id"])]
    assert actions == ["created", "escalated"]

    clock.advance(7 * AGENT_OFFLINE_S)  # 10 x
    store.check_absence(AGENT_OFFLINE_S, None, HEALTH)
    history = _history(client, reader, alert["id"])
    assert [h["action"] for h in history] == ["created", "escalated", "escalated"]
    assert history[-1]["comment"].startswith("still silent after 20 min (10 x the limit)")


def test_two_collectors_escalate_once(client, reader, agent, engine, clock):
    _heartbeat(client, agent)
    one, two = Store(engine, clock=clock), Store(engine, clock=clock)
    clock.advance(AGENT_OFFLINE_S + 1)
    assert one.check_absence(AGENT_OFFLINE_S, None, HEALTH) + two.check_absence(AGENT_OFFLINE_S, None, HEALTH) == 1
    clock.advance(3 * AGENT_OFFLINE_S)
    one.check_absence(AGENT_OFFLINE_S, None, HEALTH)
    two.check_absence(AGENT_OFFLINE_S, None, HEALTH)
    (alert,) = _offline(client, reader)
    assert [h["action"] for h in _history(client, reader, alert["id"])] == ["created", "escalated"]


def test_an_escalation_is_notified_again(client, reader, agent, store, engine, clock):
    from server.notify.channels import ChannelSpec
    from server.notify.channelstore import ChannelStore

    ChannelStore(engine, store.clock).create(ChannelSpec(url="json://127.0.0.1:9/hook", name="ops"), True, "token:secops")
    _heartbeat(client, agent)
    clock.advance(AGENT_OFFLINE_S + 1)
    store.check_absence(AGENT_OFFLINE_S, None, HEALTH)
    with engine.begin() as conn:
        conn.execute(notifications.update().values(status="sent", attempts=1))
    clock.advance(3 * AGENT_OFFLINE_S)
    store.check_absence(AGENT_OFFLINE_S, None, HEALTH)
    with engine.connect() as conn:
        assert conn.execute(select(notifications.c.status)).scalars().all() == ["pending"]


def test_the_alert_resolves_itself_with_a_note_when_the_agent_is_back(client, reader, agent, store, clock):
    _heartbeat(client, agent)
    clock.advance(AGENT_OFFLINE_S + 1)
    store.check_absence(AGENT_OFFLINE_S, None, HEALTH)
    assert _state(client, reader) == "offline"
    clock.advance(180)

    _heartbeat(client, agent)

    (alert,) = _offline(client, reader)
    assert alert["status"] == "resolved"
    last = _history(client, reader, alert["id"])[-1]
    assert (last["action"], last["actor"], last["from_status"], last["to_status"]) == ("auto_resolved", "system", "open", "resolved")
    assert last["comment"].startswith("agent back after 5 min (silent 301 s since 2026-03-02T09:00:00.000Z)")
    assert _state(client, reader) == "online"


def _offline_alert_closed_as_false_positive(client, reader, agent, store, clock) -> int:
    """An agent that went silent, and the officer closing its alert: the alert's id."""
    _heartbeat(client, agent)
    clock.advance(AGENT_OFFLINE_S + 1)
    store.check_absence(AGENT_OFFLINE_S, None, HEALTH)
    alert_id = _offline(client, reader)[0]["id"]
    client.patch(f"/api/v1/alerts/{alert_id}", json={"status": "false_positive", "comment": "PC in repair"}, headers=reader)
    return alert_id


def test_an_alert_someone_closed_keeps_its_status_when_the_agent_is_back(client, reader, agent, store, clock):
    alert_id = _offline_alert_closed_as_false_positive(client, reader, agent, store, clock)
    _heartbeat(client, agent)
    assert _offline(client, reader)[0]["status"] == "false_positive"
    assert _history(client, reader, alert_id)[-1]["action"] == "auto_resolved"


def test_a_heartbeat_between_the_check_and_its_write_wins(client, reader, agent, store, engine, clock, monkeypatch):
    """The round read the agent as silent, then a heartbeat came: no alert for an agent that is back."""
    import server.absence as absence

    _heartbeat(client, agent)
    clock.advance(AGENT_OFFLINE_S + 1)
    real_writing = absence.writing

    def heartbeat_first(engine_):
        _heartbeat(client, agent)
        return real_writing(engine_)

    monkeypatch.setattr(absence, "writing", heartbeat_first)
    assert store.check_absence(AGENT_OFFLINE_S, None, HEALTH) == 0
    assert _offline(client, reader) == []


def _stop_cleanly(send) -> None:
    send(make_event("agent.stopped", details={"clean": True, "reason": "clean"}))


def test_a_clean_stop_is_not_a_disappearance(client, reader, agent, send, store, clock):
    _heartbeat(client, agent)
    _stop_cleanly(send)
    clock.advance(AGENT_OFFLINE_S * 20)
    assert store.check_absence(AGENT_OFFLINE_S, None, HEALTH) == 0
    assert _offline(client, reader) == []
    assert _state(client, reader) == "stopped"


def test_a_stopped_agent_that_stays_down_beyond_its_time_alerts_and_says_so(client, reader, agent, send, store, clock):
    _heartbeat(client, agent)
    _stop_cleanly(send)
    clock.advance(3601)
    assert store.check_absence(AGENT_OFFLINE_S, None, HEALTH) == 1
    (alert,) = _offline(client, reader)
    assert alert["explanation"].startswith("The agent stopped cleanly at 2026-03-02T09:00:00.000Z")


def test_a_clean_stop_never_alerts_when_switched_off(client, reader, agent, send, store, clock):
    _heartbeat(client, agent)
    _stop_cleanly(send)
    clock.advance(10 * 86400)
    assert store.check_absence(AGENT_OFFLINE_S, None, Health(AGENT_OFFLINE_S, (3.0,), None)) == 0


def test_an_agent_that_comes_back_after_a_clean_stop_and_is_killed_is_offline(client, reader, agent, send, store, clock):
    _heartbeat(client, agent)
    _stop_cleanly(send)
    clock.advance(600)
    _heartbeat(client, agent)  # restarted
    assert _state(client, reader) == "online"
    clock.advance(AGENT_OFFLINE_S + 1)  # then killed
    assert store.check_absence(AGENT_OFFLINE_S, None, HEALTH) == 1
    assert _state(client, reader) == "offline"


def test_an_alert_someone_closed_is_not_escalated(client, reader, agent, store, clock):
    alert_id = _offline_alert_closed_as_false_positive(client, reader, agent, store, clock)
    clock.advance(10 * AGENT_OFFLINE_S)
    store.check_absence(AGENT_OFFLINE_S, None, HEALTH)
    (alert,) = _offline(client, reader)
    assert (alert["severity"], alert["status"]) == ("high", "false_positive")
    assert "escalated" not in [h["action"] for h in _history(client, reader, alert_id)]
