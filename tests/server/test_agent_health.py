"""Liveness reported, not assumed: a pipeline stalled while heartbeats go on, and an agent killed
and restarted, each raise an agent-health alert (server/stall.py, rules/packs/agent.yaml)."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select

from server.config import load_server_config
from server.database import _alembic_config, make_engine, migrate
from server.schema import agents, alert_history, alerts, events
from server.store import Store
from tests.server import postgres
from tests.server.factories import T0, alerts_of, at, make_event

STALL_S = 300.0  # server.pipeline_stall_s by default


def _beat(client, agent, seconds: float, stepped_at_s: float | None, queued: int = 7, skew_s: float = 0.0) -> None:
    """A heartbeat sent `seconds` after T0 by an agent whose clock is `skew_s` off, saying its
    pipeline last finished a step `stepped_at_s` after T0 (on the agent's clock); None: no progress."""
    body = {"hostname": "pc-0042", "agent_time": at(seconds + skew_s)}
    if stepped_at_s is not None:
        body["pipeline"] = {"stepped_at": (T0 + timedelta(seconds=stepped_at_s + skew_s)).timestamp(), "queued": queued}
    response = client.post("/api/v1/heartbeat", json=body, headers=agent.headers)
    assert response.status_code == 200, response.text


def _health(client, reader) -> list[dict]:
    return alerts_of(client, reader, category="agent-health")


def test_a_pipeline_stuck_while_heartbeats_go_on_raises_one_alert_that_resolves_when_it_moves(
    client, reader, agent, clock
):
    _beat(client, agent, 0, 0)
    for seconds in (30, 150, 300):  # stuck, not longer than pipeline_stall_s yet
        clock.advance(seconds - (clock.now - T0).total_seconds())
        _beat(client, agent, seconds, 0)
    assert _health(client, reader) == []

    clock.advance(30)
    _beat(client, agent, 330, 0)
    (alert,) = _health(client, reader)
    assert (alert["rule_id"], alert["severity"], alert["status"], alert["agent_id"]) == (
        "MW-AGENT-STALLED",
        "high",
        "open",
        agent.agent_id,
    )
    explanation = alert["explanation"]
    assert (
        "pc-0042" in explanation
        and "since 2026-03-02T09:00:00.000Z" in explanation
        and "7 changes queued" in explanation
    )
    listed = client.get("/api/v1/agents", headers=reader).json()["agents"][0]
    assert (listed["pipeline_stepped_at"], listed["pipeline_queued"]) == ("2026-03-02T09:00:00.000Z", 7)

    for seconds in (360, 390):  # still stuck: the same stall, no second alert
        clock.advance(30)
        _beat(client, agent, seconds, 0)
    assert [a["id"] for a in _health(client, reader)] == [alert["id"]]

    clock.advance(30)
    _beat(client, agent, 420, 419, queued=0)  # it moved
    (resolved,) = _health(client, reader)
    assert resolved["status"] == "resolved"
    history = client.get(f"/api/v1/alerts/{alert['id']}", headers=reader).json()["history"]
    assert history[-1]["action"] == "auto_resolved" and history[-1]["comment"].startswith("pipeline moving again")

    clock.advance(400)
    _beat(client, agent, 820, 420)  # stuck again: a new stall, a new alert
    assert [a["status"] for a in _health(client, reader)] == ["open", "resolved"]


@pytest.mark.parametrize("skew_s", [-3600.0, 3600.0])
def test_the_stall_is_measured_on_the_agents_clock(client, reader, agent, clock, skew_s):
    """A PC clock an hour off makes neither a false stall nor hides a true one."""
    clock.advance(60)
    _beat(client, agent, 60, 59, skew_s=skew_s)
    assert _stalls(client, reader) == []  # (the skew itself is MW-AGENT-CLOCK-SKEW's)

    clock.advance(STALL_S)
    _beat(client, agent, 60 + STALL_S, 59, skew_s=skew_s)
    assert len(_stalls(client, reader)) == 1


def _stalls(client, reader) -> list[dict]:
    return [a for a in _health(client, reader) if a["rule_id"] == "MW-AGENT-STALLED"]


def test_an_agent_that_sends_no_progress_is_never_judged(client, reader, agent, clock):
    _beat(client, agent, 0, None)
    clock.advance(3600)
    _beat(client, agent, 3600, None)
    assert _health(client, reader) == []


@pytest.mark.parametrize(
    "raw",
    [
        '{"stepped_at": -1, "queued": 0}',
        '{"stepped_at": NaN, "queued": 0}',
        '{"stepped_at": Infinity, "queued": 0}',
        '{"stepped_at": 1e300, "queued": 0}',
        '{"stepped_at": "yesterday", "queued": 0}',
        '{"stepped_at": 1733400000, "queued": -1}',
        '{"stepped_at": 1733400000, "queued": 2147483648}',
        '{"stepped_at": 1733400000, "queued": 1.5}',
        '{"queued": 3}',
        '"stuck"',
        "[1733400000, 3]",
    ],
)
def test_bad_pipeline_progress_is_refused_with_422(client, agent, raw):
    body = '{"hostname": "pc-0042", "pipeline": ' + raw + "}"
    response = client.post(
        "/api/v1/heartbeat", content=body, headers={**agent.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text


def test_progress_at_the_edges_is_taken(client, reader, agent):
    """stepped_at 0 (a clock at 1970) and the last second a datetime holds are valid numbers."""
    for stepped_at in (0, 253402300799):
        body = {"hostname": "pc-0042", "pipeline": {"stepped_at": stepped_at, "queued": 2147483647}}
        response = client.post("/api/v1/heartbeat", json=body, headers=agent.headers)
        assert response.status_code == 200, response.text


def _killed_restart(send, minute: int, rebooted: bool = False) -> None:
    details = {
        "previous_stop": "crash",
        "unclean_stop": True,
        "last_alive": f"2026-03-02T09:{minute:02d}:00.000Z",
        "rebooted": rebooted,
    }
    send(make_event("agent.started", ts=f"2026-03-02T09:{minute:02d}:05.000Z", path=None, details=details))


def test_a_kill_and_restart_raises_agent_health_and_three_in_a_day_escalate(client, reader, send):
    send(make_event("agent.started", path=None, details={"previous_stop": "clean", "unclean_stop": False}))
    _killed_restart(send, 1, rebooted=True)  # the PC went down too: not a kill
    assert _health(client, reader) == []

    _killed_restart(send, 10)
    (alert,) = _health(client, reader)
    assert (alert["rule_id"], alert["severity"], alert["title"]) == (
        "MW-AGENT-KILLED",
        "high",
        "Agent killed and restarted",
    )

    _killed_restart(send, 20)
    _killed_restart(send, 30)
    by_rule = {a["rule_id"]: a for a in _health(client, reader)}
    assert set(by_rule) == {"MW-AGENT-KILLED", "MW-AGENT-KILLED-REPEATEDLY"}
    assert by_rule["MW-AGENT-KILLED"]["count"] == 3  # the repeats fold into the first alert
    assert by_rule["MW-AGENT-KILLED-REPEATEDLY"]["severity"] == "critical"


def test_pipeline_stall_s_is_read_from_the_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  enroll_secret: a-long-enough-secret-for-tests\n  pipeline_stall_s: 2m\n")
    assert load_server_config(str(path)).pipeline_stall_s == 120.0
    path.write_text("server:\n  enroll_secret: a-long-enough-secret-for-tests\n")
    assert load_server_config(str(path)).pipeline_stall_s == STALL_S


# --- the migration, up and down --------------------------------------------------------------------

NEW_COLUMNS = {"pipeline_stepped_at", "pipeline_queued", "pipeline_stall_event"}


def _to(engine, revision: str, downgrade: bool = False) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if downgrade else command.upgrade)(cfg, revision)


def _columns(engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("agents")}


def _migrate_up_and_down(url: str) -> None:
    engine = make_engine(url)
    try:
        _to(engine, "0009")
        assert not NEW_COLUMNS & _columns(engine)
        with engine.begin() as conn:  # an agent as 0009 stored it
            conn.execute(
                insert(agents).values(
                    agent_id="a" * 36, hostname="pc-0042", token_hash="ab" * 32, enrolled_at=T0, last_seen=T0
                )
            )
        _to(engine, "head")
        assert NEW_COLUMNS <= _columns(engine)
        with engine.connect() as conn:
            row = conn.execute(
                select(agents.c.hostname, agents.c.pipeline_stepped_at, agents.c.pipeline_stall_event)
            ).one()
        assert tuple(row) == ("pc-0042", None, None)
        _to(engine, "0009", downgrade=True)
        assert not NEW_COLUMNS & _columns(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT hostname FROM agents").scalars().all() == ["pc-0042"]
        _to(engine, "head")
    finally:
        engine.dispose()


def test_migration_0010_up_and_down_on_sqlite(tmp_path):
    _migrate_up_and_down(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.slow
def test_migration_0010_up_and_down_on_postgresql():
    with postgres.running() as cluster, postgres.fresh_database(cluster) as url:
        _migrate_up_and_down(url)


def test_a_stall_is_kept_as_json_free_columns(engine, client, agent, clock):
    """The progress lives in its own columns, not in the heartbeat's status JSON."""
    _beat(client, agent, 0, 0, queued=3)
    with engine.connect() as conn:
        status, queued = conn.execute(select(agents.c.status, agents.c.pipeline_queued)).one()
    assert "pipeline" not in json.loads(status) and queued == 3


@pytest.mark.slow
def test_two_collectors_on_postgresql_report_one_stall_and_resolve_it_once(clock):
    """Heartbeats of one stuck agent reaching two collectors at once: one agent.stalled, one
    alert; the heartbeats that show it moving again resolve it once."""
    with postgres.running() as cluster, postgres.fresh_database(cluster) as url:
        engines = [make_engine(url) for _ in range(2)]
        try:
            migrate(engines[0])
            one, two = (Store(e, clock=clock) for e in engines)
            agent_id = one.enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_" + uuid.uuid4().hex)

            def race(stepped_at_s: float) -> None:
                pipeline = {"stepped_at": (T0 + timedelta(seconds=stepped_at_s)).timestamp(), "queued": 5}
                agent_time = at((clock.now - T0).total_seconds())
                barrier = threading.Barrier(2)

                def beat(store):
                    barrier.wait()
                    store.heartbeat(agent_id, "pc-0042", "0.1.0", None, 0, {}, None, agent_time, pipeline)

                threads = [threading.Thread(target=beat, args=(s,)) for s in (one, two)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)

            for _ in range(3):
                clock.advance(STALL_S)
                race(0)  # stuck since T0
            clock.advance(10)
            race((clock.now - T0).total_seconds() - 1)  # moving again
            with engines[0].connect() as conn:
                stalled = conn.execute(select(events.c.id).where(events.c.type == "agent.stalled")).all()
                statuses = conn.execute(select(alerts.c.rule_id, alerts.c.status)).all()
                actions = conn.execute(select(alert_history.c.action).order_by(alert_history.c.id)).scalars().all()
            assert len(stalled) == 1
            assert statuses == [("MW-AGENT-STALLED", "resolved")]
            assert actions == ["created", "auto_resolved"]
        finally:
            for e in engines:
                e.dispose()
