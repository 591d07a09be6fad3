"""Policies: a version that names exactly the rules and working time in force, and a safe round trip."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import date, time

import pytest

from rules.errors import InvalidInput
from rules.loader import default_pack_sources
from rules.policy import Policy, build_policy, default_policy, policy_from_payload, policy_version
from rules.worktime import WorkTime

EXTRA = (
    "extra/usb.yaml",
    """\
- id: ACME-USB-DRAWINGS
  title: Drawings to USB
  category: classified-egress
  severity: high
  when:
    type: egress.file
    egress: removable
    extension: [dwg, dxf]
""",
)


def sources(*extra: tuple[str, str]) -> list[tuple[str, str]]:
    return default_pack_sources() + list(extra)


def test_default_policy_is_the_packs_with_default_working_time():
    policy = default_policy()

    assert policy.sources == tuple(default_pack_sources())
    assert policy.worktime == WorkTime()
    assert "MW-EGRESS-CLASSIFIED" in policy.ruleset.ids
    assert len(policy.version) == 16 and int(policy.version, 16) >= 0


def test_version_is_stable_for_the_same_content():
    first = build_policy(sources(EXTRA), WorkTime())
    second = build_policy([tuple(s) for s in sources(EXTRA)], WorkTime())

    assert first.version == second.version == policy_version(sources(EXTRA), WorkTime())
    assert default_policy().version == default_policy(WorkTime()).version


CHANGES = {
    "a rule file added": lambda s, w: (s + [("extra/more.yaml", "[]\n")], w),
    "a rule file removed": lambda s, w: (s[:-1], w),
    "one character of a rule changed": lambda s, w: (s[:-1] + [(s[-1][0], s[-1][1].replace("dxf", "dwf"))], w),
    "a comment added": lambda s, w: (s[:-1] + [(s[-1][0], "# reviewed 2024-05\n" + s[-1][1])], w),
    "a file renamed": lambda s, w: (s[:-1] + [("extra/usb2.yaml", s[-1][1])], w),
    "the files reordered": lambda s, w: (list(reversed(s)), w),
    "the time zone": lambda s, w: (s, dataclasses.replace(w, timezone="UTC")),
    "the working days": lambda s, w: (s, dataclasses.replace(w, days=w.days + ("sat",))),
    "the start of the day": lambda s, w: (s, dataclasses.replace(w, start=time(9, 0))),
    "the end of the day": lambda s, w: (s, dataclasses.replace(w, end=time(17, 30))),
    "a holiday": lambda s, w: (s, dataclasses.replace(w, holidays=(date(2024, 10, 1),))),
    "a make-up workday": lambda s, w: (s, dataclasses.replace(w, workdays=(date(2024, 10, 12),))),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_version_changes_with_any_change_of_content(change):
    base_sources, base_worktime = sources(EXTRA), WorkTime()
    changed_sources, changed_worktime = CHANGES[change](base_sources, base_worktime)

    before = build_policy(base_sources, base_worktime).version
    after = build_policy(changed_sources, changed_worktime).version

    assert after != before


def test_payload_round_trip_gives_the_same_policy():
    worktime = WorkTime(timezone="Asia/Shanghai", holidays=(date(2024, 10, 1),), workdays=(date(2024, 10, 12),))
    policy = build_policy(sources(EXTRA), worktime)

    payload = json.loads(json.dumps(policy.to_payload()))  # as it travels over HTTP
    again = policy_from_payload(payload)

    assert isinstance(again, Policy)
    assert (again.version, again.sources, again.worktime) == (policy.version, policy.sources, policy.worktime)
    assert again.ruleset.ids == policy.ruleset.ids
    assert payload["worktime"] == {
        "timezone": "Asia/Shanghai",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "hours": "08:30-18:00",
        "holidays": ["2024-10-01"],
        "workdays": ["2024-10-12"],
    }
    assert payload["files"][-1] == {"name": "extra/usb.yaml", "text": EXTRA[1]}


def tampered(change) -> dict:
    payload = copy.deepcopy(build_policy(sources(EXTRA), WorkTime()).to_payload())
    change(payload)
    return payload


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda p: p["files"][-1].update(text=p["files"][-1]["text"].replace("high", "info")), id="rule text"
        ),
        pytest.param(lambda p: p["files"].pop(), id="file dropped"),
        pytest.param(lambda p: p["worktime"].update(hours="00:00-23:59"), id="working hours"),
        pytest.param(lambda p: p["worktime"]["holidays"].append("2024-05-06"), id="holiday added"),
        pytest.param(lambda p: p.update(version="0" * 16), id="version"),
    ],
)
def test_a_payload_whose_content_does_not_match_its_version_is_refused(change):
    payload = tampered(change)

    with pytest.raises(ValueError, match="policy version mismatch: announced"):
        policy_from_payload(payload)


def test_a_payload_with_broken_rules_is_refused_with_located_errors():
    payload = tampered(lambda p: p["files"][-1].update(text="- id: bad\n"))

    with pytest.raises(InvalidInput) as caught:
        policy_from_payload(payload)
    messages = [str(e) for e in caught.value.errors]
    assert (
        "extra/usb.yaml:1:7: [0].id: invalid rule id 'bad' (upper case letters, digits and '-', e.g. MW-EGRESS-CLASSIFIED)"
        in messages
    )
    assert all(m.startswith("extra/usb.yaml:1:") for m in messages)


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda p: p.pop("files"), KeyError),
        (lambda p: p.pop("worktime"), KeyError),
        (lambda p: p["worktime"].update(hours="nine to five"), ValueError),
        (lambda p: p["worktime"].update(holidays=["2024-13-01"]), ValueError),
    ],
)
def test_a_payload_that_is_not_a_policy_is_refused(change, error):
    with pytest.raises(error):
        policy_from_payload(tampered(change))


def test_build_policy_refuses_broken_rules():
    with pytest.raises(InvalidInput):
        build_policy(sources(("bad.yaml", "- id: MW-X\n")), WorkTime())


# --- switched-off rules ------------------------------------------------------------------------

OFF = ("MW-BULK-EGRESS", "MW-EGRESS-CLASSIFIED")  # the correlation rule goes with the rule it counts


def test_disabled_rules_are_in_the_payload_and_round_trip_switched_off():
    policy = build_policy(sources(EXTRA), WorkTime(), ["MW-EGRESS-CLASSIFIED", "MW-BULK-EGRESS", "MW-BULK-EGRESS"])

    assert policy.disabled == OFF  # sorted, once each
    payload = json.loads(json.dumps(policy.to_payload()))
    assert payload["disabled"] == list(OFF)
    again = policy_from_payload(payload)
    assert (again.version, again.disabled) == (policy.version, OFF)
    assert not again.ruleset.event_rule("MW-EGRESS-CLASSIFIED").enabled
    assert not again.ruleset.correlation_rule("MW-BULK-EGRESS").enabled
    assert again.ruleset.event_rule("ACME-USB-DRAWINGS").enabled
    assert again.ruleset.ids == policy.ruleset.ids  # switched off, still there


def test_a_switched_off_rule_is_not_evaluated():
    from rules.engine import EventEngine
    from rules.events import Event, Match

    event = Event(type="egress.file", ts="2024-05-06T02:00:00Z", path="/media/usb/a.docx", level="core", match=Match("exact", 1.0), egress="removable")
    on = EventEngine(build_policy(sources(), WorkTime()).ruleset)
    off = EventEngine(build_policy(sources(), WorkTime(), OFF).ruleset)

    assert "MW-EGRESS-CLASSIFIED" in [v.rule.id for v in on.matches(event)]
    assert "MW-EGRESS-CLASSIFIED" not in [v.rule.id for v in off.matches(event)]
    assert "MW-EGRESS-CLASSIFIED" not in [r.id for r in off.rules]


def test_the_version_changes_with_the_disabled_list_and_not_with_its_order():
    none = build_policy(sources(EXTRA), WorkTime())
    one = build_policy(sources(EXTRA), WorkTime(), ["MW-UNKNOWN-DEVICE"])
    two = build_policy(sources(EXTRA), WorkTime(), ["MW-UNKNOWN-DEVICE", "MW-PII-MOBILE"])
    two_again = build_policy(sources(EXTRA), WorkTime(), ["MW-PII-MOBILE", "MW-UNKNOWN-DEVICE"])

    assert len({none.version, one.version, two.version}) == 3
    assert two.version == two_again.version
    # no list: the version a collector from before the list computed, so its payloads still load
    assert none.version == policy_version(sources(EXTRA), WorkTime()) == policy_version(sources(EXTRA), WorkTime(), ())


def test_an_old_payload_without_the_list_still_loads():
    payload = json.loads(json.dumps(build_policy(sources(EXTRA), WorkTime()).to_payload()))
    del payload["disabled"]

    policy = policy_from_payload(payload)

    assert policy.disabled == () and policy.version == payload["version"]
    assert all(r.enabled for r in policy.ruleset.event_rules if r.id.startswith("MW-EGRESS"))


@pytest.mark.parametrize(
    "disabled, message",
    [
        (["MW-NO-SUCH-RULE"], "policy:0:0: disabled[0]: no rule 'MW-NO-SUCH-RULE' in the policy"),
        (["MW-EGRESS-CLASSIFIED"], "policy:0:0: disabled[0]: MW-EGRESS-CLASSIFIED is counted by MW-BULK-EGRESS, which stays on (switch MW-BULK-EGRESS off too, or MW-EGRESS-CLASSIFIED on)"),
        (["mw-lower"], "policy:0:0: disabled[0]: invalid rule id 'mw-lower' (upper case letters, digits and '-', e.g. MW-EGRESS-CLASSIFIED)"),
        ([7], "policy:0:0: disabled[0]: invalid rule id 7"),
        ("MW-UNKNOWN-DEVICE", "policy:0:0: disabled: a list of rule ids, not str"),
        (["MW-UNKNOWN-DEVICE"] * 1001, "policy:0:0: disabled: at most 1000 rule ids, got 1001"),
    ],
)  # fmt: skip
def test_a_bad_disabled_list_is_refused_with_a_located_error(disabled, message):
    with pytest.raises(InvalidInput) as caught:
        build_policy(sources(EXTRA), WorkTime(), disabled)

    assert str(caught.value.errors[0]).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda p: p.update(disabled="MW-UNKNOWN-DEVICE"), ValueError, "a list of rule ids, not str"),
        (lambda p: p.update(disabled=["MW-UNKNOWN-DEVICE", "MW-PII-MOBILE"]), ValueError, "each rule id once, sorted"),
        (lambda p: p.update(disabled=["MW-PII-MOBILE", "MW-PII-MOBILE"]), ValueError, "each rule id once, sorted"),
        (lambda p: p.update(disabled=["MW-NO-SUCH-RULE"]), InvalidInput, "no rule 'MW-NO-SUCH-RULE' in the policy"),
        (lambda p: p.update(disabled=[{"id": "MW-PII-MOBILE"}]), InvalidInput, "invalid rule id"),
        (lambda p: p.update(disabled=["MW-UNKNOWN-DEVICE"]), ValueError, "policy version mismatch"),  # the list is in the version
    ],
)  # fmt: skip
def test_a_payload_with_a_bad_disabled_list_is_refused(change, error, message):
    with pytest.raises(error, match=message):
        policy_from_payload(tampered(change))


def test_a_payload_whose_disabled_list_was_dropped_is_refused_by_its_version():
    payload = copy.deepcopy(build_policy(sources(EXTRA), WorkTime(), ["MW-UNKNOWN-DEVICE"]).to_payload())
    del payload["disabled"]  # an old collector's view, or a man in the middle switching the rule back on

    with pytest.raises(ValueError, match="policy version mismatch"):
        policy_from_payload(payload)
