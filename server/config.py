"""The `server:` section of the config file, parsed once into typed, immutable values."""

from __future__ import annotations

import os
from dataclasses import dataclass

import yaml

from rules.configfile import load_section, not_yet_supported, secret
from rules.schema import MISSING, Context, Section, choice, duration_s, host_port, text

LOG_LEVELS = ("debug", "info", "warning", "error")
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")


@dataclass(frozen=True)
class ServerConfig:
    listen: tuple[str, int]
    database: str  # SQLAlchemy URL; a relative SQLite path is resolved against the config's folder
    enroll_secret: str
    agent_offline_s: float = 120.0
    notify: tuple[str, ...] = ()
    log_level: str = "info"
    log_file: str | None = None


def load_server_config(path: str) -> ServerConfig:
    """Read and check the server section; raises rules.errors.InvalidInput listing every error."""
    return load_section(path, "server", _parse_server)


def _parse_server(section: Section, ctx: Context) -> ServerConfig:
    values = dict(
        listen=section.get("listen", host_port, default=("127.0.0.1", 8765)),
        database=section.get("database", _database_url, default=_sqlite_url(ctx, "./var/miwei.db")),
        enroll_secret=section.get("enroll_secret", secret),
        agent_offline_s=section.get("agent_offline_s", duration_s, default=120.0),
        notify=section.get("notify", not_yet_supported("notification channels"), default=()),
        log_level=section.get("log_level", choice(LOG_LEVELS, "log level"), default="info"),
        log_file=section.get("log_file", _log_file, default=None),
    )
    if any(v is MISSING for v in values.values()):
        return MISSING
    return ServerConfig(**values)


def _database_url(node: yaml.Node, key_path: str, ctx: Context):
    url = text(node, key_path, ctx)
    if url is MISSING:
        return url
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in DATABASE_SCHEMES:
        what = f"unsupported database '{scheme}'" if sep else f"not a database URL: '{url}'"
        return ctx.error(node, key_path, what, "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
    if scheme == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path or path == ":memory:":
            return ctx.error(node, key_path, "SQLite needs a file path", "e.g. sqlite:///./var/miwei.db")
        return _sqlite_url(ctx, path)
    return url


def _sqlite_url(ctx: Context, path: str) -> str:
    return "sqlite:///" + os.path.abspath(os.path.join(ctx.base_dir, path))


def _log_file(node: yaml.Node, key_path: str, ctx: Context):
    path = text(node, key_path, ctx)
    return path if path is MISSING else os.path.abspath(os.path.join(ctx.base_dir, path))
