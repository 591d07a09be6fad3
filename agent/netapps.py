"""Which programs count as network applications: the shipped list (agent/netapps.yaml) and a firm's.

A classified file read by a browser, an IM or mail client, a cloud-drive client or a remote-desktop
or transfer tool is how an upload starts (agent/readwatch.py). Programs are told by their
executable's resolved path, never by the process name: a user can name a process anything
(a symlink called `firefox`, prctl(PR_SET_NAME)), but not change which file the kernel executed.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from importlib import resources

import yaml

from rules.errors import InvalidInput, LocatedError

SHIPPED = "netapps.yaml"
APP_KINDS = ("browser", "im", "mail", "sync", "remote", "transfer", "other")


@dataclass(frozen=True)
class NetApp:
    name: str  # what events say in details.app: "WeChat", "Firefox"
    kind: str  # APP_KINDS
    exe: tuple[str, ...]  # fnmatch patterns on the resolved executable path


@dataclass(frozen=True)
class AppList:
    apps: tuple[NetApp, ...]
    ignore: tuple[NetApp, ...] = ()  # never reported, even when an app pattern matches

    def app_for(self, exe: str) -> NetApp | None:
        """The network application this executable is, or None (unlisted, or on the ignore list)."""
        if not exe or any(_matches(exe, a) for a in self.ignore):
            return None
        return next((a for a in self.apps if _matches(exe, a)), None)

    def __add__(self, other: AppList) -> AppList:
        return AppList(self.apps + other.apps, self.ignore + other.ignore)


def _matches(exe: str, app: NetApp) -> bool:
    return any(fnmatch.fnmatchcase(exe, pattern) for pattern in app.exe)


def load_app_lists(extra_files: tuple[str, ...] = ()) -> AppList:
    """The shipped list plus the firm's files, in order; raises InvalidInput naming every error."""
    shipped = resources.files("agent").joinpath(SHIPPED).read_text(encoding="utf-8")
    found = parse_app_list(shipped, f"agent/{SHIPPED}")
    for path in extra_files:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput([LocatedError(path, 0, 0, "", f"cannot read the list: {exc}")]) from exc
        found = found + parse_app_list(text, path)
    return found


def parse_app_list(text: str, filename: str) -> AppList:
    errors: list[LocatedError] = []

    def error(key_path: str, message: str, hint: str = "") -> None:
        errors.append(LocatedError(filename, 0, 0, key_path, message, hint))

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise InvalidInput(
            [LocatedError(filename, line, col, "", f"not YAML: {getattr(exc, 'problem', exc)}")]
        ) from exc
    if not isinstance(data, dict) or set(data) - {"apps", "ignore"}:
        error("", "expected a mapping with `apps` and/or `ignore`", "see agent/netapps.yaml")
        raise InvalidInput(errors)
    lists = {key: _entries(data.get(key) or [], key, error) for key in ("apps", "ignore")}
    if errors:
        raise InvalidInput(errors)
    return AppList(tuple(lists["apps"]), tuple(lists["ignore"]))


def _entries(items, key: str, error) -> list[NetApp]:
    if not isinstance(items, list):
        error(key, "expected a list of entries")
        return []
    found = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "kind", "exe"}:
            error(
                where,
                "expected name, exe and (for apps) kind",
                "e.g. {name: Firefox, kind: browser, exe: ['*/firefox']}",
            )
            continue
        name, kind, exe = item.get("name"), item.get("kind", "other"), item.get("exe")
        if not isinstance(name, str) or not name.strip():
            error(f"{where}.name", "a name is required")
        if kind not in APP_KINDS:
            error(f"{where}.kind", f"unknown kind {kind!r}", f"one of {', '.join(APP_KINDS)}")
        if isinstance(exe, str):
            exe = [exe]
        if (
            not isinstance(exe, list)
            or not exe
            or not all(isinstance(p, str) and p.startswith(("/", "*/")) for p in exe)
        ):
            # a bare name ("firefox") would never match a resolved path: refused, not left silent
            error(
                f"{where}.exe",
                "expected a list of path patterns starting with / or */",
                "e.g. ['/usr/bin/curl', '*/firefox']",
            )
            continue
        if isinstance(name, str) and kind in APP_KINDS:
            found.append(NetApp(name.strip(), kind, tuple(exe)))
    return found
