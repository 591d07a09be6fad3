"""Storage through SQLAlchemy Core: agents, tokens, users, events and alerts.

Ingest is one transaction per batch: events are inserted idempotently by id (ON CONFLICT DO
NOTHING; server.database.insert_new says which were new), and only the new ones are judged by the
active policy's event rules and fed to its correlation rules, in the same transaction, so a resent
batch stores nothing twice and raises nothing twice. The transaction is a `writing()` one: on
SQLite it holds the write lock throughout, so collectors sharing the file judge batches one at a
time. Each step costs a few statements per batch, not per event or per group (docs/benchmarks.md,
"Ingest: where the time goes").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Engine

from rules.engine import EventEngine
from rules.events import Event
from rules.grouppolicy import narrowed
from rules.policy import Policy
from server import audit as audit_log
from server.absence import Health, agent_back, agent_state, check_absence
from server.alerts import ALERT_STATUSES, TransitionRefused, change_status, event_alert, raise_event_alerts
from server.auth import ROLES
from server.chain import DEFAULT_CLOCK_SKEW_S, ChainJudge, chain_columns
from server.correlation import Correlator, ParsedFacts, prune_quiet_hits
from server.database import insert_ignore, insert_new, writing
from server.devices import DeviceRegister
from server.fleet import COLLECTOR_AGENT_ID, Fleet, host_key
from server.groups import GroupBook
from server.hostclaims import host_mismatches
from server.incidents import IncidentSettings, incident_fields
from server.models import StoredEvent
from server.policies import PolicyBook
from server.retention import DEFAULT_RETENTION_DAYS, purge_events
from server.schema import agents, alert_events, alert_history, alerts, api_tokens, events, users
from server.stall import DEFAULT_PIPELINE_STALL_S, judge_stall, progress_columns, progress_from
from server.times import Clock, aware, iso, utc_now
from server.watchlists import WatchlistLookup, WatchlistStore

UNATTRIBUTED = "unattributed"  # a caller that did not say who acts (pass actor=...)
__all__ = ["ALERT_STATUSES", "Clock", "IngestResult", "Page", "Store", "token_hash", "utc_now"]


def token_hash(token: str) -> str:
    """Tokens are long random strings: a plain SHA-256 is enough to keep them out of the database."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    alerts: int


@dataclass(frozen=True)
class Page:
    items: list[dict]
    next_cursor: str | None


class Store:
    def __init__(self, engine: Engine, clock: Clock = utc_now, clock_skew_s: float = DEFAULT_CLOCK_SKEW_S):
        self.engine = engine
        self.clock = clock
        self.clock_skew_s = clock_skew_s  # an agent clock further off than this is reported (once)
        self.policies = PolicyBook(engine, clock)
        self.watchlists = WatchlistStore(engine, clock)
        self.devices = DeviceRegister(engine, clock)
        self.fleet = Fleet(engine, clock)  # enrolment, approval, retirement, group keys
        # agent groups: register locations, places, rule files and settings per agent (server/groups.py)
        self.groups = GroupBook(engine, clock, lambda: [name for name, _ in self.policies.active().sources])
        self._parsed_facts = ParsedFacts()  # correlation hits' facts, parsed once per process
        self.incidents = IncidentSettings()  # session window and escalation of egress incidents (server config)

    # --- agents -----------------------------------------------------------------------------

    def enroll_agent(self, proposed_id: str, hostname: str, version: str, token: str) -> str:
        """Register an agent under the id it proposes, or under a new one if that id is taken.

        The enrolment secret is shared by every PC, so knowing it must not let anyone take over an
        existing agent: an agent that lost its token comes back under a new id (and the old id
        goes silent, which the console shows).
        """
        now = self.clock()
        values = dict(hostname=hostname, version=version, token_hash=token_hash(token), last_seen=now, enrolled_at=now)
        with writing(self.engine) as conn:
            # ON CONFLICT, not select-then-insert: two enrolments racing for one id on PostgreSQL
            # must not end in an IntegrityError (a 500); the loser gets a fresh id
            stmt = insert_ignore(conn, agents, ["agent_id"]).returning(agents.c.agent_id)
            if conn.execute(stmt.values(agent_id=proposed_id, **values)).first():
                return proposed_id
            agent_id = str(uuid.uuid4())
            conn.execute(insert(agents).values(agent_id=agent_id, **values))
        return agent_id

    def agent_for_token(self, token: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(agents.c.agent_id).where(agents.c.token_hash == token_hash(token), agents.c.state == "active")).scalar()

    def heartbeat(
        self, agent_id: str, hostname: str, version: str, policy_version: str | None, spool_depth: int, status: dict,
        chain: dict | None = None, agent_time: str | None = None, pipeline: dict | None = None,
        pipeline_stall_s: float = DEFAULT_PIPELINE_STALL_S,
    ) -> int:
        """Record a heartbeat; judge the agent's chain up to what it says it delivered, its clock,
        and its pipeline's progress (server/stall.py). Returns how many alerts that raised."""
        now = self.clock()
        progress = progress_from(pipeline, agent_time, now)
        with writing(self.engine) as conn:
            # the enrolled host name stays: a heartbeat naming another is tamper evidence, not a rename
            enrolled = conn.execute(select(agents.c.hostname).where(agents.c.agent_id == agent_id)).scalar()
            conn.execute(
                update(agents)
                .where(agents.c.agent_id == agent_id)
                .values(
                    version=version,
                    policy_version=policy_version,
                    spool_depth=spool_depth,
                    last_seen=now,
                    status=json.dumps(status, ensure_ascii=False),
                    **progress_columns(progress),
                )
            )
            agent_back(conn, agent_id, now)  # its silences end, their alerts resolve with a note
            host = enrolled if enrolled is not None else hostname
            findings = host_mismatches(conn, agent_id, host, {hostname: []} if _differs(hostname, host) else {}, now, "heartbeat")
            findings += ChainJudge(conn, now, self.clock_skew_s).heartbeat(agent_id, host, chain, agent_time)
            findings += judge_stall(conn, agent_id, host, progress, pipeline_stall_s, now)
            return self._store_findings(conn, findings, now)

    def _store_findings(self, conn, findings: list[Event], now: datetime) -> int:
        """Events the collector made (tamper, clock skew): stored and judged like the agents' own."""
        if not findings:
            return 0
        rows = [_event_row(e, json.dumps(e.to_dict(), ensure_ascii=False, separators=(",", ":")), now) for e in findings]
        conn.execute(insert(events), rows)
        return self._judge(conn, findings, now)

    def report_enrolment_burst(self, address: str, scope: str, hostname: str) -> int:
        """One agent.tamper event (kind enroll_flood) for a burst of enrolments over the limit
        (server/enrolgate.py decides when a burst starts); returns the alerts it raised."""
        now = self.clock()
        text = f"enrolments over the {scope} limit from {address}: refused until the rate drops (an enrolment flood or a mass rollout)"
        details = {"kind": "enroll_flood", "address": address, "scope": scope, "hostname": hostname, "detected_by": "collector"}
        event = Event(type="agent.tamper", ts=iso(now), agent_id=COLLECTOR_AGENT_ID, host="", error=text, details=details)
        with writing(self.engine) as conn:
            return self._store_findings(conn, [event], now)

    def list_agents(self, offline_after_s: float) -> list[dict]:
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(select(agents).order_by(agents.c.hostname, agents.c.agent_id)).mappings().all()
        result = []
        for r in rows:
            last_seen = aware(r["last_seen"])
            state = agent_state(last_seen, aware(r["stopped_at"]), now, offline_after_s) if r["state"] == "active" else r["state"]
            result.append(
                {
                    "agent_id": r["agent_id"],
                    "hostname": r["hostname"],
                    "last_seen": iso(last_seen),
                    "online": bool(r["state"] == "active" and last_seen and now - last_seen <= timedelta(seconds=offline_after_s)),
                    "state": state,  # online | offline | stopped (a clean stop, not back since) | pending | retired
                    "stopped_at": iso(aware(r["stopped_at"])),
                    "version": r["version"],
                    "policy_version": r["policy_version"],
                    "spool_depth": r["spool_depth"],
                    "pipeline_stepped_at": iso(aware(r["pipeline_stepped_at"])),  # the last heartbeat's, on our clock
                    "pipeline_queued": r["pipeline_queued"],
                    "enrolled_at": iso(aware(r["enrolled_at"])),
                    "enrolled_from": r["enrolled_from"],
                    "enroll_key_id": r["enroll_key_id"],  # None: the shared secret
                    "approved_at": iso(aware(r["approved_at"])),
                    "retired_at": iso(aware(r["retired_at"])),
                    "claimed_host": r["claimed_host"],  # the last other host name it sent (agent-tamper)
                }
            )
        return result

    # --- API tokens and users -----------------------------------------------------------------

    def create_api_token(self, name: str, token: str, actor: str = UNATTRIBUTED, role: str = "admin") -> int:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        now = self.clock()
        with writing(self.engine) as conn:
            token_id = conn.execute(
                insert(api_tokens).values(name=name, token_hash=token_hash(token), created_at=now, role=role)
            ).inserted_primary_key[0]
            audit_log.record(conn, now, actor, "token.create", f"token:{token_id}", {"name": name, "role": role})
            return token_id

    def revoke_api_token(self, token_id: int, actor: str = UNATTRIBUTED) -> bool:
        """Revoke a live token; False when there is no such live token."""
        now = self.clock()
        with writing(self.engine) as conn:
            name = conn.execute(select(api_tokens.c.name).where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))).scalar()
            if name is None:
                return False
            conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=now))
            audit_log.record(conn, now, actor, "token.revoke", f"token:{token_id}", {"name": name})
            return True

    def api_token(self, token: str) -> tuple[str, str] | None:
        """(name, role) of a live API token, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_tokens.c.name, api_tokens.c.role).where(
                    and_(api_tokens.c.token_hash == token_hash(token), api_tokens.c.revoked_at.is_(None))
                )
            ).first()
        return (row.name, row.role) if row else None

    def revoke_api_tokens_named(self, name: str, actor: str = UNATTRIBUTED) -> int:
        """Revoke every live token of this name (`miwei-server revoke-token`); returns how many."""
        with self.engine.connect() as conn:
            ids = conn.execute(select(api_tokens.c.id).where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))).scalars().all()
        return sum(self.revoke_api_token(token_id, actor) for token_id in ids)

    def create_user(self, name: str, role: str, password_hash: str, actor: str = UNATTRIBUTED) -> int:
        now = self.clock()
        with writing(self.engine) as conn:
            user_id = conn.execute(
                insert(users).values(name=name, role=role, password_hash=password_hash, created_at=now)
            ).inserted_primary_key[0]
            audit_log.record(conn, now, actor, "user.create", f"user:{name}", {"id": user_id, "role": role})
            return user_id

    def remove_user(self, user_id: int, actor: str = UNATTRIBUTED) -> bool:
        """Remove a console user (their sessions go with them); never the last admin (ValueError)."""
        now = self.clock()
        with writing(self.engine) as conn:
            row = conn.execute(select(users.c.name, users.c.role).where(users.c.id == user_id)).first()
            if row is None:
                return False
            admins = conn.execute(select(func.count()).select_from(users).where(users.c.role == "admin")).scalar()
            if row.role == "admin" and admins <= 1:
                raise ValueError("the last admin cannot be removed")
            conn.execute(delete(users).where(users.c.id == user_id))
            audit_log.record(conn, now, actor, "user.remove", f"user:{row.name}", {"id": user_id, "role": row.role})
            return True

    def user_exists(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(users.c.id).where(users.c.name == name)).first() is not None

    # --- events -------------------------------------------------------------------------------

    def ingest(self, batch: list[tuple[Event, str]] | list[StoredEvent], enrolled_host: str | None = None) -> IngestResult:
        """Store (event, its JSON body) pairs once each; raise alerts for the new ones.

        A StoredEvent (server.models.EventIn.stored) brings its chain digest along; a pair has it
        computed from the body text (chain_columns, the reference).
        With `enrolled_host` (the caller's, server/fleet.py) every event is stored and judged under
        that host; a body naming another keeps it in `claimed_host` and raises agent-tamper. The
        body stays as sent: the agent's chain hashes it (server/chain.py)."""
        by_id = {item[0].id: item for item in batch}
        if not by_id:
            return IngestResult(0, len(batch), 0)
        claimed: dict[str, str] = {}  # event id -> the other host its body named
        if enrolled_host is not None:
            for event_id, (e, *rest) in by_id.items():
                if e.host != enrolled_host:
                    if _differs(e.host, enrolled_host):
                        claimed[event_id] = e.host
                    by_id[event_id] = (dataclasses.replace(e, host=enrolled_host), *rest)
        unique = [item[0] for item in by_id.values()]
        now = self.clock()
        rows = [_event_row(e, body, now, claimed.get(e.id), *digest) for e, body, *digest in by_id.values()]
        with writing(self.engine) as conn:
            inserted = set(insert_new(conn, events, rows, "id"))
            new_events = [e for e in unique if e.id in inserted]
            DeviceRegister.record(conn, new_events)
            self._clean_stops(conn, new_events, now)
            raised = self._judge(conn, new_events, now)
            raised += self._store_findings(conn, ChainJudge(conn, now, self.clock_skew_s).ingest(new_events), now)
            if claimed and new_events and enrolled_host is not None:
                by_host: dict[str, list[str]] = {}
                for e in new_events:
                    if e.id in claimed:
                        by_host.setdefault(claimed[e.id], []).append(e.id)
                findings = host_mismatches(conn, new_events[0].agent_id, enrolled_host, by_host, now, "events")
                raised += self._store_findings(conn, findings, now)
        return IngestResult(len(inserted), len(batch) - len(inserted), raised)

    @staticmethod
    def _clean_stops(conn, new_events: list[Event], now: datetime) -> None:
        """agent.stopped with details.clean: the agent is shown stopped, and its silence is not a
        disappearance (server/absence.py)."""
        stopped = {e.agent_id for e in new_events if e.type == "agent.stopped" and (e.details or {}).get("clean") is True}
        for agent_id in stopped:
            conn.execute(update(agents).where(agents.c.agent_id == agent_id).values(stopped_at=now))

    def _judge(self, conn, new_events: list[Event], now: datetime) -> int:
        """Evaluate the active policy on new events: event rules' alerts, then correlation."""
        if not new_events:
            return 0
        policy = self.policies.active(conn)
        chosen = self.groups.rule_files_for(conn, {e.agent_id for e in new_events})
        if any(files is not None for files in chosen.values()):  # some groups narrow the rules: judged apart
            parts: dict[tuple[str, ...] | None, list[Event]] = {}
            for event in new_events:
                parts.setdefault(chosen.get(event.agent_id), []).append(event)
            return sum(
                self._judge_with(conn, narrowed(policy, files), part, now)
                for files, part in parts.items()
            )
        return self._judge_with(conn, policy, new_events, now)

    def _judge_with(self, conn, policy: Policy, new_events: list[Event], now: datetime) -> int:
        watchlists = WatchlistLookup(conn, now)
        engine = EventEngine(policy.ruleset, policy.worktime, watchlists=watchlists)
        watchlists.prefetch(engine.watchlist_values(new_events))
        correlator = Correlator(policy, engine, self._parsed_facts)
        drafts, hits = [], []
        for event in new_events:
            verdicts = engine.matches(event)
            drafts += [event_alert(v, event, policy.worktime, engine) for v in verdicts if v.rule.alert]
            hits += correlator.hits(event, verdicts)
        raised = raise_event_alerts(conn, drafts, now, self.incidents)  # repeats fold into open alerts, egress into incidents
        return raised + correlator.run(conn, hits, now)

    def check_absence(self, agent_offline_s: float, watching_since: datetime | None = None, health: Health | None = None) -> int:
        """Raise agent-offline alerts for silences not alerted yet and escalate long ones (the
        collector's background task)."""
        return check_absence(self.engine, self.policies, self.clock, agent_offline_s, watching_since, health)

    def purge_events(self, retention_days: int = DEFAULT_RETENTION_DAYS) -> int:
        """Delete events older than the retention period that no alert links (a scheduled task)."""
        return purge_events(self.engine, self.clock(), retention_days)

    def prune_hits(self) -> int:
        """Forget correlation hits of groups that went quiet (the collector's background task)."""
        return prune_quiet_hits(self.engine, self.policies.active(), self.clock())

    def active_policy_version(self) -> str:
        return self.policies.active().version

    def list_events(self, type_: str | None, agent_id: str | None, since: str | None, limit: int, cursor: int | None) -> Page:
        query = select(events.c.seq, events.c.body, events.c.host, events.c.claimed_host).order_by(events.c.seq.desc()).limit(limit + 1)
        if type_:
            query = query.where(events.c.type == type_)
        if agent_id:
            query = query.where(events.c.agent_id == agent_id)
        if since:
            query = query.where(events.c.ts >= since)
        if cursor is not None:
            query = query.where(events.c.seq < cursor)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        items = [_event_item(r.body, r.host, r.claimed_host) for r in rows[:limit]]
        return Page(items, str(rows[limit - 1][0]) if len(rows) > limit else None)

    def count_events(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(events)).scalar()

    # --- alerts -------------------------------------------------------------------------------

    def list_alerts(self, status=None, severity=None, category=None, since=None, limit=100, cursor=None, where=()) -> Page:
        """Newest first, from before `cursor`; `where`: more clauses (server/alertquery.py's filters)."""
        query = select(alerts).where(*where).order_by(alerts.c.id.desc()).limit(limit + 1)
        for column, value in ((alerts.c.status, status), (alerts.c.severity, severity), (alerts.c.category, category)):
            if value:
                query = query.where(column == value)
        if since is not None:
            query = query.where(alerts.c.created_at >= since)
        if cursor is not None:
            query = query.where(alerts.c.id < cursor)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
            ids = [r["id"] for r in rows[:limit]]
            links = self._event_ids(conn, ids)
        items = [_alert_dict(r, links.get(r["id"], [])) for r in rows[:limit]]
        return Page(items, str(rows[limit - 1]["id"]) if len(rows) > limit else None)

    def get_alert(self, alert_id: int, incident_page: bool = False) -> dict | None:
        """The alert with its events and history. `incident_page`: for an incident, no event bodies
        (its files are paged: server/incidents.py) and no 'repeated' rows, one per batch that added
        files (their number is `repeats`): a 10,000-file incident opens as fast as a small one."""
        with self.engine.connect() as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
            if row is None:
                return None
            light = incident_page and row["kind"] == "incident"
            event_ids = self._event_ids(conn, [alert_id]).get(alert_id, [])
            bodies = [] if light else conn.execute(select(events.c.body, events.c.host, events.c.claimed_host).where(events.c.id.in_(event_ids)).order_by(events.c.seq)).all()
            mine = alert_history.c.alert_id == alert_id
            history = conn.execute(
                select(alert_history).where(mine, *([alert_history.c.action != "repeated"] if light else [])).order_by(alert_history.c.id)
            ).mappings().all()
            repeats = conn.execute(select(func.count()).where(mine, alert_history.c.action == "repeated")).scalar() if light else None
        alert = _alert_dict(row, event_ids)
        if light:
            alert["repeats"] = repeats
        alert["events"] = [_event_item(r.body, r.host, r.claimed_host) for r in bodies]
        alert["history"] = [
            {
                "at": iso(aware(h["at"])),
                "actor": h["actor"],
                "action": h["action"],
                "from_status": h["from_status"],
                "to_status": h["status"],
                "status": h["status"],  # = to_status, as before revision 0007
                "comment": h["comment"],
            }
            for h in history
        ]
        return alert

    def update_alert(self, alert_id: int, status: str, comment: str, actor: str) -> dict | None:
        """Change an alert's status or comment on it, with the caller as actor, in the history and
        the audit log. The same status without a comment changes nothing (an idempotent PATCH); a
        change the triage state machine refuses raises TransitionConflict and writes nothing."""
        now = self.clock()
        with writing(self.engine) as conn:
            try:
                action = change_status(conn, alert_id, status, comment, actor, now)
            except TransitionRefused:
                action = "unchanged"
                if conn.execute(select(alerts.c.id).where(alerts.c.id == alert_id)).first() is None:
                    return None
            if action is None:
                return None
            if action != "unchanged":
                audit_log.record(conn, now, actor, "alert." + action, f"alert:{alert_id}", {"status": status, "comment": comment[:500]})
        return self.get_alert(alert_id)

    def delete_alert(self, alert_id: int, actor: str) -> bool:
        """An admin deletes an alert: its history, links and notifications go with it (ON DELETE
        CASCADE); its events become subject to retention again. The audit log keeps the record."""
        now = self.clock()
        with writing(self.engine) as conn:
            row = conn.execute(select(alerts.c.rule_id, alerts.c.status, alerts.c.title).where(alerts.c.id == alert_id)).first()
            if row is None:
                return False
            links = conn.execute(select(func.count()).select_from(alert_events).where(alert_events.c.alert_id == alert_id)).scalar()
            conn.execute(delete(alerts).where(alerts.c.id == alert_id))
            audit_log.record(
                conn, now, actor, "alert.delete", f"alert:{alert_id}",
                {"rule_id": row.rule_id, "status": row.status, "title": row.title[:200], "events": links},
            )
            return True

    # --- audit --------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, details: dict | None = None) -> None:
        """Record an administrative action that changes nothing in the database (an export)."""
        with writing(self.engine) as conn:
            audit_log.record(conn, self.clock(), actor, action, target, details)

    def list_audit(self, actor: str | None = None, action: str | None = None, since: datetime | None = None, limit: int = 100, cursor: int | None = None) -> Page:
        with self.engine.connect() as conn:
            items, next_cursor = audit_log.entries(conn, actor, action, since, limit, cursor)
        return Page(items, next_cursor)

    @staticmethod
    def _event_ids(conn, alert_ids: list[int]) -> dict[int, list[str]]:
        links: dict[int, list[str]] = {}
        if alert_ids:
            query = select(alert_events.c.alert_id, alert_events.c.event_id).where(alert_events.c.alert_id.in_(alert_ids))
            for alert_id, event_id in conn.execute(query):
                links.setdefault(alert_id, []).append(event_id)
        return links


def _event_item(body: str, host: str | None, claimed_host: str | None) -> dict:
    """An event as the API shows it: the body as sent, but under the enrolled host when it named
    another (kept as claimed_host)."""
    item = json.loads(body)
    if claimed_host is not None:
        item["host"], item["claimed_host"] = host, claimed_host
    return item


def _differs(claimed: str, enrolled: str) -> bool:
    """A host name other than the enrolled one (case aside; an empty one names nobody)."""
    return bool(claimed) and host_key(claimed) != host_key(enrolled)


def _event_row(e: Event, body: str, received_at: datetime, claimed_host: str | None = None, *chain_hash: str | None) -> dict[str, Any]:
    """The events row; `chain_hash` when the caller computed it already (else from the body text)."""
    chain = chain_columns(e, body) if not chain_hash or e.seq is None else {"agent_seq": e.seq, "chain_hash": chain_hash[0], "prev_hash": e.prev_hash}
    return {
        "claimed_host": claimed_host,
        "id": e.id,
        "type": e.type,
        "ts": e.ts,
        "received_at": received_at,
        "agent_id": e.agent_id,
        "host": e.host,
        "user": e.user,
        "path": e.path,
        "size": e.size,
        "sha256": e.sha256,
        "level": e.level,
        "source_path": e.source_path,
        "severity": e.severity,
        "body": body,
        **chain,
    }


def _alert_dict(r, event_ids: list[str]) -> dict:
    return {
        "id": r["id"],
        "rule_id": r["rule_id"],
        "category": r["category"],
        "severity": r["severity"],
        "title": r["title"],
        "status": r["status"],
        "created_at": iso(aware(r["created_at"])),
        "updated_at": iso(aware(r["updated_at"])),
        "agent_id": r["agent_id"],
        "host": r["host"],
        "user": r["user"],
        "count": r["count"],
        "last_seen": iso(aware(r["last_seen"])),
        "suppressed": r["suppressed"],
        "explanation": r["explanation"],
        "event_ids": event_ids,
        **incident_fields(r),  # kind, destination, device, files, size, level... (server/incidents.py)
    }


