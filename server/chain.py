"""Tamper evidence: each agent's event chain is checked as it arrives, and its clock against ours.

An agent gives every event the next `seq` and `prev_hash`, the digest of the event before it
(rules.events.chain_digest over the event as stored). The collector keeps each chained event's
seq, digest and prev_hash (events columns agent_seq, chain_hash, prev_hash) and finds:

- `chain_break`: two neighbours whose link does not hold (an event rewritten or forged), checked
  for every new event against the stored events before and after it, in whatever order batches
  arrive;
- `seq_reused`: two different events claiming one seq;
- `chain_gap`: seqs that never arrived and that no agent.gap explained. Batches may arrive out of
  order, so a hole is judged only once the agent says it delivered everything below it: the
  heartbeat carries `chain.unsent_from` (the first seq still in its spool, or the first one an
  unsent agent.gap explains). Every seq from the lowest received up to that point must be stored;
- `clock_skew`: the agent's clock (the heartbeat's agent_time, read when it arrives) differs from
  ours by more than `clock_skew_s`, reported once per agent. Event times are not used: events wait
  in the spool for as long as the collector is out of reach, and a test or an import may date
  them as it likes; the heartbeat is sent the moment it is stamped.

Each finding is one row in chain_incidents (inserted with ON CONFLICT DO NOTHING, so an incident
is reported once, also with two collectors) and one event the collector makes, `agent.tamper`
(details.kind says which) or `agent.clock_skew`, which the rules then judge like any other:
MW-AGENT-TAMPER raises agent-tamper, MW-AGENT-CLOCK-SKEW agent-health. Resent batches are
duplicates and are not looked at again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection

from rules.events import Event, chain_digest
from server.database import insert_ignore, lock
from server.schema import agent_chains, chain_gaps, chain_incidents, events
from server.times import iso, parse_ts

DEFAULT_CLOCK_SKEW_S = 300.0
SEQ_MAX = 2**63 - 1  # the last seq a BIGINT column holds (server.models.EventIn.seq)


def chain_columns(event: Event, body: str) -> dict:
    """The events-table columns of a chained event (none for an event outside any chain)."""
    if event.seq is None:
        return {"agent_seq": None, "chain_hash": None, "prev_hash": None}
    return {"agent_seq": event.seq, "chain_hash": chain_digest(json.loads(body)), "prev_hash": event.prev_hash}


class ChainJudge:
    """The checks of one write transaction; returns the events the collector makes to report findings."""

    def __init__(self, conn: Connection, now: datetime, clock_skew_s: float = DEFAULT_CLOCK_SKEW_S):
        self.conn, self.now, self.clock_skew_s = conn, now, clock_skew_s

    # --- on ingest ----------------------------------------------------------------------------

    def ingest(self, new_events: list[Event]) -> list[Event]:
        findings: list[Event] = []
        by_agent: dict[str, list[Event]] = defaultdict(list)
        for e in new_events:
            by_agent[e.agent_id].append(e)
        lock(self.conn, [f"chain:{a}" for a in by_agent])
        for agent_id, evs in sorted(by_agent.items()):
            chained = [e for e in evs if e.seq is not None]
            self._record_gaps(agent_id, [e for e in chained if e.type == "agent.gap"])
            if chained:
                self._touch(agent_id, min(e.seq for e in chained))
                findings += self._links(agent_id, evs[0].host, sorted({e.seq for e in chained}))
        return findings

    def _links(self, agent_id: str, host: str, seqs: list[int]) -> list[Event]:
        """Check the new events' links to their stored neighbours (and seqs claimed twice)."""
        rows = self.conn.execute(
            select(events.c.agent_seq, events.c.id, events.c.chain_hash, events.c.prev_hash)
            # (an agent's seq may be the last a column holds: one past it is not a bound SQL takes)
            .where(events.c.agent_id == agent_id, events.c.agent_seq.between(seqs[0] - 1, min(seqs[-1] + 1, SEQ_MAX)))
            .order_by(events.c.agent_seq, events.c.seq)
        ).all()
        by_seq: dict[int, list] = defaultdict(list)
        for row in rows:
            by_seq[row.agent_seq].append(row)
        findings = []
        for s in seqs:
            if len(by_seq[s]) > 1:
                ids = [r.id for r in by_seq[s]]
                text = f"two events claim seq {s} of the agent's chain ({', '.join(ids)}): one of them was forged or rewritten"
                findings += self._incident(agent_id, host, "seq_reused", s, text, {"seq": s, "event_ids": ids})
        for before, after in sorted({(s - 1, s) for s in seqs} | {(s, s + 1) for s in seqs}):
            if by_seq.get(before) and by_seq.get(after) and len(by_seq[before]) == len(by_seq[after]) == 1:
                expected, got = by_seq[before][0].chain_hash, by_seq[after][0].prev_hash
                if got != expected:
                    text = (
                        f"the agent's event chain is broken at seq {after}: it names {got} as the digest of seq {before},"
                        f" which is {expected}; an event was rewritten or replaced"
                    )
                    details = {"seq": after, "expected": expected, "got": got, "event_id": by_seq[after][0].id}
                    findings += self._incident(agent_id, host, "chain_break", after, text, details)
        return findings

    def _record_gaps(self, agent_id: str, gaps: list[Event]) -> None:
        rows = []
        for e in gaps:
            details = e.details or {}
            low, high = details.get("seq_from"), details.get("seq_to", details.get("seq_from"))
            if isinstance(low, int) and isinstance(high, int) and 0 < low <= high <= SEQ_MAX:  # else no seq it names
                rows.append({"agent_id": agent_id, "event_id": e.id, "seq_from": low, "seq_to": high})
        for row in rows:
            self.conn.execute(insert_ignore(self.conn, chain_gaps, ["agent_id", "event_id"]).values(**row))

    def _touch(self, agent_id: str, low_seq: int | None) -> dict:
        """The agent's chain row, created when missing; low_seq lowered to what arrived."""
        self.conn.execute(
            insert_ignore(self.conn, agent_chains, ["agent_id"]).values(agent_id=agent_id, low_seq=low_seq, updated_at=self.now)
        )
        row = self.conn.execute(select(agent_chains).where(agent_chains.c.agent_id == agent_id)).mappings().one()
        if low_seq is not None and (row["low_seq"] is None or low_seq < row["low_seq"]):
            self.conn.execute(update(agent_chains).where(agent_chains.c.agent_id == agent_id).values(low_seq=low_seq, updated_at=self.now))
            row = {**row, "low_seq": low_seq}
        return dict(row)

    # --- on heartbeat -------------------------------------------------------------------------

    def heartbeat(self, agent_id: str, host: str, chain: dict | None, agent_time: str | None) -> list[Event]:
        lock(self.conn, [f"chain:{agent_id}"])
        findings = []
        if agent_time:
            try:
                skew_s = (parse_ts(agent_time) - self.now).total_seconds()
            except (ValueError, OverflowError):
                skew_s = 0.0
            if abs(skew_s) > self.clock_skew_s:
                findings += self._skew(agent_id, host, skew_s, agent_time, "heartbeat")
        if chain:
            findings += self._judge_gaps(agent_id, host, chain)
        return findings

    def _judge_gaps(self, agent_id: str, host: str, chain: dict) -> list[Event]:
        seq, unsent_from = chain.get("seq"), chain.get("unsent_from")
        if not isinstance(seq, int) or (unsent_from is not None and not isinstance(unsent_from, int)):
            return []
        horizon = min(seq, unsent_from - 1) if unsent_from is not None else seq
        state = self._touch(agent_id, None)
        if state["low_seq"] is None:  # nothing of this chain arrived here yet: judge from now on
            start = horizon
        else:
            start = max(state["judged_through"] or 0, state["low_seq"] - 1)
        findings = []
        if horizon > start:
            for low, high in self._missing(agent_id, start + 1, horizon):
                text = (
                    f"events {low}..{high} of the agent's event chain never arrived and the agent did not explain them"
                    f" (expected seq {low} after {low - 1}); they were deleted before they were sent"
                )
                details = {"seq_from": low, "seq_to": high, "expected": low, "got": high + 1 if high < horizon else None}
                findings += self._incident(agent_id, host, "chain_gap", low, text, details)
        if horizon > (state["judged_through"] or 0):
            self.conn.execute(
                update(agent_chains).where(agent_chains.c.agent_id == agent_id).values(judged_through=horizon, updated_at=self.now)
            )
        return findings

    def _missing(self, agent_id: str, low: int, high: int) -> list[tuple[int, int]]:
        """Ranges of seqs in [low, high] neither stored nor explained by an agent.gap."""
        present = set(
            self.conn.execute(
                select(events.c.agent_seq).where(events.c.agent_id == agent_id, events.c.agent_seq.between(low, high))
            ).scalars()
        )
        explained = self.conn.execute(
            select(chain_gaps.c.seq_from, chain_gaps.c.seq_to).where(
                and_(chain_gaps.c.agent_id == agent_id, chain_gaps.c.seq_to >= low, chain_gaps.c.seq_from <= high)
            )
        ).all()
        holes, before = [], low - 1
        for s in [*sorted(present), high + 1]:
            if s > before + 1:
                holes.append((before + 1, s - 1))
            before = s
        return [part for hole in holes for part in _subtract(hole, sorted(explained))]

    # --- findings -----------------------------------------------------------------------------

    def _skew(self, agent_id: str, host: str, skew_s: float, agent_time: str, source: str) -> list[Event]:
        self._touch(agent_id, None)
        reported = self.conn.execute(
            update(agent_chains)
            .where(agent_chains.c.agent_id == agent_id, agent_chains.c.skew_reported_at.is_(None))
            .values(skew_reported_at=self.now)
        ).rowcount
        if not reported:
            return []
        way = "ahead of" if skew_s > 0 else "behind"
        text = f"the agent's clock is {abs(skew_s):.0f} s {way} the collector's (more than {self.clock_skew_s:g} s, seen in a {source})"
        details = {"skew_s": round(skew_s, 3), "agent_time": agent_time, "server_time": iso(self.now), "source": source, "threshold_s": self.clock_skew_s}
        return [self._event("agent.clock_skew", agent_id, host, text, details)]

    def _incident(self, agent_id: str, host: str, kind: str, seq: int, text: str, details: dict) -> list[Event]:
        event = self._event("agent.tamper", agent_id, host, text, {"kind": kind, **details})
        stmt = insert_ignore(self.conn, chain_incidents, ["agent_id", "kind", "seq"]).returning(chain_incidents.c.seq)
        new = self.conn.execute(stmt.values(agent_id=agent_id, kind=kind, seq=seq, event_id=event.id, raised_at=self.now)).first()
        return [event] if new else []

    def _event(self, type_: str, agent_id: str, host: str, text: str, details: dict) -> Event:
        return Event(type=type_, ts=iso(self.now), agent_id=agent_id, host=host, error=text, details={**details, "detected_by": "collector"})


def _subtract(hole: tuple[int, int], explained: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of the hole [low, high] no explained range covers (explained sorted by start)."""
    low, high = hole
    parts = []
    for a, b in explained:
        if b < low or a > high:
            continue
        if a > low:
            parts.append((low, a - 1))
        low = max(low, b + 1)
        if low > high:
            return parts
    return parts + [(low, high)]
