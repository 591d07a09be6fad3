"""The closed set of operators a condition may use, and how each reads in an explanation.

A condition on a field is a scalar (equals), a list (any of), or a mapping of operators that
must all hold: {gte: 20}, {glob: ["*.dwg", "*.dxf"]}, {regex: "^KINGSTON"}, {not_in: [...]}.
Regexes are compiled with RE2, which runs in linear time: no rule can hang the agent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2

# operator -> the field kinds it applies to
OPERATORS: dict[str, tuple[str, ...]] = {
    "eq": ("text", "number", "bool"),
    "in": ("text", "number"),
    "not_in": ("text", "number"),
    "gte": ("number",),
    "gt": ("number",),
    "lte": ("number",),
    "lt": ("number",),
    "glob": ("text",),
    "not_glob": ("text",),
    "regex": ("text",),
    "contains": ("text",),
    "exists": ("text", "number", "bool"),
    "in_watchlist": ("text",),
}
MAX_PATTERN_CHARS = 1000

_PHRASES = {
    "eq": "is {}",
    "in": "is one of {}",
    "not_in": "is none of {}",
    "gte": "≥ {}",
    "gt": "> {}",
    "lte": "≤ {}",
    "lt": "< {}",
    "glob": "matches {}",
    "not_glob": "matches none of {}",
    "regex": "matches /{}/",
    "contains": "contains {}",
    "exists": "{}",
    "in_watchlist": "is on watchlist {}",
}


@dataclass(frozen=True)
class Test:
    """One operator with its operand, compiled; `shown` is the operand as a person reads it."""

    op: str
    operand: Any
    shown: str
    check: Callable[[Any], bool]

    def holds(self, value: Any) -> bool:
        return self.check(value)

    def describe(self) -> str:
        if self.op == "exists":
            return "is present" if self.operand else "is absent"
        return _PHRASES[self.op].format(self.shown)


class OperandError(ValueError):
    """An operand that cannot be compiled; the message is shown to the rule's author."""


def compile_test(op: str, operand: Any, shown: str) -> Test:
    """Build a Test; operand is already typed for the field (numbers, strings, tuples)."""
    if op == "eq":
        return Test(op, operand, shown, lambda v: v == operand)
    if op == "in":
        values = frozenset(operand)
        return Test(op, values, shown, lambda v: v in values)
    if op == "not_in":
        values = frozenset(operand)
        return Test(op, values, shown, lambda v: v not in values)
    if op in ("gte", "gt", "lte", "lt"):
        compare = {"gte": float.__ge__, "gt": float.__gt__, "lte": float.__le__, "lt": float.__lt__}[op]
        limit = float(operand)
        return Test(op, limit, shown, lambda v: v is not None and compare(float(v), limit))
    if op in ("glob", "not_glob"):
        patterns = tuple(operand)
        if any(len(p) > MAX_PATTERN_CHARS for p in patterns):
            raise OperandError(f"glob longer than {MAX_PATTERN_CHARS} characters")
        # The limit is on what the author wrote: a list of 80 extensions is a fair glob, and RE2
        # stays linear however long the joined regex is.
        matcher = _re2("|".join(glob_to_regex(p.lower()) for p in patterns), "glob", max_chars=None)
        if op == "glob":
            return Test(op, patterns, shown, lambda v: v is not None and matcher.match(v.lower()) is not None)
        return Test(op, patterns, shown, lambda v: v is None or matcher.match(v.lower()) is None)
    if op == "regex":
        pattern = _re2(operand)
        return Test(op, operand, shown, lambda v: v is not None and pattern.search(v) is not None)
    if op == "contains":
        needle = operand.lower()
        return Test(op, operand, shown, lambda v: v is not None and needle in v.lower())
    if op == "exists":
        wanted = bool(operand)
        return Test(op, wanted, shown, lambda v: (v is not None) == wanted)
    if op == "in_watchlist":  # resolved by the engine, which knows the watchlists (the collector does)
        return Test(op, operand, shown, lambda v: False)
    raise OperandError(f"unknown operator '{op}'")


def _re2(pattern: str, what: str = "regex", max_chars: int | None = MAX_PATTERN_CHARS):
    if max_chars is not None and len(pattern) > max_chars:
        raise OperandError(f"regex longer than {max_chars} characters")
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise OperandError(f"invalid {what}: {reason}") from None


def glob_to_regex(pattern: str) -> str:
    """A shell glob as an anchored RE2 regex: * any run, ? one character, [abc] a class.

    `*` crosses folder separators, so "*/drawings/*" matches at any depth.
    """
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "(?s:^" + "".join(out) + "$)"
