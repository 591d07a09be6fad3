"""A group's policy as an agent receives it: the register items that apply to it (with their
location patterns for its OS), the group's extra egress places, the rule files in force for it and
the agent settings (heartbeat, limits, notices to the employee).

Both sides share this module: the collector builds the value per agent (server/groups.py), the
agent checks it whole before it is put in force (agent/policy.py). Its version is a digest of the
content, so the heartbeat can announce a version per agent (the rules' version plus this one) and
an agent fetches the policy again within one heartbeat of a change to its group or to a register
item it holds. The payload says its version and the agent recomputes it: a payload that does not
match is refused whole, like a rule set whose version does not match.

A group may narrow the rules to some of the policy's files (`rule_files`): the rules of the other
files are switched off for its agents on both sides (`narrowed`), the way the policy's own
`disabled` list switches rules off everywhere. The agent-health pack is always in force
(ALWAYS_ON_FILES): a group without the tamper and silence rules would be the easiest way to go
unwatched. The agent's own extra rule files are not the collector's to switch off.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

from rules.fields import EGRESS_KINDS
from rules.levels import LEVELS, SEVERITIES
from rules.model import RuleSet
from rules.policy import Policy, apply_disabled

MAX_ITEMS = 10_000  # register items in one group's policy (the register holds at most 10,000)
MAX_PATTERNS = 64  # location patterns of one item for one OS
MAX_EGRESS = 256  # extra egress places of one group
MAX_TEXT = 512  # a name, owner or app
MAX_PATH = 4096
GROUP_EGRESS_KINDS = tuple(k for k in EGRESS_KINDS if k not in ("removable", "printer"))  # folders only
HEARTBEAT_S_RANGE = (5.0, 3600.0)
NOTIFY_SEVERITIES = tuple(s for s in SEVERITIES if s != "info")  # as agent/config.py's notify_user.severities
ALWAYS_ON_FILES = ("packs/agent.yaml",)  # the agent-health and tamper rules: in force for every group
MAX_RULE_FILES = 200  # more than a policy holds (100 uploaded files and the packs)
# the agent's caps a group may set (agent/config.py `limits`, the same ranges): (low, high, whole numbers)
LIMITS: dict[str, tuple[float, float, bool]] = {
    "cpu_percent": (1.0, 400.0, False),
    "memory_mb": (32.0, 65536.0, True),
    "spool_mb": (16.0, 1048576.0, True),
}
SETTINGS = ("heartbeat_s", "notify_severities", "rule_files", *LIMITS)


@dataclass(frozen=True)
class RegisterLocation:
    """One register item as an agent sees it: where it lives on this agent's OS."""

    item_id: int
    name: str
    level: str
    owner: str  # department and person, as the console shows them
    patterns: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "id": self.item_id,
            "name": self.name,
            "level": self.level,
            "owner": self.owner,
            "patterns": list(self.patterns),
        }


@dataclass(frozen=True)
class GroupEgress:
    path: str
    kind: str  # folder | sync | share | im | phone
    app: str = ""

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "app": self.app}


@dataclass(frozen=True)
class GroupPolicy:
    group: str  # the group's name (shown, not compared)
    register: tuple[RegisterLocation, ...]
    egress: tuple[GroupEgress, ...]
    heartbeat_s: float | None = None  # None: the agent's own setting
    agent_version: str = ""  # the version the group should run (reported, not installed)
    # which alert severities the employee is told of (agent/notice.py); None: the agent's own
    # notify_user.severities, () : none (off for the group)
    notify_severities: tuple[str, ...] | None = None
    # the policy files whose rules are in force for the group (with ALWAYS_ON_FILES); None: all
    rule_files: tuple[str, ...] | None = None
    limits: tuple[tuple[str, float], ...] = ()  # (name in LIMITS, value), sorted: over the agent's own

    @property
    def version(self) -> str:
        return group_version(self.content())

    def content(self) -> dict:
        return {
            "group": self.group,
            "register": [r.to_dict() for r in self.register],
            "egress": [e.to_dict() for e in self.egress],
            "settings": self.settings(),
            "agent_version": self.agent_version,
        }

    def settings(self) -> dict:
        """Only the settings the group sets: a group without them keeps its version from before."""
        settings: dict = {}
        if self.heartbeat_s is not None:
            settings["heartbeat_s"] = self.heartbeat_s
        if self.notify_severities is not None:
            settings["notify_severities"] = list(self.notify_severities)
        if self.rule_files is not None:
            settings["rule_files"] = list(self.rule_files)
        settings.update(self.limits)
        return settings

    def limit(self, name: str) -> float | None:
        return dict(self.limits).get(name)

    def to_payload(self) -> dict:
        return {**self.content(), "version": self.version}


def group_version(content: dict) -> str:
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def combined_version(rules_version: str, group: GroupPolicy | None) -> str:
    """What the heartbeat announces and the agent compares: the rules' version, plus the group's."""
    return f"{rules_version}+g.{group.version}" if group is not None else rules_version


def group_from_payload(payload: object) -> GroupPolicy:
    """The group part of a policy payload; raises ValueError saying what is wrong."""
    if not isinstance(payload, dict):
        raise ValueError(f"group: an object, not {type(payload).__name__}")
    register = _list(payload.get("register", []), "group.register", MAX_ITEMS)
    egress = _list(payload.get("egress", []), "group.egress", MAX_EGRESS)
    settings = payload.get("settings", {})
    if not isinstance(settings, dict) or set(settings) - set(SETTINGS):
        raise ValueError(f"group.settings: an object with at most {', '.join(SETTINGS)}")
    heartbeat_s = settings.get("heartbeat_s")
    if heartbeat_s is not None:
        low, high = HEARTBEAT_S_RANGE
        if isinstance(heartbeat_s, bool) or not isinstance(heartbeat_s, (int, float)) or not low <= heartbeat_s <= high:
            raise ValueError(f"group.settings.heartbeat_s: a number of seconds from {low:g} to {high:g}")
    notify = settings.get("notify_severities")
    if notify is not None:
        notify = tuple(checked_severities(notify, "group.settings.notify_severities"))
    rule_files = settings.get("rule_files")
    if rule_files is not None:
        rule_files = tuple(checked_rule_files(rule_files, "group.settings.rule_files"))
    limits = tuple(sorted((name, checked_limit(name, settings[name], "group.settings")) for name in LIMITS if name in settings))
    group = GroupPolicy(
        group=_text(payload.get("group", ""), "group.group", MAX_TEXT),
        register=tuple(_item(x, f"group.register[{i}]") for i, x in enumerate(register)),
        egress=tuple(_egress(x, f"group.egress[{i}]") for i, x in enumerate(egress)),
        heartbeat_s=heartbeat_s,
        agent_version=_text(payload.get("agent_version", ""), "group.agent_version", 64),
        notify_severities=notify,
        rule_files=rule_files,
        limits=limits,
    )
    if group.version != payload.get("version"):
        raise ValueError(f"group version mismatch: announced {payload.get('version')!r}, content is {group.version}")
    return group


def checked_severities(x: object, where: str) -> list[str]:
    """A list of distinct severity names the employee may be told of (both sides check the same)."""
    if not isinstance(x, list) or not all(isinstance(s, str) for s in x) or set(x) - set(NOTIFY_SEVERITIES):
        raise ValueError(f"{where}: a list of severities, each one of {', '.join(NOTIFY_SEVERITIES)}")
    if len(set(x)) != len(x):
        raise ValueError(f"{where}: a severity named twice")
    return list(x)


def checked_rule_files(x: object, where: str) -> list[str]:
    """A list of distinct rule file names, as the policy names them (`packs/egress.yaml`, `firm.yaml`)."""
    if not isinstance(x, list) or len(x) > MAX_RULE_FILES or not all(isinstance(f, str) and 0 < len(f) <= 255 and "\x00" not in f for f in x):
        raise ValueError(f"{where}: a list of at most {MAX_RULE_FILES} rule file names, as the policy lists them")
    if len(set(x)) != len(x):
        raise ValueError(f"{where}: a file named twice")
    return list(x)


def checked_limit(name: str, value: object, where: str) -> float:
    """One of the agent's caps a group sets; the same ranges as the agent's config."""
    low, high, whole = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{where}.{name}: {kind} from {low:g} to {high:g}")
    return int(value) if whole else float(value)


def switched_off(ruleset: RuleSet, files: tuple[str, ...] | list[str], rule_files: tuple[str, ...] | None) -> tuple[str, ...]:
    """The ids of the rules of `files` (the policy's) that a group choosing `rule_files` goes without."""
    if rule_files is None:
        return ()
    off = set(files) - set(rule_files) - set(ALWAYS_ON_FILES)
    rules = (*ruleset.event_rules, *ruleset.correlation_rules)
    return tuple(sorted(r.id for r in rules if r.where is not None and r.where.file in off))


def narrowed(policy: Policy, rule_files: tuple[str, ...] | None) -> Policy:
    """The policy as it is in force for a group choosing `rule_files`: the other files' rules off."""
    if rule_files is None:
        return policy
    off = switched_off(policy.ruleset, [name for name, _ in policy.sources], rule_files)
    return replace(policy, ruleset=apply_disabled(policy.ruleset, off)) if off else policy


def _item(x: object, where: str) -> RegisterLocation:
    if not isinstance(x, dict):
        raise ValueError(f"{where}: an object")
    item_id = x.get("id")
    if isinstance(item_id, bool) or not isinstance(item_id, int) or not 0 < item_id < 2**63:
        raise ValueError(f"{where}.id: a positive integer")
    level = x.get("level")
    if level not in LEVELS:
        raise ValueError(f"{where}.level: one of {', '.join(LEVELS)}")
    name = _text(x.get("name"), f"{where}.name", MAX_TEXT)
    if not name:
        raise ValueError(f"{where}.name: empty")
    patterns = _list(x.get("patterns", []), f"{where}.patterns", MAX_PATTERNS)
    return RegisterLocation(
        item_id, name, level, _text(x.get("owner", ""), f"{where}.owner", MAX_TEXT),
        tuple(_path(p, f"{where}.patterns[{i}]") for i, p in enumerate(patterns)),
    )  # fmt: skip


def _egress(x: object, where: str) -> GroupEgress:
    if not isinstance(x, dict):
        raise ValueError(f"{where}: an object")
    kind = x.get("kind", "folder")
    if kind not in GROUP_EGRESS_KINDS:
        raise ValueError(f"{where}.kind: one of {', '.join(GROUP_EGRESS_KINDS)}")
    return GroupEgress(_path(x.get("path"), f"{where}.path"), kind, _text(x.get("app", ""), f"{where}.app", MAX_TEXT))


def _list(x: object, where: str, most: int) -> list:
    if not isinstance(x, list):
        raise ValueError(f"{where}: a list")
    if len(x) > most:
        raise ValueError(f"{where}: at most {most} entries, got {len(x)}")
    return x


def _text(x: object, where: str, most: int) -> str:
    if not isinstance(x, str) or len(x) > most or "\x00" in x:
        raise ValueError(f"{where}: text of at most {most} characters")
    return x


def _path(x: object, where: str) -> str:
    text = _text(x, where, MAX_PATH)
    if not text.strip():
        raise ValueError(f"{where}: empty")
    return text
