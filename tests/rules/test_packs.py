"""The default packs: every event rule fires on what it is for and stays quiet otherwise.

Correlation rules are exercised by the collector's tests; here they are only checked to load with
the kind, window and thresholds the design names.
"""

from __future__ import annotations

from datetime import date

import pytest

from rules.engine import EventEngine
from rules.events import Detection, Event, Match, Media
from rules.lint import lint
from rules.loader import default_pack_sources, load_rule_sources
from rules.model import BY_LEVEL, CATEGORIES, EventRule
from rules.worktime import WorkTime

PACKS = load_rule_sources(default_pack_sources())

# 2024-05-06 is a Monday; Shanghai is UTC+8.
MON_10 = "2024-05-06T02:00:00Z"
MON_0829 = "2024-05-06T00:29:00Z"
MON_18 = "2024-05-06T10:00:00Z"
MON_22 = "2024-05-06T14:00:00Z"
SAT_10 = "2024-05-11T02:00:00Z"
SUN_03 = "2024-05-11T19:00:00Z"  # Sunday 03:00 in Shanghai, still Saturday in UTC
HOLIDAY_10 = "2024-10-02T02:00:00Z"  # Wednesday of National Day
MAKEUP_SAT_10 = "2024-10-12T02:00:00Z"  # Saturday make-up workday (调休)
NATIONAL_DAY = WorkTime(holidays=tuple(date(2024, 10, d) for d in range(1, 8)), workdays=(date(2024, 10, 12),))

USB = Media("/media/alice/KINGSTON", "/dev/sdb1", "vfat", "KINGSTON", "AA00000000012345", "Kingston", "DataTraveler")


def lists(name: str, value: str) -> bool:
    """The collector's watchlists in these tests."""
    # allowed-devices is asked about media.identity (vendor_id:product_id:serial, lower case)
    return value in {"departing": {"bob"}, "allowed-devices": {"::aa00000000012345"}}.get(name, set())


def egress(level=None, method=None, ts=MON_10, user="alice", kind="removable", size=1024, **values) -> Event:
    return Event(
        type="egress.file",
        ts=ts,
        user=user,
        path="/media/alice/KINGSTON/x.dwg",
        size=size,
        level=level,
        match=Match(method, 1.0 if method == "exact" else 0.8) if method else None,
        egress=kind,
        **values,
    )


def found(*pairs: tuple[str, int], type_: str = "egress.file", ts: str = MON_10) -> Event:
    return Event(
        type=type_, ts=ts, user="alice", path="/media/u/list.xlsx", detections=tuple(Detection(d, n) for d, n in pairs)
    )


def classified(type_: str, level: str | None = "core", ts: str = MON_22) -> Event:
    return Event(type=type_, ts=ts, user="alice", path="/srv/rnd/drawings/a.dwg", level=level)


def agent(type_: str, ts: str = MON_10, **details) -> Event:
    return Event(type=type_, ts=ts, details=details or None)


def mounted(serial: str, type_: str = "media.mounted", **media) -> Event:
    return Event(type=type_, ts=MON_10, media=Media("/media/u", serial=serial, **media), egress="removable")


# (rule, event, severity, worktime, watchlists): each must make the rule fire with that severity
FIRES = [
    ("MW-STATE-SECRET-MENTION", found(("state_secret_mention", 1)), "medium", None, None),
    ("MW-EGRESS-UNINSPECTABLE-REMOVABLE", egress(detections=(Detection("vanished", 1),)), "high", None, None),
    ("MW-EGRESS-UNINSPECTABLE-REMOVABLE", egress(detections=(Detection("archive_encrypted", 1),)), "high", None, None),
    ("MW-EGRESS-UNINSPECTABLE-REMOVABLE", egress(detections=(Detection("inspection_timeout", 1),), user="bob"), "critical", None, lists),
    ("MW-EGRESS-UNINSPECTABLE-LARGE", egress(kind="sync", size=200 << 20, detections=(Detection("unreadable", 1),)), "high", None, None),
    ("MW-EGRESS-UNINSPECTABLE", egress(kind="sync", detections=(Detection("archive_member_skipped", 2),)), "medium", None, None),
    ("MW-EGRESS-UNINSPECTABLE", egress(kind="share", detections=(Detection("parse_error", 1),)), "medium", None, None),
    ("MW-AGENT-BLIND", Event(type="agent.error", ts=MON_10, detections=(Detection("unwalkable", 1),)), "high", None, None),
    # classified-egress: by level, every match method, every egress kind
    ("MW-EGRESS-CLASSIFIED", egress("core", "exact"), "critical", None, None),
    ("MW-EGRESS-CLASSIFIED", egress("important", "exact"), "high", None, None),
    ("MW-EGRESS-CLASSIFIED", egress("general", "exact"), "medium", None, None),
    ("MW-EGRESS-CLASSIFIED", egress("internal", "exact"), "low", None, None),
    ("MW-EGRESS-CLASSIFIED", egress("core", "archive"), "critical", None, None),
    ("MW-EGRESS-CLASSIFIED", egress("core", "partial"), "critical", None, None),
    ("MW-EGRESS-CLASSIFIED", egress("general", "partial", kind="sync"), "medium", None, None),
    ("MW-EGRESS-CLASSIFIED", egress("general", "exact", kind="share"), "medium", None, None),
    ("MW-EGRESS-CLASSIFIED", egress("general", "exact", kind="folder"), "medium", None, None),
    ("MW-EGRESS-CLASSIFIED", egress("important", "exact", ts=MON_22), "high", None, None),  # at any hour
    ("MW-EGRESS-CLASSIFIED", egress("important", "exact", user="bob"), "critical", None, lists),  # departing
    ("MW-EGRESS-CLASSIFIED", egress("internal", "exact", user="bob"), "medium", None, lists),
    ("MW-EGRESS-CLASSIFIED", egress("core", "exact", user="bob"), "critical", None, lists),
    ("MW-EGRESS-CLASSIFIED", egress("important", "exact", user="bob"), "high", None, None),  # the agent: no lists
    # marked-egress
    ("MW-EGRESS-MARKED", found(("trade_secret_marking", 1)), "high", None, None),
    ("MW-EGRESS-MARKED", found(("trade_secret_marking", 3), ("cn_mobile", 2)), "high", None, None),
    (
        "MW-EGRESS-MARKED",
        Event(type="egress.file", ts=MON_10, user="bob", detections=(Detection("trade_secret_marking", 1),)),
        "critical",
        None,
        lists,
    ),
    # state-secret-marking
    ("MW-STATE-SECRET-MARK", found(("state_secret_marking", 1)), "critical", None, None),
    ("MW-STATE-SECRET-MARK", found(("state_secret_marking", 2), type_="file.created"), "critical", None, None),
    (
        "MW-STATE-SECRET-MARK",
        found(("state_secret_marking", 1), type_="file.modified", ts=MON_22),
        "critical",
        None,
        None,
    ),
    # personal-data-egress: at the threshold, and summed over detections of one detector
    ("MW-PII-RESIDENT-ID", found(("cn_resident_id", 10)), "high", None, None),
    ("MW-PII-RESIDENT-ID", found(("cn_resident_id", 50)), "high", None, None),
    ("MW-PII-RESIDENT-ID", found(("cn_resident_id", 5), ("cn_resident_id", 5)), "high", None, None),
    ("MW-PII-RESIDENT-ID-FEW", found(("cn_resident_id", 1)), "low", None, None),
    ("MW-PII-RESIDENT-ID-FEW", found(("cn_resident_id", 9)), "low", None, None),
    ("MW-PII-BANK-CARD", found(("bank_card", 10)), "high", None, None),
    ("MW-PII-BANK-CARD", found(("bank_card", 5000)), "high", None, None),
    ("MW-PII-BANK-CARD-FEW", found(("bank_card", 1)), "low", None, None),
    ("MW-PII-BANK-CARD-FEW", found(("bank_card", 9)), "low", None, None),
    ("MW-PII-MOBILE", found(("cn_mobile", 100)), "high", None, None),
    ("MW-PII-MOBILE-FEW", found(("cn_mobile", 10)), "low", None, None),
    ("MW-PII-MOBILE-FEW", found(("cn_mobile", 99)), "low", None, None),
    # off-hours: core material touched outside working hours
    ("MW-OFF-HOURS-CORE", classified("file.opened", ts=MON_22), "medium", None, None),
    ("MW-OFF-HOURS-CORE", classified("file.modified", ts=MON_0829), "medium", None, None),
    ("MW-OFF-HOURS-CORE", classified("file.created", ts=MON_18), "medium", None, None),
    ("MW-OFF-HOURS-CORE", classified("file.moved", ts=SAT_10), "medium", None, None),
    ("MW-OFF-HOURS-CORE", classified("file.deleted", ts=SUN_03), "medium", None, None),
    ("MW-OFF-HOURS-CORE", classified("file.opened", ts=HOLIDAY_10), "medium", NATIONAL_DAY, None),
    # mass-deletion building block: no alert of its own
    ("MW-CLASSIFIED-REMOVED", classified("file.deleted", ts=MON_10), "info", None, None),
    ("MW-CLASSIFIED-REMOVED", classified("file.moved", level=None, ts=MON_10), "info", None, None),
    # unknown-device
    ("MW-UNKNOWN-DEVICE", mounted("BB0000000000999"), "low", None, lists),
    ("MW-UNKNOWN-DEVICE", mounted(""), "low", None, lists),  # no serial: cannot be on the allow-list
    ("MW-UNKNOWN-DEVICE", mounted("AA00000000012345"), "low", None, None),  # the agent cannot tell
    # agent-tamper
    ("MW-AGENT-TAMPER", agent("agent.tamper"), "high", None, None),
    ("MW-AGENT-TAMPER", agent("agent.gap", ts=MON_22), "high", None, None),
    ("MW-AGENT-STOPPED", agent("agent.stopped"), "high", None, None),
    ("MW-AGENT-CLOCK-SKEW", agent("agent.clock_skew"), "low", None, None),
    ("MW-AGENT-STOPPED", agent("agent.stopped", ts=MAKEUP_SAT_10), "high", NATIONAL_DAY, None),
    # agent-health: a stalled pipeline (the collector's event), a kill and restart on the same boot
    ("MW-AGENT-STALLED", agent("agent.stalled", ts=MON_22), "high", None, None),
    ("MW-AGENT-KILLED", agent("agent.started", previous_stop="crash", rebooted=False), "high", None, None),
    ("MW-AGENT-KILLED", agent("agent.started", ts=SUN_03, previous_stop="crash"), "high", None, None),  # boot unknown
    # classified-read: a network application read a classified file; a departing employee one step up
    ("MW-READ-CORE", Event(type="classified.read", ts=MON_10, level="core", details={"app": "Firefox"}), "high", None, None),
    ("MW-READ-CORE", Event(type="classified.read", ts=MON_22, level="core", user="bob"), "critical", None, lists),
    ("MW-READ-IMPORTANT", Event(type="classified.read", ts=MON_10, level="important", details={"app": "WeChat"}), "medium", None, None),
    # rules/packs/channels.yaml: a found IM or cloud-drive folder overlapping a classified folder
    ("MW-CLASSIFIED-IN-APP-FOLDER", Event(type="agent.error", ts=MON_10, error="the Dropbox folder '/home/a/Dropbox' overlaps the classified or state folder '/rnd'", details={"app": "Dropbox"}), "high", None, None),
]

# (rule, event, worktime, watchlists): the rule must not fire
MISSES = [
    ("MW-STATE-SECRET-MENTION", found(("state_secret_marking", 1)), None, None),
    ("MW-EGRESS-UNINSPECTABLE-REMOVABLE", egress(detections=(Detection("trade_secret_marking", 1),)), None, None),
    ("MW-EGRESS-UNINSPECTABLE-REMOVABLE", egress(kind="sync", detections=(Detection("vanished", 1),)), None, None),
    ("MW-EGRESS-UNINSPECTABLE-LARGE", egress(kind="sync", size=200 << 20), None, None),
    ("MW-EGRESS-UNINSPECTABLE-LARGE", egress(size=200 << 20, detections=(Detection("vanished", 1),)), None, None),  # removable: its own rule
    ("MW-EGRESS-UNINSPECTABLE", egress(detections=(Detection("vanished", 1),)), None, None),  # removable: high, not this
    ("MW-EGRESS-UNINSPECTABLE", egress(kind="sync", size=200 << 20, detections=(Detection("vanished", 1),)), None, None),
    ("MW-EGRESS-UNINSPECTABLE", egress(kind="sync", detections=(Detection("cn_mobile", 300),)), None, None),
    ("MW-AGENT-BLIND", Event(type="agent.error", ts=MON_10, error="pipeline step failed"), None, None),
    ("MW-EGRESS-CLASSIFIED", egress(None, None), None, None),  # unclassified content
    ("MW-EGRESS-CLASSIFIED", egress(None, "exact"), None, None),
    ("MW-EGRESS-CLASSIFIED", egress("core", None), None, None),  # a level without a match is not a trace
    ("MW-EGRESS-CLASSIFIED", classified("file.created"), None, None),
    ("MW-EGRESS-CLASSIFIED", Event(type="file.moved", ts=MON_10, level="core", match=Match("exact")), None, None),
    ("MW-EGRESS-MARKED", found(("trade_secret_marking", 0)), None, None),
    ("MW-EGRESS-MARKED", found(("state_secret_marking", 1)), None, None),
    ("MW-EGRESS-MARKED", found(("trade_secret_marking", 1), type_="file.created"), None, None),
    ("MW-STATE-SECRET-MARK", found(("trade_secret_marking", 5)), None, None),
    ("MW-STATE-SECRET-MARK", found(("state_secret_marking", 1), type_="file.opened"), None, None),
    ("MW-STATE-SECRET-MARK", found(("state_secret_marking", 1), type_="media.mounted"), None, None),
    ("MW-PII-RESIDENT-ID", found(("cn_resident_id", 9)), None, None),
    ("MW-PII-RESIDENT-ID", found(("cn_resident_id", 6), ("bank_card", 6)), None, None),  # counts per detector
    ("MW-PII-RESIDENT-ID", found(("cn_resident_id", 500), type_="file.created"), None, None),  # not leaving
    ("MW-PII-RESIDENT-ID-FEW", found(("cn_resident_id", 10)), None, None),  # the high tier's
    ("MW-PII-RESIDENT-ID-FEW", found(("bank_card", 3)), None, None),
    ("MW-PII-RESIDENT-ID-FEW", found(("cn_resident_id", 3), type_="file.modified"), None, None),
    ("MW-PII-BANK-CARD", found(("bank_card", 9)), None, None),
    ("MW-PII-BANK-CARD", found(("cn_resident_id", 500)), None, None),
    ("MW-PII-BANK-CARD-FEW", found(("bank_card", 10)), None, None),
    ("MW-PII-BANK-CARD-FEW", found(("cn_mobile", 5)), None, None),
    ("MW-PII-MOBILE", found(("cn_mobile", 99)), None, None),
    ("MW-PII-MOBILE", found(("cn_mobile", 99), ("cn_resident_id", 1)), None, None),
    ("MW-PII-MOBILE-FEW", found(("cn_mobile", 9)), None, None),  # a signature, a business card
    ("MW-PII-MOBILE-FEW", found(("cn_mobile", 100)), None, None),
    ("MW-OFF-HOURS-CORE", classified("file.opened", ts=MON_10), None, None),  # working hours
    ("MW-OFF-HOURS-CORE", classified("file.modified", ts="2024-05-06T00:30:00Z"), None, None),  # 08:30 sharp
    ("MW-OFF-HOURS-CORE", classified("file.opened", level="important", ts=MON_22), None, None),
    ("MW-OFF-HOURS-CORE", classified("file.opened", level=None, ts=MON_22), None, None),
    ("MW-OFF-HOURS-CORE", egress("core", "exact", ts=MON_22), None, None),  # egress is another category
    ("MW-OFF-HOURS-CORE", classified("file.opened", ts=MAKEUP_SAT_10), NATIONAL_DAY, None),  # 调休: a working day
    ("MW-CLASSIFIED-REMOVED", classified("file.created", ts=MON_10), None, None),
    ("MW-CLASSIFIED-REMOVED", classified("file.modified", ts=MON_10), None, None),
    ("MW-CLASSIFIED-REMOVED", egress("core", "exact"), None, None),
    ("MW-UNKNOWN-DEVICE", mounted("AA00000000012345"), None, lists),  # on the allow-list
    ("MW-UNKNOWN-DEVICE", mounted("BB0000000000999", "media.unmounted"), None, lists),
    ("MW-UNKNOWN-DEVICE", egress("core", "exact", media=USB), None, lists),
    ("MW-UNKNOWN-DEVICE", mounted("", fstype="cifs", device="//nas/share"), None, lists),  # a share is no device
    ("MW-UNKNOWN-DEVICE", mounted("X1", bus="nvme", removable=False), None, lists),  # an internal disk
    ("MW-AGENT-TAMPER", agent("agent.stopped"), None, None),
    ("MW-AGENT-TAMPER", agent("agent.error"), None, None),
    ("MW-AGENT-TAMPER", agent("agent.overflow"), None, None),
    ("MW-AGENT-STOPPED", agent("agent.stopped", ts=MON_22), None, None),  # shut down in the evening
    ("MW-AGENT-STOPPED", agent("agent.stopped", ts=SAT_10), None, None),
    ("MW-AGENT-STOPPED", agent("agent.stopped", ts=HOLIDAY_10), NATIONAL_DAY, None),
    ("MW-AGENT-STOPPED", agent("agent.started"), None, None),
    ("MW-AGENT-CLOCK-SKEW", agent("agent.tamper"), None, None),
    ("MW-AGENT-STALLED", agent("agent.error"), None, None),
    ("MW-AGENT-KILLED", agent("agent.started", previous_stop="clean", rebooted=False), None, None),
    ("MW-AGENT-KILLED", agent("agent.started", previous_stop="none"), None, None),  # a first run
    ("MW-AGENT-KILLED", agent("agent.started"), None, None),  # an agent from before previous_stop
    ("MW-AGENT-KILLED", agent("agent.started", previous_stop="crash", rebooted=True), None, None),  # power lost
    ("MW-AGENT-KILLED", agent("agent.stopped", previous_stop="crash"), None, None),
    ("MW-AGENT-KILLED", agent("agent.started", previous_stop=["crash"], rebooted="no"), None, None),  # not text
    # classified-read (rules/packs/reads.yaml): general and internal do not alert, nor a file.opened
    ("MW-READ-CORE", Event(type="classified.read", ts=MON_10, level="important", details={"app": "Firefox"}), None, None),
    ("MW-READ-CORE", classified("file.opened", ts=MON_10), None, None),
    ("MW-READ-IMPORTANT", Event(type="classified.read", ts=MON_10, level="general", details={"app": "WeChat"}), None, None),
    # a linked app folder the agent did not follow, and an agent.error of no app folder: no alert
    ("MW-CLASSIFIED-IN-APP-FOLDER", Event(type="agent.error", ts=MON_10, error="the Dropbox folder '/home/a/Dropbox' is a symbolic link to '/data': not followed", details={"app": "Dropbox"}), None, None),
    ("MW-CLASSIFIED-IN-APP-FOLDER", Event(type="agent.error", ts=MON_10, error="x overlaps the classified folder"), None, None),
    ("MW-READ-IMPORTANT", Event(type="classified.read", ts=MON_10, level="core"), None, None),
]


def hits(event: Event, worktime: WorkTime | None, watchlists) -> dict[str, str]:
    return {v.rule.id: v.severity for v in EventEngine(PACKS, worktime, watchlists).matches(event)}


@pytest.mark.parametrize("rule_id, event, severity, worktime, watchlists", FIRES)
def test_default_rule_fires(rule_id, event, severity, worktime, watchlists):
    assert hits(event, worktime, watchlists).get(rule_id, "did not fire") == severity


@pytest.mark.parametrize("rule_id, event, worktime, watchlists", MISSES)
def test_default_rule_stays_quiet(rule_id, event, worktime, watchlists):
    assert rule_id not in hits(event, worktime, watchlists)


def test_every_default_event_rule_has_tests_that_fire_it_and_tests_that_must_not():
    ids = {r.id for r in PACKS.event_rules}

    assert {row[0] for row in FIRES} == ids
    assert {row[0] for row in MISSES} == ids


def test_one_egress_can_raise_several_rules():
    event = egress("core", "exact", detections=(Detection("trade_secret_marking", 1), Detection("cn_resident_id", 80)))

    assert hits(event, None, None) == {
        "MW-EGRESS-CLASSIFIED": "critical",
        "MW-EGRESS-MARKED": "high",
        "MW-PII-RESIDENT-ID": "high",
    }


def test_an_ordinary_working_day_raises_nothing():
    quiet = [
        classified("file.opened", ts=MON_10),
        classified("file.modified", level="important", ts=MON_10),
        egress(None, None, detections=(Detection("cn_mobile", 3),)),
        agent("agent.started"),
        agent("agent.error"),
        mounted("AA00000000012345", "media.unmounted"),
    ]
    for event in quiet:
        assert hits(event, None, lists) == {}, event.type


# --- the packs as a whole -------------------------------------------------------------------------


def test_the_packs_load_without_lint_warnings():
    assert [str(w) for w in lint(PACKS)] == []


def test_the_packs_are_the_yaml_files_shipped_in_rules_packs():
    assert [name for name, _ in default_pack_sources()] == [
        "packs/agent.yaml",
        "packs/channels.yaml",
        "packs/classified.yaml",
        "packs/egress.yaml",
        "packs/reads.yaml",
    ]


def test_every_category_is_raised_by_an_alerting_rule():
    alerting = [r for r in PACKS.event_rules if r.alert and r.enabled] + [
        r for r in PACKS.correlation_rules if r.enabled
    ]

    assert {r.category for r in alerting} == set(CATEGORIES)


# the alert categories and levels as rules/README.md documents them
CATEGORY_SEVERITY = {
    "classified-egress": BY_LEVEL,
    "marked-egress": "high",
    "state-secret-marking": None,  # by rule: a mark critical, a mark merely mentioned in a sentence medium
    "personal-data-egress": None,  # by volume: 10 or more identifiers high, a few low (mobiles: 10-99 low, 100+ high)
    "bulk-egress": "critical",
    "mass-deletion": "high",
    "off-hours": "medium",
    "unknown-device": "low",
    "agent-offline": "high",
    "agent-tamper": "high",
    "agent-health": None,  # by rule: clock skew low, a stall or a kill high, repeated kills critical
    "uninspectable-egress": None,  # by place and size: removable or 100 MB and more high, else medium
    "classified-read": None,  # by level: core high, important medium (a read is not proof of upload)
}


def test_every_alerting_rule_has_its_categorys_default_severity():
    assert set(CATEGORY_SEVERITY) == set(CATEGORIES)
    for rule in list(PACKS.event_rules) + list(PACKS.correlation_rules):
        if isinstance(rule, EventRule) and not rule.alert:
            continue
        assert CATEGORY_SEVERITY[rule.category] in (None, rule.severity), rule.id


def test_building_blocks_are_not_alerts():
    assert [r.id for r in PACKS.event_rules if not r.alert] == ["MW-CLASSIFIED-REMOVED"]


def test_every_default_rule_has_a_title_and_an_mw_id():
    for rule in list(PACKS.event_rules) + list(PACKS.correlation_rules):
        assert rule.id.startswith("MW-") and rule.title, rule.id
        assert rule.where is not None and rule.where.file.startswith("packs/")


def test_bulk_egress_counts_classified_egress_by_files_or_bytes():
    rule = PACKS.correlation_rule("MW-BULK-EGRESS")

    assert (rule.kind, rule.rules, rule.group_by, rule.window_s, rule.require) == (
        "threshold",
        ("MW-EGRESS-CLASSIFIED",),
        ("agent_id", "user"),
        600.0,
        "any",
    )
    count, total = rule.thresholds
    assert (count.kind, count.field, total.kind, total.field) == ("count", None, "sum", "size")
    assert [t.holds(20) for t in count.tests] == [True] and [t.holds(19) for t in count.tests] == [False]
    assert [t.holds(200 * 1024**2) for t in total.tests] == [True]
    assert [t.holds(200 * 1024**2 - 1) for t in total.tests] == [False]
    assert [t.describe() for t in rule.thresholds] == ["events ≥ 20", "total size ≥ 200 MB"]


def test_mass_deletion_counts_removals_in_classified_folders():
    rule = PACKS.correlation_rule("MW-MASS-DELETION")

    assert (rule.kind, rule.rules, rule.group_by, rule.window_s) == (
        "threshold",
        ("MW-CLASSIFIED-REMOVED",),
        ("agent_id", "user"),
        300.0,
    )
    assert [t.describe() for t in rule.thresholds] == ["events ≥ 50"]


def test_agent_offline_uses_the_collectors_agent_offline_s():
    rule = PACKS.correlation_rule("MW-AGENT-OFFLINE")

    assert (rule.kind, rule.absence_s, rule.rules, rule.window_s) == ("absence", None, (), 0.0)


def test_repeated_kills_of_one_agent_escalate_within_a_day():
    rule = PACKS.correlation_rule("MW-AGENT-KILLED-REPEATEDLY")

    assert (rule.kind, rule.rules, rule.group_by, rule.window_s, rule.severity) == (
        "threshold",
        ("MW-AGENT-KILLED",),
        ("agent_id",),
        86400.0,
        "critical",
    )
    assert [t.describe() for t in rule.thresholds] == ["events ≥ 3"]
