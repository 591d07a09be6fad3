"""Rule files -> RuleSet, with every error located: FILE:LINE:COL: key.path: message (hint).

A rule file is a YAML list of rules. Each rule has either `when:` (an event rule) or
`correlate:` (a correlation rule). All files of a set are read before anything is refused, so
one run reports every error; a set with any error is refused whole.
"""

from __future__ import annotations

import math
import os
import re
from importlib import resources

import yaml

from rules.errors import InvalidInput, LocatedError, did_you_mean
from rules.fields import FIELDS, Field, field_for, known_field_names
from rules.model import (
    BY_LEVEL,
    SEVERITY_STEPS,
    Condition,
    CorrelationRule,
    EventRule,
    Location,
    RuleSet,
    Threshold,
    Watchlist,
)
from rules.operators import OPERATORS, OperandError, compile_test
from rules.schema import MISSING, Context, Section, boolean, describe, duration_s, scalar, sequence, text
from rules.units import format_bytes, parse_size
from rules.yamldoc import join_path, load_document, read_text

RULE_ID = re.compile(r"^[A-Z][A-Z0-9-]{2,63}$")
CATEGORY = re.compile(r"^[a-z][a-z0-9-]{1,63}$")
WATCHLIST_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
SEVERITIES_ALLOWED = (*reversed(SEVERITY_STEPS), BY_LEVEL)
RULE_KEYS_EVENT = ("when", "unless")
THRESHOLD_KINDS = ("count", "distinct", "sum")
_COUNT_FIELD = Field("count", "number", lambda e, w: None)  # counts are plain numbers


# --- entry points ---------------------------------------------------------------------------


def load_rule_sources(sources: list[tuple[str, str]]) -> RuleSet:
    """Parse (file name, text) pairs into one RuleSet; raise InvalidInput with every error."""
    errors: list[LocatedError] = []
    rules: list[EventRule | CorrelationRule] = []
    declared: set[str] = set()  # ids of every rule written, including ones with errors
    for name, text_ in sources:
        try:
            document = load_document(text_, name)
        except InvalidInput as exc:
            errors += exc.errors
            continue
        found, found_errors = _parse_document(document, name)
        rules += found
        errors += found_errors
        declared |= _declared_ids(document)
    errors += _check_references(rules, declared)
    if errors:
        raise InvalidInput(errors)
    return RuleSet(
        tuple(r for r in rules if isinstance(r, EventRule)),
        tuple(r for r in rules if isinstance(r, CorrelationRule)),
    )


def read_rule_paths(paths: list[str]) -> list[tuple[str, str]]:
    """(name, text) of rule files; a folder contributes its *.yaml and *.yml files, sorted."""
    sources, errors = [], []
    for path in paths:
        files = [path]
        if os.path.isdir(path):
            files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith((".yaml", ".yml")))
        for file in files:
            try:
                sources.append((file, read_text(file)))
            except InvalidInput as exc:
                errors += exc.errors
    if errors:
        raise InvalidInput(errors)
    return sources


def default_pack_sources() -> list[tuple[str, str]]:
    """The shipped packs in rules/packs/, named packs/<file>."""
    folder = resources.files("rules") / "packs"
    return [
        (f"packs/{entry.name}", entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".yaml")
    ]


# --- one file ---------------------------------------------------------------------------------


def _parse_document(document: yaml.Node | None, name: str) -> tuple[list, list[LocatedError]]:
    ctx = Context(filename=name, base_dir=".")
    if document is None or (isinstance(document, yaml.ScalarNode) and document.tag.endswith(":null")):
        ctx.error(document, "", "the file holds no rules", "a rule file is a YAML list of rules")
        return [], ctx.errors
    if not isinstance(document, yaml.SequenceNode):
        ctx.error(document, "", f"expected a list of rules, got {describe(document)}", "start each rule with '- id: ...'")
        return [], ctx.errors
    rules = []
    for i, node in enumerate(document.value):
        rule = _parse_rule(node, f"[{i}]", ctx)
        if rule is not MISSING:
            rules.append(rule)
    return rules, ctx.errors


def _parse_rule(node: yaml.Node, path: str, ctx: Context):
    section = Section(node, path, ctx)
    if not section.valid:
        return MISSING
    before = len(ctx.errors)
    rule_id = section.get("id", _rule_id)
    path = f"{rule_id}" if isinstance(rule_id, str) else path  # later errors name the rule
    section.key_path = path
    common = dict(
        id=rule_id,
        title=section.get("title", text),
        category=section.get("category", _pattern(CATEGORY, "category", "e.g. classified-egress")),
        severity=section.get("severity", _severity),
        description=section.get("description", text, default=""),
        title_zh=section.get("title_zh", text, default=""),
        description_zh=section.get("description_zh", text, default=""),
        enabled=section.get("enabled", boolean, default=True),
        watchlist=section.get("watchlist", _watchlist, default=None),
        where=Location(ctx.filename, node.start_mark.line + 1, node.start_mark.column + 1),
    )
    has_when, has_correlate = "when" in section.keys, "correlate" in section.keys
    if has_when and has_correlate:
        ctx.error(section.keys["correlate"][0], join_path(path, "correlate"), "a rule has either 'when' or 'correlate', not both")
        section.read.update(("when", "unless", "correlate"))
        section.done()
        return MISSING
    if has_correlate:
        rule = _parse_correlation(section, path, ctx, common)
    elif has_when:
        rule = _parse_event_rule(section, path, ctx, common)
    else:
        ctx.error(node, path, "the rule needs 'when' (an event rule) or 'correlate' (a correlation rule)")
        section.read.update(("when", "unless", "alert", "correlate"))  # so a misspelt 'whan' gets its did-you-mean
        rule = MISSING
    section.done()
    return MISSING if len(ctx.errors) > before or rule is MISSING else rule


def _parse_event_rule(section: Section, path: str, ctx: Context, common: dict):
    when = section.get("when", _conditions(required=True))
    unless = section.get("unless", _conditions(required=False), default=())
    alert = section.get("alert", boolean, default=True)
    group_by = section.get("group_by", sequence(_group_field), default=())
    dedup_s = section.get("dedup_window", _window_or_off, default=None)
    suppress_s = section.get("suppress", _window_or_off, default=0.0)
    lifecycle = (group_by, dedup_s, suppress_s)
    if MISSING in (when, unless, alert, *lifecycle) or any(v is MISSING for v in common.values()):
        return MISSING
    return EventRule(when=when, unless=unless, alert=alert, group_by=tuple(group_by), dedup_s=dedup_s, suppress_s=suppress_s, **common)


def _window_or_off(node: yaml.Node, path: str, ctx: Context):
    """An event rule's dedup_window or suppress: a duration, or 0 / off for none."""
    if isinstance(node, yaml.ScalarNode) and scalar(node) in (0, "0", "off", False):
        return 0.0
    before = len(ctx.errors)
    value = duration_s(node, path, ctx)
    if value is MISSING:  # one message that names both choices
        del ctx.errors[before:]
        got = f"'{node.value}'" if isinstance(node, yaml.ScalarNode) else describe(node)
        return ctx.error(node, path, f"expected a duration or off, got {got}", "e.g. 30m, 1h, 1d or off")
    return value


# --- conditions -------------------------------------------------------------------------------


def _conditions(required: bool):
    def read(node: yaml.Node, path: str, ctx: Context):
        if not isinstance(node, yaml.MappingNode):
            return ctx.error(node, path, f"expected a mapping of field: condition, got {describe(node)}", "e.g. level: [core, important]")
        if required and not node.value:
            return ctx.error(node, path, "needs at least one condition")
        result = []
        for key_node, value_node in node.value:
            condition = _condition(str(key_node.value), key_node, value_node, join_path(path, str(key_node.value)), ctx)
            if condition is not MISSING:
                result.append(condition)
        return tuple(result) if len(result) == len(node.value) else MISSING

    return read


def _condition(name: str, key_node: yaml.Node, node: yaml.Node, path: str, ctx: Context):
    field = field_for(name)
    if field is None:
        return ctx.error(key_node, path, f"unknown field '{name}'", did_you_mean(name, known_field_names()))
    explicit = isinstance(node, yaml.MappingNode)  # {in: [...]} names its operator; [...] and a scalar do not
    if isinstance(node, yaml.SequenceNode):
        if field.kind not in OPERATORS["in"]:
            return ctx.error(node, path, f"a list does not apply to {field.kind} field '{name}'", "write true or false")
        operands = {"in": node}
    elif isinstance(node, yaml.MappingNode):
        if not node.value:
            return ctx.error(node, path, "needs at least one operator", "e.g. {gte: 20}")
        operands = {}
        for op_node, operand_node in node.value:
            op = str(op_node.value)
            if op not in OPERATORS:
                return ctx.error(op_node, join_path(path, op), f"unknown operator '{op}'", did_you_mean(op, tuple(OPERATORS)))
            if field.kind not in OPERATORS[op]:
                return ctx.error(op_node, join_path(path, op), f"operator '{op}' does not apply to {field.kind} field '{name}'")
            operands[op] = operand_node
    else:
        operands = {"eq": node}
    tests = []
    for op, operand_node in operands.items():
        test = _test(field, op, operand_node, join_path(path, op) if explicit else path, ctx)
        if test is MISSING:
            return MISSING
        tests.append(test)
    return Condition(name, tuple(tests))


def _test(field, op: str, node: yaml.Node, path: str, ctx: Context):
    if op == "exists":
        value = boolean(node, path, ctx)
        return value if value is MISSING else compile_test(op, value, str(value).lower())
    if op in ("in", "not_in", "glob", "not_glob") and isinstance(node, yaml.SequenceNode):
        if not node.value:
            return ctx.error(node, path, "the list is empty")
        values = [_operand(field, op, child, f"{path}[{i}]", ctx) for i, child in enumerate(node.value)]
        if any(v is MISSING for v in values):
            return MISSING
        return _compiled(op, tuple(values), ", ".join(_show(field, v) for v in values), node, path, ctx)
    if op in ("in", "not_in"):
        return ctx.error(node, path, f"expected a list, got {describe(node)}", f"e.g. {op}: [a, b]")
    value = _operand(field, op, node, path, ctx)
    if value is MISSING:
        return value
    operand = (value,) if op in ("glob", "not_glob") else value
    return _compiled(op, operand, _show(field, value), node, path, ctx)


def _compiled(op: str, operand, shown: str, node: yaml.Node, path: str, ctx: Context):
    try:
        return compile_test(op, operand, shown)
    except OperandError as exc:
        return ctx.error(node, path, str(exc))


def _operand(field, op: str, node: yaml.Node, path: str, ctx: Context):
    """One operand, typed for the field: strings checked against the field's choices, sizes with units."""
    if not isinstance(node, yaml.ScalarNode):
        return ctx.error(node, path, f"expected a single value, got {describe(node)}")
    value = scalar(node)
    if field.kind == "number":
        if field.unit == "bytes" and isinstance(value, str):
            return _size(value, node, path, ctx)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = "sizes may be written 200MB" if field.unit == "bytes" else ""
            return ctx.error(node, path, f"expected a number, got {describe(node)}", hint)
        if not math.isfinite(value):  # .nan never compares true, .inf never is reached: the rule would never fire
            return ctx.error(node, path, "must be a finite number")
        return value
    if field.kind == "bool":
        if not isinstance(value, bool):
            return ctx.error(node, path, f"expected true or false, got {describe(node)}")
        return value
    if value is None:
        return ctx.error(node, path, f"expected a string, got {describe(node)}", "to test that the field is absent, write {exists: false}")
    if not isinstance(value, str):
        return ctx.error(node, path, f"expected a string, got {describe(node)}", f"quote it: '{node.value}'")
    if op == "in_watchlist" and not WATCHLIST_NAME.match(value):
        return ctx.error(node, path, f"invalid watchlist name '{value}'", "e.g. allowed-devices")
    if field.choices and op in ("eq", "in", "not_in") and value not in field.choices:
        return ctx.error(node, path, f"'{value}' is not a possible {field.name}", did_you_mean(value, field.choices))
    return value


def _size(value: str, node: yaml.Node, path: str, ctx: Context):
    size = parse_size(value)
    if size is None:
        return ctx.error(node, path, f"expected a size, got '{value}'", "e.g. 200MB, 1.5GB or 4096")
    return size


def _show(field, value) -> str:
    if field.unit == "bytes" and isinstance(value, (int, float)):
        return format_bytes(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# --- correlation ------------------------------------------------------------------------------


def _parse_correlation(section: Section, path: str, ctx: Context, common: dict):
    node = section.keys["correlate"][1]
    section.read.add("correlate")
    corr_path = join_path(path, "correlate")
    inner = Section(node, corr_path, ctx)
    if not inner.valid:
        return MISSING
    kinds = [k for k in ("rules", "sequence", "absence") if k in inner.keys]
    if len(kinds) != 1:
        ctx.error(node, corr_path, "needs exactly one of 'rules' (counting), 'sequence' or 'absence'", f"found: {', '.join(kinds) or 'none'}")
        inner.read.update(inner.keys)
        inner.done()
        return MISSING
    kind = kinds[0]
    values: dict = {}
    if kind == "absence":
        values["absence_s"] = inner.get("absence", _absence)
    else:
        values["rules"] = inner.get(kind, sequence(_pattern(RULE_ID, "rule id", "e.g. MW-EGRESS-CLASSIFIED")))
        values["group_by"] = inner.get("group_by", sequence(_group_field), default=())
        values["window_s"] = inner.get("window", duration_s)
        if kind == "rules":
            values["thresholds"], values["require"] = _thresholds(inner, corr_path, ctx)
    inner.done()
    written = _items_written(inner.keys[kind][1]) if kind != "absence" else None
    if kind == "sequence" and written is not None and written < 2:
        ctx.error(inner.keys["sequence"][1], join_path(corr_path, "sequence"), "a sequence needs at least two steps")
        return MISSING
    if kind == "rules" and written == 0:
        ctx.error(inner.keys[kind][1], join_path(corr_path, kind), "the list is empty")
        return MISSING
    if any(v is MISSING for v in (*values.values(), *common.values())):
        return MISSING
    return CorrelationRule(kind={"rules": "threshold"}.get(kind, kind), **values, **common)


def _thresholds(inner: Section, path: str, ctx: Context):
    direct = [k for k in THRESHOLD_KINDS if k in inner.keys]
    grouped = [k for k in ("any", "all") if k in inner.keys]
    if len(direct) + len(grouped) != 1:
        where = inner.node
        ctx.error(where, path, "needs one threshold: count, distinct or sum, or a list of them under 'any' or 'all'", "e.g. count: {gte: 20}")
        inner.read.update(THRESHOLD_KINDS + ("any", "all"))
        return MISSING, "any"
    if direct:
        kind = direct[0]
        threshold = inner.get(kind, lambda n, p, c: _threshold_body(kind, n, p, c))
        return ((threshold,) if threshold is not MISSING else MISSING), "any"
    require = grouped[0]
    items = inner.get(require, sequence(_threshold_item))
    if items is not MISSING and _items_written(inner.keys[require][1]) == 0:
        ctx.error(inner.keys[require][1], join_path(path, require), "the list is empty")
        return MISSING, require
    return items, require


def _items_written(node: yaml.Node) -> int | None:
    """How many items a list holds as written (null: 0); None when it is not a list.

    Emptiness is judged on this, not on the items that survived their own errors, so one bad
    item is reported once and not also as an empty list.
    """
    if isinstance(node, yaml.SequenceNode):
        return len(node.value)
    return 0 if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null") else None


def _threshold_item(node: yaml.Node, path: str, ctx: Context):
    if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
        return ctx.error(node, path, "each item is one of count, distinct or sum", "e.g. - count: {gte: 20}")
    key_node, value_node = node.value[0]
    kind = str(key_node.value)
    if kind not in THRESHOLD_KINDS:
        return ctx.error(key_node, join_path(path, kind), f"unknown threshold '{kind}'", did_you_mean(kind, THRESHOLD_KINDS))
    return _threshold_body(kind, value_node, join_path(path, kind), ctx)


def _threshold_body(kind: str, node: yaml.Node, path: str, ctx: Context):
    if not isinstance(node, yaml.MappingNode):
        return ctx.error(node, path, f"expected a mapping, got {describe(node)}", "e.g. {gte: 20}" if kind == "count" else "e.g. {field: size, gte: 200MB}")
    field_name, field = None, None
    ops = []
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key == "field" and kind != "count":
            field_name = text(value_node, join_path(path, "field"), ctx)
            if field_name is MISSING:
                return MISSING
            field = field_for(field_name)
            if field is None:
                return ctx.error(value_node, join_path(path, "field"), f"unknown field '{field_name}'", did_you_mean(field_name, known_field_names()))
            if kind == "sum" and field.kind != "number":
                return ctx.error(value_node, join_path(path, "field"), f"sum needs a number field; '{field_name}' is {field.kind}")
        elif key in ("gte", "gt", "lte", "lt", "eq"):
            ops.append((key, key_node, value_node))
        else:
            return ctx.error(key_node, join_path(path, key), f"unknown key '{key}'", did_you_mean(key, ("field", "gte", "gt", "lte", "lt", "eq") if kind != "count" else ("gte", "gt", "lte", "lt", "eq")))
    if kind != "count" and field_name is None:
        return ctx.error(node, path, f"{kind} needs a field", "e.g. field: sha256" if kind == "distinct" else "e.g. field: size")
    if not ops:
        return ctx.error(node, path, "needs a comparison", "e.g. gte: 20")
    tests = []
    for op, _key_node, value_node in ops:
        number_field = field if kind == "sum" else _COUNT_FIELD
        value = _operand(number_field, op, value_node, join_path(path, op), ctx)
        if value is MISSING:
            return MISSING
        tests.append(compile_test(op, value, _show(number_field, value)))
    return Threshold(kind, field_name, tuple(tests))


def _absence(node: yaml.Node, path: str, ctx: Context):
    section = Section(node, path, ctx)
    if not section.valid:
        return MISSING
    seconds = section.get("heartbeat", duration_s, default=None)
    section.done()
    return seconds


def _group_field(node: yaml.Node, path: str, ctx: Context):
    name = text(node, path, ctx)
    if name is MISSING:
        return name
    field = field_for(name)
    if field is None or not field.groupable:
        choices = tuple(n for n, f in FIELDS.items() if f.groupable)
        return ctx.error(node, path, f"cannot group by '{name}'", did_you_mean(name, choices))
    return name


# --- small readers ----------------------------------------------------------------------------


def _pattern(regex: re.Pattern, what: str, example: str):
    def read(node: yaml.Node, path: str, ctx: Context):
        value = text(node, path, ctx)
        if value is not MISSING and not regex.match(value):
            return ctx.error(node, path, f"invalid {what} '{value}'", example)
        return value

    return read


_rule_id = _pattern(RULE_ID, "rule id", "upper case letters, digits and '-', e.g. MW-EGRESS-CLASSIFIED")


def _severity(node: yaml.Node, path: str, ctx: Context):
    value = text(node, path, ctx)
    if value is not MISSING and value not in SEVERITIES_ALLOWED:
        return ctx.error(node, path, f"unknown severity '{value}'", did_you_mean(value, SEVERITIES_ALLOWED))
    return value


def _watchlist(node: yaml.Node, path: str, ctx: Context):
    if isinstance(node, yaml.ScalarNode):
        name = _pattern(WATCHLIST_NAME, "watchlist name", "e.g. departing")(node, path, ctx)
        return name if name is MISSING else Watchlist(name)
    section = Section(node, path, ctx)
    if not section.valid:
        return MISSING
    name = section.get("name", _pattern(WATCHLIST_NAME, "watchlist name", "e.g. departing"))
    field = section.get("field", _group_field, default="user")
    section.done()
    return MISSING if MISSING in (name, field) else Watchlist(name, field)


# --- across files -----------------------------------------------------------------------------


def _declared_ids(document: yaml.Node | None) -> set[str]:
    ids = set()
    if isinstance(document, yaml.SequenceNode):
        for node in document.value:
            if isinstance(node, yaml.MappingNode):
                ids |= {str(v.value) for k, v in node.value if k.value == "id" and isinstance(v, yaml.ScalarNode)}
    return ids


def _check_references(rules: list, declared: set[str]) -> list[LocatedError]:
    """Duplicate ids and correlation references; a reference to a rule that has errors of its
    own is not reported again."""
    errors, first = [], {}
    for rule in rules:
        if rule.id in first:
            where = first[rule.id].where
            errors.append(
                LocatedError(rule.where.file, rule.where.line, rule.where.col, rule.id, "duplicate rule id", f"first defined at {where.file}:{where.line}")
            )
        else:
            first[rule.id] = rule
    event_ids = tuple(r.id for r in rules if isinstance(r, EventRule))
    for rule in rules:
        if isinstance(rule, CorrelationRule):
            for ref in rule.rules:
                if ref not in event_ids and not (ref in declared and ref not in first):
                    why = "is a correlation rule; only event rules can be counted" if ref in first else "no such event rule"
                    errors.append(
                        LocatedError(rule.where.file, rule.where.line, rule.where.col, f"{rule.id}.correlate", f"'{ref}': {why}", did_you_mean(ref, event_ids) if ref not in first else "")
                    )
    return errors


