"""Every operator on every field kind it applies to, absent (None) values included."""

from __future__ import annotations

import pytest

from rules.errors import InvalidInput
from rules.fields import FIELDS, field_for, known_field_names
from rules.loader import load_rule_sources
from rules.operators import MAX_PATTERN_CHARS, OPERATORS, OperandError, compile_test, glob_to_regex

# (op, operand, value, holds): operands as the loader types them (sizes in bytes, lists as tuples)
TABLE = [
    # eq: text, number, bool
    ("eq", "core", "core", True),
    ("eq", "core", "Core", False),  # exact, case-sensitive
    ("eq", "core", None, False),
    ("eq", 1024.0, 1024, True),  # 1KB against an integer size
    ("eq", 1024.0, 1025, False),
    ("eq", 0.5, None, False),
    ("eq", True, True, True),
    ("eq", True, False, False),
    ("eq", False, None, False),  # absent is not false
    # in / not_in: text, number
    ("in", ("core", "important"), "important", True),
    ("in", ("core", "important"), "general", False),
    ("in", ("core", "important"), None, False),
    ("in", (100, 200), 200, True),
    ("in", (100, 200), 150, False),
    ("not_in", ("internal",), "core", True),
    ("not_in", ("internal",), "internal", False),
    ("not_in", ("internal",), None, True),  # an absent value is none of them
    ("not_in", (0,), 0, False),
    ("not_in", (0,), 7, True),
    # comparisons: numbers only; absent never compares
    ("gte", 20, 20, True),
    ("gte", 20, 19, False),
    ("gte", 20, None, False),
    ("gt", 20, 20, False),
    ("gt", 20, 21, True),
    ("gt", 0, None, False),
    ("lte", 0.8, 0.8, True),
    ("lte", 0.8, 0.81, False),
    ("lte", 0.8, None, False),
    ("lt", 6, 5, True),
    ("lt", 6, 6, False),
    ("lt", 6, None, False),
    ("gte", 200 * 1024**2, 200 * 1024**2, True),  # 200MB
    ("gte", 200 * 1024**2, 200 * 1024**2 - 1, False),
    # glob / not_glob: text, case-insensitive, `*` crosses '/'
    ("glob", ("*.dwg",), "/srv/rnd/drawings/A-100.DWG", True),
    ("glob", ("*.dwg",), "/srv/rnd/drawings/a-100.dwg.txt", False),
    ("glob", ("*/drawings/*",), "/srv/rnd/drawings/2024/q1/a.dwg", True),
    ("glob", ("*/Drawings/*",), "/SRV/RND/DRAWINGS/a.dwg", True),
    ("glob", ("/media/*",), "/media/alice/KINGSTON/a.dwg", True),
    ("glob", ("/media/*",), "/mnt/media/a.dwg", False),  # anchored at both ends
    ("glob", ("report-??.pdf",), "report-07.pdf", True),
    ("glob", ("report-??.pdf",), "report-7.pdf", False),
    ("glob", ("v[0-9]*",), "v2-final.dwg", True),
    ("glob", ("v[0-9]*",), "vx-final.dwg", False),
    ("glob", ("[!~]*",), "~$draft.docx", False),
    ("glob", ("[!~]*",), "draft.docx", True),
    ("glob", ("a+b(1).txt",), "a+b(1).txt", True),  # regex characters are literal in a glob
    ("glob", ("a+b(1).txt",), "aab1.txt", False),
    ("glob", ("*/产品图纸/*",), "/srv/研发/产品图纸/总装图.dwg", True),
    ("glob", ("*/product drawings/*",), "/srv/Product Drawings/a.dwg", True),
    ("glob", ("*.dwg", "*.dxf"), "plan.DXF", True),
    ("glob", ("*.dwg", "*.dxf"), "plan.pdf", False),
    ("glob", ("*",), "", True),
    ("glob", ("*",), None, False),
    ("not_glob", ("*.tmp", "~$*"), "budget.xlsx", True),
    ("not_glob", ("*.tmp", "~$*"), "~$budget.xlsx", False),
    ("not_glob", ("*.tmp",), "A.TMP", False),
    ("not_glob", ("*.tmp",), None, True),
    # regex: text, searched (not anchored), case-sensitive unless (?i)
    ("regex", "^KINGSTON", "KINGSTON DataTraveler", True),
    ("regex", "^KINGSTON", "kingston DataTraveler", False),
    ("regex", "(?i)^kingston", "KINGSTON DataTraveler", True),
    ("regex", "[0-9]{6}", "serial-123456-x", True),
    ("regex", "[0-9]{6}", "serial-12345-x", False),
    ("regex", "图纸", "/srv/研发/图纸/a.dwg", True),
    ("regex", ".*", None, False),
    # contains: text, case-insensitive
    ("contains", "drawings", "/srv/RND/Drawings/a.dwg", True),
    ("contains", "drawings", "/srv/rnd/drawing/a.dwg", False),
    ("contains", "图纸", "/srv/研发/产品图纸/a.dwg", True),
    ("contains", "x", None, False),
    # exists: any kind; only None is absent
    ("exists", True, "/srv/a.dwg", True),
    ("exists", True, "", True),
    ("exists", True, 0, True),
    ("exists", True, False, True),
    ("exists", True, None, False),
    ("exists", False, None, True),
    ("exists", False, "x", False),
]


@pytest.mark.parametrize("op, operand, value, holds", TABLE)
def test_operator_on_a_value(op, operand, value, holds):
    test = compile_test(op, operand, str(operand))

    assert test.holds(value) is holds


def test_the_table_covers_every_operator_but_the_watchlist_one():
    assert {row[0] for row in TABLE} == set(OPERATORS) - {"in_watchlist"}


def test_in_watchlist_never_holds_without_the_engine():
    """The engine resolves watchlists (tests/rules/test_engine.py); compiled alone it holds for nothing."""
    test = compile_test("in_watchlist", "allowed-devices", "allowed-devices")

    assert [test.holds(v) for v in ("AA0012", "", None)] == [False, False, False]


@pytest.mark.parametrize(
    "op, operand, shown, phrase",
    [
        ("eq", "core", "core", "is core"),
        ("in", ("core", "important"), "core, important", "is one of core, important"),
        ("not_in", ("internal",), "internal", "is none of internal"),
        ("gte", 20, "20", "≥ 20"),
        ("gt", 20, "20", "> 20"),
        ("lte", 0.5, "0.5", "≤ 0.5"),
        ("lt", 6, "6", "< 6"),
        ("glob", ("*.dwg",), "*.dwg", "matches *.dwg"),
        ("not_glob", ("*.tmp",), "*.tmp", "matches none of *.tmp"),
        ("regex", "^KING", "^KING", "matches /^KING/"),
        ("contains", "图纸", "图纸", "contains 图纸"),
        ("exists", True, "true", "is present"),
        ("exists", False, "false", "is absent"),
        ("in_watchlist", "departing", "departing", "is on watchlist departing"),
    ],
)
def test_each_operator_describes_itself_in_words(op, operand, shown, phrase):
    assert compile_test(op, operand, shown).describe() == phrase


def test_unknown_operator_cannot_be_compiled():
    with pytest.raises(OperandError, match="unknown operator 'like'"):
        compile_test("like", "x", "x")


# --- which operators apply to which kind of field, as the loader enforces it -----------------

KIND_FIELD = {"text": "user", "number": "size", "bool": "working_hours"}
OPERAND = {
    ("eq", "text"): "alice",
    ("eq", "number"): "1MB",
    ("eq", "bool"): "true",
    ("in", "text"): "[alice, bob]",
    ("in", "number"): "[1, 2]",
    ("in", "bool"): "[true]",
    ("not_in", "text"): "[alice]",
    ("not_in", "number"): "[1]",
    ("not_in", "bool"): "[true]",
    ("exists", "text"): "true",
    ("exists", "number"): "true",
    ("exists", "bool"): "false",
    ("in_watchlist", "text"): "departing",
}


def _rule(field: str, op: str, operand: str) -> str:
    return (
        "- id: MW-T\n  title: t\n  category: off-hours\n  severity: low\n  when:\n"
        f"    type: file.opened\n    {field}: {{{op}: {operand}}}\n"
    )


@pytest.mark.parametrize("kind", sorted(KIND_FIELD))
@pytest.mark.parametrize("op", sorted(OPERATORS))
def test_operator_applies_exactly_to_its_field_kinds(op, kind):
    field = KIND_FIELD[kind]
    operand = OPERAND.get((op, kind), {"number": "5", "bool": "true"}.get(kind, "'x*'"))
    text = _rule(field, op, operand)

    if kind in OPERATORS[op]:
        rule = load_rule_sources([("r.yaml", text)]).event_rule("MW-T")
        assert rule.when[1].tests[0].op == op
    else:
        with pytest.raises(InvalidInput) as caught:
            load_rule_sources([("r.yaml", text)])
        assert [str(e) for e in caught.value.errors] == [
            f"r.yaml:7:{len(field) + 8}: MW-T.when.{field}.{op}: operator '{op}' does not apply to {kind} field '{field}'"
        ]


def test_every_field_has_a_known_kind_and_choices_only_on_text():
    for field in FIELDS.values():
        assert field.kind in ("text", "number", "bool"), field.name
        assert field.choices is None or field.kind == "text", field.name
        assert field.unit in ("", "bytes"), field.name
    assert field_for("detections.cn_resident_id").kind == "number"
    assert field_for("detections.") is None and field_for("detections.Bad-Id") is None
    assert field_for("nope") is None
    assert known_field_names()[-1] == "detections.<detector>"


# --- patterns -----------------------------------------------------------------------------------


def test_glob_becomes_an_anchored_regex_where_star_crosses_folders():
    assert glob_to_regex("*/drawings/*.dwg") == r"(?s:^.*/drawings/.*\.dwg$)"
    assert glob_to_regex("a?[!x]") == "(?s:^a.[^x]$)"


@pytest.mark.timeout(60)
def test_regex_runs_in_linear_time_on_a_pattern_that_hangs_backtracking_engines():
    # (a+)+$ against "aaa...ab" takes exponential time in Python's re; RE2 answers at once.
    test = compile_test("regex", "(a+)+$", "(a+)+$")

    assert test.holds("a" * 50_000 + "b") is False
    assert test.holds("a" * 50_000) is True


@pytest.mark.timeout(60)
def test_glob_with_many_stars_runs_in_linear_time():
    test = compile_test("glob", ("*a*a*a*a*a*a*a*a*a*a*b",), "...")

    assert test.holds("a" * 50_000) is False


@pytest.mark.parametrize(
    "pattern, message",
    [
        (r"(\w+)-\1", r"invalid regex: invalid escape sequence: \1"),
        ("^(?!/tmp/)", "invalid regex: invalid perl operator: (?!"),
        ("(?<=x)y", "invalid regex: invalid perl operator: (?<="),
        ("[z-a]", "invalid regex: invalid character class range: z-a"),
        ("(unclosed", "invalid regex: missing ): (unclosed"),
        ("a" * (MAX_PATTERN_CHARS + 1), f"regex longer than {MAX_PATTERN_CHARS} characters"),
    ],
)
def test_regex_that_re2_cannot_run_is_refused(pattern, message):
    with pytest.raises(OperandError) as caught:
        compile_test("regex", pattern, pattern)
    assert str(caught.value) == message


def test_regex_of_the_maximum_length_is_accepted():
    assert compile_test("regex", "a" * MAX_PATTERN_CHARS, "...").holds("a" * MAX_PATTERN_CHARS)


def test_glob_limit_is_on_each_written_pattern_not_on_the_list():
    many = tuple(f"*.ext{i}" for i in range(200))
    assert compile_test("glob", many, "...").holds("x.EXT199")

    with pytest.raises(OperandError, match=f"glob longer than {MAX_PATTERN_CHARS} characters"):
        compile_test("glob", ("a" * (MAX_PATTERN_CHARS + 1),), "...")


def test_glob_with_a_bad_class_is_reported_as_a_glob():
    with pytest.raises(OperandError) as caught:
        compile_test("glob", ("v[9-0]*",), "v[9-0]*")
    assert str(caught.value) == "invalid glob: invalid character class range: 9-0"
