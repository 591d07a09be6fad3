"""The oracle every fault case ends with: every event the agent made is stored exactly once.

The agent's own record of what it made is its chain head (the last `seq` it gave out, kept in
the state table of spool.db) and the seqs it announced lost (agent.gap events, which the
collector keeps in chain_gaps). The collector's record is its events table. Once the agent has
delivered everything (spool empty, a heartbeat sent after that), they must agree:

- every seq 1..head is stored, or lies in a range an agent.gap announced;
- no seq is stored twice, no event id is stored twice, and nothing above the head is stored;
- the collector found no tampering (no chain_incidents: no unexplained gap, no seq claimed by two
  events, no broken link), so no agent-tamper alert was raised by the chain check.

Both databases are read directly (SQLite files), so it works whatever the collector's API pages.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness import wait_for


@dataclass(frozen=True)
class Ledger:
    """What the agent says it made and what the collector stored, for one agent."""

    agent_id: str
    head: int  # the last seq the agent gave out
    spooled: int  # events still waiting in the agent's spool
    stored: Counter  # seq -> how many events the collector stored with it
    duplicate_ids: tuple[str, ...]
    announced: tuple[tuple[int, int], ...]  # seq ranges agent.gap events explained
    incidents: tuple[tuple[str, int], ...]  # (kind, seq) the collector's chain check found

    def explained(self, seq: int) -> bool:
        return any(low <= seq <= high for low, high in self.announced)

    def missing(self) -> list[int]:
        return [s for s in range(1, self.head + 1) if s not in self.stored and not self.explained(s)]

    def duplicated(self) -> list[int]:
        return sorted(s for s, n in self.stored.items() if n > 1)

    def beyond_head(self) -> list[int]:
        return sorted(s for s in self.stored if s > self.head)

    def lost(self) -> int:
        """Seqs announced lost and not stored (delivered seqs inside an announced range are stored)."""
        return sum(1 for s in range(1, self.head + 1) if s not in self.stored and self.explained(s))

    def problems(self) -> list[str]:
        found = []
        if missing := self.missing():
            found.append(f"{len(missing)} seqs neither stored nor announced lost: {_ranges(missing)}")
        if duplicated := self.duplicated():
            found.append(f"{len(duplicated)} seqs stored more than once: {_ranges(duplicated)}")
        if self.duplicate_ids:
            found.append(f"event ids stored more than once: {list(self.duplicate_ids)[:20]}")
        if beyond := self.beyond_head():
            found.append(f"seqs stored above the agent's head {self.head}: {_ranges(beyond)}")
        if self.incidents:
            found.append(f"the collector's chain check found tampering (kind, seq): {list(self.incidents)[:20]}")
        return found

    def summary(self) -> str:
        return (
            f"agent {self.agent_id}: head {self.head}, {len(self.stored)} seqs stored, {self.spooled} still spooled,"
            f" announced lost {list(self.announced)} ({self.lost()} not stored)"
        )


def read_ledger(state_dir: Path, db_path: Path) -> Ledger:
    agent_id = (state_dir / "agent_id").read_text(encoding="ascii").strip()
    with closing(sqlite3.connect(state_dir / "spool.db", timeout=10)) as spool:
        row = spool.execute("SELECT value FROM state WHERE key = 'chain_seq'").fetchone()
        spooled = spool.execute("SELECT count(*) FROM spool").fetchone()[0]
    head = int(row[0]) if row else 0
    with closing(sqlite3.connect(db_path, timeout=10)) as db:
        seqs = [s for (s,) in db.execute("SELECT agent_seq FROM events WHERE agent_id = ? AND agent_seq IS NOT NULL", (agent_id,))]
        duplicate_ids = tuple(i for (i,) in db.execute("SELECT id FROM events GROUP BY id HAVING count(*) > 1"))
        announced = tuple(
            sorted(db.execute("SELECT seq_from, seq_to FROM chain_gaps WHERE agent_id = ?", (agent_id,)).fetchall())
        )
        incidents = tuple(db.execute("SELECT kind, seq FROM chain_incidents WHERE agent_id = ? ORDER BY seq", (agent_id,)))
    return Ledger(agent_id, head, spooled, Counter(seqs), duplicate_ids, announced, incidents)


def _last_seen(db_path: Path, agent_id: str) -> str | None:
    with closing(sqlite3.connect(db_path, timeout=10)) as db:
        row = db.execute("SELECT last_seen FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
    return str(row[0]) if row else None


def assert_stored_exactly_once(d, timeout_s: float = 120.0) -> Ledger:
    """Wait until the agent of deployment `d` has delivered everything and the collector has
    judged its chain, then check the ledger; fails naming the seqs missing or duplicated."""

    def settled():
        ledger = read_ledger(d.state_dir, d.db_path)
        return ledger if ledger.spooled == 0 and ledger.head > 0 and not ledger.missing() else None

    try:
        ledger = wait_for(settled, timeout_s, 0.25, "the agent's spool to drain and every seq to be stored")
    except AssertionError as exc:
        ledger = read_ledger(d.state_dir, d.db_path)
        raise AssertionError(f"{exc}\n{ledger.summary()}\n" + "\n".join(ledger.problems())) from None
    # heartbeats carry chain.unsent_from: the collector judges gaps only up to what the agent
    # says it delivered, so wait for two heartbeats after the drain (the first may have left before it)
    for _ in range(2):
        before = _last_seen(d.db_path, ledger.agent_id)
        wait_for(lambda b=before: _last_seen(d.db_path, ledger.agent_id) != b, 30, 0.1, "a heartbeat after the drain")
    ledger = read_ledger(d.state_dir, d.db_path)
    problems = ledger.problems()
    assert not problems, f"{ledger.summary()}\n" + "\n".join(problems)
    return ledger


def _ranges(seqs: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7' (the first 20 ranges)."""
    parts, start, prev = [], None, None
    for s in sorted(seqs):
        if start is None:
            start = prev = s
        elif s == prev + 1:
            prev = s
        else:
            parts.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = s
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else str(start))
    more = f" (+{len(parts) - 20} more ranges)" if len(parts) > 20 else ""
    return ", ".join(parts[:20]) + more
