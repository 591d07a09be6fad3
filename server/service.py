"""The collector as a systemd unit of its own user: rendered from the checked config, installed, removed.

The collector needs far less than the agent (agent/service/systemd.py): it reads its config and
writes its database and logs, all under one state folder, and answers HTTP. So it runs as an
unprivileged system user (`miwei`, made by the .deb) with no capabilities (one to bind a port
below 1024 when the config listens there), a private /tmp and /dev, no view of home folders, and
a file system read-only but for StateDirectory=. UMask=0077 keeps the database and logs its own.
A path the unit would have to quote is refused rather than quoted: a packaged collector has
plain paths.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from server.config import ServerConfig
from server.filemodes import sqlite_path

UNIT_NAME = "miwei-server.service"
UNIT_DIR = "/etc/systemd/system"
SERVICE_USER = "miwei"
STATE_DIR = "/var/lib/miwei-server"  # StateDirectory=miwei-server
PRIVILEGED_PORT_BELOW = 1024
_PLAIN = re.compile(r"[A-Za-z0-9_./:+=,@-]+")


class ServiceError(Exception):
    """The unit could not be written or removed; the message says why and what to do."""


@dataclass(frozen=True)
class ServerUnit:
    """What the unit runs, as whom, and whether it must bind a low port."""

    command: tuple[str, ...]
    config_path: str  # absolute
    user: str
    port: int


def server_executable(python: str = sys.executable) -> tuple[str, ...]:
    """The `miwei-server` script beside this interpreter (a venv's bin/), else `python -m server.cli`.
    Not resolved: a venv's python is a symlink that would lead out of the venv."""
    script = os.path.join(os.path.dirname(os.path.abspath(python)), "miwei-server")
    return (script,) if os.access(script, os.X_OK) else (os.path.abspath(python), "-m", "server.cli")


def _plain(word: str, what: str) -> str:
    if not _PLAIN.fullmatch(word) or "%" in word or "$" in word:
        raise ServiceError(f"{what} has characters a unit file would have to quote: {word!r}; use a plain path")
    return word


def _under_state(path: str) -> bool:
    return os.path.abspath(path).startswith(STATE_DIR + "/")


def check_paths(config: ServerConfig) -> None:
    """The unit lets the collector write only its state folder: a SQLite file or log elsewhere
    would fail at the first write, so it is refused here, before anything is installed."""
    database = sqlite_path(config.database)
    if database and not _under_state(database):
        raise ServiceError(
            f"server.database {database} is outside {STATE_DIR}, the only folder the service may write: "
            f"use sqlite:///{STATE_DIR}/miwei.db"
        )
    if config.log_file and not _under_state(config.log_file):
        raise ServiceError(
            f"server.log_file {config.log_file} is outside {STATE_DIR}: use {STATE_DIR}/server.log or leave "
            "it out (the journal keeps stderr)"
        )


def check_config_readable(path: str, user: str) -> None:
    """The service reads the config as `user`; other users must not (it holds the enrolment secret)."""
    info = os.stat(path)
    try:
        account = pwd.getpwnam(user)
    except KeyError as exc:
        raise ServiceError(f"no user {user!r}: the .deb makes it; else `useradd --system --user-group {user}`") from exc
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH | stat.S_IROTH):
        raise ServiceError(
            f"{path} is readable or writable by other users (mode {stat.S_IMODE(info.st_mode):04o}): "
            f"chown root:{grp.getgrgid(account.pw_gid).gr_name} {path} && chmod 640 {path}"
        )
    readable = info.st_uid == account.pw_uid or (info.st_gid == account.pw_gid and info.st_mode & stat.S_IRGRP)
    if not readable:
        raise ServiceError(
            f"{user} cannot read {path}: chown root:{grp.getgrgid(account.pw_gid).gr_name} {path} && chmod 640 {path}"
        )


def render_unit(unit: ServerUnit) -> str:
    command = " ".join(_plain(word, "the collector's command") for word in unit.command)
    config = _plain(unit.config_path, "the config path")
    low_port = unit.port < PRIVILEGED_PORT_BELOW
    bind = "CAP_NET_BIND_SERVICE" if low_port else ""
    lines = [
        f"# Written by `miwei-server install-service` for {config}.",
        "# `miwei-server uninstall-service` removes it. Edit the config, not this file.",
        "[Unit]",
        "Description=MiWei collector (API, console, alerts)",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"ExecStart={command} run --config {config}",
        "Restart=on-failure",
        "RestartSec=5",
        "RestartPreventExitStatus=2",  # a config error: restarting cannot fix it
        "TimeoutStopSec=30",
        f"User={unit.user}",
        f"Group={unit.user}",
        "UMask=0077",
        f"StateDirectory={os.path.basename(STATE_DIR)}",  # created and handed to the user by systemd
        "StateDirectoryMode=0700",
        f"WorkingDirectory={STATE_DIR}",
        f"CapabilityBoundingSet={bind}",
        f"AmbientCapabilities={bind}",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "PrivateUsers=no" if low_port else "PrivateUsers=yes",  # a user namespace would drop the capability
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictSUIDSGID=yes",
        "RestrictRealtime=yes",
        "RestrictNamespaces=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "RemoveIPC=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def _systemctl(*args: str) -> None:
    systemctl = shutil.which("systemctl")
    if not systemctl:
        raise ServiceError("systemctl not found: this system does not use systemd; use --print and your init system")
    done = subprocess.run([systemctl, *args], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise ServiceError(
            f"systemctl {' '.join(args)} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}"
        )


def _booted() -> bool:
    return os.path.isdir("/run/systemd/system")


def install(unit: ServerUnit, unit_dir: str = UNIT_DIR, start: bool = True) -> list[str]:
    """Write the unit atomically, enable it, and start (or restart) it when systemd runs."""
    if os.geteuid() != 0:
        raise ServiceError(f"installing a system service needs root (it writes {unit_dir}/{UNIT_NAME})")
    if start and not _booted():
        raise ServiceError(
            "systemd is not running here (no /run/systemd/system); use --no-start to only write and enable"
        )
    text = render_unit(unit)
    path = os.path.join(unit_dir, UNIT_NAME)
    replacing = os.path.exists(path)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path + ".tmp", 0o644)
    os.replace(path + ".tmp", path)
    done = [f"{'replaced' if replacing else 'wrote'} {path}"]
    if _booted():
        _systemctl("daemon-reload")
    _systemctl("enable", UNIT_NAME)
    if start:
        _systemctl("restart" if replacing else "start", UNIT_NAME)
        done.append(f"enabled {UNIT_NAME} and {'restarted' if replacing else 'started'} it")
    else:
        done.append(f"enabled {UNIT_NAME} (not started)")
    return done


def uninstall(unit_dir: str = UNIT_DIR) -> list[str]:
    path = os.path.join(unit_dir, UNIT_NAME)
    if not os.path.exists(path):
        return [f"{UNIT_NAME} is not installed in {unit_dir}: nothing to remove"]
    _systemctl("disable", *(["--now"] if _booted() else []), UNIT_NAME)
    os.unlink(path)
    if _booted():
        _systemctl("daemon-reload")
    return [f"stopped, disabled and removed {path} (the database in {STATE_DIR} is kept)"]


def unit_for(
    config: ServerConfig, config_path: str, user: str = SERVICE_USER, argv0: Sequence[str] | None = None
) -> ServerUnit:
    return ServerUnit(tuple(argv0 or server_executable()), os.path.abspath(config_path), user, config.listen[1])
