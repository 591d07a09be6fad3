"""Small, explicit readers that turn located YAML nodes into typed values.

Each reader takes (node, key_path, ctx) and returns a value, or MISSING after recording a
located error in ctx. `Section` reads a mapping key by key and reports unknown keys with a
did-you-mean once the caller is done with it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from rules.errors import LocatedError, did_you_mean
from rules.yamldoc import join_path

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
Reader = Callable[[yaml.Node, str, "Context"], Any]

_TAG_NAMES = {
    "tag:yaml.org,2002:str": "a string",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "nothing (null)",
    "tag:yaml.org,2002:timestamp": "a date",
}


@dataclass
class Context:
    filename: str
    base_dir: str  # relative paths in the file are resolved against this folder
    errors: list[LocatedError] = field(default_factory=list)

    def error(self, node: yaml.Node | None, key_path: str, message: str, hint: str = "") -> Any:
        line, col = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        self.errors.append(LocatedError(self.filename, line, col, key_path, message, hint))
        return MISSING


def describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if scalar(node) is MISSING:
        name = _TAG_NAMES.get(node.tag)
        return f"an invalid {name.split(' ', 1)[1]} '{node.value}'" if name else f"a value tagged '{node.tag}'"
    return _TAG_NAMES.get(node.tag, "a value")


def scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar node, or MISSING when it cannot be built."""
    try:
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except Exception:  # unknown tag (!env X), bad explicit value (!!int abc), impossible date (2024-02-30)
        return MISSING


class Section:
    """Reads one mapping node; call `done()` after the last `get` to report unknown keys."""

    def __init__(self, node: yaml.Node | None, key_path: str, ctx: Context):
        self.key_path, self.ctx, self.node = key_path, ctx, node
        self.keys: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        self.read: set[str] = set()
        self.valid = True
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
            return  # an empty section: every key takes its default
        if not isinstance(node, yaml.MappingNode):
            self.valid = False
            ctx.error(node, key_path, f"expected a mapping, got {describe(node)}")
            return
        for key_node, value_node in node.value:
            self.keys[str(key_node.value)] = (key_node, value_node)

    def get(self, key: str, reader: Reader, default: Any = MISSING) -> Any:
        self.read.add(key)
        path = join_path(self.key_path, key)
        if key not in self.keys:
            if default is MISSING and self.valid:
                return self.ctx.error(self.node, path, "required key is missing")
            return default
        return reader(self.keys[key][1], path, self.ctx)

    def done(self) -> None:
        for key, (key_node, _) in self.keys.items():
            if key not in self.read:
                self.ctx.error(
                    key_node, join_path(self.key_path, key), "unknown key", did_you_mean(key, sorted(self.read))
                )


def _typed(node: yaml.Node, path: str, ctx: Context, types: tuple, want: str) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value = scalar(node)
        if isinstance(value, types) and not (bool not in types and isinstance(value, bool)):
            return value
    return ctx.error(node, path, f"expected {want}, got {describe(node)}")


def text(node: yaml.Node, path: str, ctx: Context) -> Any:
    value = _typed(node, path, ctx, (str,), "a string")
    if value is not MISSING and not value.strip():
        return ctx.error(node, path, "must not be empty")
    return value


def boolean(node: yaml.Node, path: str, ctx: Context) -> Any:
    return _typed(node, path, ctx, (bool,), "true or false")


def integer(minimum: int | None = None, maximum: int | None = None) -> Reader:
    def read(node: yaml.Node, path: str, ctx: Context) -> Any:
        value = _typed(node, path, ctx, (int,), "an integer")
        if value is MISSING:
            return value
        if minimum is not None and value < minimum:
            return ctx.error(node, path, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            return ctx.error(node, path, f"must be at most {maximum}, got {value}")
        return value

    return read


def number(minimum: float = 0.0, maximum: float = math.inf) -> Reader:
    def read(node: yaml.Node, path: str, ctx: Context) -> Any:
        value = _typed(node, path, ctx, (int, float), "a number")
        if value is not MISSING and not math.isfinite(value):
            return ctx.error(node, path, "must be a finite number")
        if value is not MISSING and value < minimum:
            return ctx.error(node, path, f"must be at least {minimum}, got {value}")
        if value is not MISSING and value > maximum:
            return ctx.error(node, path, f"must be at most {maximum}, got {value}")
        return float(value) if value is not MISSING else value

    return read


def choice(options: tuple[str, ...], what: str = "value") -> Reader:
    def read(node: yaml.Node, path: str, ctx: Context) -> Any:
        value = _typed(node, path, ctx, (str,), "a string")
        if value is not MISSING and value not in options:
            return ctx.error(node, path, f"unknown {what} '{value}'", did_you_mean(value, options))
        return value

    return read


def http_url(node: yaml.Node, path: str, ctx: Context) -> Any:
    value = text(node, path, ctx)
    if value is MISSING:
        return value
    try:
        parts = urlsplit(value)
        is_http = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed IPv6 bracket, or a port that is not a number in 0-65535
        is_http = False
    if not is_http:
        return ctx.error(node, path, f"not an http(s) URL: '{value}'", "e.g. http://127.0.0.1:8765")
    return value.rstrip("/")


def host_port(node: yaml.Node, path: str, ctx: Context) -> Any:
    value = text(node, path, ctx)
    if value is MISSING:
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return ctx.error(node, path, f"expected HOST:PORT, got '{value}'", "e.g. 127.0.0.1:8765")
    return host.strip("[]"), int(port)


_DURATION = re.compile(r"^(\d+)\s*(ms|s|m|h|d)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def duration_s(node: yaml.Node, path: str, ctx: Context) -> Any:
    """Seconds, written as a number or with a unit: 30, 30s, 10m, 2h, 1d."""
    if isinstance(node, yaml.ScalarNode):
        value = scalar(node)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf:
            return float(value)
        match = _DURATION.match(str(value).strip()) if isinstance(value, str) else None
        if match and int(match.group(1)) > 0:
            return float(int(match.group(1)) * _DURATION_UNITS[match.group(2)])
    return ctx.error(node, path, "expected a positive duration", "e.g. 30, 30s, 10m, 2h or 1d")


def folder(must_exist: bool) -> Reader:
    """A folder path; relative paths are resolved against the config file's folder."""

    def read(node: yaml.Node, path: str, ctx: Context) -> Any:
        value = text(node, path, ctx)
        if value is MISSING:
            return value
        resolved = os.path.abspath(os.path.join(ctx.base_dir, os.path.expanduser(value)))
        if must_exist and not os.path.isdir(resolved):
            why = "not a folder" if os.path.exists(resolved) else "folder does not exist"
            return ctx.error(node, path, f"{why}: {resolved}")
        return resolved

    return read


def sequence(item: Reader) -> Reader:
    def read(node: yaml.Node, path: str, ctx: Context) -> Any:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            return ctx.error(node, path, f"expected a list, got {describe(node)}")
        values = [item(child, f"{path}[{i}]", ctx) for i, child in enumerate(node.value)]
        return tuple(v for v in values if v is not MISSING)

    return read


def has_errors_since(ctx: Context, count: int) -> bool:
    return len(ctx.errors) > count
