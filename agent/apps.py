"""The list of IM and cloud-drive folders (agent/apps.yaml plus a firm's own files), read once
into typed values: data, not code, so a firm extends it without a release.

Each entry names an app, its egress kind (im | sync) and, per OS, home-relative folder patterns
whose components may hold glob wildcards (one folder level each). Every error is collected and
raised together, located as file:line:column, like the config and the rules.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import resources

import yaml

from rules.errors import InvalidInput, LocatedError
from rules.schema import MISSING, Context, Section, choice, describe, sequence, text
from rules.yamldoc import load_document, read_text

APP_KINDS = ("im", "sync")
OSES = ("linux", "windows", "macos")
SHIPPED = "agent/apps.yaml"  # how the shipped file is named in errors
MAX_COMPONENTS = 16
MAX_APP_CHARS = 64


@dataclass(frozen=True)
class AppFolders:
    """Where one app keeps its files, per OS."""

    app: str
    kind: str  # im | sync
    linux: tuple[str, ...] = ()
    windows: tuple[str, ...] = ()
    macos: tuple[str, ...] = ()

    def patterns(self, os_name: str) -> tuple[str, ...]:
        return getattr(self, os_name)


def current_os() -> str:
    return "windows" if os.name == "nt" else "macos" if sys.platform == "darwin" else "linux"


def load_apps(extra_files: tuple[str, ...] = ()) -> tuple[AppFolders, ...]:
    """The shipped list and each extra file, merged by app name (patterns added, kinds must
    agree); raises InvalidInput with every error of every file."""
    shipped = resources.files("agent").joinpath("apps.yaml").read_text(encoding="utf-8")
    errors: list[LocatedError] = []
    entries: list[tuple[AppFolders, str, yaml.Node]] = []
    for name, read in [(SHIPPED, lambda: shipped)] + [(p, lambda p=p: read_text(p)) for p in extra_files]:
        try:
            entries += _parse_file(read(), name, errors)
        except InvalidInput as exc:
            errors += exc.errors
    merged: dict[str, AppFolders] = {}
    for entry, filename, node in entries:
        known = merged.get(entry.app)
        if known is None:
            merged[entry.app] = entry
        elif known.kind != entry.kind:
            errors.append(
                _located(
                    filename, node, f"app {entry.app!r} is already listed with kind {known.kind}", "one app, one kind"
                )
            )
        else:
            merged[entry.app] = AppFolders(
                entry.app, entry.kind, *(_union(known.patterns(o), entry.patterns(o)) for o in OSES)
            )
    if errors:
        raise InvalidInput(errors)
    return tuple(merged.values())


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return a + tuple(p for p in b if p not in a)


def _located(filename: str, node: yaml.Node, message: str, hint: str = "") -> LocatedError:
    return LocatedError(filename, node.start_mark.line + 1, node.start_mark.column + 1, "app", message, hint)


def _parse_file(content: str, filename: str, errors: list[LocatedError]) -> list[tuple[AppFolders, str, yaml.Node]]:
    document = load_document(content, filename)
    ctx = Context(filename=filename, base_dir=os.path.dirname(os.path.abspath(filename)))
    found = []
    if document is None or not isinstance(document, yaml.SequenceNode):
        got = "nothing" if document is None else describe(document)
        ctx.error(document, "", f"expected a list of apps, got {got}", "each entry: app, kind, paths")
    else:
        for i, node in enumerate(document.value):
            entry = _parse_entry(node, f"[{i}]", ctx)
            if entry is not MISSING:
                found.append((entry, filename, node))
    errors += ctx.errors
    return found


def _parse_entry(node: yaml.Node, key_path: str, ctx: Context):
    section = Section(node, key_path, ctx)
    if not section.valid:
        return MISSING
    app = section.get("app", _app_name)
    kind = section.get("kind", choice(APP_KINDS, "kind"))
    paths = section.get("paths", _parse_paths)
    section.done()
    if MISSING in (app, kind, paths):
        return MISSING
    return AppFolders(app, kind, **paths)


def _app_name(node: yaml.Node, key_path: str, ctx: Context):
    value = text(node, key_path, ctx)
    if value is MISSING:
        return value
    if not value.strip() or len(value) > MAX_APP_CHARS or not value.isprintable():
        return ctx.error(node, key_path, f"an app name is 1 to {MAX_APP_CHARS} printable characters", "e.g. WeChat")
    return value


def _parse_paths(node: yaml.Node, key_path: str, ctx: Context):
    section = Section(node, key_path, ctx)
    if not section.valid:
        return MISSING
    before = len(ctx.errors)
    values = {o: section.get(o, sequence(_pattern), default=()) for o in OSES}
    section.done()
    if MISSING in values.values() or len(ctx.errors) > before:
        return MISSING
    if not any(values.values()):
        return ctx.error(node, key_path, "no folder for any OS", "list folders under linux, windows or macos")
    return {o: tuple(v) for o, v in values.items()}


def _pattern(node: yaml.Node, key_path: str, ctx: Context):
    """A home-relative folder pattern: `/`-separated, wildcards within one component only."""
    value = text(node, key_path, ctx)
    if value is MISSING:
        return value
    problem = _pattern_problem(value)
    if problem:
        return ctx.error(node, key_path, f"{value!r} {problem}", "e.g. Documents/WeChat Files/*/FileStorage/File")
    return value


def _pattern_problem(value: str) -> str:
    parts = value.split("/")
    checks = (
        (value.startswith(("/", "~")) or value[1:2] == ":", "must be relative to the user's home"),
        ("\\" in value, "uses \\ between folders: write /"),
        (any(p in ("", ".", "..") for p in parts), "has an empty, '.' or '..' component"),
        ("**" in value, "holds '**': one wildcard matches one folder level"),
        (len(parts) > MAX_COMPONENTS, f"has more than {MAX_COMPONENTS} components"),
        (not value.isprintable(), "holds a control character"),
        (set(parts[0]) <= set("*?"), "starts with a bare wildcard (it would match every folder of the home)"),
    )
    return next((message for failed, message in checks if failed), "")
