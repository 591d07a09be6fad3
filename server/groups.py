"""Agent groups: which register items, extra egress places and settings each agent gets.

An agent is in one group. Placement rules (host name pattern with * and ?, OS, enrolment key) are
evaluated in order at enrolment and on every heartbeat for agents an admin has not moved by hand;
the first that matches wins, none: the default group. A manual move is sticky until released.

The group's policy travels with the rules (GET /api/v1/policy, rules/grouppolicy.py). It is built
per agent from the group row and the register items it names, with only the location patterns of
the agent's OS, and cached by (group, group revision, OS, last register history row) so a heartbeat costs two
small queries. A group that carries nothing (no item, place, setting or version) sends no group
part, so deployments without a register keep the rules' version exactly.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from rules.grouppolicy import (
    GROUP_EGRESS_KINDS,
    HEARTBEAT_S_RANGE,
    LIMITS,
    GroupEgress,
    GroupPolicy,
    RegisterLocation,
    checked_limit,
    checked_rule_files,
    checked_severities,
    combined_version,
)
from server import audit
from server.database import writing
from server.register import list_items
from server.schema import agent_groups, agents, group_rules, register_history

DEFAULT_GROUP_ID = 1  # created by revision 0013, never deleted
OSES = ("linux", "windows", "macos")
MAX_RULES = 500
MAX_CACHED = 512


class GroupError(ValueError):
    """A request the groups cannot take: says why (the API answers 400, 404 or 409)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PlacementRule:
    group_id: int
    hostname_pattern: str = "*"
    os: str | None = None
    enroll_key_id: int | None = None

    def matches(self, hostname: str, os_name: str | None, key_id: int | None) -> bool:
        if self.os is not None and self.os != os_name:
            return False
        if self.enroll_key_id is not None and self.enroll_key_id != key_id:
            return False
        return fnmatch.fnmatchcase(hostname.casefold(), self.hostname_pattern.casefold().replace("[", "[[]"))


def place(rules: list[PlacementRule], hostname: str, os_name: str | None, key_id: int | None) -> int:
    """The group of the first rule that matches; the default group when none does."""
    return next((r.group_id for r in rules if r.matches(hostname, os_name, key_id)), DEFAULT_GROUP_ID)


class GroupBook:
    def __init__(self, engine: Engine, clock: Callable[[], datetime], policy_files: Callable[[], list[str]] = list):
        self.policy_files = policy_files  # the rule files of the policy in force: what `rule_files` may name
        self.engine = engine
        self.clock = clock
        self._cache: dict[tuple, GroupPolicy | None] = {}
        self._lock = threading.Lock()

    # --- reading ------------------------------------------------------------------------------

    def list(self) -> dict:
        with self.engine.connect() as conn:
            counts: dict[int, int] = {}
            query = (
                select(agents.c.group_id, func.count()).where(agents.c.state != "retired").group_by(agents.c.group_id)
            )
            for group_id, count in conn.execute(query):
                key = group_id or DEFAULT_GROUP_ID  # NULL: the default group
                counts[key] = counts.get(key, 0) + count
            groups = [
                _group_dict(r, counts.get(r["id"], 0))
                for r in conn.execute(select(agent_groups).order_by(agent_groups.c.id)).mappings()
            ]
            rules = [_rule_dict(r) for r in _rules(conn)]
        return {"groups": groups, "rules": rules}

    def get(self, group_id: int) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(agent_groups).where(agent_groups.c.id == group_id)).mappings().first()
            if row is None:
                return None
            count = conn.execute(select(func.count()).where(_in_group(group_id), agents.c.state != "retired")).scalar()
        return _group_dict(row, count)

    def policy_for(self, agent_id: str) -> GroupPolicy | None:
        """The group part of this agent's policy; None when its group carries nothing."""
        with self.engine.connect() as conn:
            agent = conn.execute(select(agents.c.group_id, agents.c.os).where(agents.c.agent_id == agent_id)).first()
            group_id = (agent.group_id if agent else None) or DEFAULT_GROUP_ID
            os_name = agent.os if agent else None
            group = conn.execute(select(agent_groups).where(agent_groups.c.id == group_id)).mappings().first()
            if group is None:  # deleted under it: the default group's
                group = (
                    conn.execute(select(agent_groups).where(agent_groups.c.id == DEFAULT_GROUP_ID)).mappings().first()
                )
                if group is None:
                    return None
            stamp = conn.execute(select(func.max(register_history.c.id))).scalar()  # every register change adds a row
            key = (group["id"], group["revision"], os_name, stamp)
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            built = _build(conn, group, os_name)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = built
        return built

    def rule_files_for(self, conn: Connection, agent_ids: set[str]) -> dict[str, tuple[str, ...] | None]:
        """Each agent's group's `rule_files` (None: every file), as `conn` sees them: what the
        collector's own evaluation of their events narrows the policy to."""
        query = (
            select(agents.c.agent_id, agent_groups.c.settings)
            .select_from(agents.outerjoin(agent_groups, agent_groups.c.id == func.coalesce(agents.c.group_id, DEFAULT_GROUP_ID)))
            .where(agents.c.agent_id.in_(sorted(agent_ids)))
        )
        chosen: dict[str, tuple[str, ...] | None] = {}
        for agent_id, settings in conn.execute(query):
            files = json.loads(settings).get("rule_files") if settings else None
            chosen[agent_id] = tuple(files) if files is not None else None
        return chosen

    def version_for(self, agent_id: str, rules_version: str) -> str:
        return combined_version(rules_version, self.policy_for(agent_id))

    # --- placing ------------------------------------------------------------------------------

    def seen(self, agent_id: str, hostname: str, os_name: str | None) -> None:
        """At enrolment and on heartbeat: note the OS, and place the agent unless it was moved by hand."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(agents.c.group_id, agents.c.group_manual, agents.c.os, agents.c.enroll_key_id).where(
                    agents.c.agent_id == agent_id
                )
            ).first()
            if row is None:
                return
            os_name = os_name if os_name in OSES else row.os
            wanted = row.group_id if row.group_manual else place(_rules(conn), hostname, os_name, row.enroll_key_id)
        if (wanted, os_name) == (row.group_id, row.os):
            return
        with writing(self.engine) as conn:
            conn.execute(update(agents).where(agents.c.agent_id == agent_id).values(group_id=wanted, os=os_name))

    # --- changing -----------------------------------------------------------------------------

    def create(self, body: dict, actor: str) -> dict:
        values = _checked(body, partial=False, known_files=self.policy_files())
        values["settings"] = _settings_json({}, values.pop("settings", {}))
        now = self.clock()
        with writing(self.engine) as conn:
            if conn.execute(select(agent_groups.c.id).where(agent_groups.c.name == values["name"])).first():
                raise GroupError(f"a group named {values['name']!r} exists", 409)
            group_id = conn.execute(
                insert(agent_groups).values(**values, revision=1, created_at=now, updated_at=now)
            ).inserted_primary_key[0]
            audit.record(conn, now, actor, "group.create", f"group:{group_id}", {"name": values["name"]})
        return self.get(group_id)  # type: ignore[return-value]

    def change(self, group_id: int, body: dict, actor: str) -> dict:
        values = _checked(body, partial=True, known_files=self.policy_files())
        now = self.clock()
        with writing(self.engine) as conn:
            row = conn.execute(select(agent_groups).where(agent_groups.c.id == group_id)).mappings().first()
            if row is None:
                raise GroupError("no such group", 404)
            if "settings" in values:  # only the settings the body names change
                values["settings"] = _settings_json(json.loads(row["settings"]), values["settings"])
            if "name" in values and values["name"] != row["name"]:
                if group_id == DEFAULT_GROUP_ID:
                    raise GroupError("the default group keeps its name", 409)
                if conn.execute(select(agent_groups.c.id).where(agent_groups.c.name == values["name"])).first():
                    raise GroupError(f"a group named {values['name']!r} exists", 409)
            conn.execute(
                update(agent_groups)
                .where(agent_groups.c.id == group_id)
                .values(**values, revision=row["revision"] + 1, updated_at=now)
            )
            audit.record(
                conn, now, actor, "group.change", f"group:{group_id}", {"name": row["name"], "changed": sorted(values)}
            )
        return self.get(group_id)  # type: ignore[return-value]

    def delete(self, group_id: int, actor: str) -> None:
        if group_id == DEFAULT_GROUP_ID:
            raise GroupError("the default group cannot be deleted", 409)
        with writing(self.engine) as conn:
            row = conn.execute(select(agent_groups.c.name).where(agent_groups.c.id == group_id)).first()
            if row is None:
                raise GroupError("no such group", 404)
            held = conn.execute(
                select(func.count()).where(agents.c.group_id == group_id, agents.c.state != "retired")
            ).scalar()
            if held:
                raise GroupError(f"the group holds {held} agents: move them first", 409)
            if conn.execute(select(func.count()).where(group_rules.c.group_id == group_id)).scalar():
                raise GroupError("placement rules name the group: change them first", 409)
            conn.execute(
                update(agents).where(agents.c.group_id == group_id).values(group_id=None, group_manual=False)
            )  # retired ones
            conn.execute(delete(agent_groups).where(agent_groups.c.id == group_id))
            audit.record(conn, self.clock(), actor, "group.delete", f"group:{group_id}", {"name": row.name})

    def set_rules(self, rules: list[dict], actor: str) -> list[dict]:
        """Replace the placement rules (in order); agents not moved by hand are placed again now."""
        if not isinstance(rules, list) or len(rules) > MAX_RULES:
            raise GroupError(f"rules: a list of at most {MAX_RULES}")
        parsed = [_rule(r, f"rules[{i}]") for i, r in enumerate(rules)]
        now = self.clock()
        with writing(self.engine) as conn:
            known = {r[0] for r in conn.execute(select(agent_groups.c.id))}
            for i, r in enumerate(parsed):
                if r.group_id not in known:
                    raise GroupError(f"rules[{i}].group_id: no such group", 400)
            conn.execute(delete(group_rules))
            for i, r in enumerate(parsed):
                conn.execute(insert(group_rules).values(position=i, group_id=r.group_id, hostname_pattern=r.hostname_pattern, os=r.os,
                                                        enroll_key_id=r.enroll_key_id))  # fmt: skip
            moved = 0
            free = select(
                agents.c.agent_id, agents.c.hostname, agents.c.os, agents.c.enroll_key_id, agents.c.group_id
            ).where(
                agents.c.group_manual == False  # noqa: E712
            )
            for a in conn.execute(free).all():
                wanted = place(parsed, a.hostname, a.os, a.enroll_key_id)
                if wanted != (a.group_id or DEFAULT_GROUP_ID) or a.group_id is None:
                    conn.execute(update(agents).where(agents.c.agent_id == a.agent_id).values(group_id=wanted))
                    moved += wanted != (a.group_id or DEFAULT_GROUP_ID)
            audit.record(
                conn,
                now,
                actor,
                "group.rules",
                "groups",
                {"rules": [_rule_dict(r) for r in parsed], "agents_moved": moved},
            )
            return [_rule_dict(r) for r in _rules(conn)]

    def move(self, agent_ids: list[str], group_id: int | None, actor: str) -> int:
        """Move agents by hand (sticky); `group_id` None releases them to the placement rules."""
        if not agent_ids or len(agent_ids) > 10_000:
            raise GroupError("agents: 1 to 10000 agent ids")
        with writing(self.engine) as conn:
            if (
                group_id is not None
                and conn.execute(select(agent_groups.c.id).where(agent_groups.c.id == group_id)).first() is None
            ):
                raise GroupError("no such group", 404)
            found = {r[0] for r in conn.execute(select(agents.c.agent_id).where(agents.c.agent_id.in_(agent_ids)))}
            missing = sorted(set(agent_ids) - found)
            if missing:
                raise GroupError(f"no such agents: {', '.join(missing[:5])}", 404)
            if group_id is None:
                rules = _rules(conn)
                for a in conn.execute(
                    select(agents.c.agent_id, agents.c.hostname, agents.c.os, agents.c.enroll_key_id).where(
                        agents.c.agent_id.in_(agent_ids)
                    )
                ):
                    conn.execute(update(agents).where(agents.c.agent_id == a.agent_id).values(
                        group_id=place(rules, a.hostname, a.os, a.enroll_key_id), group_manual=False))  # fmt: skip
            else:
                conn.execute(
                    update(agents).where(agents.c.agent_id.in_(agent_ids)).values(group_id=group_id, group_manual=True)
                )
            audit.record(
                conn,
                self.clock(),
                actor,
                "group.move",
                f"group:{group_id if group_id is not None else 'rules'}",
                {"agents": sorted(found)[:100], "count": len(found)},
            )
        return len(found)


def _in_group(group_id: int):
    if group_id == DEFAULT_GROUP_ID:
        return (agents.c.group_id == DEFAULT_GROUP_ID) | (agents.c.group_id.is_(None))
    return agents.c.group_id == group_id


def _rules(conn: Connection) -> list[PlacementRule]:
    rows = conn.execute(select(group_rules).order_by(group_rules.c.position, group_rules.c.id)).mappings()
    return [PlacementRule(r["group_id"], r["hostname_pattern"], r["os"], r["enroll_key_id"]) for r in rows]


def _rule(x: object, where: str) -> PlacementRule:
    if not isinstance(x, dict) or set(x) - {"group_id", "hostname", "os", "enroll_key_id"}:
        raise GroupError(f"{where}: an object with group_id and any of hostname, os, enroll_key_id")
    group_id, hostname, os_name, key_id = x.get("group_id"), x.get("hostname", "*"), x.get("os"), x.get("enroll_key_id")
    if isinstance(group_id, bool) or not isinstance(group_id, int) or not 0 < group_id < 2**31:
        raise GroupError(f"{where}.group_id: a group id")
    if not isinstance(hostname, str) or not 0 < len(hostname) <= 255:
        raise GroupError(f"{where}.hostname: a host name pattern (* and ?) of at most 255 characters")
    if os_name is not None and os_name not in OSES:
        raise GroupError(f"{where}.os: one of {', '.join(OSES)}")
    if key_id is not None and (isinstance(key_id, bool) or not isinstance(key_id, int) or not 0 < key_id < 2**31):
        raise GroupError(f"{where}.enroll_key_id: an enrolment key id")
    return PlacementRule(group_id, hostname, os_name, key_id)


def _rule_dict(r: PlacementRule) -> dict:
    return {"group_id": r.group_id, "hostname": r.hostname_pattern, "os": r.os, "enroll_key_id": r.enroll_key_id}


def _checked(body: dict, partial: bool, known_files: list[str]) -> dict:
    """The columns a create or change body sets; raises GroupError naming the first bad field."""
    known = {"name", "description", "register_items", "egress", "heartbeat_s", "notify_severities", "agent_version",
             "rule_files", *LIMITS}  # fmt: skip
    unknown = set(body) - known
    if unknown:
        raise GroupError(f"unknown fields: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    values: dict = {}
    if "name" in body or not partial:
        name = body.get("name")
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 100:
            raise GroupError("name: 1 to 100 characters")
        values["name"] = name.strip()
    if "description" in body:
        if not isinstance(body["description"], str) or len(body["description"]) > 2000:
            raise GroupError("description: at most 2000 characters")
        values["description"] = body["description"]
    if "register_items" in body:
        items = body["register_items"]
        ok = items == "all" or (
            isinstance(items, list)
            and len(items) <= 10_000
            and all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**31 for i in items)
        )
        if not ok:
            raise GroupError('register_items: "all" or a list of register item ids')
        values["register_items"] = json.dumps(items if items == "all" else sorted(set(items)))
    if "egress" in body:
        places = body["egress"]
        if not isinstance(places, list) or len(places) > 256:
            raise GroupError("egress: a list of at most 256 places")
        for i, p in enumerate(places):
            if (
                not isinstance(p, dict)
                or set(p) - {"path", "kind", "app"}
                or not isinstance(p.get("path"), str)
                or not p["path"].startswith(("/", "~", "%", "$"))
                and ":" not in p["path"][:3]
            ):
                raise GroupError(f"egress[{i}]: {{path (absolute), kind, app}}")
            if p.get("kind", "folder") not in GROUP_EGRESS_KINDS:
                raise GroupError(f"egress[{i}].kind: one of {', '.join(GROUP_EGRESS_KINDS)}")
            if not isinstance(p.get("app", ""), str) or len(p.get("app", "")) > 512 or len(p["path"]) > 4096:
                raise GroupError(f"egress[{i}]: app at most 512 characters, path at most 4096")
        values["egress"] = json.dumps(
            [{"path": p["path"], "kind": p.get("kind", "folder"), "app": p.get("app", "")} for p in places],
            ensure_ascii=False,
        )
    if "heartbeat_s" in body:
        beat, (low, high) = body["heartbeat_s"], HEARTBEAT_S_RANGE
        if beat is not None and (
            isinstance(beat, bool) or not isinstance(beat, (int, float)) or not low <= beat <= high
        ):
            raise GroupError(f"heartbeat_s: null or seconds from {low:g} to {high:g}")
        values.setdefault("settings", {})["heartbeat_s"] = beat
    if "notify_severities" in body:
        notify = body["notify_severities"]
        if notify is not None:
            try:
                notify = checked_severities(notify, "notify_severities")
            except ValueError as exc:
                raise GroupError(f"{exc} (or null: the agent's own setting)") from None
        values.setdefault("settings", {})["notify_severities"] = notify
    if "rule_files" in body:
        chosen = body["rule_files"]
        if chosen is not None:
            try:
                chosen = checked_rule_files(chosen, "rule_files")
            except ValueError as exc:
                raise GroupError(f"{exc} (or null: every file of the policy)") from None
            unknown = [f for f in chosen if f not in known_files]
            if unknown:
                raise GroupError(
                    f"rule_files: {unknown[0]!r} is not a file of the policy in force"
                    f" (its files: {', '.join(known_files)})"
                )
        values.setdefault("settings", {})["rule_files"] = chosen
    for name in LIMITS:
        if name in body:
            value = body[name]
            if value is not None:
                try:
                    value = checked_limit(name, value, "group")
                except ValueError as exc:
                    raise GroupError(f"{str(exc).removeprefix('group.')} (or null: the agent's own setting)") from None
            values.setdefault("settings", {})[name] = value
    if "agent_version" in body:
        if not isinstance(body["agent_version"], str) or len(body["agent_version"]) > 64:
            raise GroupError("agent_version: at most 64 characters")
        values["agent_version"] = body["agent_version"]
    return values


def _settings_json(before: dict, changes: dict) -> str:
    """The settings column: the old settings with the changed ones; a null one is dropped (the agent's own)."""
    merged = {**before, **changes}
    return json.dumps({k: v for k, v in merged.items() if v is not None})


def _group_dict(row, agent_count: int) -> dict:
    settings = json.loads(row["settings"])
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "default": row["id"] == DEFAULT_GROUP_ID,
        "register_items": json.loads(row["register_items"]),
        "egress": json.loads(row["egress"]),
        "heartbeat_s": settings.get("heartbeat_s"),
        "notify_severities": settings.get("notify_severities"),
        "rule_files": settings.get("rule_files"),
        **{name: settings.get(name) for name in LIMITS},
        "agent_version": row["agent_version"],
        "revision": row["revision"],
        "agents": agent_count,
    }


def _build(conn: Connection, group, os_name: str | None) -> GroupPolicy | None:
    wanted = json.loads(group["register_items"])
    chosen = [i for i in list_items(conn) if wanted == "all" or i.id in wanted]
    register = tuple(
        RegisterLocation(
            i.id, i.name, i.level, " ".join(x for x in (i.owner_department, i.owner_person) if x),
            tuple(p for o, p in i.locations if os_name is None or o == os_name),
        )
        for i in chosen
    )  # fmt: skip
    register = tuple(r for r in register if r.patterns)
    egress = tuple(GroupEgress(p["path"], p["kind"], p.get("app", "")) for p in json.loads(group["egress"]))
    settings = json.loads(group["settings"])
    heartbeat_s, notify = settings.get("heartbeat_s"), settings.get("notify_severities")
    rule_files = settings.get("rule_files")
    limits = tuple(sorted((name, settings[name]) for name in LIMITS if settings.get(name) is not None))
    if not register and not egress and not group["agent_version"] and not any(
        (heartbeat_s is not None, notify is not None, rule_files is not None, limits)
    ):
        return None
    return GroupPolicy(group["name"], register, egress, heartbeat_s, group["agent_version"],
                       tuple(notify) if notify is not None else None,
                       tuple(rule_files) if rule_files is not None else None, limits)  # fmt: skip
