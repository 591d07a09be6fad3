"""The rule index (rules/engine.py RuleIndex) gives what the plain loop gives: the same verdicts in
the same order, for random events of every type against the shipped packs and hand-made rules that
use every operator, `unless`, lists (any of), several conditions (all of), negations (not_in,
not_glob, exists: false), rules naming no type and fields the event lacks."""

from __future__ import annotations

import dataclasses
import random

import pytest

from rules.engine import EventEngine, RuleIndex
from rules.events import EVENT_TYPES, MATCH_METHODS, Detection, Event, Match, Media
from rules.fields import EGRESS_KINDS
from rules.levels import LEVELS
from rules.loader import default_pack_sources, load_rule_sources
from rules.operators import OPERATORS

HAND_MADE = """
- id: T-NO-TYPE-LEVEL
  title: no type, a level
  category: classified-egress
  severity: by-level
  when:
    level: [core, important]
- id: T-EGRESS-KIND
  title: egress kinds, not a share
  category: classified-egress
  severity: medium
  watchlist: departing
  when:
    type: [egress.file, media.mounted]
    egress: {in: [removable, im, phone]}
    size: {gt: 1000, lte: 50MB}
  unless:
    egress: share
- id: T-NOT-IN
  title: not_in, not_glob, regex, contains
  category: classified-egress
  severity: low
  when:
    level: {not_in: [internal]}
    path: {not_glob: ["*.tmp", "*/cache/*"], regex: "^/(srv|media)/"}
    name: {contains: "PART"}
- id: T-ABSENT
  title: exists false, place, lt, gte
  category: classified-egress
  severity: high
  when:
    place: egress
    level: {exists: false}
    match.similarity: {exists: false}
    size: {gte: 10, lt: 5MB}
- id: T-DETECTIONS
  title: detections and blind spots
  category: personal-data-egress
  severity: critical
  when:
    detections.cn_mobile: {gte: 1}
    uninspectable: {lt: 1}
  unless:
    detections.bank_card: {gt: 0}
- id: T-BLIND
  title: blind spots unless a removable
  category: uninspectable-egress
  severity: medium
  when:
    type: {in: [egress.file, file.created, agent.error]}
    uninspectable: {gte: 1}
  unless:
    egress: {eq: removable}
    detections.vanished: {gte: 2}
- id: T-ZERO
  title: a count of zero holds (absent detectors)
  category: personal-data-egress
  severity: info
  when:
    type: egress.file
    detections.bank_card: {lte: 0}
    extension: {glob: ["d?g", "[xp]*"]}
- id: T-WATCHLIST
  title: in_watchlist on a field and in unless
  category: unknown-device
  severity: high
  when:
    type: media.mounted
    user: {in_watchlist: departing}
  unless:
    media.identity: {in_watchlist: allowed}
- id: T-TIME-APP
  title: time, app, match, media
  category: off-hours
  severity: by-level
  when:
    working_hours: false
    app: {exists: true}
    match.method: {in: [exact, partial]}
    media.portable: true
    weekday: {in: [sat, sun, mon]}
    hour: {gte: 0}
- id: T-DISABLED
  title: disabled
  category: classified-egress
  severity: high
  enabled: false
  when:
    type: egress.file
- id: T-EGRESS-NOT
  title: egress not_in with a level
  category: classified-egress
  severity: by-level
  when:
    egress: {not_in: [folder, sync]}
    level: {in: [core, general]}
    type: egress.file
- id: T-STARTED
  title: previous stop, rebooted, error
  category: agent-tamper
  severity: high
  when:
    type: agent.started
    previous_stop: {in: [crash, none]}
    error: {exists: false}
  unless:
    rebooted: true
"""

DETECTORS = (
    "cn_mobile",
    "bank_card",
    "cn_resident_id",
    "trade_secret_marking",
    "state_secret_marking",
    "vanished",
    "unwalkable",
    "parse_error",
)
APPS = ("WeChat", "Baidu Netdisk", "HP LaserJet")


def _ruleset():
    return load_rule_sources([*default_pack_sources(), ("hand.yaml", HAND_MADE)])


def test_the_hand_made_rules_use_every_operator():
    ops = {
        t.op
        for r in load_rule_sources([("hand.yaml", HAND_MADE)]).event_rules
        for c in (*r.when, *r.unless)
        for t in c.tests
    }
    assert ops == set(OPERATORS)


def _maybe(rng: random.Random, value, p: float = 0.5):
    return value if rng.random() < p else None


def random_event(rng: random.Random) -> Event:
    """An event of any type with any of its fields missing: odd mixes too (a level on agent.error)."""
    paths = (
        "/srv/rnd/PART-7.dwg",
        "/media/usb/cache/x.tmp",
        "/home/a/PARTS/b.pdf",
        "C:\\d\\PART.xlsx",
        "/media/k/p.dxf",
    )
    media = Media(
        mountpoint="/media/usb",
        device=rng.choice(("/dev/sdb1", "//nas/share", "nas:/x")),
        fstype=rng.choice(("vfat", "nfs", "")),
        serial=rng.choice(("", "60A4")),
        vendor_id="0951",
        bus=rng.choice(("usb", "nvme", "")),
        removable=rng.choice((True, False, None)),
    )
    detections = tuple(
        Detection(d, rng.choice((0, 1, 2, 9, 10, 150))) for d in rng.sample(DETECTORS, rng.choice((0, 0, 0, 1, 2, 3)))
    )
    details = rng.choice(
        (
            None,
            {},
            {"app": rng.choice(APPS)},
            {"app": 5},
            {"previous_stop": rng.choice(("crash", "clean", "none")), "rebooted": rng.choice((True, False))},
        )
    )
    return Event(
        type=rng.choice(tuple(EVENT_TYPES)),
        ts=f"2024-05-{rng.randint(4, 12):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
        user=rng.choice(("alice", "bob", "")),
        path=_maybe(rng, rng.choice(paths), 0.8),
        size=_maybe(rng, rng.choice((0, 10, 1001, 4 << 20, 60 << 20, 200 << 20))),
        level=_maybe(rng, rng.choice(LEVELS), 0.6),
        match=_maybe(rng, Match(rng.choice(MATCH_METHODS), rng.choice((1.0, 0.4))), 0.4),
        media=_maybe(rng, media, 0.4),
        egress=_maybe(rng, rng.choice(EGRESS_KINDS), 0.6),
        detections=detections,
        error=_maybe(rng, "the folder overlaps the classified folders", 0.2),
        details=details,
    )


def _watchlists(name: str, value: str) -> bool:
    return (name, value) in {("departing", "alice"), ("allowed", "0951::60a4")}


def first_difference(engine: EventEngine, events: list[Event]) -> tuple[Event, list, list] | None:
    reference = EventEngine.__new__(EventEngine)
    reference.__dict__.update(engine.__dict__, indexed=False)
    for event in events:
        indexed, plain = engine.matches(event), reference.matches(event)
        if indexed != plain:
            return event, [v.rule.id for v in indexed], [v.rule.id for v in plain]
    return None


@pytest.mark.parametrize("watchlists", [None, _watchlists], ids=["agent", "collector"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_index_gives_the_plain_loops_verdicts_in_order(seed, watchlists):
    rng = random.Random(seed)
    events = [random_event(rng) for _ in range(1500)]
    engine = EventEngine(_ruleset(), watchlists=watchlists)
    assert first_difference(engine, events) is None
    matched = [v for e in events for v in engine.matches(e)]
    # the mix reaches most rules, so the comparison is not between empty lists
    assert len({v.rule.id for v in matched}) >= 20 and len(matched) > 300


def test_the_plain_loop_is_selectable_and_an_event_meets_fewer_rules_through_the_index():
    ruleset = _ruleset()
    plain = EventEngine(ruleset, indexed=False)
    event = Event(
        type="egress.file",
        level="core",
        egress="removable",
        size=2000,
        path="/media/usb/PART-1.dwg",
        match=Match("exact"),
    )
    assert [v.rule.id for v in plain.matches(event)] == [v.rule.id for v in EventEngine(ruleset).matches(event)]
    assert [v.rule.id for v in plain.matches(event)] == [v.rule.id for v in plain.matches_reference(event)]
    assert "MW-EGRESS-CLASSIFIED" in [v.rule.id for v in plain.matches(event)]
    plan = RuleIndex.of(ruleset).plan(event)
    # the PII, marking and blind-spot rules are dropped
    assert len(plan) < len(RuleIndex.of(ruleset).by_type["egress.file"]) / 2
    assert RuleIndex.of(ruleset) is EventEngine(ruleset).index  # built once per rule set


def test_an_unhashable_value_falls_back_to_the_plain_loop():
    engine = EventEngine(_ruleset())
    event = Event(type="egress.file", level="core", egress=["removable"], match=Match("exact"))  # type: ignore[arg-type]
    assert engine.index.plan(event) is None
    for matches in (engine.matches, engine.matches_reference):  # both fail alike (the collector's models refuse it)
        with pytest.raises(TypeError, match="unhashable"):
            matches(event)


@pytest.mark.parametrize(
    "broken",
    [
        # the size is not in the key: deciding it from the first event of a key is wrong
        lambda decided: lambda self, c, d: c.field == "size" or decided(self, c, d),
        # a detector's count decided although the event carries it
        lambda decided: lambda self, c, d: c.field.startswith("detections.") or decided(self, c, d),
        # `uninspectable` decided whatever blind spots the event carries
        lambda decided: lambda self, c, d: c.field == "uninspectable" or decided(self, c, d),
    ],
    ids=["size", "detections", "uninspectable"],
)
def test_the_comparison_catches_a_broken_index(monkeypatch, broken):
    monkeypatch.setattr(RuleIndex, "_decided", broken(RuleIndex._decided))
    rng = random.Random(1)
    events = [random_event(rng) for _ in range(3000)]
    assert first_difference(EventEngine(dataclasses.replace(_ruleset())), events) is not None


def test_a_plan_out_of_rule_order_is_caught(monkeypatch):
    make_plan = RuleIndex._make_plan
    monkeypatch.setattr(RuleIndex, "_make_plan", lambda self, e, d: tuple(reversed(make_plan(self, e, d))))
    rng = random.Random(2)
    assert (
        first_difference(EventEngine(dataclasses.replace(_ruleset())), [random_event(rng) for _ in range(3000)])
        is not None
    )


def test_stamp_gives_what_replace_gave():
    engine = EventEngine(_ruleset())
    rng = random.Random(5)
    for event in (random_event(rng) for _ in range(300)):
        hits = engine.matches_reference(event)
        severities = ("info", "low", "medium", "high", "critical")
        severity = max((v.severity for v in hits), key=severities.index, default=event.severity)
        expected = dataclasses.replace(
            event, rule_ids=tuple(v.rule.id for v in hits), severity=severity, policy_version="v3"
        )
        assert engine.stamp(event, "v3") == expected
