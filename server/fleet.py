"""Who may report: enrolment decisions, approval, retirement, blocked host names and group keys.

An agent's host name is the one it enrolled with; events and heartbeats that name another host
are stored under the enrolled one with the other kept as `claimed_host` (server/store.py), and
raise agent-tamper. So the enrolled name must be trustworthy:

- A second live (active) agent enrolling with the host name of an existing one, or a host name an
  admin blocked, is `pending`: it gets a token that authenticates nothing (403 on every agent
  route, so its events stay in its spool) until an admin approves it. With
  `server.duplicate_host: refuse` a duplicate is refused (409) instead. Fail-closed: nothing a
  pending agent sends is stored.
- An admin retires an agent (`miwei-server revoke-agent`, the console): its token is refused
  (401), its events and alerts stay, its open silences end and it is never reported offline
  again; optionally its host name is blocked, so whoever enrols with it next waits for approval.
- An agent that never sent a heartbeat since enrolment has `last_seen` NULL and is not judged for
  silence (server/absence.py): enrolments alone cannot raise agent-offline alerts.
- Per-group enrolment keys (`mwe_` + 43 random characters) are kept as SHA-256 with an expiry, so
  one leaked key opens one group for a while, not the fleet for ever. The shared
  `server.enroll_secret` keeps working unless `server.enroll_shared_secret: false`.

Every decision of an admin is in the audit log, in the transaction of the change.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from server import audit as audit_log
from server.alerts import auto_resolve
from server.database import insert_ignore, lock, writing
from server.schema import agent_silences, agents, blocked_hosts, enroll_keys
from server.times import Clock, aware, iso

AGENT_STATES = ("active", "pending", "retired")
ENROLL_KEY_PREFIX = "mwe_"
COLLECTOR_AGENT_ID = "collector"  # the agent id of events the collector makes about no agent (an enrolment flood)


class DuplicateRefused(Exception):
    """server.duplicate_host is `refuse` and a live agent has this host name."""


@dataclass(frozen=True)
class Enrolment:
    agent_id: str
    state: str  # active | pending
    reason: str  # why pending: "" | duplicate_host | blocked_host


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    hostname: str  # the enrolled host name: what every event of this agent is stored under
    state: str  # active | pending | retired


@dataclass(frozen=True)
class KeyCheck:
    key_id: int | None  # the live key's id
    problem: str  # "" | expired | revoked | unknown


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def host_key(hostname: str) -> str:
    """Host names compare case-insensitively (Windows names are)."""
    return hostname.strip().casefold()


class Fleet:
    def __init__(self, engine: Engine, clock: Clock):
        self.engine, self.clock = engine, clock

    # --- enrolment ----------------------------------------------------------------------------

    def enroll(
        self, proposed_id: str, hostname: str, version: str, token: str, address: str,
        key_id: int | None = None, duplicate_host: str = "approve",
    ) -> Enrolment:  # fmt: skip
        """Register an agent, active or pending; DuplicateRefused when refused. The id it proposes
        is used unless taken (then a new one: knowing the secret must not take over an agent)."""
        now = self.clock()
        with writing(self.engine) as conn:
            lock(conn, [f"enrol-host:{host_key(hostname)}"])  # two racing enrolments of one name: one is second
            blocked = conn.execute(select(blocked_hosts.c.hostname).where(blocked_hosts.c.hostname == host_key(hostname))).first()
            live = conn.execute(
                select(func.count()).select_from(agents).where(func.lower(agents.c.hostname) == host_key(hostname), agents.c.state == "active")
            ).scalar()
            reason = "blocked_host" if blocked else "duplicate_host" if live else ""
            if reason == "duplicate_host" and duplicate_host == "refuse":
                raise DuplicateRefused(hostname)
            state = "pending" if reason else "active"
            values = dict(
                hostname=hostname, version=version, token_hash=_hash(token), last_seen=None, enrolled_at=now, state=state,
                enrolled_from=address[:64], enroll_key_id=key_id, approved_at=None if reason else now,
            )  # fmt: skip
            # ON CONFLICT, not select-then-insert: two enrolments racing for one id on PostgreSQL
            # must not end in an IntegrityError (a 500); the loser gets a fresh id
            stmt = insert_ignore(conn, agents, ["agent_id"]).returning(agents.c.agent_id)
            if conn.execute(stmt.values(agent_id=proposed_id, **values)).first():
                return Enrolment(proposed_id, state, reason)
            agent_id = str(uuid.uuid4())
            conn.execute(insert(agents).values(agent_id=agent_id, **values))
            return Enrolment(agent_id, state, reason)

    def identify(self, token: str) -> AgentIdentity | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(agents.c.agent_id, agents.c.hostname, agents.c.state).where(agents.c.token_hash == _hash(token))).first()
        return AgentIdentity(row.agent_id, row.hostname, row.state) if row else None

    # --- what admins decide -------------------------------------------------------------------

    def approve(self, agent_id: str, actor: str) -> bool:
        """A pending agent becomes active (its token works from now on)."""
        now = self.clock()
        with writing(self.engine) as conn:
            row = conn.execute(select(agents.c.hostname).where(agents.c.agent_id == agent_id, agents.c.state == "pending")).first()
            if row is None:
                return False
            conn.execute(update(agents).where(agents.c.agent_id == agent_id).values(state="active", approved_at=now))
            audit_log.record(conn, now, actor, "agent.approve", f"agent:{agent_id}", {"hostname": row.hostname})
            return True

    def retire(self, agent_id: str, actor: str, block_host: bool = False, note: str = "") -> str | None:
        """Refuse the agent's token from now on; keep its history; end its silences (their alerts
        resolve with a note). Returns its token's SHA-256 (hex) for the auth guard's cache, or
        None when there is no such agent that is not retired already."""
        now = self.clock()
        with writing(self.engine) as conn:
            row = conn.execute(
                select(agents.c.hostname, agents.c.token_hash, agents.c.state).where(agents.c.agent_id == agent_id, agents.c.state != "retired")
            ).first()
            if row is None:
                return None
            conn.execute(update(agents).where(agents.c.agent_id == agent_id).values(state="retired", retired_at=now))
            silences = conn.execute(
                select(agent_silences).where(agent_silences.c.agent_id == agent_id, agent_silences.c.ended_at.is_(None))
            ).mappings().all()
            for s in silences:
                conn.execute(
                    update(agent_silences)
                    .where(
                        agent_silences.c.rule_id == s["rule_id"], agent_silences.c.agent_id == agent_id,
                        agent_silences.c.silent_since == s["silent_since"],
                    )
                    .values(ended_at=now)
                )  # fmt: skip
                if s["alert_id"] is not None:
                    auto_resolve(conn, s["alert_id"], f"agent retired by {actor}", now)
            details = {"hostname": row.hostname, "was": row.state, "block_host": block_host}
            audit_log.record(conn, now, actor, "agent.retire", f"agent:{agent_id}", details)
            if block_host:
                self._block(conn, row.hostname, actor, note or f"retired agent {agent_id}", now)
            return row.token_hash

    def block_host(self, hostname: str, actor: str, note: str = "") -> bool:
        """From now on, an agent enrolling with this host name waits for approval. False if blocked already."""
        with writing(self.engine) as conn:
            return self._block(conn, hostname, actor, note, self.clock())

    def unblock_host(self, hostname: str, actor: str) -> bool:
        now = self.clock()
        with writing(self.engine) as conn:
            gone = conn.execute(blocked_hosts.delete().where(blocked_hosts.c.hostname == host_key(hostname))).rowcount
            if gone:
                audit_log.record(conn, now, actor, "host.unblock", f"host:{host_key(hostname)}", {})
            return bool(gone)

    @staticmethod
    def _block(conn, hostname: str, actor: str, note: str, now: datetime) -> bool:
        stmt = insert_ignore(conn, blocked_hosts, ["hostname"]).returning(blocked_hosts.c.hostname)
        new = conn.execute(stmt.values(hostname=host_key(hostname), blocked_at=now, blocked_by=actor[:255], note=note[:1000])).first()
        if new:
            audit_log.record(conn, now, actor, "host.block", f"host:{host_key(hostname)}", {"note": note[:200]})
        return new is not None

    def blocked(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(blocked_hosts).order_by(blocked_hosts.c.hostname)).mappings().all()
        return [{**r, "blocked_at": iso(aware(r["blocked_at"]))} for r in rows]

    def agents_named(self, name: str) -> list[str]:
        """Ids of agents (not retired) with this id or host name: what `revoke-agent NAME` acts on."""
        with self.engine.connect() as conn:
            query = select(agents.c.agent_id).where(agents.c.state != "retired")
            by_id = conn.execute(query.where(agents.c.agent_id == name)).scalars().all()
            return list(by_id) or list(conn.execute(query.where(func.lower(agents.c.hostname) == host_key(name))).scalars())

    # --- per-group enrolment keys -------------------------------------------------------------

    def create_key(self, name: str, expires_at: datetime, actor: str) -> tuple[int, str]:
        """A new enrolment key for a group of PCs: (id, key). Only its SHA-256 is kept."""
        key = ENROLL_KEY_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with writing(self.engine) as conn:
            key_id = conn.execute(
                insert(enroll_keys).values(name=name, key_hash=_hash(key), created_at=now, expires_at=expires_at, created_by=actor[:255])
            ).inserted_primary_key[0]
            audit_log.record(conn, now, actor, "enroll_key.create", f"enroll_key:{key_id}", {"name": name, "expires_at": iso(expires_at)})
        return key_id, key

    def revoke_keys(self, name: str, actor: str) -> int:
        now = self.clock()
        with writing(self.engine) as conn:
            ids = conn.execute(select(enroll_keys.c.id).where(enroll_keys.c.name == name, enroll_keys.c.revoked_at.is_(None))).scalars().all()
            for key_id in ids:
                conn.execute(update(enroll_keys).where(enroll_keys.c.id == key_id).values(revoked_at=now))
                audit_log.record(conn, now, actor, "enroll_key.revoke", f"enroll_key:{key_id}", {"name": name})
        return len(ids)

    def check_key(self, secret: str) -> KeyCheck:
        """Is `secret` a live group key? Looked up by its SHA-256 (one index probe)."""
        if not secret.startswith(ENROLL_KEY_PREFIX) or len(secret) > 256:
            return KeyCheck(None, "unknown")
        with self.engine.connect() as conn:
            row = conn.execute(select(enroll_keys).where(enroll_keys.c.key_hash == _hash(secret))).mappings().first()
        if row is None:
            return KeyCheck(None, "unknown")
        if row["revoked_at"] is not None:
            return KeyCheck(None, "revoked")
        if aware(row["expires_at"]) <= self.clock():
            return KeyCheck(None, "expired")
        return KeyCheck(row["id"], "")
