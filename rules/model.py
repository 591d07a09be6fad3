"""The rule model: typed, immutable rules as the loader builds them from YAML.

An event rule looks at one event (it runs on the agent, and again on the collector for the
alert); a correlation rule looks across events (counts in a window, sequences, absence) and runs
on the collector only.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.operators import Test

CATEGORIES: dict[str, str] = {
    "classified-egress": "classified content written to an egress place",
    "marked-egress": "a document bearing a trade-secret marking written to egress",
    "state-secret-marking": "a state-secret mark found in watched files",
    "personal-data-egress": "one file with many valid personal identifiers written to egress",
    "bulk-egress": "one user moves many classified files or bytes to egress within a window",
    "mass-deletion": "many deletions or renames in classified folders within a window",
    "off-hours": "core material opened or changed outside working hours",
    "unknown-device": "removable media not on the allow-list mounted",
    "agent-offline": "no heartbeat for a while",
    "agent-tamper": "agent stopped, its config or rules changed locally, or a gap in its events",
    "agent-health": "the agent works but something about it is off, such as its clock",
    "uninspectable-egress": "a file the agent could not see into written to an egress place",
    "classified-read": "a network application (browser, IM, mail, cloud drive, transfer tool) read a classified file",
}
SEVERITY_STEPS: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
BY_LEVEL = "by-level"


def raise_severity(severity: str) -> str:
    """One step up (a watchlist hit); critical stays critical."""
    i = SEVERITY_STEPS.index(severity)
    return SEVERITY_STEPS[min(i + 1, len(SEVERITY_STEPS) - 1)]


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    col: int


@dataclass(frozen=True)
class Condition:
    field: str
    tests: tuple[Test, ...]  # all must hold

    def describe(self) -> str:
        return f"{self.field} " + " and ".join(t.describe() for t in self.tests)


@dataclass(frozen=True)
class Watchlist:
    name: str  # a watchlist kept on the collector, e.g. "departing"
    field: str = "user"  # which event field is looked up in it


@dataclass(frozen=True)
class EventRule:
    id: str
    title: str
    category: str
    severity: str  # a severity, or "by-level"
    when: tuple[Condition, ...]  # all must hold
    unless: tuple[Condition, ...] = ()  # none may hold
    description: str = ""
    title_zh: str = ""  # the title and description in Chinese (title_zh, description_zh in the rule file)
    description_zh: str = ""
    enabled: bool = True
    alert: bool = True  # false: a building block that only feeds correlation rules
    watchlist: Watchlist | None = None
    where: Location | None = None

    def title_in(self, lang: str) -> str:
        return self.title_zh if lang == "zh" and self.title_zh else self.title

    def description_in(self, lang: str) -> str:
        return self.description_zh if lang == "zh" and self.description_zh else self.description

    # alert lifecycle on the collector (server/alerts.py): repeats for the same group within the
    # dedup window update one alert; after it is closed, repeats within `suppress_s` raise nothing
    group_by: tuple[str, ...] = ()  # empty: the category's default group (server.alerts.DEFAULT_GROUPS)
    dedup_s: float | None = None  # None: the default window (server.alerts.DEFAULT_DEDUP_S); 0: every match alerts
    suppress_s: float = 0.0


@dataclass(frozen=True)
class Threshold:
    kind: str  # count | distinct | sum
    field: str | None  # for distinct and sum
    tests: tuple[Test, ...]

    def describe(self) -> str:
        subject = {"count": "events", "distinct": f"distinct {self.field}", "sum": f"total {self.field}"}[self.kind]
        return f"{subject} " + " and ".join(t.describe() for t in self.tests)


@dataclass(frozen=True)
class CorrelationRule:
    id: str
    title: str
    category: str
    severity: str
    kind: str  # threshold | sequence | absence
    rules: tuple[str, ...] = ()  # threshold: the event rules whose hits count; sequence: the steps in order
    group_by: tuple[str, ...] = ()
    window_s: float = 0.0
    thresholds: tuple[Threshold, ...] = ()
    require: str = "any"  # any | all of the thresholds
    absence_s: float | None = None  # absence: no heartbeat for this long (None: the server's agent_offline_s)
    description: str = ""
    title_zh: str = ""  # the title and description in Chinese (title_zh, description_zh in the rule file)
    description_zh: str = ""
    enabled: bool = True
    watchlist: Watchlist | None = None
    where: Location | None = None

    def title_in(self, lang: str) -> str:
        return self.title_zh if lang == "zh" and self.title_zh else self.title

    def description_in(self, lang: str) -> str:
        return self.description_zh if lang == "zh" and self.description_zh else self.description


@dataclass(frozen=True)
class RuleSet:
    event_rules: tuple[EventRule, ...] = ()
    correlation_rules: tuple[CorrelationRule, ...] = ()

    def event_rule(self, rule_id: str) -> EventRule | None:
        return next((r for r in self.event_rules if r.id == rule_id), None)

    def correlation_rule(self, rule_id: str) -> CorrelationRule | None:
        return next((r for r in self.correlation_rules if r.id == rule_id), None)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.event_rules] + [r.id for r in self.correlation_rules]
