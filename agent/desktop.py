"""A user's graphical session, and a notification shown in it, from an agent that runs as root.

Linux: the session is found in /proc: a process of the user's whose environment names a session
bus (DBUS_SESSION_BUS_ADDRESS) and a display (DISPLAY or WAYLAND_DISPLAY); no such process, no
graphical session, no notice. Its LC_ALL, LC_MESSAGES, LANG or LANGUAGE give the language, else
the user's ~/.config/locale.conf, else AccountsService's record of the user. The notice goes to
org.freedesktop.Notifications on that bus through `gdbus call` (Debian libglib2.0-bin, on every
GNOME, KDE and Xfce desktop), else `notify-send` (libnotify-bin), run with the user's uid and gid,
no supplementary groups, a fixed small environment and no shell: the bus admits only its own
user, and whatever address the user's environment names is reached with the user's rights only.
Every text goes as one argv item, as a GVariant string literal in which every character outside
a small safe set is a \\u escape (gdbus parses it back to exactly the text).

Windows (written, not tested here): the agent runs as LocalSystem, which cannot raise a toast in
a user's session without starting a process in it; `msg.exe USER` shows the text as a message box
in the user's session instead (Windows Pro, Enterprise and Server editions).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass

from agent.notice_text import markup_escaped

MAX_ENVIRON_BYTES = 256 * 1024
MAX_LOCALE_FILE_BYTES = 16 * 1024
LOCALE_KEYS = ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")
NOTIFY_TIMEOUT_MS = 15_000  # how long the desktop shows it (the service may keep it in its list)
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;_-()")


@dataclass(frozen=True)
class Session:
    uid: int
    gid: int
    user: str
    bus: str  # a unix: D-Bus address (Linux); empty on Windows
    locale: str  # what the session says, e.g. "zh_CN.UTF-8"; "" when nothing says


class NoticeFailed(Exception):
    """The notice could not be shown; says why (logged once per user and reason)."""


def find_session(user: str, proc: str = "/proc", root: str = "/") -> Session | None:
    """The user's graphical session, or None (no such user, no session with a display)."""
    if sys.platform == "win32":
        return Session(0, 0, user, "", "")
    import pwd

    try:
        entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
    except (KeyError, ValueError):
        return None
    environ = _session_environ(entry.pw_uid, proc)
    if environ is None:
        return None
    bus = _bus_address(environ.get("DBUS_SESSION_BUS_ADDRESS", ""))
    if not bus:
        return None
    locale = next((environ[k] for k in LOCALE_KEYS if environ.get(k)), "")
    if not locale:
        locale = _locale_from_files(entry.pw_dir, entry.pw_name, entry.pw_uid, root)
    return Session(entry.pw_uid, entry.pw_gid, entry.pw_name, bus, locale)


def language_of(locale: str, fallback: str) -> str:
    """ "zh" for a Chinese locale, "en" for any other stated one, `fallback` when none is stated."""
    value = locale.split(":")[0].strip()
    if not value:
        return fallback
    return "zh" if value.lower().startswith("zh") else "en"


def _session_environ(uid: int, proc: str) -> dict[str, str] | None:
    """The environment of one of the user's processes that has a session bus and a display."""
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            if os.stat(os.path.join(proc, pid)).st_uid != uid:
                continue
            with open(os.path.join(proc, pid, "environ"), "rb") as f:
                raw = f.read(MAX_ENVIRON_BYTES)
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        environ = {}
        for item in raw.split(b"\0"):
            key, sep, value = item.partition(b"=")
            if sep:
                environ[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        if environ.get("DBUS_SESSION_BUS_ADDRESS") and (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
            return environ
    return None


def _bus_address(value: str) -> str:
    """The first unix: address of a D-Bus address list; "" when there is none."""
    for address in value.split(";"):
        address = address.strip()
        if address.startswith(("unix:path=", "unix:abstract=")) and "\0" not in address:
            return address
    return ""


def _locale_from_files(home: str, name: str, uid: int, root: str) -> str:
    """LANG from ~/.config/locale.conf (the user's, never through a link), else Language= from
    AccountsService's file of the user (written by the desktop's settings)."""
    for path, key, owner in (
        (os.path.join(root, home.lstrip("/"), ".config", "locale.conf"), "LANG", uid),
        (os.path.join(root, "var", "lib", "AccountsService", "users", name), "Language", 0),
    ):
        for line in _small_file(path, owner).splitlines():
            k, sep, v = line.partition("=")
            if sep and k.strip() == key and v.strip().strip("\"'"):
                return v.strip().strip("\"'")
    return ""


def _small_file(path: str, owner: int) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return ""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid not in (owner, 0):
            return ""
        return os.read(fd, MAX_LOCALE_FILE_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        os.close(fd)


def gvariant_string(text: str) -> str:
    """A GVariant text-format string literal that parses back to exactly `text`."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _SAFE:
            out.append(ch)
        elif code > 0xFFFF:
            out.append(f"\\U{code:08x}")
        else:
            out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


def notify_argv(
    session: Session, app: str, summary: str, body: str, tools: dict[str, str], markup: bool = True
) -> list[str]:
    """The command that shows the notice (run as the session's user): gdbus, else notify-send.
    `markup`: the service reads the body as markup (its capabilities say "body-markup"), so the
    body is escaped; a service that does not shows the text as it is."""
    if "gdbus" in tools:
        body = markup_escaped(body) if markup else body
        return [
            tools["gdbus"], "call", "--address", session.bus, "--timeout", "5",
            "--dest", "org.freedesktop.Notifications", "--object-path", "/org/freedesktop/Notifications",
            "--method", "org.freedesktop.Notifications.Notify",
            gvariant_string(app), "uint32 0", '""', gvariant_string(summary), gvariant_string(body),
            "@as []", '@a{sv} {"urgency": <byte 2>}', f"int32 {NOTIFY_TIMEOUT_MS}",
        ]  # fmt: skip
    if "notify-send" in tools:
        # "--" ends the options: a summary or body that starts with "-" stays text
        return [
            tools["notify-send"],
            f"--app-name={app}",
            "--urgency=critical",
            f"--expire-time={NOTIFY_TIMEOUT_MS}",
            "--",
            summary,
            markup_escaped(body),
        ]
    raise NoticeFailed("neither gdbus (libglib2.0-bin) nor notify-send (libnotify-bin) is installed")


def notify_tools() -> dict[str, str]:
    """The notification commands installed here, by name."""
    found = {}
    for name in ("gdbus", "notify-send", "msg"):
        path = shutil.which(name, path="/usr/bin:/bin" if sys.platform != "win32" else None)
        if path:
            found[name] = path
    return found


def capabilities(session: Session, tools: dict[str, str], timeout_s: float) -> frozenset[str]:
    """What the session's notification service says it supports (GetCapabilities); raises
    NoticeFailed. Without gdbus: {"body-markup"}, which nearly every desktop's service supports."""
    if sys.platform == "win32" or "gdbus" not in tools:
        return frozenset({"body-markup"})
    argv = [
        tools["gdbus"], "call", "--address", session.bus, "--timeout", "5", "--dest", "org.freedesktop.Notifications",
        "--object-path", "/org/freedesktop/Notifications", "--method", "org.freedesktop.Notifications.GetCapabilities",
    ]  # fmt: skip
    out = _run_as(session, argv, timeout_s)
    return frozenset(re.findall(r"'([A-Za-z0-9_.-]+)'", out))


def show(
    session: Session, app: str, summary: str, body: str, tools: dict[str, str], timeout_s: float, markup: bool = True
) -> None:
    """Show a notice in the session; raises NoticeFailed saying why not."""
    if sys.platform == "win32":
        _show_windows(session, summary, body, tools, timeout_s)
        return
    _run_as(session, notify_argv(session, app, summary, body, tools, markup), timeout_s)


def _run_as(session: Session, argv: list[str], timeout_s: float) -> str:
    """Run argv as the session's user (uid, gid, no other groups, a fixed environment, no
    shell); its output, or NoticeFailed."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "DBUS_SESSION_BUS_ADDRESS": session.bus}
    try:
        done = subprocess.run(
            argv, user=session.uid, group=session.gid, extra_groups=[], env=env, cwd="/",
            stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise NoticeFailed(f"the notification service did not answer within {timeout_s}s") from None
    except OSError as exc:
        raise NoticeFailed(f"cannot run {os.path.basename(argv[0])}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise NoticeFailed(f"{os.path.basename(argv[0])} exited {done.returncode}: {why[-1][:300] if why else ''}")
    return done.stdout.decode("utf-8", "replace")


def _show_windows(session: Session, summary: str, body: str, tools: dict[str, str], timeout_s: float) -> None:
    """Written, not tested here: msg.exe USER /TIME:60 TEXT, no shell (list2cmdline quotes it)."""
    if "msg" not in tools:
        raise NoticeFailed("msg.exe is not available (Windows Home editions lack it)")
    text = summary + "\n" + body
    try:
        done = subprocess.run(
            [tools["msg"], session.user, "/TIME:60", text], capture_output=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NoticeFailed(f"msg.exe failed: {exc}") from None
    if done.returncode != 0:
        raise NoticeFailed(f"msg.exe exited {done.returncode}")
