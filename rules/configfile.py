"""The one YAML config file: an `agent:` and a `server:` section, each read by its own side."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

from rules.errors import InvalidInput, LocatedError
from rules.schema import MISSING, Context, Section, text
from rules.yamldoc import load_document, read_text

T = TypeVar("T")
SECTIONS = ("agent", "server")
PLACEHOLDER_SECRETS = {"change-me", "changeme", "secret", "password"}
MIN_SECRET_CHARS = 16


def default_config_path() -> str:
    return os.environ.get("MIWEI_CONFIG") or "./config.yaml"


def load_section(path: str, name: str, parse: Callable[[Section, Context], T]) -> T:
    """Parse section `name` of the config file at `path`; raise InvalidInput with every error.

    The other side's section is allowed but not read: each program checks its own part.
    """
    document = load_document(read_text(path), path)
    ctx = Context(filename=path, base_dir=os.path.dirname(os.path.abspath(path)))
    if document is None:
        raise InvalidInput([LocatedError(path, 1, 1, "", f"the config file is empty; it needs the '{name}:' section")])
    top = Section(document, "", ctx)
    result = top.get(name, lambda node, key_path, c: _read_section(node, key_path, c, parse))
    for other in SECTIONS:
        if other != name:
            top.get(other, lambda *_: None, default=None)
    top.done()
    if ctx.errors or result is MISSING:
        raise InvalidInput(ctx.errors)
    return result


def _read_section(node: yaml.Node, key_path: str, ctx: Context, parse: Callable[[Section, Context], T]) -> Any:
    section = Section(node, key_path, ctx)
    if not section.valid:
        return MISSING
    before = len(ctx.errors)
    value = parse(section, ctx)
    section.done()
    return MISSING if len(ctx.errors) > before else value


def secret(node: yaml.Node, key_path: str, ctx: Context) -> Any:
    """A shared secret: long enough, and not the example file's placeholder."""
    value = text(node, key_path, ctx)
    if value is MISSING:
        return value
    if value.strip().lower() in PLACEHOLDER_SECRETS:
        return ctx.error(node, key_path, "is still the example placeholder", "set a long random secret")
    if len(value) < MIN_SECRET_CHARS:
        return ctx.error(
            node, key_path, f"must be at least {MIN_SECRET_CHARS} characters", "set a long random secret"
        )
    return value


def not_yet_supported(what: str) -> Callable[[yaml.Node, str, Context], Any]:
    """For keys reserved by the interface whose feature has not landed: only empty is valid."""

    def read(node: yaml.Node, key_path: str, ctx: Context) -> Any:
        if isinstance(node, yaml.SequenceNode) and not node.value:
            return ()
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return ()
        return ctx.error(node, key_path, f"{what} are not supported by this version yet", "leave it as []")

    return read
