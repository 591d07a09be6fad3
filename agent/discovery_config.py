"""The `agent.egress.discover:` section: whether and where the agent looks for IM and
cloud-drive folders by itself (agent/discovery.py), and which apps of the list count."""

from __future__ import annotations

import os
from dataclasses import dataclass

import yaml

from agent.apps import AppFolders, load_apps
from rules.errors import InvalidInput, did_you_mean
from rules.schema import MISSING, Context, Section, boolean, duration_s, folder, sequence, text


@dataclass(frozen=True)
class DiscoveryConfig:
    enabled: bool = True
    apps: tuple[AppFolders, ...] | None = None  # None: the shipped list (agent/apps.yaml), read at start
    interval_s: float = 60.0  # homes and app folders are looked for again this often
    home_roots: tuple[str, ...] | None = None  # None: /home (Linux), /Users (macOS), C:\Users (Windows)
    system_users: bool = True  # also the homes of the user database's accounts (uid >= 1000)

    def app_list(self) -> tuple[AppFolders, ...]:
        return load_apps() if self.apps is None else self.apps


def parse_discover(node: yaml.Node, key_path: str, ctx: Context):
    section = Section(node, key_path, ctx)
    if not section.valid:
        return MISSING
    values = dict(
        enabled=section.get("enabled", boolean, default=True),
        interval_s=section.get("interval_s", duration_s, default=60.0),
        home_roots=section.get("home_roots", sequence(folder(must_exist=False)), default=None),
        system_users=section.get("system_users", boolean, default=True),
    )
    files = section.get("files", sequence(_app_file), default=())
    wanted = section.get("apps", sequence(text), default=())
    section.done()
    if MISSING in values.values() or MISSING in (files, wanted):
        return MISSING
    apps = None
    if files or wanted:
        try:
            apps = load_apps(tuple(files))  # a firm's file: its errors are the config's, located in it
        except InvalidInput as exc:
            ctx.errors.extend(exc.errors)
            return MISSING
        apps = _restricted(apps, wanted, section, key_path, ctx)
    if apps is MISSING:
        return MISSING
    return DiscoveryConfig(apps=apps, **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _app_file(node: yaml.Node, key_path: str, ctx: Context):
    value = text(node, key_path, ctx)
    if value is MISSING:
        return value
    path = os.path.abspath(os.path.join(ctx.base_dir, os.path.expanduser(value)))
    return (
        path
        if os.path.isfile(path)
        else ctx.error(node, key_path, f"no such file: {path}", "a YAML list like agent/apps.yaml")
    )


def _restricted(apps: tuple[AppFolders, ...], wanted: list[str], section: Section, key_path: str, ctx: Context):
    """Only the apps named (every name must be on the list: a typo must not switch one off)."""
    if not wanted:
        return apps
    names = [a.app for a in apps]
    nodes = section.keys["apps"][1].value
    unknown = [(n, v) for n, v in zip(nodes, wanted, strict=True) if v not in names]
    for n, v in unknown:
        ctx.error(n, f"{key_path}.apps", f"no app {v!r} in the app folder list", did_you_mean(v, names))
    return MISSING if unknown else tuple(a for a in apps if a.app in wanted)
