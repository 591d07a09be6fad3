"""The rules in force on this agent: the collector's policy plus the config's extra rule files.

The collector is the source of truth. Its policy is cached in state_dir/policy.json, so an agent
that starts offline evaluates what the collector last sent; with no valid cache it starts on the
default packs, never on no rules. A new policy is checked whole before it replaces the current
one, and the swap is one reference assignment: the pipeline reads `current` without a lock.

Rules the collector switched off (the policy's `disabled` list) are not evaluated here either, nor
the rules of files the agent's group does not choose (its `rule_files`, rules/grouppolicy.py).
That list names rules of the policy only: the config's extra rule files are this PC's own and
cannot be switched off from the collector (an administrator edits or removes them locally; their
rules are also the only ones here the collector does not know).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loguru import logger

from agent.files import write_atomically
from rules.engine import EventEngine
from rules.errors import InvalidInput
from rules.events import Event
from rules.grouppolicy import GroupPolicy, combined_version, group_from_payload, switched_off
from rules.loader import load_rule_sources, read_rule_paths
from rules.model import RuleSet
from rules.policy import Policy, apply_disabled, default_policy, policy_from_payload

CACHE_FILE = "policy.json"
Sources = Sequence[tuple[str, str]]  # (file name, YAML text)


class PolicyRefused(Exception):
    """A policy from the collector (or the cache) that cannot be put in force; says why."""


@dataclass(frozen=True)
class ActiveRules:
    """One policy in force, ready to evaluate; replaced whole, never changed."""

    policy: Policy  # the collector's (or the default packs')
    source: str  # "collector" | "default packs"
    local_files: tuple[str, ...]  # the config's extra rule files, in force on top of the policy
    ruleset: RuleSet  # policy and extra files together
    engine: EventEngine
    version: str  # what events and heartbeats carry: the policy's version, "+local.<digest>" with extra files
    group: GroupPolicy | None = None  # the agent's group: register locations, egress places, settings

    @property
    def collector_version(self) -> str:
        """What the collector announces for this agent: the rules' version, plus its group's."""
        return combined_version(self.policy.version, self.group)

    def stamp(self, event: Event) -> Event:
        """The event with the rules it matched, the highest severity and this version."""
        try:
            return self.engine.stamp(event, self.version)
        except Exception:  # a rule must never stop an event from being spooled
            logger.exception("rule evaluation failed type={!r} id={!r}", event.type, event.id)
            return dataclasses.replace(event, policy_version=self.version)


class PolicyStore:
    """Holds the rules in force; `offer` checks and swaps in a policy the collector sent."""

    def __init__(self, state_dir: str, local_sources: Sources = ()):
        self.cache_path = os.path.join(state_dir, CACHE_FILE)
        self.local_sources = tuple(local_sources)
        self._active: ActiveRules | None = None
        self._swap_lock = threading.Lock()  # writers only: readers take the reference as it is
        self.on_group: Callable[[GroupPolicy | None], None] | None = None  # told after a swap (agent/app.py)

    @property
    def current(self) -> ActiveRules:
        active = self._active
        if active is None:
            raise RuntimeError("PolicyStore.load() has not run")
        return active

    def stamp(self, event: Event) -> Event:
        return self.current.stamp(event)

    def load(self) -> ActiveRules:
        """At start: the cached policy when valid, else the default packs; plus the extra files.

        Raises InvalidInput when the extra rule files do not load with the default packs.
        """
        active = _combine(default_policy(), "default packs", self.local_sources)  # raises on bad extra files
        cached, group = self._read_cache()
        if cached is not None:
            try:
                active = _combine(cached, "collector", self.local_sources, group)
            except InvalidInput as exc:
                logger.warning(
                    "cached policy does not load with the extra rule files; using the default packs version={!r} errors={!r}",
                    cached.version,
                    "; ".join(str(e) for e in exc.errors[:5]),
                )
        self._active = active
        logger.info("rules in force policy_version={!r} source={} event_rules={}", active.version, active.source, len(active.engine.rules))
        return active

    def offer(self, payload: object) -> ActiveRules | None:
        """Put a policy from the collector in force; None when it is the one in force already.

        Raises PolicyRefused (and keeps the current rules) when the payload is not a valid policy
        or does not load together with the extra rule files. A policy that loads is cached in
        state_dir before the swap, so a restart evaluates it too.
        """
        policy, group = _checked_policy(payload)
        with self._swap_lock:
            current = self._active
            if current is not None and current.source == "collector" and combined_version(policy.version, group) == current.collector_version:
                return None
            try:
                active = _combine(policy, "collector", self.local_sources, group)
            except InvalidInput as exc:
                raise PolicyRefused(f"policy {policy.version} conflicts with the extra rule files: {_first_errors(exc)}") from None
            try:
                self._write_cache(policy, group)
            except OSError as exc:  # keep protecting with the new rules; a restart falls back to the old cache
                logger.error("cannot cache the policy path={!r} error={!r}", self.cache_path, exc.strerror or str(exc))
            previous, self._active = self._active, active
        logger.info(
            "policy from the collector in force policy_version={!r} previous={!r} event_rules={}",
            active.version,
            previous.version if previous else None,
            len(active.engine.rules),
        )
        if self.on_group is not None and (previous is None or previous.group != active.group):
            try:
                self.on_group(active.group)
            except Exception:  # the rules are in force; the places are tried again by their owner
                logger.exception("group policy listener failed")
        return active

    # --- the cache ------------------------------------------------------------------------

    def _read_cache(self) -> tuple[Policy | None, GroupPolicy | None]:
        try:
            with open(self.cache_path, encoding="utf-8") as f:
                payload = json.load(f)
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError) as exc:
            logger.warning("cached policy unreadable; ignoring it path={!r} error={!r}", self.cache_path, str(exc))
            return None, None
        try:
            return _checked_policy(payload)
        except PolicyRefused as exc:
            logger.warning("cached policy invalid; ignoring it path={!r} error={!r}", self.cache_path, str(exc))
            return None, None

    def _write_cache(self, policy: Policy, group: GroupPolicy | None) -> None:
        """Atomically: a crash leaves the old file or the new one, never half of one."""
        payload = policy.to_payload() | ({"group": group.to_payload()} if group is not None else {})
        # a new file beside it, never a planted link; the folder synced after the rename
        write_atomically(self.cache_path, json.dumps(payload, ensure_ascii=False), 0o600)


def read_local_sources(paths: Sequence[str]) -> list[tuple[str, str]]:
    """The config's extra rule files (a folder gives its *.yaml and *.yml); raises InvalidInput."""
    return read_rule_paths(list(paths))


def check_local_sources(local_sources: Sources) -> RuleSet:
    """The default packs with the extra rule files: raises InvalidInput listing every error."""
    return _combine(default_policy(), "default packs", local_sources).ruleset


def _checked_policy(payload: object) -> tuple[Policy, GroupPolicy | None]:
    """A policy (and its group part, when the collector sent one) from its payload, or
    PolicyRefused saying why not: a bad group part refuses the whole payload."""
    try:
        policy = policy_from_payload(payload)  # type: ignore[arg-type]
        group = group_from_payload(payload["group"]) if payload.get("group") is not None else None  # type: ignore[union-attr]
    except InvalidInput as exc:
        raise PolicyRefused(f"invalid rules: {_first_errors(exc)}") from None
    except Exception as exc:  # not a policy at all: missing keys, wrong types, version mismatch
        raise PolicyRefused(f"not a valid policy: {type(exc).__name__}: {str(exc)[:300]}") from None
    return policy, group


def _combine(policy: Policy, source: str, local_sources: Sources, group: GroupPolicy | None = None) -> ActiveRules:
    """The policy with the extra rule files on top; raises InvalidInput when they do not load together."""
    if local_sources:
        # the policy's switched-off rules stay off; the extra files' own rules cannot be among them
        # (the list names rules of the policy, and an extra file cannot reuse a policy rule's id)
        ruleset = apply_disabled(load_rule_sources(list(policy.sources) + list(local_sources)), policy.disabled)
        version = f"{combined_version(policy.version, group)}+local.{_digest(local_sources)}"
    else:
        ruleset, version = policy.ruleset, combined_version(policy.version, group)
    if group is not None and group.rule_files is not None:  # the group's files only (the extra files stay)
        ruleset = apply_disabled(ruleset, switched_off(ruleset, [name for name, _ in policy.sources], group.rule_files))
    return ActiveRules(
        policy=policy,
        source=source,
        local_files=tuple(name for name, _ in local_sources),
        ruleset=ruleset,
        engine=EventEngine(ruleset, policy.worktime),
        version=version,
        group=group,
    )


def _digest(sources: Sources) -> str:
    """Of the texts only: the same extra rules give the same version wherever they are kept."""
    canonical = json.dumps([text for _, text in sources], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]


def _first_errors(exc: InvalidInput, limit: int = 5) -> str:
    shown = "; ".join(str(e) for e in exc.errors[:limit])
    more = len(exc.errors) - limit
    return shown + (f"; and {more} more" if more > 0 else "")
