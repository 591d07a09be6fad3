"""The event engine: fields read from events, working time, severities, watchlists, explanations."""

from __future__ import annotations

from datetime import date, time

import pytest

from rules.engine import EventEngine, show_value
from rules.events import Detection, Event, Match, Media
from rules.explain import describe_event
from rules.loader import load_rule_sources
from rules.model import raise_severity
from rules.worktime import WorkTime, check_timezone, parse_hours

# 2024-05-06 is a Monday. Shanghai is UTC+8 all year (no daylight saving).
MON_10_SH = "2024-05-06T02:00:00Z"  # Monday 10:00 in Shanghai
MON_22_SH = "2024-05-06T14:00:00Z"  # Monday 22:00
SAT_10_SH = "2024-05-11T02:00:00Z"  # Saturday 10:00

NATIONAL_DAY = WorkTime(
    holidays=tuple(date(2024, 10, d) for d in range(1, 8)),  # 国庆: 1-7 October 2024
    workdays=(date(2024, 9, 29), date(2024, 10, 12)),  # 调休: Sunday 29 September, Saturday 12 October
)


def engine_for(text: str, worktime: WorkTime | None = None, watchlists=None) -> EventEngine:
    return EventEngine(load_rule_sources([("rules.yaml", text)]), worktime, watchlists)


def rule(rule_id: str, when: str, severity: str = "high", extra: str = "") -> str:
    body = "".join(f"    {line}\n" for line in when.splitlines())
    return f"- id: {rule_id}\n  title: {rule_id}\n  category: classified-egress\n  severity: {severity}\n{extra}  when:\n{body}"


def egress(**values) -> Event:
    return Event(type="egress.file", ts=MON_10_SH, **values)


# --- fields -------------------------------------------------------------------------------------

USB = Media(
    mountpoint="/media/alice/KINGSTON",
    device="/dev/sdb1",
    fstype="vfat",
    label="KINGSTON",
    serial="AA00000000012345",
    vendor="Kingston",
    model="DataTraveler 3.0",
)
FULL = Event(
    type="egress.file",
    ts=MON_22_SH,
    agent_id="agent-1",
    host="pc-07",
    user="alice",
    path="/media/alice/KINGSTON/Backup/总装图.Final.DWG",
    dest_path="/media/alice/KINGSTON/b.dwg",
    size=3 * 1024**2,
    sha256="ab" * 32,
    level="core",
    source_path="/srv/rnd/drawings/总装图.dwg",
    register_entry="Product drawings",
    match=Match("partial", 0.83),
    media=USB,
    egress="removable",
    file_type="dwg",
    type_mismatch=False,
    detections=(Detection("cn_resident_id", 40), Detection("cn_resident_id", 12), Detection("bank_card", 3)),
    error=None,
)


@pytest.mark.parametrize(
    "field, value",
    [
        ("type", "egress.file"),
        ("place", "egress"),
        ("egress", "removable"),
        ("level", "core"),
        ("match.method", "partial"),
        ("match.similarity", 0.83),
        ("file_type", "dwg"),
        ("type_mismatch", False),
        ("size", 3 * 1024**2),
        ("path", "/media/alice/KINGSTON/Backup/总装图.Final.DWG"),
        ("name", "总装图.Final.DWG"),
        ("extension", "dwg"),
        ("source_path", "/srv/rnd/drawings/总装图.dwg"),
        ("dest_path", "/media/alice/KINGSTON/b.dwg"),
        ("register_entry", "Product drawings"),
        ("sha256", "ab" * 32),
        ("error", None),
        ("user", "alice"),
        ("host", "pc-07"),
        ("agent_id", "agent-1"),
        ("media.mountpoint", "/media/alice/KINGSTON"),
        ("media.device", "/dev/sdb1"),
        ("media.fstype", "vfat"),
        ("media.label", "KINGSTON"),
        ("media.serial", "AA00000000012345"),
        ("media.vendor", "Kingston"),
        ("media.model", "DataTraveler 3.0"),
        ("hour", 22),
        ("weekday", "mon"),
        ("working_hours", False),
        ("holiday", False),
        ("detections.cn_resident_id", 52),  # summed over detections of one detector
        ("detections.bank_card", 3),
        ("detections.cn_mobile", 0),  # absent detector: a count of 0
    ],
)
def test_field_is_read_from_the_event(field, value):
    assert EventEngine(load_rule_sources([])).value(field, FULL) == value


@pytest.mark.parametrize(
    "field",
    [
        "egress",
        "level",
        "match.method",
        "match.similarity",
        "size",
        "path",
        "name",
        "extension",
        "media.serial",
        "file_type",
    ],
)
def test_field_of_a_bare_event_is_none(field):
    assert EventEngine(load_rule_sources([])).value(field, Event(type="agent.started", ts=MON_10_SH)) is None


@pytest.mark.parametrize(
    "event_type, place",
    [
        ("file.created", "classified"),
        ("file.deleted", "classified"),
        ("egress.file", "egress"),
        ("media.mounted", "egress"),
        ("agent.gap", "agent"),
    ],
)
def test_place_follows_the_event_type(event_type, place):
    assert EventEngine(load_rule_sources([])).value("place", Event(type=event_type, ts=MON_10_SH)) == place


@pytest.mark.parametrize(
    "path, name, extension",
    [
        ("/srv/a/report.PDF", "report.PDF", "pdf"),
        ("/srv/a/archive.tar.gz", "archive.tar.gz", "gz"),
        ("/srv/a/Makefile", "Makefile", ""),
        ("/srv/a/.bashrc", ".bashrc", ""),
        ("C:\\Users\\alice\\图纸.dwg", "图纸.dwg", "dwg"),
    ],
)
def test_name_and_extension_come_from_the_path(path, name, extension):
    engine = EventEngine(load_rule_sources([]))
    event = egress(path=path)

    assert (engine.value("name", event), engine.value("extension", event)) == (name, extension)


# --- working time -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ts, working",
    [
        ("2024-05-06T00:29:59Z", False),  # Monday 08:29:59 Shanghai
        ("2024-05-06T00:30:00Z", True),  # 08:30 starts the day
        ("2024-05-06T09:59:59Z", True),  # 17:59:59
        ("2024-05-06T10:00:00Z", False),  # 18:00 ends it
        ("2024-05-06T10:00:00+08:00", True),  # an offset in the time stamp is honoured
        ("2024-05-06T02:00:00", True),  # no offset: UTC
        ("2024-05-06T02:00:00.123Z", True),
        (SAT_10_SH, False),
        ("2024-05-12T02:00:00Z", False),  # Sunday
    ],
)
def test_working_hours_default_to_weekdays_0830_to_1800_in_shanghai(ts, working):
    assert WorkTime().is_working_hours(ts) is working


@pytest.mark.parametrize(
    "ts, working, holiday",
    [
        ("2024-10-01T02:00:00Z", False, True),  # Tuesday, National Day
        ("2024-10-07T02:00:00Z", False, True),  # Monday, still the holiday
        ("2024-10-08T02:00:00Z", True, False),  # Tuesday, back at work
        ("2024-09-29T02:00:00Z", True, False),  # Sunday, make-up workday (调休)
        ("2024-10-12T02:00:00Z", True, False),  # Saturday, make-up workday
        ("2024-10-12T12:00:00Z", False, False),  # Saturday 20:00: the make-up day has the usual hours
        ("2024-10-05T02:00:00Z", False, True),  # Saturday inside the holiday
        ("2024-09-30T16:30:00Z", False, True),  # 00:30 on 1 October in Shanghai, still 30 September in UTC
    ],
)
def test_holidays_and_make_up_workdays(ts, working, holiday):
    assert (NATIONAL_DAY.is_working_hours(ts), NATIONAL_DAY.is_holiday(ts)) == (working, holiday)


def test_the_firms_time_zone_decides_the_local_hour_and_day():
    late_monday_utc = "2024-05-06T17:00:00Z"  # Tuesday 01:00 in Shanghai
    shanghai = EventEngine(load_rule_sources([]))
    utc = EventEngine(load_rule_sources([]), WorkTime(timezone="UTC"))
    event = Event(type="file.opened", ts=late_monday_utc)

    assert [shanghai.value(f, event) for f in ("hour", "weekday", "working_hours")] == [1, "tue", False]
    assert [utc.value(f, event) for f in ("hour", "weekday", "working_hours")] == [17, "mon", True]
    morning = Event(type="file.opened", ts="2024-05-06T09:00:00Z")  # 17:00 in Shanghai, 09:00 in UTC
    assert shanghai.value("working_hours", morning) and utc.value("working_hours", morning)
    evening = Event(type="file.opened", ts="2024-05-06T10:30:00Z")  # 18:30 in Shanghai, 10:30 in UTC
    assert not shanghai.value("working_hours", evening) and utc.value("working_hours", evening)


def test_custom_days_and_hours():
    six_days = WorkTime(days=("mon", "tue", "wed", "thu", "fri", "sat"), start=time(9), end=time(21))

    assert six_days.is_working_hours(SAT_10_SH)
    assert six_days.is_working_hours("2024-05-11T12:59:00Z")  # Saturday 20:59
    assert not six_days.is_working_hours("2024-05-11T13:00:00Z")  # 21:00
    assert not six_days.is_working_hours("2024-05-06T00:30:00Z")  # Monday 08:30: before 09:00


def test_worktime_round_trips_through_a_dict():
    assert WorkTime.from_dict(NATIONAL_DAY.to_dict()) == NATIONAL_DAY
    assert NATIONAL_DAY.to_dict()["hours"] == "08:30-18:00"
    assert NATIONAL_DAY.to_dict()["workdays"] == ["2024-09-29", "2024-10-12"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("8-18", "expected HH:MM-HH:MM, got '8-18'"),
        ("08:30", "expected HH:MM-HH:MM, got '08:30'"),
        ("18:00-08:30", "the working day must end after it starts: '18:00-08:30'"),
        ("09:00-09:00", "the working day must end after it starts: '09:00-09:00'"),
    ],
)
def test_bad_working_hours_are_explained(text, message):
    with pytest.raises(ValueError) as caught:
        parse_hours(text)
    assert str(caught.value) == message


def test_hours_are_parsed():
    assert parse_hours("08:30 - 18:00") == (time(8, 30), time(18, 0))


def test_time_zones_are_checked():
    assert check_timezone("Asia/Shanghai") is None and check_timezone("UTC") is None
    assert check_timezone("Asia/Beijing") == "unknown time zone 'Asia/Beijing'"
    assert check_timezone("../etc/passwd") == "unknown time zone '../etc/passwd'"


def test_rules_test_time_fields_in_local_time():
    engine = engine_for(rule("MW-NIGHT", "type: file.opened\nhour: {gte: 20}\nweekday: [mon, tue]\nholiday: false"))

    assert [v.rule.id for v in engine.matches(Event(type="file.opened", ts=MON_22_SH))] == ["MW-NIGHT"]
    assert engine.matches(Event(type="file.opened", ts=MON_10_SH)) == []
    assert engine.matches(Event(type="file.opened", ts="2024-05-08T14:00:00Z")) == []  # Wednesday 22:00


# --- severity -----------------------------------------------------------------------------------

BY_LEVEL = rule("MW-LEVELS", "type: egress.file\nlevel: [core, important, general, internal]", "by-level")


@pytest.mark.parametrize(
    "level, severity", [("core", "critical"), ("important", "high"), ("general", "medium"), ("internal", "low")]
)
def test_by_level_severity_follows_the_classification(level, severity):
    [verdict] = engine_for(BY_LEVEL).matches(egress(level=level))

    assert verdict.severity == severity and not verdict.watchlisted


def test_by_level_without_a_level_is_info():
    [verdict] = engine_for(rule("MW-ANY", "type: egress.file", "by-level")).matches(egress())

    assert verdict.severity == "info"


@pytest.mark.parametrize(
    "severity, raised",
    [("info", "low"), ("low", "medium"), ("medium", "high"), ("high", "critical"), ("critical", "critical")],
)
def test_raise_severity_goes_one_step_and_stops_at_critical(severity, raised):
    assert raise_severity(severity) == raised


# --- watchlists ---------------------------------------------------------------------------------

WATCHED = rule(
    "MW-WATCHED",
    "type: egress.file\nlevel: [core, important, general, internal]",
    "by-level",
    "  watchlist: departing\n",
)


class Lists:
    """A collector's watchlists, recording what was asked."""

    def __init__(self, **lists: set[str]):
        self.lists, self.asked = lists, []

    def __call__(self, name: str, value: str) -> bool:
        self.asked.append((name, value))
        return value in self.lists.get(name, set())


@pytest.mark.parametrize(
    "level, user, severity, listed",
    [
        ("important", "bob", "critical", True),
        ("general", "bob", "high", True),
        ("internal", "bob", "medium", True),
        ("core", "bob", "critical", True),  # critical stays critical
        ("important", "alice", "high", False),
        ("important", "", "high", False),  # no user: not on any list
    ],
)
def test_watchlist_raises_severity_one_step(level, user, severity, listed):
    lists = Lists(departing={"bob"})
    [verdict] = engine_for(WATCHED, watchlists=lists).matches(egress(level=level, user=user))

    assert (verdict.severity, verdict.watchlisted) == (severity, listed)
    assert lists.asked == ([("departing", user)] if user else [])


def test_watchlist_is_ignored_where_there_are_no_watchlists():
    [verdict] = engine_for(WATCHED).matches(egress(level="general", user="bob"))

    assert (verdict.severity, verdict.watchlisted) == ("medium", False)


def test_watchlist_can_look_up_another_field():
    text = rule("MW-HOST", "type: egress.file", "medium", "  watchlist: {name: shared-pcs, field: host}\n")
    lists = Lists(shared_pcs=set(), **{"shared-pcs": {"pc-07"}})

    [verdict] = engine_for(text, watchlists=lists).matches(egress(host="pc-07", user="bob"))

    assert (verdict.severity, lists.asked) == ("high", [("shared-pcs", "pc-07")])


UNKNOWN_DEVICE = """\
- id: MW-USB
  title: Unknown USB
  category: unknown-device
  severity: low
  when:
    type: media.mounted
  unless:
    media.serial: {in_watchlist: allowed-devices}
"""


def mounted(serial: str) -> Event:
    return Event(type="media.mounted", ts=MON_10_SH, media=Media("/media/u", serial=serial))


@pytest.mark.parametrize("serial, fires", [("AA0001", False), ("BB0002", True), ("", True)])
def test_in_watchlist_asks_the_collectors_lists(serial, fires):
    engine = engine_for(UNKNOWN_DEVICE, watchlists=Lists(**{"allowed-devices": {"AA0001"}}))

    assert bool(engine.matches(mounted(serial))) is fires


@pytest.mark.parametrize("serial", ["AA0001", "BB0002", ""])
def test_in_watchlist_holds_for_nothing_without_lists(serial):
    """The agent has no watchlists: every device is unknown there; the collector decides."""
    assert [v.rule.id for v in engine_for(UNKNOWN_DEVICE).matches(mounted(serial))] == ["MW-USB"]


def test_in_watchlist_in_when():
    text = rule("MW-VIP", "type: egress.file\nuser: {in_watchlist: vip}")

    assert engine_for(text, watchlists=Lists(vip={"carol"})).matches(egress(user="carol"))
    assert not engine_for(text, watchlists=Lists(vip={"carol"})).matches(egress(user="dave"))
    assert not engine_for(text).matches(egress(user="carol"))


# --- unless, disabled rules, verdicts -----------------------------------------------------------

TWO = (
    rule("MW-CORE-USB", "type: egress.file\nlevel: core\negress: removable")
    + """\
  unless:
    user: [backup-svc]
    name: {glob: '*.tmp'}
"""
    + rule("MW-OFF", "type: egress.file", "low", "  enabled: false\n")
)


def test_unless_condition_that_holds_stops_the_rule():
    engine = engine_for(TWO)

    assert [
        v.rule.id for v in engine.matches(egress(level="core", egress="removable", user="alice", path="/m/a.dwg"))
    ] == ["MW-CORE-USB"]
    assert engine.matches(egress(level="core", egress="removable", user="backup-svc", path="/m/a.dwg")) == []
    assert engine.matches(egress(level="core", egress="removable", user="alice", path="/m/A.TMP")) == []


def test_disabled_rule_is_never_evaluated():
    engine = engine_for(TWO)

    assert [r.id for r in engine.rules] == ["MW-CORE-USB"]
    assert [v.rule.id for v in engine.verdicts(egress())] == ["MW-CORE-USB"]


def test_verdict_explains_what_held_and_what_failed():
    engine = engine_for(TWO)
    [verdict] = engine.verdicts(egress(level="important", egress="removable", user="backup-svc", path="/m/a.dwg"))

    assert not verdict.matched and verdict.severity is None
    assert [r.describe() for r in verdict.held] == [
        "type = egress.file (type is egress.file)",
        "egress = removable (egress is removable)",
    ]
    assert [r.describe() for r in verdict.failed] == [
        "level = important (level is core)",
        "user = backup-svc (user is one of backup-svc)",  # an unless condition that held
    ]
    assert not verdict.near_miss


@pytest.mark.parametrize(
    "event, near",
    [
        (egress(level="important", egress="removable", user="alice", path="/m/a.dwg"), True),  # only the level failed
        (egress(level="core", egress="removable", user="backup-svc", path="/m/a.dwg"), True),  # only an unless held
        (egress(level="important", egress="sync", user="alice", path="/m/a.dwg"), False),  # two failed
        (Event(type="file.created", ts=MON_10_SH, level="core", egress="removable"), False),  # only the type failed
        (egress(level="core", egress="removable", user="alice", path="/m/a.dwg"), False),  # matched
    ],
)
def test_near_miss_is_one_failed_condition_other_than_the_type(event, near):
    [verdict] = engine_for(TWO).verdicts(event)

    assert verdict.near_miss is near


def test_absent_value_is_shown_as_none_in_an_explanation():
    [verdict] = engine_for(TWO).verdicts(egress(egress="removable"))

    assert verdict.failed[0].describe() == "level = (none) (level is core)"


@pytest.mark.parametrize(
    "field, value, shown",
    [
        ("size", 1536, "1.5 KB"),
        ("size", 200 * 1024**2, "200 MB"),
        ("size", 10, "10 B"),
        ("match.similarity", 1.0, "1"),
        ("match.similarity", 0.83, "0.83"),
        ("working_hours", False, "false"),
        ("user", None, "(none)"),
        ("hour", 22, "22"),
    ],
)
def test_values_are_shown_the_way_a_person_reads_them(field, value, shown):
    assert show_value(field, value) == shown


# --- stamping -----------------------------------------------------------------------------------

STAMPED = (
    rule("MW-A-LOW", "type: egress.file\nsize: {gte: 1MB}", "low")
    + rule("MW-B-LEVEL", "type: egress.file\nlevel: [core, important, general, internal]", "by-level")
    + rule("MW-C-SILENT", "type: egress.file", "info", "  alert: false\n")
)


def test_stamp_sets_rule_ids_highest_severity_and_policy_version():
    engine = engine_for(STAMPED)
    event = egress(level="important", size=5 * 1024**2)

    stamped = engine.stamp(event, "abc123")

    assert stamped.rule_ids == ("MW-A-LOW", "MW-B-LEVEL", "MW-C-SILENT")  # building blocks too: correlation counts them
    assert (stamped.severity, stamped.policy_version) == ("high", "abc123")
    assert (stamped.id, stamped.ts, stamped.level) == (event.id, event.ts, event.level)
    assert event.rule_ids == () and event.policy_version is None, "the event itself is immutable"


def test_stamp_without_hits_keeps_the_events_severity():
    engine = engine_for(STAMPED)
    event = Event(type="file.created", ts=MON_10_SH, severity="medium")

    stamped = engine.stamp(event, "v2")

    assert (stamped.rule_ids, stamped.severity, stamped.policy_version) == ((), "medium", "v2")


def test_stamp_uses_the_raised_severity_of_a_watchlisted_hit():
    engine = engine_for(WATCHED, watchlists=Lists(departing={"bob"}))

    assert engine.stamp(egress(level="general", user="bob"), None).severity == "high"


@pytest.mark.parametrize(
    "details, phrase",
    [
        (None, "is an exact copy of classified file /srv/d/a.dwg"),
        ({"source_state": "deleted"}, "is an exact copy of a since deleted or moved classified file /srv/d/a.dwg"),
        ({"source_state": "previous-version"}, "is an exact copy of an earlier version of classified file /srv/d/a.dwg"),
    ],
)
def test_explanation_says_when_the_source_was_deleted_or_edited(details, phrase):
    event = Event(type="egress.file", path="/media/usb/x.dwg", level="core", source_path="/srv/d/a.dwg", match=Match("exact"), details=details)
    assert phrase in describe_event(event)
