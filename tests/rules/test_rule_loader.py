"""Loading rule files: typed, immutable rules, or every error located with its exact message.

tests/data/rules/invalid/ holds broken rule files. Each NAME.yaml (or NAME/, a folder of rule
files loaded together) has NAME.expected beside it: the exact error lines, in order, with {dir}
standing for the invalid/ folder. Every case is loaded together with the default packs, the way
the agent and the collector load rules, so cases may refer to the shipped rules.
"""

from __future__ import annotations

import dataclasses
import os

import pytest

from rules.errors import InvalidInput
from rules.loader import default_pack_sources, load_rule_sources, read_rule_paths
from rules.model import Condition, CorrelationRule, EventRule, Location, Watchlist

INVALID_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "rules", "invalid")


def invalid_cases() -> list[str]:
    return sorted(
        name[: -len(".yaml")] if name.endswith(".yaml") else name
        for name in os.listdir(INVALID_DIR)
        if name.endswith(".yaml") or os.path.isdir(os.path.join(INVALID_DIR, name))
    )


def case_path(name: str) -> str:
    folder = os.path.join(INVALID_DIR, name)
    return folder if os.path.isdir(folder) else folder + ".yaml"


def expected_errors(name: str) -> list[str]:
    with open(os.path.join(INVALID_DIR, f"{name}.expected"), encoding="utf-8") as f:
        return f.read().replace("{dir}", INVALID_DIR).splitlines()


def load_with_packs(text: str, name: str = "rules.yaml"):
    return load_rule_sources(default_pack_sources() + [(name, text)])


def errors_of(text: str, name: str = "rules.yaml") -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        load_with_packs(text, name)
    return [str(e) for e in caught.value.errors]


def test_every_broken_rule_file_has_its_expected_errors_beside_it():
    names = os.listdir(INVALID_DIR)
    cases = set(invalid_cases())
    expected = {n[: -len(".expected")] for n in names if n.endswith(".expected")}
    assert cases == expected
    assert len(cases) >= 35
    assert any(os.path.isdir(case_path(n)) for n in cases), "at least one case spans several files"


@pytest.mark.parametrize("name", invalid_cases())
def test_broken_rule_file_is_refused_with_exact_errors(name):
    want = expected_errors(name)
    assert want, f"{name}.expected is empty"

    with pytest.raises(InvalidInput) as caught:
        load_rule_sources(default_pack_sources() + read_rule_paths([case_path(name)]))

    assert [str(error) for error in caught.value.errors] == want
    assert str(caught.value) == "\n".join(want)


def test_the_default_packs_load_alone():
    ruleset = load_rule_sources(default_pack_sources())

    assert "MW-EGRESS-CLASSIFIED" in ruleset.ids and "MW-BULK-EGRESS" in ruleset.ids
    assert len(ruleset.ids) == len(set(ruleset.ids))


def test_event_rule_is_read_into_frozen_typed_values_with_its_location():
    text = """\
- id: MW-USB-DRAWINGS
  title: Drawings to USB
  category: classified-egress
  severity: by-level
  description: CAD drawings written to a USB stick.
  watchlist: {name: departing, field: user}
  when:
    type: egress.file
    egress: removable
    extension: [dwg, dxf]
    size: {gte: 1KB, lt: 2GB}
  unless:
    user: {in_watchlist: cad-admins}
"""
    ruleset = load_with_packs(text)
    rule = ruleset.event_rule("MW-USB-DRAWINGS")

    assert isinstance(rule, EventRule)
    assert (rule.title, rule.category, rule.severity, rule.enabled, rule.alert) == (
        "Drawings to USB",
        "classified-egress",
        "by-level",
        True,
        True,
    )
    assert rule.description == "CAD drawings written to a USB stick."
    assert rule.watchlist == Watchlist("departing", "user")
    assert rule.where == Location("rules.yaml", 1, 3)
    assert [c.field for c in rule.when] == ["type", "egress", "extension", "size"]
    assert [[t.op for t in c.tests] for c in rule.when] == [["eq"], ["eq"], ["in"], ["gte", "lt"]]
    assert rule.when[3].tests[0].operand == 1024.0 and rule.when[3].tests[1].operand == 2 * 1024**3
    assert rule.when[3].describe() == "size ≥ 1 KB and < 2 GB"
    assert [c.describe() for c in rule.unless] == ["user is on watchlist cad-admins"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.severity = "low"
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.when[0].field = "level"
    assert isinstance(rule.when, tuple) and isinstance(rule.when[0], Condition)


def test_correlation_rule_of_each_kind_is_read():
    text = """\
- id: MW-MANY-NAMES
  title: Many different files
  category: bulk-egress
  severity: high
  correlate:
    rules: [MW-EGRESS-CLASSIFIED, MW-EGRESS-MARKED]
    group_by: [user]
    window: 1h
    all:
      - distinct: {field: sha256, gte: 10}
      - sum: {field: size, gt: 1GB}
- id: MW-ZIP-THEN-USB
  title: Archive then USB
  category: classified-egress
  severity: critical
  enabled: false
  correlate:
    sequence: [MW-EGRESS-CLASSIFIED, MW-UNKNOWN-DEVICE]
    group_by: [agent_id]
    window: 30m
- id: MW-SILENT-LONG
  title: Silent for a day
  category: agent-offline
  severity: critical
  correlate:
    absence: {heartbeat: 1d}
"""
    ruleset = load_with_packs(text)
    many, zipped, silent = (ruleset.correlation_rule(i) for i in ("MW-MANY-NAMES", "MW-ZIP-THEN-USB", "MW-SILENT-LONG"))

    assert isinstance(many, CorrelationRule)
    assert (many.kind, many.rules, many.group_by, many.window_s, many.require) == (
        "threshold",
        ("MW-EGRESS-CLASSIFIED", "MW-EGRESS-MARKED"),
        ("user",),
        3600.0,
        "all",
    )
    assert [t.describe() for t in many.thresholds] == ["distinct sha256 ≥ 10", "total size > 1 GB"]
    assert (zipped.kind, zipped.rules, zipped.window_s, zipped.enabled) == (
        "sequence",
        ("MW-EGRESS-CLASSIFIED", "MW-UNKNOWN-DEVICE"),
        1800.0,
        False,
    )
    assert (silent.kind, silent.absence_s, silent.rules) == ("absence", 86400.0, ())


def test_errors_in_several_files_are_all_reported_in_one_run(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "- id: MW-A\n  title: a\n  category: off-hours\n  severity: hgh\n  when: {type: file.opened}\n"
    )
    (tmp_path / "b.yml").write_text(
        "- id: MW-B\n  title: b\n  category: off-hours\n  severity: low\n  when: {levle: core}\n"
    )
    (tmp_path / "notes.txt").write_text("not a rule file: ignored\n")

    with pytest.raises(InvalidInput) as caught:
        load_rule_sources(read_rule_paths([str(tmp_path)]))

    assert [str(e) for e in caught.value.errors] == [
        f"{tmp_path}/a.yaml:4:13: MW-A.severity: unknown severity 'hgh' (did you mean 'high'?)",
        f"{tmp_path}/b.yml:5:10: MW-B.when.levle: unknown field 'levle' (did you mean 'level'?)",
    ]


def test_one_bad_rule_refuses_the_whole_set():
    text = """\
- id: MW-GOOD
  title: good
  category: off-hours
  severity: low
  when: {type: file.opened}
- id: MW-BAD
  title: bad
  category: off-hours
  severity: low
  when: {type: file.opend}
"""
    assert errors_of(text) == [
        "rules.yaml:10:16: MW-BAD.when.type: 'file.opend' is not a possible type (did you mean 'file.opened'?)"
    ]


def test_an_empty_list_of_rules_is_valid():
    assert load_rule_sources([("none.yaml", "[]\n")]).ids == []


def test_a_bad_list_item_is_reported_once_not_also_as_an_empty_list():
    text = """\
- id: MW-T
  title: t
  category: bulk-egress
  severity: high
  correlate:
    sequence: [MW-EGRESS-CLASSIFIED, mw-unknown-device]
    window: 10m
"""
    assert errors_of(text) == [
        "rules.yaml:6:38: MW-T.correlate.sequence[1]: invalid rule id 'mw-unknown-device' (e.g. MW-EGRESS-CLASSIFIED)"
    ]


@pytest.mark.parametrize(
    "key, value",
    [("rules", ""), ("rules", "[]"), ("sequence", ""), ("sequence", "[]")],
)
def test_an_empty_list_of_rules_to_correlate_is_refused(key, value):
    text = f"- id: MW-T\n  title: t\n  category: bulk-egress\n  severity: high\n  correlate:\n    {key}: {value}\n    window: 10m\n"
    if key == "rules":
        text += "    count: {gte: 2}\n"
    message = "the list is empty" if key == "rules" else "a sequence needs at least two steps"

    errors = errors_of(text)

    assert len(errors) == 1 and errors[0].endswith(f"MW-T.correlate.{key}: {message}")


def test_a_glob_list_longer_than_a_regex_may_be_is_accepted():
    extensions = ", ".join(f"'*.ext{i}'" for i in range(100))
    text = f"- id: MW-T\n  title: t\n  category: marked-egress\n  severity: low\n  when:\n    name: {{glob: [{extensions}]}}\n"

    rule = load_with_packs(text).event_rule("MW-T")

    assert len(rule.when[0].tests[0].operand) == 100
