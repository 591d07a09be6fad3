"""`miwei-agent check-rules`: load rule files the way the agent does, and say what is wrong.

The default packs always load, so the files given are checked together with them (a duplicate
rule id is an error across files too). Errors are located; lint warnings are only reported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from agent.config import RULE_FILE_SUFFIXES
from rules.errors import InvalidInput, LocatedError
from rules.lint import lint
from rules.loader import default_pack_sources, load_rule_sources, read_rule_paths


@dataclass(frozen=True)
class RuleCheck:
    files: tuple[str, ...]  # every file read, packs first
    rule_count: int  # event and correlation rules; 0 when there are errors
    errors: tuple[LocatedError, ...]
    warnings: tuple[LocatedError, ...]


def check_rules(paths: Sequence[str]) -> RuleCheck:
    """The default packs plus the files and folders in `paths`, checked together."""
    sources = default_pack_sources()
    errors: list[LocatedError] = []
    for path in paths:
        problem = _folder_problem(path) if os.path.isdir(path) else None
        if problem:
            errors.append(problem)
            continue
        try:
            sources += read_rule_paths([path])
        except InvalidInput as exc:
            errors += exc.errors
    files = tuple(name for name, _ in sources)
    try:
        ruleset = load_rule_sources(sources)
    except InvalidInput as exc:
        return RuleCheck(files, 0, tuple(InvalidInput(errors + exc.errors).errors), ())
    if errors:
        return RuleCheck(files, 0, tuple(InvalidInput(errors).errors), ())
    return RuleCheck(files, len(ruleset.ids), (), tuple(lint(ruleset)))


def _folder_problem(folder: str) -> LocatedError | None:
    try:
        names = os.listdir(folder)
    except OSError as exc:
        return LocatedError(folder, 0, 0, "", f"cannot read folder: {exc.strerror}")
    if not any(name.endswith(RULE_FILE_SUFFIXES) for name in names):
        return LocatedError(folder, 0, 0, "", "no rule files in this folder", "rule files end in .yaml or .yml")
    return None
