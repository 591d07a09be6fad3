"""Daily seals: proof that no event an agent sent was removed or changed after the day was over.

Once a day (server/app.py runs `SealSchedule`; `miwei-server seal` on demand) the collector seals
the previous day, a calendar day on the firm's clock: for every agent, the chained events it
received that day (events.received_at) in seq order. A seal holds the first and last seq, how
many, the chain head (the last event's chain digest, server/chain.py), the Merkle root of the
day's chain digests (server/merkle.py), the digest of the agent's previous seal (the seals form
a chain of their own, so a deleted seal shows) and the key's fingerprint; its canonical JSON is
signed with the collector's Ed25519 key (server/signing.py). The day's digests are kept with the
seal, so an event that is still stored, an alert's evidence, can be proven part of the sealed
day after retention purged the rest (server/retention.py never deletes seals).

A day is sealed once: its `seal_days` row is written in the transaction that seals it, with a
lock, so the task, the command and a second collector never seal it twice. A day is sealed only
GRACE_S after it ended, so that batches in flight at midnight are in.

What a seal does not prove: that the agent sent everything (server/chain.py judges gaps), nor
anything against whoever holds the collector's private key and database together (they could
re-seal); handing the seals' digests or the public key to a third party each day narrows that.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from loguru import logger
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from rules.events import chain_digest
from server import merkle, signing, tsa
from server.database import insert_ignore, lock, writing
from server.firmtime import utc
from server.periodic import Periodic
from server.schema import events, seal_days, seals
from server.times import iso

SEAL_FORMAT = "miwei-seal/1"
GRACE_S = 600.0  # a day is sealed this long after it ended
SEQ_MARGIN = 1000  # received_at follows events.seq but for batches committed out of order
CATCH_UP_DAYS = 7  # the daily task also seals days it missed while the collector was down


class SealError(Exception):
    """A day that cannot be sealed (not over yet)."""


@dataclass(frozen=True)
class SealRun:
    day: str
    sealed: bool  # False: it was sealed before
    agents: int


@dataclass(frozen=True)
class SealCheck:
    agent_id: str
    day: str
    ok: bool
    problems: tuple[str, ...]
    events_kept: int  # of the sealed events, how many are stored now
    events_sealed: int


def canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The day's start and end (exclusive) in UTC, on the firm's clock."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    return utc(start), utc(datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone))


def leaves_of(row) -> list[bytes]:
    raw = base64.b64decode(row["leaves"])
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]


# --- sealing ------------------------------------------------------------------------------------


def seal_day(engine: Engine, key: signing.SigningKey, day: date, zone: ZoneInfo, now: datetime) -> SealRun:
    """Seal `day` for every agent that sent chained events; nothing when it was sealed already."""
    start, end = day_bounds(day, zone)
    if now < end + timedelta(seconds=GRACE_S):
        raise SealError(f"{day.isoformat()} is not over yet on the firm's clock ({zone.key}); it can be sealed from {iso(end + timedelta(seconds=GRACE_S))}")
    name = day.isoformat()
    with writing(engine) as conn:
        lock(conn, [f"seal:{name}"])
        stmt = insert_ignore(conn, seal_days, ["day"]).returning(seal_days.c.day)
        if conn.execute(stmt.values(day=name, sealed_at=now, agents=0)).first() is None:
            return SealRun(name, False, 0)
        by_agent: dict[str, list] = defaultdict(list)
        for row in _day_events(conn, start, end):
            by_agent[row.agent_id].append(row)
        lock(conn, [f"seals:{a}" for a in by_agent])
        for agent_id, rows in sorted(by_agent.items()):
            _seal_agent(conn, key, agent_id, name, zone, start, end, rows, now)
        conn.execute(update(seal_days).where(seal_days.c.day == name).values(agents=len(by_agent)))
    logger.info("day sealed day={} zone={} agents={} events={}", name, zone.key, len(by_agent), sum(map(len, by_agent.values())))
    return SealRun(name, True, len(by_agent))


def _seal_agent(conn: Connection, key: signing.SigningKey, agent_id: str, day: str, zone: ZoneInfo, start, end, rows, now) -> None:
    leaves = [bytes.fromhex(r.chain_hash) for r in rows]
    body = {
        "format": SEAL_FORMAT,
        "agent_id": agent_id,
        "day": day,
        "zone": zone.key,
        "from": iso(start),
        "to": iso(end),
        "first_seq": rows[0].agent_seq,
        "last_seq": rows[-1].agent_seq,
        "count": len(rows),
        "chain_head": rows[-1].chain_hash,
        "merkle_root": merkle.root(leaves).hex(),
        "prev_seal": _previous_digest(conn, agent_id),
        "sealed_at": iso(now),
        "key_fingerprint": key.fingerprint,
    }
    data = canonical(body)
    conn.execute(
        insert(seals).values(
            agent_id=agent_id, day=day, first_seq=body["first_seq"], last_seq=body["last_seq"], count=body["count"],
            chain_head=body["chain_head"], merkle_root=body["merkle_root"], prev_seal=body["prev_seal"],
            body=data.decode("utf-8"), signature=key.sign(data), key_fingerprint=key.fingerprint,
            leaves=base64.b64encode(b"".join(leaves)).decode("ascii"), sealed_at=now,
        )
    )


def _previous_digest(conn: Connection, agent_id: str, before_id: int | None = None) -> str | None:
    query = select(seals.c.body).where(seals.c.agent_id == agent_id)
    if before_id is not None:
        query = query.where(seals.c.id < before_id)
    body = conn.execute(query.order_by(seals.c.id.desc()).limit(1)).scalar()
    return None if body is None else hashlib.sha256(body.encode("utf-8")).hexdigest()


def _day_events(conn: Connection, start: datetime, end: datetime, with_body: bool = False, agent_id: str | None = None) -> list:
    """The chained events received in [start, end), by agent and seq. events.received_at has no
    index (each index costs every ingest); it rises with events.seq, the primary key, so the seq
    window is found by bisection and the rows read by primary key."""
    low, high = _first_seq_at(conn, start), _first_seq_at(conn, end)
    if low is None:
        return []
    columns = [events.c.agent_id, events.c.agent_seq, events.c.seq, events.c.chain_hash, events.c.id] + ([events.c.body] if with_body else [])
    query = select(*columns).where(
        events.c.seq >= low - SEQ_MARGIN,
        events.c.agent_seq.is_not(None),
        events.c.received_at >= start,
        events.c.received_at < end,
    )
    if high is not None:
        query = query.where(events.c.seq < high + SEQ_MARGIN)
    if agent_id is not None:
        query = query.where(events.c.agent_id == agent_id)
    return conn.execute(query.order_by(events.c.agent_id, events.c.agent_seq, events.c.seq)).all()


def _first_seq_at(conn: Connection, moment: datetime) -> int | None:
    """The lowest events.seq received at or after `moment` (None: none was)."""
    lo, hi = conn.execute(select(func.min(events.c.seq), func.max(events.c.seq))).one()
    if lo is None:
        return None
    hi += 1
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute(select(events.c.seq, events.c.received_at).where(events.c.seq >= mid).order_by(events.c.seq).limit(1)).first()
        if row is None or utc(row.received_at) >= moment:
            hi = mid
        else:
            lo = row.seq + 1
    return lo if conn.execute(select(events.c.seq).where(events.c.seq >= lo).limit(1)).first() else None


def seal_pending(engine: Engine, key: signing.SigningKey, zone: ZoneInfo, now: datetime, tsa_url: str | None = None) -> list[SealRun]:
    """Seal yesterday, and the days since the last sealed day (at most CATCH_UP_DAYS back) that
    the collector missed while it was down; on a first run, yesterday alone."""
    today = (now - timedelta(seconds=GRACE_S)).astimezone(zone).date()
    with engine.connect() as conn:
        last = conn.execute(select(func.max(seal_days.c.day))).scalar()
    first = today - timedelta(days=1) if last is None else max(date.fromisoformat(last) + timedelta(days=1), today - timedelta(days=CATCH_UP_DAYS))
    days = [first + timedelta(days=n) for n in range((today - first).days)]
    runs = [seal_day(engine, key, d, zone, now) for d in days]
    if tsa_url:
        stamp_missing(engine, tsa_url)
    return runs


def stamp_missing(engine: Engine, url: str, limit: int = 500) -> int:
    """Ask the timestamp authority for a token for each seal that has none (server/tsa.py), outside
    any transaction; returns how many were stamped. A seal's token is written once."""
    with engine.connect() as conn:
        rows = conn.execute(select(seals.c.id, seals.c.body).where(seals.c.tsa_token.is_(None)).order_by(seals.c.id).limit(limit)).all()
    done = 0
    for row in rows:
        try:
            token = tsa.stamp(url, hashlib.sha256(row.body.encode("utf-8")).digest()).token
        except tsa.TsaError as exc:
            logger.warning("seal not timestamped seal={} error={!r} (asked again next round)", row.id, str(exc))
            break
        with writing(engine) as conn:
            conn.execute(update(seals).where(seals.c.id == row.id, seals.c.tsa_token.is_(None)).values(tsa_token=base64.b64encode(token).decode("ascii")))
        done += 1
    if done:
        logger.info("seals timestamped count={} tsa={!r}", done, url)
    return done


# --- checking against the database --------------------------------------------------------------


def check_seal(conn: Connection, row, public, now: datetime, retention_days: int) -> SealCheck:
    """Is the seal as signed, its chain link right, and every sealed event still stored unchanged
    (or purged by retention)? `row` is a seals row (mapping)."""
    problems: list[str] = []
    body = json.loads(row["body"])
    if not signing.verify(public, row["body"].encode("utf-8"), row["signature"]):
        problems.append("the seal's signature does not verify: the seal was changed or signed by another key")
    leaves = leaves_of(row)
    if merkle.root(leaves).hex() != body.get("merkle_root") or len(leaves) != body.get("count"):
        problems.append("the day's event digests kept with the seal do not give its Merkle root: they were changed")
    for column in ("first_seq", "last_seq", "count", "chain_head", "merkle_root", "prev_seal", "agent_id", "day"):
        if row[column] != body.get(column):
            problems.append(f"the seal's {column} column differs from the signed seal")
    if _previous_digest(conn, row["agent_id"], row["id"]) != body.get("prev_seal"):
        problems.append("the seal before this one is not the one it names: a seal was removed or replaced")
    start, end = utc(body["from"]), utc(body["to"])
    stored = _day_events(conn, start, end, with_body=True, agent_id=row["agent_id"])
    sealed = {leaf.hex(): i for i, leaf in enumerate(leaves)}
    kept = 0
    for r in stored:
        if chain_digest(json.loads(r.body)) != r.chain_hash:
            problems.append(f"event {r.id} (seq {r.agent_seq}) was changed after sealing: its digest is not the one stored")
        elif r.chain_hash not in sealed:
            problems.append(f"event {r.id} (seq {r.agent_seq}) is not in the seal: it was added or changed after sealing")
        else:
            kept += 1
    gone = sorted(set(sealed.values()) - {sealed[r.chain_hash] for r in stored if r.chain_hash in sealed})
    purged = start < now - timedelta(days=retention_days)
    if gone and not purged:
        problems.append(
            f"{len(gone)} sealed event(s) are gone (positions {', '.join(str(i + 1) for i in gone[:20])} of {len(leaves)})"
            " though the day is within retention: removed after sealing"
        )
    return SealCheck(row["agent_id"], row["day"], not problems, tuple(problems), kept, len(leaves))


def check_day(engine: Engine, public, day: str, now: datetime, retention_days: int) -> list[SealCheck]:
    with engine.connect() as conn:
        rows = conn.execute(select(seals).where(seals.c.day == day).order_by(seals.c.agent_id)).mappings().all()
        return [check_seal(conn, r, public, now, retention_days) for r in rows]


# --- in an evidence pack ------------------------------------------------------------------------


def for_events(conn: Connection, event_ids: list[str], zone: ZoneInfo) -> tuple[dict[str, dict], list[dict]]:
    """The seals covering these events (by file name: {"body": bytes, "signature": str}) and, per
    event, its Merkle proof or why it has none (not chained, day not sealed yet)."""
    rows = conn.execute(
        select(events.c.id, events.c.agent_id, events.c.agent_seq, events.c.chain_hash, events.c.received_at).where(events.c.id.in_(event_ids))
    ).all()
    found: dict[str, dict] = {}
    cache: dict[tuple[str, str], object] = {}
    proofs = []
    for r in sorted(rows, key=lambda r: r.id):
        entry = {"event": f"events/{r.id}.json", "event_id": r.id}
        if r.agent_seq is None:
            proofs.append({**entry, "sealed": False, "why": "not part of an agent's chain (made by the collector)"})
            continue
        local_day = utc(r.received_at).astimezone(zone).date()
        hit = None
        for day in (local_day, local_day - timedelta(days=1), local_day + timedelta(days=1)):
            k = (r.agent_id, day.isoformat())
            if k not in cache:
                cache[k] = conn.execute(select(seals).where(seals.c.agent_id == k[0], seals.c.day == k[1])).mappings().first()
            seal = cache[k]
            if seal is not None:
                leaves = leaves_of(seal)
                digest = bytes.fromhex(r.chain_hash)
                if digest in leaves:
                    hit = (seal, leaves, leaves.index(digest))
                    break
        if hit is None:
            proofs.append({**entry, "sealed": False, "why": f"the day {local_day.isoformat()} is not sealed yet"})
            continue
        seal, leaves, index = hit
        name = f"seals/{seal['agent_id']}_{seal['day']}"
        found[name] = {"body": seal["body"].encode("utf-8"), "signature": seal["signature"], "tsa_token": seal["tsa_token"]}
        path = [p.hex() for p in merkle.proof(leaves, index)]
        proofs.append({**entry, "sealed": True, "seal": name + ".json", "index": index, "size": len(leaves), "path": path})
    return found, proofs


# --- the daily task -----------------------------------------------------------------------------


class SealSchedule(Periodic):
    """Calls `seal` every `every_s` (hourly: a day not sealed yet is sealed soon after it ends),
    on its own thread until stopped; sealing a sealed day does nothing."""

    def __init__(self, seal: Callable[[], object], first_delay_s: float = 60.0, every_s: float = 3600.0):
        super().__init__("sealing", seal, first_delay_s, every_s)
