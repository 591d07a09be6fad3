"""What a register item may hold: every field checked before it is stored, every error named.

The register is the firm's written list of secrets, so a typo must be refused, not guessed at.
`check_fields` returns the normalised fields or raises RegisterError carrying one FieldError per
problem (the XLSX import turns them into row:column messages).

Location patterns (one per OS a PC may run; the agents will expand them where they run):

- linux, macos: an absolute POSIX path `/home/*/研发/图纸`, or one that starts with the user's home
  as `~`, `$HOME` or `${HOME}` (`~/图纸`, `$HOME/图纸`). `$USER` / `${USER}` (the signed-in user's
  name) may stand anywhere in a component (`/data/$USER/图纸`). No other `$` is allowed.
- windows: a drive path `D:\\图纸`, a share `\\\\fs01\\研发`, or one that starts with one of
  `%USERPROFILE%`, `%APPDATA%`, `%LOCALAPPDATA%`, `%PUBLIC%`, `%PROGRAMDATA%`
  (`%USERPROFILE%\\Documents\\研发`). `%USERNAME%` may stand anywhere in a component. `/` is read
  as `\\`. No other `%` is allowed; `< > " | ?` and a `:` after the drive are not file names.
- everywhere: `*` stands for any run of characters inside one path component (`/home/*/研发`);
  `**` and `?` are refused (they would mean something different on each side); no `.` or `..`
  component; no control characters; at least one component that is not only `*` or a variable
  (`/*` would be the whole disk); at most MAX_PATTERN_CHARS characters; a trailing separator is
  dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

LEVELS = ("core", "important", "general", "internal")
CATEGORIES = ("技术信息", "经营信息")
STATES = ("active", "declassified", "destroyed")
PERIOD_WORDS = ("长期", "公布前")
OSES = ("linux", "windows", "macos")

MAX_NAME_CHARS = 200
MAX_DEPARTMENT_CHARS = 200
MAX_PERSON_CHARS = 100
MAX_SCOPE_CHARS = 2000
MAX_REASON_CHARS = 2000
MAX_LOCATIONS = 50  # per item
MAX_PATTERN_CHARS = 1024

POSIX_HOME = re.compile(r"^(~|\$HOME|\$\{HOME\})(?=/|$)")
POSIX_VARIABLE = re.compile(r"\$\{USER\}|\$USER(?![A-Za-z0-9_])")
WINDOWS_START = re.compile(r"^%(USERPROFILE|APPDATA|LOCALAPPDATA|PUBLIC|PROGRAMDATA)%(?=\\|$)", re.IGNORECASE)
WINDOWS_VARIABLE = re.compile(r"%USERNAME%", re.IGNORECASE)
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:(?=\\|$)")
WINDOWS_SHARE = re.compile(r"^\\\\[^\\]+\\[^\\]+")
WINDOWS_BAD = set('<>"|?:')
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

FIELDS = ("name", "level", "category", "owner_department", "owner_person", "scope", "period", "locations")


@dataclass(frozen=True)
class FieldError:
    field: str  # one of FIELDS (or "reason", "state"), "locations[2]" for one location
    message: str


class RegisterError(ValueError):
    """One or more fields that cannot be stored; `errors` says which and why."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = tuple(errors)


@dataclass(frozen=True)
class ItemFields:
    """The part of an item a person writes (the rest: id, state, times, are the register's)."""

    name: str
    level: str
    category: str
    owner_department: str
    owner_person: str
    scope: str
    period: str
    locations: tuple[tuple[str, str], ...]  # (os, pattern)

    def as_dict(self) -> dict:
        return {
            f: ([{"os": o, "pattern": p} for o, p in self.locations] if f == "locations" else getattr(self, f))
            for f in FIELDS
        }


def check_fields(raw: dict) -> ItemFields:
    """Every field of `raw` (a dict with FIELDS; locations a list of {"os", "pattern"} or (os, pattern))."""
    errors: list[FieldError] = []
    name = _text(raw.get("name"), "name", MAX_NAME_CHARS, errors, required=True)
    department = _text(raw.get("owner_department", ""), "owner_department", MAX_DEPARTMENT_CHARS, errors)
    person = _text(raw.get("owner_person", ""), "owner_person", MAX_PERSON_CHARS, errors)
    scope = _text(raw.get("scope", ""), "scope", MAX_SCOPE_CHARS, errors, multiline=True)
    level = raw.get("level")
    if level not in LEVELS:
        errors.append(FieldError("level", f"{level!r} is not a level: one of {', '.join(LEVELS)}"))
    category = raw.get("category")
    if category not in CATEGORIES:
        errors.append(FieldError("category", f"{category!r} is not a category: 技术信息 or 经营信息"))
    period = check_period(raw.get("period"), errors)
    locations = check_locations(raw.get("locations") or [], errors)
    if errors:
        raise RegisterError(errors)
    return ItemFields(name, level, category, department, person, scope, period, locations)


def check_reason(reason: object, required: bool) -> str:
    errors: list[FieldError] = []
    text = _text(
        reason if reason is not None else "", "reason", MAX_REASON_CHARS, errors, required=required, multiline=True
    )
    if errors:
        raise RegisterError(errors)
    return text


def _text(
    value: object, field: str, max_chars: int, errors: list[FieldError], required: bool = False, multiline: bool = False
) -> str:
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be text"))
        return ""
    value = value.strip()
    if required and not value:
        errors.append(FieldError(field, "must not be empty"))
    elif len(value) > max_chars:
        errors.append(FieldError(field, f"is {len(value)} characters, at most {max_chars}"))
    elif CONTROL.search(value.replace("\n", "") if multiline else value):
        errors.append(FieldError(field, "holds control characters"))
    return value


def check_period(value: object, errors: list[FieldError]) -> str:
    if isinstance(value, str):
        value = value.strip()
        if value in PERIOD_WORDS:
            return value
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                pass
    errors.append(FieldError("period", f"{value!r} is not a period: a date YYYY-MM-DD, 长期 or 公布前"))
    return ""


def check_locations(value: object, errors: list[FieldError]) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, (list, tuple)):
        errors.append(FieldError("locations", "must be a list of {os, pattern}"))
        return ()
    if len(value) > MAX_LOCATIONS:
        errors.append(FieldError("locations", f"{len(value)} locations, at most {MAX_LOCATIONS}"))
        return ()
    found: list[tuple[str, str]] = []
    for i, entry in enumerate(value):
        os_name, pattern = (
            (entry.get("os"), entry.get("pattern"))
            if isinstance(entry, dict)
            else (entry if isinstance(entry, (list, tuple)) and len(entry) == 2 else (None, None))
        )
        where = f"locations[{i}]"
        if os_name not in OSES:
            errors.append(FieldError(where, f"os {os_name!r} is not one of {', '.join(OSES)}"))
            continue
        try:
            normal = check_pattern(os_name, pattern)
        except ValueError as exc:
            errors.append(FieldError(where, str(exc)))
            continue
        if (os_name, normal) not in found:  # a repeated location says nothing new
            found.append((os_name, normal))
    return tuple(found)


def parse_location_lines(text: str) -> tuple[list[dict], list[str]]:
    """`linux:/home/*/研发/图纸`, one a line (the XLSX cell, the console's text box): ({os, pattern}
    for check_locations, messages for lines that are not os:pattern). Blank lines are skipped."""
    found, errors = [], []
    for line in text.splitlines():
        os_name, sep, pattern = line.strip().partition(":")
        if not line.strip():
            continue
        if not sep or os_name.strip().lower() not in OSES:
            errors.append(f"{line.strip()[:60]!r} is not os:pattern (os linux, windows or macos)")
            continue
        found.append({"os": os_name.strip().lower(), "pattern": pattern})
    return found, errors


def check_pattern(os_name: str, pattern: object) -> str:
    """The pattern as stored (trailing separator dropped; '/' read as '\\' on Windows), or ValueError."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("the pattern is empty")
    pattern = pattern.strip()
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"the pattern is {len(pattern)} characters, at most {MAX_PATTERN_CHARS}")
    if CONTROL.search(pattern):
        raise ValueError("the pattern holds control characters")
    if "**" in pattern or "?" in pattern:
        raise ValueError("only '*' is a wildcard (any characters inside one folder name); '**' and '?' are not")
    return _windows(pattern) if os_name == "windows" else _posix(pattern)


def _posix(pattern: str) -> str:
    start = POSIX_HOME.match(pattern)
    if not start and not pattern.startswith("/"):
        raise ValueError(f"{pattern!r} is not absolute: start with /, ~, $HOME or ${{HOME}}")
    rest = pattern[start.end() :] if start else pattern
    if "$" in POSIX_VARIABLE.sub("", rest):
        raise ValueError("the only variables are ~, $HOME, ${HOME} at the start and $USER, ${USER}")
    parts = [p for p in rest.split("/") if p]
    if "//" in rest.rstrip("/"):
        raise ValueError("the pattern has an empty folder name (//)")
    _components(parts, POSIX_VARIABLE)
    prefix = start.group(0) if start else ""
    return prefix + "/" + "/".join(parts) if parts else prefix


def _windows(pattern: str) -> str:
    pattern = pattern.replace("/", "\\")
    start = WINDOWS_START.match(pattern) or WINDOWS_DRIVE.match(pattern) or WINDOWS_SHARE.match(pattern)
    if not start:
        raise ValueError(
            f"{pattern!r} is not absolute: start with a drive (D:\\), a share (\\\\server\\share) or %USERPROFILE%, %APPDATA%, %LOCALAPPDATA%, %PUBLIC%, %PROGRAMDATA%"
        )
    head = start.group(0)
    if any(p in (".", "..") for p in head.strip("\\").split("\\")):
        raise ValueError("'.' and '..' are not allowed in a pattern")
    if head.startswith("%"):
        head = head.upper()
    elif WINDOWS_DRIVE.match(head):
        head = head.upper()
    rest = pattern[start.end() :]
    if "\\\\" in rest.rstrip("\\"):
        raise ValueError("the pattern has an empty folder name (\\\\)")
    parts = [p for p in rest.split("\\") if p]
    if "%" in "".join(WINDOWS_VARIABLE.sub("", p) for p in parts):
        raise ValueError(
            "the only variables are %USERPROFILE%, %APPDATA%, %LOCALAPPDATA%, %PUBLIC%, %PROGRAMDATA% at the start and %USERNAME%"
        )
    bad = sorted({c for p in parts for c in p} & WINDOWS_BAD)
    if bad:
        raise ValueError(f"Windows file names cannot hold {' '.join(bad)}")
    _components(parts, WINDOWS_VARIABLE, needs_folder=not WINDOWS_SHARE.match(head))  # a share is a folder
    parts = [WINDOWS_VARIABLE.sub("%USERNAME%", p) for p in parts]
    return head + "\\" + "\\".join(parts) if parts else head


def _components(parts: list[str], variable: re.Pattern, needs_folder: bool = True) -> None:
    if any(p in (".", "..") for p in parts):
        raise ValueError("'.' and '..' are not allowed in a pattern")
    if needs_folder and not any(variable.sub("", p).replace("*", "") for p in parts):
        raise ValueError("the pattern names no folder: it would cover a whole disk or home")
