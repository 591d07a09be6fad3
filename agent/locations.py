"""Register location patterns made into folders on this PC.

The central register says where an item lives as a pattern per OS (`/home/*/研发/图纸`,
`~/Documents/研发`, `%USERPROFILE%\\Documents\\研发`). The agent turns each into the folders that
exist here now: `~`, `$HOME`, `${HOME}` and `%USERPROFILE%` stand for every user's home (one result
per home), `$USER`, `${USER}` and `%USERNAME%` for each user's name, `*` and `?` match names of existing folders within one path component. A pattern comes
from the collector, so it is treated as hostile: no `**`, no other variables, no `..`, the first
component must be literal (`/*/*/*` would make the whole disk classified), a result must be at
least two folders deep, symbolic links are never followed (a link in the path refuses the result),
and the walk stops after MAX_LISTED directory entries and MAX_FOLDERS results per pattern.
"""

from __future__ import annotations

import fnmatch
import os
import pwd
import re
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass

MAX_FOLDERS = 256  # folders one pattern may give
MAX_LISTED = 20_000  # directory entries one pattern may read while matching its wildcards
MIN_DEPTH = 2  # /home/alice, never /home or /
MIN_UID = 1000  # users whose homes the home variables stand for (and root's, when it has one)
HOME_TOKENS = re.compile(r"^(~|\$HOME|\$\{HOME\}|%USERPROFILE%|%HOMEPATH%)(?=$|[/\\])", re.IGNORECASE)
USER_TOKENS = re.compile(r"\$USER\b|\$\{USER\}|%USERNAME%", re.IGNORECASE)
OTHER_VARIABLE = re.compile(r"\$\{?[A-Za-z_]|%[A-Za-z_]+%")


@dataclass(frozen=True)
class Expansion:
    pattern: str
    folders: tuple[str, ...]
    problem: str = ""  # why the pattern gave nothing, or was cut short


def agent_os() -> str:
    """This PC's OS as the register names it: linux | windows | macos."""
    return {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")


def user_homes() -> tuple[tuple[str, str], ...]:
    """(user, home) of login users whose home exists: what `~` and `$USER` stand for on a shared PC."""
    homes = {
        (p.pw_name, p.pw_dir)
        for p in pwd.getpwall()
        if (p.pw_uid >= MIN_UID and p.pw_uid != 65534) and p.pw_dir.startswith("/") and os.path.isdir(p.pw_dir)
    }
    return tuple(sorted(homes))


def expand(pattern: str, homes: Sequence[str | tuple[str, str]], excluded: Sequence[str] = ()) -> Expansion:
    """The existing folders a pattern names here; never raises. `homes`: (user, home) pairs (a
    bare home path stands for the user named by its last folder)."""
    pattern = pattern.strip()
    users = [h if isinstance(h, tuple) else (os.path.basename(h.rstrip("/")), h) for h in homes]
    match = HOME_TOKENS.match(pattern)
    rest = pattern[match.end() :].replace("\\", "/") if match else pattern
    if OTHER_VARIABLE.search(USER_TOKENS.sub("", rest)):
        return Expansion(pattern, (), "only ~, $HOME, %USERPROFILE% and $USER, %USERNAME% may be used as variables")
    if match or USER_TOKENS.search(rest):
        candidates = [
            (home.rstrip("/") if match else "") + USER_TOKENS.sub(name.replace("\\", "\\\\"), rest)
            for name, home in users
        ]
        if not candidates:
            return Expansion(pattern, (), "no user home on this PC")
    else:
        candidates = [pattern]
    folders: list[str] = []
    budget = [MAX_LISTED]
    problem = ""
    for candidate in candidates:
        why = _refused(candidate)
        if why:
            return Expansion(pattern, (), why)
        parts = [p for p in candidate.split("/") if p and p != "."]
        for found in _walk("/", parts, budget):
            if len(folders) >= MAX_FOLDERS:
                problem = f"more than {MAX_FOLDERS} folders: the rest are not watched"
                break
            if not any(found == x or found.startswith(x.rstrip("/") + "/") for x in excluded):
                folders.append(found)
        if problem:
            break
    if budget[0] <= 0 and not problem:
        problem = f"more than {MAX_LISTED} directory entries read: the walk stopped"
    return Expansion(pattern, tuple(dict.fromkeys(folders)), problem)


def _refused(candidate: str) -> str:
    if not candidate.startswith("/"):
        return "not an absolute path on this OS"
    parts = [p for p in candidate.split("/") if p and p != "."]
    if ".." in parts:
        return "'..' is not allowed"
    if any("**" in p for p in parts):
        return "'**' is not allowed: name each level"
    if not parts or _wild(parts[0]):
        return "the first folder must be written out (a wildcard there would classify the whole disk)"
    if len(parts) < MIN_DEPTH:
        return f"a location is at least {MIN_DEPTH} folders deep"
    return ""


def _wild(part: str) -> bool:
    return any(c in part for c in "*?[")


def _walk(base: str, parts: list[str], budget: list[int]):
    """Depth first over real directories only: an lstat per literal step, a listing per wildcard."""
    if not parts:
        yield base
        return
    head, rest = parts[0], parts[1:]
    if not _wild(head):
        path = os.path.join(base, head)
        if _is_real_dir(path):
            yield from _walk(path, rest, budget)
        return
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        budget[0] -= 1
        if budget[0] < 0:
            return
        if fnmatch.fnmatchcase(entry.name, head) and not entry.name.startswith(".") and _entry_is_dir(entry):
            yield from _walk(entry.path, rest, budget)


def _is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _entry_is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False
