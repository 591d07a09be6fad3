"""Daily seals (server/seals.py): each agent's chained events of a day, sealed, signed and kept past
retention; a changed seal, a removed seal and an event removed or changed after sealing are found."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, select, update

from rules.events import Event, chain_digest
from server import merkle, seals
from server.firmtime import zone
from server.schema import events, seal_days
from server.schema import seals as seals_table
from server.signing import load_or_create
from tests.server.factories import make_egress
from tests.server.test_chain import chain

FIRM = zone("Asia/Shanghai")
DAY = date(2026, 3, 2)  # T0 is 2026-03-02 09:00 UTC, 17:00 in Shanghai


@pytest.fixture
def key(tmp_path):
    return load_or_create(str(tmp_path / "keys" / "signing-key.pem"))


def _next_day(clock, days: int = 1) -> None:
    """Past the firm's midnight and the grace period, `days` days on."""
    _, end = seals.day_bounds(DAY + timedelta(days=days - 1), FIRM)
    clock.now = end + timedelta(seconds=seals.GRACE_S + 1)


def _rows(store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(seals_table).order_by(seals_table.c.id)).mappings()]


def _check(store, key, day=DAY, retention_days=1095):
    return seals.check_day(store.engine, key.private.public_key(), day.isoformat(), store.clock(), retention_days)


def test_a_day_is_sealed_per_agent_signed_and_checks(client, send, agent, enroll, store, clock, key):
    bodies = chain(6)
    send(*bodies)
    other = enroll("pc-0043")
    send(*chain(3, host="pc-0043"), as_agent=other)
    with pytest.raises(seals.SealError, match="not over yet"):
        seals.seal_day(store.engine, key, DAY, FIRM, clock())
    _next_day(clock)

    (run,) = seals.seal_pending(store.engine, key, FIRM, clock())

    assert run == seals.SealRun(DAY.isoformat(), True, 2)
    mine = next(r for r in _rows(store) if r["agent_id"] == agent.agent_id)
    assert (mine["first_seq"], mine["last_seq"], mine["count"]) == (1, 6, 6)
    assert mine["chain_head"] == chain_digest(bodies[-1])
    assert mine["merkle_root"] == merkle.root([bytes.fromhex(chain_digest(b)) for b in bodies]).hex()
    assert [c.ok for c in _check(store, key)] == [True, True], [c.problems for c in _check(store, key)]


def test_sealing_is_idempotent_and_runs_once_even_in_parallel(client, send, store, clock, key):
    send(*chain(4))
    _next_day(clock)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(seals.seal_day(store.engine, key, DAY, FIRM, clock()))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sorted(r.sealed for r in results) == [False, False, False, True]
    assert seals.seal_pending(store.engine, key, FIRM, clock()) == []  # the daily task: nothing left
    assert len(_rows(store)) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(seal_days.c.agents)).scalars().all() == [1]


def test_the_schedule_seals_yesterday_once(client, send, store, clock, key):
    send(*chain(3))
    _next_day(clock)
    calls = []
    schedule = seals.SealSchedule(lambda: calls.append(seals.seal_pending(store.engine, key, FIRM, clock())), first_delay_s=0.01, every_s=0.05)
    schedule.start()
    try:
        for _ in range(200):
            if len(calls) >= 3:
                break
            threading.Event().wait(0.02)
    finally:
        schedule.stop()
    assert len(calls) >= 3 and [len(c) for c in calls[:3]] == [1, 0, 0]
    assert len(_rows(store)) == 1


def test_an_edited_seal_is_found(client, send, store, clock, key):
    send(*chain(5))
    _next_day(clock)
    seals.seal_pending(store.engine, key, FIRM, clock())
    row = _rows(store)[0]
    with store.engine.begin() as conn:
        conn.execute(update(seals_table).values(body=row["body"].replace('"count":5', '"count":4'), count=4))

    (check,) = _check(store, key)
    assert not check.ok and any("signature does not verify" in p for p in check.problems)


def test_an_event_removed_or_changed_after_sealing_is_found(client, send, store, clock, key):
    bodies = chain(6)
    send(*bodies)
    _next_day(clock)
    seals.seal_pending(store.engine, key, FIRM, clock())
    with store.engine.begin() as conn:
        conn.execute(delete(events).where(events.c.id == bodies[2]["id"]))
        body = conn.execute(select(events.c.body).where(events.c.id == bodies[4]["id"])).scalar()
        conn.execute(update(events).where(events.c.id == bodies[4]["id"]).values(body=body.replace("/srv/rnd/5.dwg", "/srv/rnd/x.dwg")))

    (check,) = _check(store, key)
    assert not check.ok
    assert any("1 sealed event(s) are gone (positions 3 of 6)" in p and "removed after sealing" in p for p in check.problems), check.problems
    assert any(f"event {bodies[4]['id']} (seq 5) was changed after sealing" in p for p in check.problems), check.problems


def test_a_removed_seal_breaks_the_seals_chain(client, send, store, clock, key):
    send(*chain(3))
    _next_day(clock)
    seals.seal_pending(store.engine, key, FIRM, clock())
    send(*chain(3, start=4, prev_hash=None))
    _next_day(clock, days=2)
    seals.seal_pending(store.engine, key, FIRM, clock())
    assert [c.ok for c in _check(store, key, DAY + timedelta(days=1))] == [True]
    with store.engine.begin() as conn:
        conn.execute(delete(seals_table).where(seals_table.c.day == DAY.isoformat()))

    (check,) = _check(store, key, DAY + timedelta(days=1))
    assert any("a seal was removed or replaced" in p for p in check.problems), check.problems


def test_a_day_purged_by_retention_still_verifies_and_keeps_its_seal(client, send, store, clock, key):
    bodies = chain(5)
    bodies[3] = Event.from_dict(make_egress("core", id=bodies[3]["id"], seq=4, prev_hash=bodies[3]["prev_hash"], ts=bodies[3]["ts"])).to_dict()

    bodies[4]["prev_hash"] = chain_digest(bodies[3])
    send(*bodies)
    _next_day(clock)
    seals.seal_pending(store.engine, key, FIRM, clock())
    clock.now += timedelta(days=70)  # the day's whole month is past retention (PostgreSQL drops months)

    purged = store.purge_events(retention_days=30)

    assert purged == 4  # the egress event is an alert's evidence: kept
    assert len(_rows(store)) == 1  # retention never deletes seals
    (check,) = _check(store, key, retention_days=30)
    assert check.ok, check.problems
    assert (check.events_kept, check.events_sealed) == (1, 5)
    # the kept event's proof against the sealed root
    with store.engine.connect() as conn:
        found, proofs = seals.for_events(conn, [bodies[3]["id"]], FIRM)
    (proof,) = proofs
    (seal,) = found.values()
    root = merkle.root_from_proof(bytes.fromhex(chain_digest(bodies[3])), proof["index"], proof["size"], [bytes.fromhex(h) for h in proof["path"]])
    assert proof["sealed"] and b'"merkle_root":"' + root.hex().encode() + b'"' in seal["body"]
    # and the same purge within retention would have been tampering
    (late,) = _check(store, key, retention_days=365)
    assert not late.ok and any("4 sealed event(s) are gone" in p for p in late.problems)
