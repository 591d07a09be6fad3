"""An agent's continuity (server/continuity.py): silences, clean stops and a current silence make
its offline time, merged and clipped to the period and its enrolment; its integrity records listed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from server import continuity
from server.schema import agent_silences, agents, chain_incidents, events
from server.times import iso

DAY = datetime(2026, 3, 2, tzinfo=UTC)
H = timedelta(hours=1)


def _agent(
    conn, agent_id: str, host: str, enrolled: datetime, last_seen: datetime, retired: datetime | None = None
) -> None:
    conn.execute(
        insert(agents).values(
            agent_id=agent_id,
            hostname=host,
            token_hash=uuid.uuid4().hex,
            enrolled_at=enrolled,
            last_seen=last_seen,
            retired_at=retired,
        )
    )


def _event(conn, agent_id: str, type_: str, at: datetime, details: dict | None = None) -> None:
    event_id = str(uuid.uuid4())
    body = {"id": event_id, "type": type_, "ts": iso(at), "details": details or {}}
    conn.execute(
        insert(events).values(
            id=event_id, type=type_, ts=iso(at), received_at=at, agent_id=agent_id, body=json.dumps(body)
        )
    )


def _silence(conn, agent_id: str, rule: str, since: datetime, ended: datetime | None) -> None:
    conn.execute(
        insert(agent_silences).values(
            rule_id=rule, agent_id=agent_id, silent_since=iso(since), raised_at=since + 0.1 * H, ended_at=ended
        )
    )


@pytest.fixture
def fleet(engine):
    with engine.begin() as conn:
        _agent(conn, "a-1", "pc-1", DAY - 24 * H, DAY + 47 * H)
        _silence(conn, "a-1", "agent-offline", DAY + 2 * H, DAY + 3 * H)  # two rules' silences overlap:
        _silence(conn, "a-1", "agent-offline-core", DAY + 2.5 * H, DAY + 3.5 * H)  # 02:00-03:30
        _silence(conn, "a-1", "agent-offline", DAY - 5 * H, DAY + 1 * H)  # began before the period: 00:00-01:00
        _event(conn, "a-1", "agent.stopped", DAY + 10 * H, {"clean": True})
        _event(conn, "a-1", "agent.started", DAY + 12 * H)
        _event(conn, "a-1", "agent.tamper", DAY + 13 * H, {"what": "config <edited>"})
        conn.execute(
            insert(chain_incidents).values(
                agent_id="a-1", kind="chain_gap", seq=41, event_id=str(uuid.uuid4()), raised_at=DAY + 14 * H
            )
        )
        _agent(conn, "a-2", "pc-2", DAY + 12 * H, DAY + 18 * H)  # enrolled at noon, silent since 18:00
        _agent(conn, "a-3", "pc-3", DAY + 30 * H, DAY + 31 * H)  # enrolled after the period
    return engine


def test_offline_time_is_the_union_of_silences_stops_and_the_current_silence(fleet):
    with fleet.connect() as conn:
        found = {
            c.agent_id: c for c in continuity.of_agents(conn, DAY, DAY + 24 * H, DAY + 48 * H, offline_after_s=120)
        }

    assert set(found) == {"a-1", "a-2"}  # a-3 was enrolled after the period
    one = found["a-1"]
    assert [(g.start - DAY, g.end - DAY, g.why) for g in one.gaps] == [
        (0 * H, 1 * H, "silent"),
        (2 * H, 3.5 * H, "silent"),
        (10 * H, 12 * H, "stopped"),
    ]
    assert one.monitored_s == 24 * 3600 and one.offline_s == 4.5 * 3600
    assert one.online_share == pytest.approx(1 - 4.5 / 24)
    assert [n.kind for n in one.notes] == ["agent.stopped", "agent.started", "agent.tamper", "chain_gap"]
    assert "what=config <edited>" in one.notes[2].detail and one.notes[3].detail == "seq 41"

    two = found["a-2"]  # monitored from its enrolment; silent from its last heartbeat to the period's end
    assert two.monitored_s == 12 * 3600 and two.offline_s == 6 * 3600 and two.online_share == pytest.approx(0.5)


def test_a_period_still_running_ends_now_and_a_retired_agent_at_its_retirement(engine):
    with engine.begin() as conn:
        _agent(conn, "a-4", "pc-4", DAY - 24 * H, DAY + 6 * H, retired=DAY + 8 * H)
        _agent(conn, "a-5", "pc-5", DAY - 24 * H, DAY + 9.99 * H)
    with engine.connect() as conn:
        found = {
            c.agent_id: c for c in continuity.of_agents(conn, DAY, DAY + 24 * H, DAY + 10 * H, offline_after_s=120)
        }

    assert found["a-4"].monitored_s == 8 * 3600 and found["a-4"].offline_s == 2 * 3600  # silent 06:00 to its retirement
    assert found["a-5"].monitored_s == 10 * 3600 and found["a-5"].offline_s == 0  # heartbeat within agent_offline_s
    assert found["a-5"].online_share == 1.0
