"""Evaluating event rules: which rules an event matches, and why (or why not).

The same engine runs on the agent (to stamp events with rule ids and severity, and for
`miwei-agent scan`) and on the collector (to raise alerts with explanations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rules.events import Event
from rules.fields import field_for
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
    def __init__(self, ruleset: RuleSet, worktime: WorkTime | None = None, watchlists: WatchlistLookup | None = None):
        self.rules = tuple(r for r in ruleset.event_rules if r.enabled)
        self.worktime = worktime or WorkTime()
        self.watchlists = watchlists
        # Fields resolved once; rules indexed by the event types they can match (most rules
        # name their types), so an event is only tested against rules that could fire.
        self._getters = {c.field: field_for(c.field).get for r in self.rules for c in (*r.when, *r.unless)}
        untyped = [r for r in self.rules if _event_types(r) is None]
        self._untyped = tuple(untyped)
        self._by_type: dict[str, tuple[EventRule, ...]] = {}
        for event_type in {t for r in self.rules for t in (_event_types(r) or ())}:
            # in rule order: rules of this type plus the rules that name no type
            self._by_type[event_type] = tuple(r for r in self.rules if r in untyped or event_type in (_event_types(r) or ()))
        # (watchlist, field) pairs each rule may look up: its `watchlist` and its `in_watchlist` tests
        self._lookups = {
            id(r): ([(r.watchlist.name, r.watchlist.field)] if r.watchlist else [])
            + [(t.operand, c.field) for c in (*r.when, *r.unless) for t in c.tests if t.op == "in_watchlist"]
            for r in self.rules
        }

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
        spec = field_for(field)
        return spec.get(event, self.worktime) if spec else None

    def judge(self, rule: EventRule, event: Event) -> Verdict:
        held, failed = [], []
        for condition in rule.when:
            result = self._check(condition, event)
            (held if result.held else failed).append(result)
        for condition in rule.unless:
            result = self._check(condition, event)
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
        found, values = [], {}
        for rule in self._by_type.get(event.type, self._untyped):
            if all(self._quick(c, event, values) for c in rule.when):  # cheap pass first
                verdict = self.judge(rule, event)
                if verdict.matched:
                    found.append(verdict)
        return found

    def _quick(self, condition: Condition, event: Event, values: dict) -> bool:
        """Does the condition hold? Field values are read once per event."""
        field = condition.field
        if field not in values:
            values[field] = self._getters[field](event, self.worktime)
        value = values[field]
        return all(self._holds(t, value) for t in condition.tests)

    def stamp(self, event: Event, policy_version: str | None) -> Event:
        """The event with the ids of the rules it matched, the highest severity, the policy version."""
        hits = self.matches(event)
        severity = max((v.severity for v in hits), key=SEVERITY_STEPS.index, default=event.severity)
        return dataclasses.replace(
            event, rule_ids=tuple(v.rule.id for v in hits), severity=severity, policy_version=policy_version
        )

    def _check(self, condition: Condition, event: Event) -> ConditionResult:
        value = self.value(condition.field, event)
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
