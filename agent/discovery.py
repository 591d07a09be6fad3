"""Finds the IM and cloud-drive folders (agent/apps.py) in every user's home, now and on an
interval, so each becomes an egress place of its kind without an admin listing it.

Homes come from the user database (uid >= UID_MIN, not nobody) and from the folders under the
home roots (/home on Linux). Patterns are matched one folder level at a time with lstat and
scandir: no symbolic link is followed, a wildcard matches at most MAX_MATCHES folders per level
and a home at most MAX_LOOKUPS lookups, so a hostile home (a link to /, a loop, ten thousand
account folders) costs little and leads nowhere. A folder that is, holds or lies in a classified
folder or the agent's state folder is never egress: it is skipped, logged and reported once.

Re-checked every interval_s (default 60 s): a home or an app folder created after the start
(WeChat makes `FileStorage/File` at the first login) is watched within that time. Polling was
chosen over inotify on /home because the folders appear several levels deep in hidden trees
(.config/QQ/nt_qq_<hash>/...) that would each need a watch; a poll costs one lstat or scandir
per pattern component per home (about 2 ms for 20 homes here: tests/agent/test_discovery.py).
Windows (C:\\Users) and macOS (/Users) homes are written but untested: MiWei is tested on Linux.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from agent.apps import AppFolders, current_os
from agent.paths import is_under
from agent.poller import Poller

MAX_MATCHES = 32  # folders one wildcard component may match (account ids per app)
MAX_LOOKUPS = 2000  # lstat + scandir calls per home and poll
MAX_HOMES = 2000
UID_MIN = {"linux": 1000, "macos": 501}
NOBODY_UID = 65534


@dataclass(frozen=True)
class FoundFolder:
    path: str
    app: str
    kind: str  # im | sync
    home: str


@dataclass(frozen=True)
class Refused:
    """A folder of an app found but not watched, and why (reported once as agent.error)."""

    path: str
    app: str
    reason: str  # classified-overlap | symlink
    why: str  # one sentence for the event and the log


def default_home_roots(os_name: str) -> tuple[str, ...]:
    if os_name == "windows":
        return (os.path.join(os.environ.get("SystemDrive", "C:") + os.sep, "Users"),)
    return ("/Users",) if os_name == "macos" else ("/home",)


def user_homes(
    home_roots: tuple[str, ...], system_users: bool, os_name: str, passwd_path: str | None = None
) -> list[str]:
    """Each real home folder once (resolved): the user database's human accounts, then every
    folder (not a link) under the home roots."""
    homes: dict[str, None] = {}
    if system_users and os_name != "windows":
        for uid, home in _accounts(passwd_path):
            if uid >= UID_MIN.get(os_name, 1000) and uid != NOBODY_UID and os.path.isabs(home):
                real = os.path.realpath(home)
                if real != os.sep and os.path.isdir(real):
                    homes.setdefault(real)
    for root in home_roots:
        try:
            with os.scandir(root) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False) and len(homes) < MAX_HOMES:
                        homes.setdefault(os.path.realpath(entry.path))
        except OSError as exc:
            logger.debug("home root not readable root={!r} error={!r}", root, exc.strerror)
    return list(homes)[:MAX_HOMES]


def _accounts(passwd_path: str | None) -> list[tuple[int, str]]:
    """(uid, home) of every account: from a passwd-format file when given (tests), else from
    the user database (pwd, which also asks LDAP or SSSD where the PC uses them)."""
    if passwd_path is None:
        import pwd

        return [(p.pw_uid, p.pw_dir) for p in pwd.getpwall()]
    found = []
    with open(passwd_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if len(fields) >= 7 and fields[2].isdigit():
                found.append((int(fields[2]), fields[5]))
    return found


def find_app_folders(home: str, app: AppFolders, os_name: str) -> tuple[list[FoundFolder], list[Refused]]:
    """The folders of `app` in `home`, following no link; a pattern's last folder that is a
    link is returned as refused (its target is named, never entered)."""
    found: list[FoundFolder] = []
    refused: list[Refused] = []
    budget = [MAX_LOOKUPS]
    for pattern in app.patterns(os_name):
        for path, is_link in _expand(home, pattern.split("/"), budget):
            if is_link:
                why = f"the {app.app} folder {path!r} is a symbolic link to {os.path.realpath(path)!r}: not followed"
                refused.append(Refused(path, app.app, "symlink", why))
            else:
                found.append(FoundFolder(path, app.app, app.kind, home))
    return found, refused


def _expand(base: str, parts: list[str], budget: list[int]) -> list[tuple[str, bool]]:
    """(path, is_link) of the folders matching parts under base, one level at a time."""
    if not parts:
        return [(base, False)]
    part, rest = parts[0], parts[1:]
    if budget[0] <= 0:
        return []
    budget[0] -= 1
    if not _has_magic(part):
        names = [part]
    else:
        try:
            with os.scandir(base) as entries:
                names = sorted(e.name for e in entries if _matches(e.name, part) and e.is_dir(follow_symlinks=False))
        except OSError:
            return []
        names = names[:MAX_MATCHES]
    results: list[tuple[str, bool]] = []
    for name in names:
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            if not rest:
                results.append((path, True))
            continue
        if stat.S_ISDIR(st.st_mode):
            results += _expand(path, rest, budget)
    return results


def _has_magic(part: str) -> bool:
    return any(c in part for c in "*?[")


def _matches(name: str, pattern: str) -> bool:
    # Windows and macOS file systems ignore case; Linux's do not
    return (
        fnmatch.fnmatch(name.lower(), pattern.lower())
        if sys.platform in ("win32", "darwin")
        else fnmatch.fnmatchcase(name, pattern)
    )


def overlap(path: str, excluded: tuple[str, ...]) -> str | None:
    """The excluded folder (classified, state) that path is, lies in or holds; None if none."""
    real = os.path.realpath(path)
    for folder in excluded:
        other = os.path.realpath(folder)
        if is_under(real, other) or is_under(other, real):
            return folder
    return None


class AppFolderDiscovery(Poller):
    """Polls the homes for app folders; calls on_found / on_lost as they come and go, and
    report(refused) once per refused folder."""

    poll_name = "app-folders"

    def __init__(
        self,
        apps: tuple[AppFolders, ...],
        excluded: tuple[str, ...],
        on_found: Callable[[FoundFolder], None],
        on_lost: Callable[[FoundFolder], None],
        report: Callable[[Refused], None],
        interval_s: float = 60.0,
        home_roots: tuple[str, ...] | None = None,
        system_users: bool = True,
        os_name: str | None = None,
        passwd_path: str | None = None,
    ):
        self.apps, self.excluded = apps, excluded
        self.on_found, self.on_lost, self.report = on_found, on_lost, report
        self.interval_s = interval_s
        self.os_name = os_name or current_os()
        self.home_roots = default_home_roots(self.os_name) if home_roots is None else home_roots
        self.system_users, self.passwd_path = system_users, passwd_path
        self.current: dict[str, FoundFolder] = {}  # by path: places taken in
        self._reported: set[tuple[str, str]] = set()
        self._init_poller()

    def poll_interval_s(self) -> float:
        return self.interval_s

    def find(self) -> tuple[dict[str, FoundFolder], list[Refused]]:
        found: dict[str, FoundFolder] = {}
        refused: list[Refused] = []
        excluded_real = [os.path.realpath(e) for e in self.excluded]
        for home in user_homes(self.home_roots, self.system_users, self.os_name, self.passwd_path):
            if any(is_under(home, e) for e in excluded_real):
                continue  # a home inside a classified folder: nothing in it is egress
            for app in self.apps:
                folders, links = find_app_folders(home, app, self.os_name)
                refused += [self._checked_link(r) for r in links]
                for f in folders:
                    hit = overlap(f.path, self.excluded)
                    if hit is None:
                        found.setdefault(f.path, f)
                    else:
                        why = f"the {f.app} folder {f.path!r} overlaps the classified or state folder {hit!r}: not an egress place"
                        refused.append(Refused(f.path, f.app, "classified-overlap", why))
        return found, refused

    def _checked_link(self, link: Refused) -> Refused:
        """A linked app folder whose target is classified says so: that content is being synced."""
        hit = overlap(link.path, self.excluded)  # resolves the link's target
        if hit is None:
            return link
        return Refused(
            link.path,
            link.app,
            "classified-overlap",
            f"{link.why}; the target overlaps the classified or state folder {hit!r}",
        )

    def poll(self) -> None:
        found, refused = self.find()
        for path in sorted(set(self.current) - set(found)):
            lost = self.current.pop(path)
            logger.info("app folder gone app={!r} path={!r}", lost.app, path)
            try:
                self.on_lost(lost)
            except Exception:
                logger.exception("app folder removal failed path={!r}", path)
        for path in sorted(set(found) - set(self.current)):
            f = found[path]
            try:
                self.on_found(f)
            except Exception:  # not taken in: the next poll tries again
                logger.exception("app folder could not be watched app={!r} path={!r}", f.app, path)
                continue
            logger.info("app folder found app={!r} kind={} path={!r}", f.app, f.kind, path)
            self.current[path] = f
        for r in refused:
            if (r.path, r.reason) not in self._reported:
                self._reported.add((r.path, r.reason))
                logger.warning("app folder skipped app={!r} reason={} why={!r}", r.app, r.reason, r.why)
                self.report(r)
