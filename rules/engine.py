"""Evaluating event rules: which rules an event matches, and why (or why not).

The same engine runs on the agent (to stamp events with rule ids and severity, and for
`miwei-agent scan`) and on the collector (to raise alerts with explanations).

`matches` tries an event only against the rules that can match it: the rule index (RuleIndex),
built once per rule set, keys an event by its type, egress kind, level and the detectors it
carries, and keeps for each key the rules whose conditions on those fields hold, with the
conditions left to test. The plain loop, every enabled rule judged in order, is the reference:
`EventEngine(..., indexed=False)` or `matches_reference`; both give the same verdicts in the same
order (tests/rules/test_rule_index.py checks it over random events).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rules.events import Event
from rules.fields import BLIND_SPOTS, field_for
from rules.levels import severity_for_level
from rules.model import BY_LEVEL, SEVERITY_STEPS, Condition, EventRule, RuleSet, raise_severity
from rules.units import format_bytes
from rules.worktime import WorkTime

# (watchlist name, value) -> is the value on it; the collector has watchlists, the agent does not
WatchlistLookup = Callable[[str, str], bool]


@dataclass(frozen=True)
class ConditionResult:
    condition: Condition
    value: Any
    held: bool

    def describe(self) -> str:
        return f"{self.condition.field} = {show_value(self.condition.field, self.value)} ({self.condition.describe()})"


@dataclass(frozen=True)
class Verdict:
    rule: EventRule
    matched: bool
    held: tuple[ConditionResult, ...]  # `when` conditions that held
    failed: tuple[ConditionResult, ...]  # `when` conditions that failed, `unless` conditions that held
    severity: str | None = None  # when matched
    watchlisted: bool = False

    @property
    def near_miss(self) -> bool:
        """Failed on one condition only, and not on the event type: worth showing in `scan`."""
        return not self.matched and len(self.failed) == 1 and self.failed[0].condition.field != "type"


class EventEngine:
    def __init__(
        self,
        ruleset: RuleSet,
        worktime: WorkTime | None = None,
        watchlists: WatchlistLookup | None = None,
        indexed: bool = True,
    ):
        """indexed=False: `matches` is the plain loop (matches_reference), every rule judged."""
        self.index = RuleIndex.of(ruleset)
        self.rules = self.index.rules
        self.worktime = worktime or WorkTime()
        self.watchlists = watchlists
        self.indexed = indexed
        self._getters = self.index.getters
        self._by_type = self.index.by_type
        self._untyped = self.index.untyped
        self._lookups = self.index.lookups

    def watchlist_values(self, events: list[Event]) -> dict[str, set[str]]:
        """The values judging these events may look up, by watchlist: the field of a rule's
        `watchlist` and of its `in_watchlist` tests, for the rules each event's type can meet. The
        collector asks the database for all of them at once instead of one value at a time."""
        wanted: dict[str, set[str]] = {}
        for event in events:
            for rule in self._by_type.get(event.type, self._untyped):
                for name, field in self._lookups[id(rule)]:
                    value = self.value(field, event)
                    if value:
                        wanted.setdefault(name, set()).add(str(value))
        return wanted

    def value(self, field: str, event: Event) -> Any:
        getter = self._getters.get(field)  # the rules' fields, resolved once
        if getter is not None:
            return getter(event, self.worktime)
        spec = field_for(field)
        return spec.get(event, self.worktime) if spec else None

    def judge(self, rule: EventRule, event: Event) -> Verdict:
        return self._judge(rule, event, {})

    def _judge(self, rule: EventRule, event: Event, values: dict) -> Verdict:
        held, failed = [], []
        for condition in rule.when:
            result = self._check(condition, event, values)
            (held if result.held else failed).append(result)
        for condition in rule.unless:
            result = self._check(condition, event, values)
            if result.held:
                failed.append(result)
        if failed:
            return Verdict(rule, False, tuple(held), tuple(failed))
        severity = severity_for_level(event.level) if rule.severity == BY_LEVEL else rule.severity
        listed = self._watchlisted(rule, event)
        return Verdict(rule, True, tuple(held), (), raise_severity(severity) if listed else severity, listed)

    def verdicts(self, event: Event) -> list[Verdict]:
        return [self.judge(rule, event) for rule in self.rules]

    def matches(self, event: Event) -> list[Verdict]:
        """The verdicts of the rules the event matches, in rule order."""
        if not self.indexed:
            return self.matches_reference(event)
        plan = self.index.plan(event)
        if plan is None:  # a key the index cannot hold (an unhashable value): the plain loop
            return self.matches_reference(event)
        found, values = [], {}
        for rule, residual in plan:
            for condition in residual:  # cheap pass first: the conditions the key did not decide
                if not self._quick(condition, event, values):
                    break
            else:
                verdict = self._judge(rule, event, values)
                if verdict.matched:
                    found.append(verdict)
        return found

    def matches_reference(self, event: Event) -> list[Verdict]:
        """The plain loop: every enabled rule judged in order, the matched verdicts kept. What
        `matches` must equal; slower (each rule's conditions are tried one by one)."""
        return [v for v in (self.judge(rule, event) for rule in self.rules) if v.matched]

    def _quick(self, condition: Condition, event: Event, values: dict) -> bool:
        """Does the condition hold? Field values are read once per event."""
        value = self._read(condition.field, event, values)
        for test in condition.tests:
            if not self._holds(test, value):
                return False
        return True

    def _read(self, field: str, event: Event, values: dict) -> Any:
        if field in values:
            return values[field]
        value = values[field] = self.value(field, event)
        return value

    def stamp(self, event: Event, policy_version: str | None) -> Event:
        """The event with the ids of the rules it matched, the highest severity, the policy version."""
        hits = self.matches(event)
        severity = max((v.severity for v in hits), key=SEVERITY_STEPS.index, default=event.severity)
        return event.replaced(rule_ids=tuple(v.rule.id for v in hits), severity=severity, policy_version=policy_version)

    def _check(self, condition: Condition, event: Event, values: dict) -> ConditionResult:
        value = self._read(condition.field, event, values)
        return ConditionResult(condition, value, all(self._holds(t, value) for t in condition.tests))

    def _holds(self, test, value: Any) -> bool:
        if test.op == "in_watchlist":  # the agent has no watchlists: nothing is on one there
            return bool(value) and self.watchlists is not None and self.watchlists(test.operand, str(value))
        return test.holds(value)

    def _watchlisted(self, rule: EventRule, event: Event) -> bool:
        if rule.watchlist is None or self.watchlists is None:
            return False
        value = self.value(rule.watchlist.field, event)
        return bool(value) and self.watchlists(rule.watchlist.name, str(value))


def show_value(field: str, value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    spec = field_for(field)
    if spec is not None and spec.unit == "bytes" and isinstance(value, (int, float)):
        return format_bytes(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _event_types(rule: EventRule) -> frozenset[str] | None:
    """The event types a rule can match, when its `type` condition is an equality or a list."""
    for condition in rule.when:
        if condition.field == "type":
            for test in condition.tests:
                if test.op == "eq":
                    return frozenset((test.operand,))
                if test.op == "in":
                    return frozenset(test.operand)
    return None


# Fields whose value follows from the index key: the event's type (and so its place), egress kind
# and level; `detections.<detector>` and `uninspectable` follow from it when the detectors they
# count are absent (the count is 0).
_KEY_FIELDS = frozenset({"type", "place", "egress", "level"})
_DETECTIONS = "detections."
_NO_DETECTORS: frozenset[str] = frozenset()
PLAN_LIMIT = 4096  # keys one index remembers (agents send few: types x kinds x levels x detector sets)

# the rules an event of one key can match, in rule order, each with the `when` conditions the key
# did not decide
Plan = tuple[tuple[EventRule, tuple[Condition, ...]], ...]


class RuleIndex:
    """The enabled rules of one rule set, grouped so an event meets only the rules it can match.

    Built once per rule set (RuleIndex.of keeps it while the rule set lives: the collector makes
    an engine for every batch). Rules are grouped by the event types their `type` condition
    names; an event's plan, worked out the first time its key (type, egress kind, level, the
    detectors it carries) is seen, drops the rules whose conditions on those fields fail (or whose
    `unless` on them holds) and keeps the rest in order with their other conditions.
    """

    _cache: dict[int, tuple[weakref.ref, RuleIndex]] = {}
    _cache_lock = threading.Lock()

    def __init__(self, ruleset: RuleSet):
        self.rules = tuple(r for r in ruleset.event_rules if r.enabled)
        # fields resolved once
        self.getters = {c.field: field_for(c.field).get for r in self.rules for c in (*r.when, *r.unless)}
        untyped = [r for r in self.rules if _event_types(r) is None]
        self.untyped = tuple(untyped)
        self.by_type: dict[str, tuple[EventRule, ...]] = {}
        for event_type in {t for r in self.rules for t in (_event_types(r) or ())}:
            # in rule order: rules of this type plus the rules that name no type
            self.by_type[event_type] = tuple(
                r for r in self.rules if r in untyped or event_type in (_event_types(r) or ())
            )
        # (watchlist, field) pairs each rule may look up: its `watchlist` and its `in_watchlist` tests
        self.lookups = {
            id(r): ([(r.watchlist.name, r.watchlist.field)] if r.watchlist else [])
            + [(t.operand, c.field) for c in (*r.when, *r.unless) for t in c.tests if t.op == "in_watchlist"]
            for r in self.rules
        }
        self._plans: dict[tuple, Plan] = {}
        self._worktime = WorkTime()  # the key's fields do not read the time

    @classmethod
    def of(cls, ruleset: RuleSet) -> RuleIndex:
        """The index of this rule set, built on first use and kept while the rule set lives."""
        key = id(ruleset)
        with cls._cache_lock:
            entry = cls._cache.get(key)
            if entry is not None and entry[0]() is ruleset:
                return entry[1]
        index = cls(ruleset)

        def forget(ref: weakref.ref, key: int = key) -> None:
            with cls._cache_lock:
                if cls._cache.get(key, (None,))[0] is ref:
                    del cls._cache[key]

        with cls._cache_lock:
            cls._cache[key] = (weakref.ref(ruleset, forget), index)
        return index

    def plan(self, event: Event) -> Plan | None:
        """The rules this event can match with the conditions left to test; None when the
        event's key cannot be held (a value that is not hashable)."""
        detections = event.detections
        key = (
            event.type,
            event.egress,
            event.level,
            frozenset([d.detector for d in detections]) if detections else _NO_DETECTORS,
        )
        try:
            plan = self._plans.get(key)
        except TypeError:
            return None
        if plan is None:
            plan = self._make_plan(event, key[3])
            if len(self._plans) < PLAN_LIMIT:
                self._plans[key] = plan
        return plan

    def _make_plan(self, event: Event, detectors: frozenset[str]) -> Plan:
        plan = []
        for rule in self.by_type.get(event.type, self.untyped):
            residual = []
            possible = True
            for condition in rule.when:
                if not self._decided(condition, detectors):
                    residual.append(condition)
                elif not self._holds(condition, event):
                    possible = False
                    break
            if possible and any(self._decided(c, detectors) and self._holds(c, event) for c in rule.unless):
                possible = False
            if possible:
                plan.append((rule, tuple(residual)))
        return tuple(plan)

    def _decided(self, condition: Condition, detectors: frozenset[str]) -> bool:
        """Does the key alone decide the condition (the same for every event of the key)?"""
        if any(t.op == "in_watchlist" for t in condition.tests):  # the engine's watchlists decide
            return False
        name = condition.field
        if name in _KEY_FIELDS:
            return True
        if name.startswith(_DETECTIONS):
            return name[len(_DETECTIONS) :] not in detectors
        if name == "uninspectable":
            return detectors.isdisjoint(BLIND_SPOTS)
        return False

    def _holds(self, condition: Condition, event: Event) -> bool:
        value = self.getters[condition.field](event, self._worktime)
        return all(t.holds(value) for t in condition.tests)
