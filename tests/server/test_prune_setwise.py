"""Correlation's prune on PostgreSQL, one DELETE ... USING unnest() for all a batch's groups
(server/correlation.py _prune_setwise), removes what the reference, SQLAlchemy's executemany of one
DELETE per group (correlation.SETWISE_PRUNE = False, as SQLite runs it), removes: hits older than
their group's cut, except those of the burst the group keeps; other groups, other rules and newer
hits untouched. Random tables of hits, each pruned both ways in a transaction rolled back after.
Likewise the state rows of the bursts that grew (_update_states, one UPDATE ... FROM unnest())."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from server import correlation
from server.correlation import _prune, _update_states
from server.database import writing
from server.schema import alerts, correlation_state, rule_hits
from tests.server import postgres, test_backends

pg_cluster, backend = test_backends.pg_cluster, test_backends.backend  # the storage contract's fixtures
pytestmark = postgres.MARKS
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _ts(second: int) -> str:
    return f"2026-03-02T01:{second // 60:02d}:{second % 60:02d}.000Z"


def _after(conn, prunes, setwise: bool) -> list[tuple]:
    """The hits left after pruning one way; the transaction is rolled back by the caller."""
    saved = correlation.SETWISE_PRUNE
    correlation.SETWISE_PRUNE = setwise
    try:
        _prune(conn, prunes)
    finally:
        correlation.SETWISE_PRUNE = saved
    return [tuple(r) for r in conn.execute(select(rule_hits).order_by(rule_hits.c.id))]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("seed", range(6))
def test_the_setwise_prune_removes_what_the_executemany_removes(backend, seed):
    rng = random.Random(seed)
    rules, keys = ["C1", "C2", "C3"], [f"{i:064d}" for i in range(5)]
    with writing(backend) as conn:
        alert_ids = conn.execute(
            insert(alerts).returning(alerts.c.id, sort_by_parameter_order=True),
            [dict(rule_id="C1", category="c", severity="low", title="t", status="open", created_at=NOW, updated_at=NOW,
                  count=1, explanation="", suppressed=0, last_ts=None) for _ in range(4)],
        ).scalars().all()  # fmt: skip
        conn.execute(
            insert(rule_hits),
            [dict(rule_id=rng.choice(rules), group_key=rng.choice(keys), step=0, event_id=f"00000000-0000-4000-8000-{i:012d}",
                  ts=_ts(rng.randrange(60)), facts="{}", alert_id=rng.choice([None, None, *alert_ids]))
             for i in range(300)],
        )  # fmt: skip
    groups = rng.sample([(r, k) for r in rules for k in keys], rng.randrange(1, 12))
    prunes = [(r, k, _ts(rng.randrange(65)), rng.choice([None, *alert_ids])) for r, k in groups]
    results = []
    for setwise in (False, True):
        with backend.connect() as conn:
            with conn.begin() as transaction:
                results.append(_after(conn, prunes, setwise))
                transaction.rollback()
    assert results[0] == results[1]
    assert 0 < len(results[0]) < 300  # something pruned, something kept (cuts fall on hits' times too: < is not <=)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_nothing_to_prune(backend):
    with writing(backend) as conn:
        _prune(conn, [])
        _prune(conn, [("C1", "0" * 64, _ts(10), None)])


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("seed", range(4))
def test_the_setwise_state_update_writes_what_the_executemany_writes(backend, seed):
    rng = random.Random(seed)
    with writing(backend) as conn:
        alert_ids = conn.execute(
            insert(alerts).returning(alerts.c.id, sort_by_parameter_order=True),
            [dict(rule_id="C1", category="c", severity="low", title="t", status="open", created_at=NOW, updated_at=NOW,
                  count=1, explanation="", suppressed=0, last_ts=None) for _ in range(5)],
        ).scalars().all()  # fmt: skip
        groups = [(f"C{i % 3}", f"{i:064d}") for i in range(20)]
        conn.execute(
            insert(correlation_state),
            [dict(rule_id=r, group_key=k, group_values='{"user": "张三"}', alert_id=alert_ids[0], first_ts=_ts(1), last_ts=_ts(2),
                  updated_at=NOW) for r, k in groups],
        )  # fmt: skip
    known = [
        dict(rule_id=r, group_key=k, group_values=f'{{"user": "李四", "n": {rng.randrange(100)}, "q": "\\\"{{x,y}}"}}',
             alert_id=rng.choice(alert_ids), first_ts=_ts(rng.randrange(60)), last_ts=_ts(60 + rng.randrange(60)),
             updated_at=NOW + timedelta(seconds=rng.randrange(1000)))
        for r, k in rng.sample(groups, rng.randrange(1, 15))
    ]  # fmt: skip
    results = []
    for setwise in (False, True):
        saved = correlation.SETWISE_PRUNE
        correlation.SETWISE_PRUNE = setwise
        try:
            with backend.connect() as conn:
                with conn.begin() as transaction:
                    _update_states(conn, known)
                    results.append([tuple(r) for r in conn.execute(select(correlation_state).order_by(correlation_state.c.rule_id, correlation_state.c.group_key))])
                    transaction.rollback()
        finally:
            correlation.SETWISE_PRUNE = saved
    assert results[0] == results[1]
    assert sum(r[2].startswith('{"user": "李四"') for r in results[0]) == len(known)
