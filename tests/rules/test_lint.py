"""Lint: rules that load but are probably not meant. Warnings, kept apart from errors."""

from __future__ import annotations

from rules.lint import lint
from rules.loader import default_pack_sources, load_rule_sources

SUSPICIOUS = """\
- id: ACME-CUSTOM
  title: custom category
  category: acme-special
  severity: low
  when:
    type: egress.file
- id: ACME-EVERY-EVENT
  title: no type
  category: off-hours
  severity: low
  when:
    working_hours: false
- id: ACME-LEVEL-LESS
  title: by-level without level
  category: classified-egress
  severity: by-level
  when:
    type: egress.file
- id: ACME-OFF
  title: disabled building block
  category: bulk-egress
  severity: info
  enabled: false
  alert: false
  when:
    type: egress.file
- id: ACME-COUNTS-OFF
  title: counts a disabled rule
  category: bulk-egress
  severity: high
  correlate:
    rules: [ACME-OFF]
    window: 10m
    count: {gte: 5}
- id: ACME-CUSTOM-CORRELATION
  title: custom category
  category: acme-burst
  severity: high
  correlate:
    rules: [ACME-CUSTOM]
    window: 10m
    count: {gte: 5}
"""


def test_suspicious_rules_load_and_each_gets_its_warning():
    ruleset = load_rule_sources([("acme.yaml", SUSPICIOUS)])  # warnings never refuse a set

    assert [str(w) for w in lint(ruleset)] == [
        "acme.yaml:1:3: ACME-CUSTOM.category: 'acme-special' is not a standard category (custom categories work, but no console view groups them)",
        "acme.yaml:7:3: ACME-EVERY-EVENT.when: no 'type' condition: the rule is tested on every event (e.g. type: egress.file)",
        "acme.yaml:13:3: ACME-LEVEL-LESS.severity: by-level without a 'level' condition: unclassified events get severity info",
        "acme.yaml:27:3: ACME-COUNTS-OFF.correlate: counts 'ACME-OFF', which is disabled (it will never fire)",
        "acme.yaml:35:3: ACME-CUSTOM-CORRELATION.category: 'acme-burst' is not a standard category (custom categories work, but no console view groups them)",
    ]


def test_a_disabled_correlation_of_a_disabled_rule_is_not_warned_about():
    text = SUSPICIOUS.replace(
        "  title: counts a disabled rule\n", "  title: counts a disabled rule\n  enabled: false\n"
    )

    assert not [w for w in lint(load_rule_sources([("acme.yaml", text)])) if "ACME-COUNTS-OFF" in w.key_path]


def test_the_packs_have_no_warnings():
    assert lint(load_rule_sources(default_pack_sources())) == []
