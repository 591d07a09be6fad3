"""Correlation's window read (server/correlation.py _window_rows) asks each rule for its own groups
within its own groups' times: it must give every group the stored hits within that group's span,
oldest first (only those in no alert when asked for loose ones), as a filter of the whole table
gives them; and it must not fetch the hits of another rule that shares the group keys (rules
grouped by the same fields do: a bulk-egress window read fetched every mass-deletion burst of the
same users, and more as those bursts grew).
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from server.correlation import _window_rows
from server.database import writing
from server.schema import alerts, rule_hits
from server.times import iso, parse_ts
from tests.server import test_backends

pg_cluster = test_backends.pg_cluster  # the storage contract's cluster, started only for PostgreSQL
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
RULES = ("MW-BULK-EGRESS", "MW-MASS-DELETION", "ACME-SEQ")
KEYS = tuple(f"{i:064x}" for i in range(6))


engine = test_backends.backend  # a migrated engine on a fresh database of each backend


def _fill(engine, rng: random.Random, n: int) -> list[dict]:
    """n random hits (some in alerts, some at one time) of every rule and key; the rows as stored."""
    with writing(engine) as conn:
        alert_ids = [
            conn.execute(insert(alerts).values(rule_id="r", category="c", severity="low", title="t", status="open", created_at=T0,
                                               updated_at=T0, count=1, explanation="", suppressed=0)).inserted_primary_key[0]
            for _ in range(3)
        ]  # fmt: skip
        rows = [
            dict(rule_id=rng.choice(RULES), group_key=rng.choice(KEYS), step=rng.randrange(2), event_id=str(uuid.UUID(int=i + 1, version=4)),
                 ts=iso(T0 + timedelta(seconds=rng.choice((rng.randrange(900), 300)))), facts=json.dumps({"n": i}),
                 alert_id=rng.choice((None, None, *alert_ids)))
            for i in range(n)
        ]  # fmt: skip
        conn.execute(insert(rule_hits), rows)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(rule_hits.select())]


def _spans(rng: random.Random) -> dict[tuple[str, str], tuple]:
    groups = rng.sample([(r, k) for r in RULES for k in KEYS], rng.randint(1, 10))
    spans = {}
    for group in groups:
        since = T0 + timedelta(seconds=rng.randrange(-60, 900))
        spans[group] = (iso(since), iso(since + timedelta(seconds=rng.choice((0, 30, 300, 600)))), timedelta(seconds=60))
    return spans


def _expected(stored: list[dict], spans, loose_only: bool) -> dict[tuple[str, str], list[tuple]]:
    found: dict[tuple[str, str], list[tuple]] = {}
    for row in sorted(stored, key=lambda r: (r["ts"], r["id"])):
        span = spans.get((row["rule_id"], row["group_key"]))
        if span and span[0] <= row["ts"] <= span[1] and not (loose_only and row["alert_id"] is not None):
            found.setdefault((row["rule_id"], row["group_key"]), []).append(
                (row["id"], row["step"], row["event_id"], parse_ts(row["ts"]), row["ts"], json.loads(row["facts"]), row["alert_id"]))
    return found


@pytest.mark.parametrize("seed", range(8))
def test_each_group_gets_its_hits_within_its_span(engine, seed):
    rng = random.Random(seed)
    stored = _fill(engine, rng, 400)
    for _ in range(6):
        spans = _spans(rng)
        for loose_only in (False, True):
            with engine.connect() as conn:
                got = _window_rows(conn, spans, loose_only=loose_only)
            assert {k: [(r.id, r.step, r.event_id, r.at, r.ts, r.facts, r.alert_id) for r in v] for k, v in got.items()} \
                == _expected(stored, spans, loose_only)


class _Counting:
    """A connection that counts the rows its queries return."""

    def __init__(self, conn):
        self.conn, self.rows = conn, 0

    def execute(self, query):
        rows = self.conn.execute(query).all()
        self.rows += len(rows)
        return _Rows(rows)


class _Rows:
    def __init__(self, rows):
        self._rows = rows

    def all(self):
        return self._rows


def test_a_window_read_fetches_no_hits_of_other_rules_sharing_its_keys(engine):
    """One user's burst of 300 mass deletions and five egress hits, another user's two deletions:
    reading the first one's egress window and the second one's deletions fetches seven rows."""
    hits = [("MW-MASS-DELETION", KEYS[0])] * 300 + [("MW-BULK-EGRESS", KEYS[0])] * 5 + [("MW-MASS-DELETION", KEYS[1])] * 2
    with writing(engine) as conn:
        conn.execute(insert(rule_hits), [
            dict(rule_id=rule, group_key=key, step=0, event_id=str(uuid.UUID(int=i + 1, version=4)), ts=iso(T0 + timedelta(seconds=i % 60)),
                 facts="{}", alert_id=None)
            for i, (rule, key) in enumerate(hits)
        ])  # fmt: skip
    around = (iso(T0 - timedelta(minutes=10)), iso(T0 + timedelta(minutes=10)), timedelta(minutes=10))
    spans = {("MW-BULK-EGRESS", KEYS[0]): around, ("MW-MASS-DELETION", KEYS[1]): around}
    with engine.connect() as conn:
        counting = _Counting(conn)
        found = _window_rows(counting, spans)
    assert {k: len(v) for k, v in found.items()} == {("MW-BULK-EGRESS", KEYS[0]): 5, ("MW-MASS-DELETION", KEYS[1]): 2}
    assert counting.rows == 7
