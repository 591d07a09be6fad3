"""Lint: rules that load but are probably not what their author meant. Warnings, not errors."""

from __future__ import annotations

from rules.errors import LocatedError
from rules.model import BY_LEVEL, CATEGORIES, CorrelationRule, EventRule, RuleSet


def lint(ruleset: RuleSet) -> list[LocatedError]:
    """Every warning for a rule set that loaded without errors."""
    warnings: list[LocatedError] = []
    for rule in ruleset.event_rules:
        warnings += _lint_event_rule(rule)
    disabled = {r.id for r in ruleset.event_rules if not r.enabled}
    for rule in ruleset.correlation_rules:
        if rule.category not in CATEGORIES:
            warnings.append(_at(rule, "category", f"'{rule.category}' is not a standard category", "custom categories work, but no console view groups them"))
        for ref in rule.rules:
            if ref in disabled and rule.enabled:
                warnings.append(_at(rule, "correlate", f"counts '{ref}', which is disabled", "it will never fire"))
    return warnings


def _lint_event_rule(rule: EventRule) -> list[LocatedError]:
    found = []
    fields = {c.field for c in rule.when}
    if rule.category not in CATEGORIES:
        found.append(_at(rule, "category", f"'{rule.category}' is not a standard category", "custom categories work, but no console view groups them"))
    if "type" not in fields:
        found.append(_at(rule, "when", "no 'type' condition: the rule is tested on every event", "e.g. type: egress.file"))
    if rule.severity == BY_LEVEL and "level" not in fields:
        found.append(_at(rule, "severity", "by-level without a 'level' condition: unclassified events get severity info"))
    return found


def _at(rule: EventRule | CorrelationRule, key: str, message: str, hint: str = "") -> LocatedError:
    where = rule.where
    return LocatedError(where.file if where else "?", where.line if where else 0, where.col if where else 0, f"{rule.id}.{key}", message, hint)
