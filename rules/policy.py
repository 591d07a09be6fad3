"""A policy: the rule files, working-time settings and switched-off rules in force, with a version
that names them.

The collector is the source of truth: it builds the policy from the shipped packs plus the rule
files uploaded to it, and agents fetch it when the version changes. The version is a digest of
the content, so the same rules give the same version on every collector.

`disabled` lists rule ids switched off for the whole policy. It is how a firm turns off a shipped
pack's rule without editing the pack (an uploaded rule can also be turned off in its own file).
A disabled rule stays in the rule set with `enabled` false, so the engines on both sides skip it
the way they skip a rule written `enabled: false`. An empty list leaves the version exactly as it
was before the list existed, so payloads of older collectors still load and keep their versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from rules.errors import InvalidInput, LocatedError, did_you_mean
from rules.loader import RULE_ID, default_pack_sources, load_rule_sources
from rules.model import RuleSet
from rules.worktime import WorkTime, check_timezone

MAX_DISABLED = 1000  # far more rules than any policy holds; bounds what a payload can make us check
DISABLED_FILE = "policy"  # where errors in the disabled list are located: policy:0:0: disabled[i]: ...


@dataclass(frozen=True)
class Policy:
    version: str
    sources: tuple[tuple[str, str], ...]  # (file name, YAML text)
    worktime: WorkTime
    ruleset: RuleSet  # with the disabled rules' `enabled` false
    disabled: tuple[str, ...] = ()  # rule ids switched off, sorted and unique

    def to_payload(self) -> dict:
        return {
            "version": self.version,
            "files": [{"name": name, "text": text} for name, text in self.sources],
            "worktime": self.worktime.to_dict(),
            "disabled": list(self.disabled),
        }


def policy_version(sources: list[tuple[str, str]] | tuple, worktime: WorkTime, disabled: tuple[str, ...] | list[str] = ()) -> str:
    content: dict = {"files": [list(s) for s in sources], "worktime": worktime.to_dict()}
    if disabled:  # absent when empty: a policy without switched-off rules keeps the version it always had
        content["disabled"] = sorted(set(disabled))
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def build_policy(sources: list[tuple[str, str]], worktime: WorkTime, disabled: tuple[str, ...] | list[str] = ()) -> Policy:
    """Check and build a policy; raises rules.errors.InvalidInput listing every error."""
    why = check_timezone(worktime.timezone)
    if why:
        raise InvalidInput([LocatedError("working_time", 0, 0, "working_time.timezone", why)])
    errors = check_disabled_syntax(disabled)
    if errors:
        raise InvalidInput(errors)
    given = tuple(dict.fromkeys(disabled))  # errors name the position as given, repeats dropped
    ruleset = load_rule_sources(list(sources))
    errors = check_disabled(ruleset, given)
    if errors:
        raise InvalidInput(errors)
    disabled = tuple(sorted(given))
    return Policy(policy_version(sources, worktime, disabled), tuple(sources), worktime, apply_disabled(ruleset, disabled), disabled)


def check_disabled_syntax(disabled: object) -> list[LocatedError]:
    """A list of at most MAX_DISABLED rule ids; what a payload or an API body must be."""
    if not isinstance(disabled, (list, tuple)):
        return [_error("disabled", f"a list of rule ids, not {type(disabled).__name__}")]
    if len(disabled) > MAX_DISABLED:
        return [_error("disabled", f"at most {MAX_DISABLED} rule ids, got {len(disabled)}")]
    return [
        _error(f"disabled[{i}]", f"invalid rule id {rule_id!r}", "upper case letters, digits and '-', e.g. MW-EGRESS-CLASSIFIED")
        for i, rule_id in enumerate(disabled)
        if not isinstance(rule_id, str) or not RULE_ID.match(rule_id)
    ]


def check_disabled(ruleset: RuleSet, disabled: tuple[str, ...]) -> list[LocatedError]:
    """Every id names a rule of the set, and no rule left on counts one that is switched off.

    A correlation rule that counts a disabled event rule would silently never fire again, so the
    event rule can only be switched off together with (or after) the rules that count it.
    """
    errors = []
    known = ruleset.ids
    for i, rule_id in enumerate(disabled):
        if rule_id not in known:
            errors.append(_error(f"disabled[{i}]", f"no rule {rule_id!r} in the policy", did_you_mean(rule_id, known)))
    off = set(disabled)
    for rule in ruleset.correlation_rules:
        if not rule.enabled or rule.id in off:
            continue
        for ref in rule.rules:
            if ref in off:
                i = disabled.index(ref)
                errors.append(_error(f"disabled[{i}]", f"{ref} is counted by {rule.id}, which stays on", f"switch {rule.id} off too, or {ref} on"))
    return errors


def dependents(ruleset: RuleSet, rule_id: str) -> list[str]:
    """The correlation rules, switched on, that count `rule_id`: they must go off before it."""
    return [r.id for r in ruleset.correlation_rules if r.enabled and rule_id in r.rules]


def apply_disabled(ruleset: RuleSet, disabled: tuple[str, ...]) -> RuleSet:
    """The rule set with the listed rules' `enabled` false; ids it does not hold are ignored."""
    if not disabled:
        return ruleset
    off = set(disabled)
    return RuleSet(
        tuple(dataclasses.replace(r, enabled=False) if r.id in off else r for r in ruleset.event_rules),
        tuple(dataclasses.replace(r, enabled=False) if r.id in off else r for r in ruleset.correlation_rules),
    )


def default_policy(worktime: WorkTime | None = None) -> Policy:
    return build_policy(default_pack_sources(), worktime or WorkTime())


def policy_from_payload(payload: dict) -> Policy:
    """The policy a collector sent; raises InvalidInput, KeyError or ValueError when it is not one."""
    sources = [(f["name"], f["text"]) for f in payload["files"]]
    worktime = WorkTime.from_dict(payload["worktime"])
    disabled = payload.get("disabled", [])  # a collector from before the list sends none
    if not isinstance(disabled, list):
        raise ValueError(f"policy 'disabled' is a list of rule ids, not {type(disabled).__name__}")
    if len(set(map(str, disabled))) != len(disabled) or disabled != sorted(disabled, key=str):
        raise ValueError("policy 'disabled' must list each rule id once, sorted")
    policy = build_policy(sources, worktime, disabled)
    if policy.version != payload["version"]:
        raise ValueError(f"policy version mismatch: announced {payload['version']}, content is {policy.version}")
    return policy


def _error(key_path: str, message: str, hint: str = "") -> LocatedError:
    return LocatedError(DISABLED_FILE, 0, 0, key_path, message, hint)
