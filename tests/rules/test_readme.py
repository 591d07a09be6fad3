"""rules/README.md stays true: every rule example loads, every field and operator is documented."""

from __future__ import annotations

import os
import re

import pytest

from rules.fields import FIELDS, field_for
from rules.lint import lint
from rules.loader import default_pack_sources, load_rule_sources
from rules.model import CATEGORIES
from rules.operators import OPERATORS

README = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "rules", "README.md"
)
RULE_ID = re.compile(r"(?m)^- id: (\S+)")


def readme() -> str:
    with open(README, encoding="utf-8") as f:
        return f.read()


def rule_blocks() -> list[str]:
    blocks = re.findall(r"(?ms)^```yaml\n(.*?)^```$", readme())
    return [b for b in blocks if b.startswith("- id:")]


def packs_without(ids: set[str]) -> list[tuple[str, str]]:
    """The packs with the rules a README block redefines taken out (the packs keep one rule per '- id:')."""
    sources = []
    for name, text in default_pack_sources():
        chunks = re.split(r"(?m)^(?=- id: )", text)
        kept = [c for c in chunks if not (m := RULE_ID.match(c)) or m.group(1) not in ids]
        if any(RULE_ID.match(c) for c in kept):
            sources.append((name, "".join(kept)))
    return sources


def section(title: str) -> str:
    text = readme()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def table_rows(title: str) -> list[list[str]]:
    """The rows of the first table in a section, cells stripped, table escapes undone."""
    rows = []
    for line in section(title).splitlines():
        if line.startswith("|---"):
            continue
        if line.startswith("| "):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows.append(cells)
        elif rows:
            break
    return rows[1:]  # without the header


def code(cell: str) -> str:
    match = re.fullmatch(r"`(.*)`", cell)
    assert match, f"expected one code span, got {cell!r}"
    return match.group(1)


def condition_rule(condition: str) -> str:
    return f"- id: DOC-EXAMPLE\n  title: t\n  category: off-hours\n  severity: low\n  when:\n    {condition}\n"


def test_the_readme_has_rule_examples():
    assert len(rule_blocks()) >= 12


@pytest.mark.parametrize("block", rule_blocks(), ids=lambda b: RULE_ID.match(b).group(1))
def test_every_rule_example_loads_with_the_packs_and_without_warnings(block):
    ids = set(RULE_ID.findall(block))

    ruleset = load_rule_sources(packs_without(ids) + [("README.md", block)])

    assert ids <= set(ruleset.ids)
    assert [str(w) for w in lint(ruleset) if w.file == "README.md"] == []


@pytest.mark.parametrize("block", rule_blocks(), ids=lambda b: RULE_ID.match(b).group(1))
def test_an_example_of_a_shipped_rule_is_the_rule_as_shipped(block):
    pack_ids = set(load_rule_sources(default_pack_sources()).ids)
    ids = set(RULE_ID.findall(block))
    if not ids & pack_ids:
        return
    assert ids <= pack_ids, "an example mixes shipped and new rules"
    assert any(block in text for _, text in default_pack_sources()), "the example differs from rules/packs/"


def test_every_category_has_a_worked_example():
    shown = {m for b in rule_blocks() for m in re.findall(r"(?m)^  category: (\S+)", b)}
    headings = set(re.findall(r"(?m)^### (\S+) \(", section("Worked examples, one per alert category")))

    assert set(CATEGORIES) <= shown
    assert headings == set(CATEGORIES)


def test_there_is_a_sequence_example():
    assert any("sequence:" in b for b in rule_blocks())


def test_every_field_is_documented_with_an_example_that_loads():
    rows = table_rows("Fields")
    documented = [code(r[0]) for r in rows]

    assert sorted(documented) == sorted(list(FIELDS) + ["detections.<detector>"])
    for row in rows:
        name, kind, example = code(row[0]), row[1], code(row[-1])
        field = field_for(name) or field_for(example.split(":")[0])
        assert kind == field.kind, name
        assert (row[3] == "yes") == field.groupable, f"{name}: the group column is wrong"
        assert (
            example.split(":")[0] == field.name
            if name != "detections.<detector>"
            else example.startswith("detections.")
        )
        load_rule_sources([("README.md", condition_rule(example))])


def test_every_operator_is_documented_with_an_example_that_loads():
    rows = table_rows("Operators")

    assert sorted(code(r[0]) for r in rows) == sorted(OPERATORS)
    for row in rows:
        op, kinds, example = code(row[0]), row[1], code(row[-1])
        assert kinds == ", ".join(OPERATORS[op]), op
        rule = load_rule_sources([("README.md", condition_rule(example))]).event_rule("DOC-EXAMPLE")
        assert [t.op for t in rule.when[0].tests] == [op], example


def test_every_threshold_example_loads():
    rows = table_rows("Correlation rules")

    assert [code(r[0]) for r in rows] == ["count", "distinct", "sum"]
    for row in rows:
        text = (
            "- id: DOC-EXAMPLE\n  title: t\n  category: bulk-egress\n  severity: high\n  correlate:\n"
            f"    rules: [MW-EGRESS-CLASSIFIED]\n    window: 10m\n    {code(row[-1])}\n"
        )
        rule = load_rule_sources(default_pack_sources() + [("README.md", text)]).correlation_rule("DOC-EXAMPLE")
        assert rule.thresholds[0].kind == code(row[0])


def test_every_condition_form_example_loads():
    rows = table_rows("Conditions")

    assert len(rows) == 3
    for row in rows:
        load_rule_sources([("README.md", condition_rule(code(row[-1])))])
