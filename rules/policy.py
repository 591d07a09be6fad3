"""A policy: the rule files and working-time settings in force, with a version that names them.

The collector is the source of truth: it builds the policy from the shipped packs plus the rule
files uploaded to it, and agents fetch it when the version changes. The version is a digest of
the content, so the same rules give the same version on every collector.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from rules.errors import InvalidInput, LocatedError
from rules.loader import default_pack_sources, load_rule_sources
from rules.model import RuleSet
from rules.worktime import WorkTime, check_timezone


@dataclass(frozen=True)
class Policy:
    version: str
    sources: tuple[tuple[str, str], ...]  # (file name, YAML text)
    worktime: WorkTime
    ruleset: RuleSet

    def to_payload(self) -> dict:
        return {
            "version": self.version,
            "files": [{"name": name, "text": text} for name, text in self.sources],
            "worktime": self.worktime.to_dict(),
        }


def policy_version(sources: list[tuple[str, str]] | tuple, worktime: WorkTime) -> str:
    canonical = json.dumps({"files": [list(s) for s in sources], "worktime": worktime.to_dict()}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def build_policy(sources: list[tuple[str, str]], worktime: WorkTime) -> Policy:
    """Check and build a policy; raises rules.errors.InvalidInput listing every error."""
    why = check_timezone(worktime.timezone)
    if why:
        raise InvalidInput([LocatedError("working_time", 0, 0, "working_time.timezone", why)])
    ruleset = load_rule_sources(list(sources))
    return Policy(policy_version(sources, worktime), tuple(sources), worktime, ruleset)


def default_policy(worktime: WorkTime | None = None) -> Policy:
    return build_policy(default_pack_sources(), worktime or WorkTime())


def policy_from_payload(payload: dict) -> Policy:
    """The policy a collector sent; raises InvalidInput, KeyError or ValueError when it is not one."""
    sources = [(f["name"], f["text"]) for f in payload["files"]]
    worktime = WorkTime.from_dict(payload["worktime"])
    policy = build_policy(sources, worktime)
    if policy.version != payload["version"]:
        raise ValueError(f"policy version mismatch: announced {payload['version']}, content is {policy.version}")
    return policy
