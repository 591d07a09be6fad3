"""`python -m bench NAME --update` (bench/report.py merge): the named sections are replaced, every
other section, its summary rows and its missed goals are kept as they were, and each section says
when and at which commit it was measured; a report from before the 'Measured:' lines is stamped
with its own date and commit."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.report import Figure, Machine, SectionResult, merge, render

MACHINE = Machine("CPU", 2, 24.0, "Linux", "CPython 3.11", "/tmp", "ext4", "0.1")


def _section(name: str, value: float, met: bool) -> SectionResult:
    figure = Figure(name=f"{name} figure", value=value, unit="ms", goal="< 300 ms", met=met, reproduce=f"python -m bench {name}")
    return SectionResult(name, f"Section {name}", (figure,), notes=f"notes of {name}")


def _report(sections, day: int, commit: str) -> str:
    return render(sections, MACHINE, commit, datetime(2026, 12, day, 9, 0, tzinfo=UTC), False, "0.2")


def test_an_update_replaces_the_named_sections_and_keeps_the_others_with_their_dates():
    old = _report([_section("content", 5.0, True), _section("console", 400.0, False), _section("index", 7.0, False)], 1, "a" * 40)
    new = _report([_section("console", 120.0, True)], 5, "b" * 40)
    merged = merge(old, new, ["console"])
    assert merged.index("## Section content") < merged.index("## Section console") < merged.index("## Section index")
    assert "| console figure | 120 ms |" in merged and "400 ms" not in merged
    assert "| content figure | 5.00 ms |" in merged and "| index figure | 7.00 ms |" in merged
    content = merged.split("## Section content")[1].split("\n## ")[0]
    console = merged.split("## Section console")[1].split("\n## ")[0]
    assert "Measured: 2026-12-01 09:00 UTC, commit aaaaaaaaaaaa." in content
    assert "Measured: 2026-12-05 09:00 UTC, commit bbbbbbbbbbbb." in console
    missed = merged.split("## Goals missed, and why")[1]
    assert "- index figure:" in missed and "console figure" not in missed  # met now; index still missed
    assert "re-ran console" in merged


def test_a_report_from_before_the_measured_lines_is_stamped_with_its_own_date():
    old = _report([_section("content", 5.0, True), _section("console", 400.0, False)], 1, "c" * 40)
    old = "\n".join(line for line in old.splitlines() if not line.startswith("Measured:")) + "\n"
    merged = merge(old, _report([_section("console", 100.0, True)], 5, "d" * 40), ["console"])
    content = merged.split("## Section content")[1].split("\n## ")[0]
    assert "Measured: 2026-12-01 09:00 UTC, commit cccccccccccc." in content
    assert merged.count("Measured:") == 2
