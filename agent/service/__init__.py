"""The agent as an OS service: what the service runs, and one entry point that picks the OS.

systemd on Linux (`systemd.py`), launchd on macOS (`launchd.py`), the service control manager
through pywin32 on Windows (`windows.py`). Each renders what it installs (`--print`), installs,
enables and starts it, and removes it again. The service only ever gets the config file's path:
the enrolment secret stays in the config or the file it names, never on a command line, where
every local user could read it (ps, /proc/<pid>/cmdline, Task Manager).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.config import AgentConfig

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess]


class ServiceError(Exception):
    """The service could not be installed or removed; the message says why and what to do."""


@dataclass(frozen=True)
class ServiceSpec:
    """What the service runs and the folders it needs, from a config that has been checked."""

    command: tuple[str, ...]  # e.g. (/opt/miwei/bin/miwei-agent, run, --config, /etc/miwei/config.yaml)
    config_path: str  # absolute
    state_dir: str  # absolute: spool, index, token, logs; the one place the service writes
    watched: tuple[str, ...] = ()  # classified folders, egress folders and mount roots it reads

    @property
    def log_dir(self) -> str:
        return os.path.join(self.state_dir, "logs")


class ServiceManager(Protocol):
    kind: str  # what it installs, for messages: "systemd unit", "launchd daemon", "Windows service"

    def render(self, spec: ServiceSpec) -> str: ...

    def install(self, spec: ServiceSpec, start: bool = True) -> list[str]: ...

    def uninstall(self) -> list[str]: ...


def agent_executable(python: str = sys.executable) -> tuple[str, ...]:
    """The command that runs `miwei-agent` with this interpreter's installation.

    The console script beside the interpreter when there is one (a venv's bin/ or Scripts\\);
    else the interpreter with `-m agent.cli`. The path is made absolute but not resolved: a
    venv's python is a symlink, and resolving it would leave the venv and its packages behind.
    """
    python = os.path.abspath(python)
    folder = os.path.dirname(python)
    for name in ("miwei-agent", "miwei-agent.exe"):
        script = os.path.join(folder, name)
        if os.path.isfile(script) and os.access(script, os.X_OK):
            return (script,)
    return (python, "-m", "agent.cli")


def spec_for(config: AgentConfig, config_path: str, python: str = sys.executable) -> ServiceSpec:
    config_path = os.path.abspath(config_path)
    watched = [f.path for f in config.classified] + list(config.egress.folders)
    if config.egress.removable:
        watched += list(config.egress.mount_roots)
    return ServiceSpec(
        command=(*agent_executable(python), "run", "--service", "--config", config_path),  # --service: agent/trust.py
        config_path=config_path,
        state_dir=os.path.abspath(config.state_dir),
        watched=tuple(watched),
    )


def effective_uid() -> int:
    """os.geteuid(), which Windows lacks (its installer checks elevation its own way)."""
    return os.geteuid() if hasattr(os, "geteuid") else -1


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess:
    """The default runner: no shell, output captured for the error message, bounded in time."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"cannot run {' '.join(argv)}: {exc}") from exc


def checked(runner: Runner, argv: Sequence[str]) -> subprocess.CompletedProcess:
    """Run a service-manager command; a failure becomes a ServiceError quoting its output."""
    done = runner(argv)
    if done.returncode != 0:
        said = (done.stderr or done.stdout or "").strip()
        raise ServiceError(f"{' '.join(argv)} failed (exit {done.returncode}){': ' + said if said else ''}")
    return done


def manager_for(platform: str = sys.platform, target_dir: str | None = None, runner: Runner | None = None) -> ServiceManager:
    """The service manager of this OS; `target_dir` replaces where the unit or plist is written."""
    runner = runner or run_command
    if platform.startswith("linux"):
        from agent.service.systemd import SystemdService

        return SystemdService(runner, unit_dir=target_dir) if target_dir else SystemdService(runner)
    if platform == "darwin":
        from agent.service.launchd import LaunchdService

        return LaunchdService(runner, daemons_dir=target_dir) if target_dir else LaunchdService(runner)
    if platform == "win32":
        if target_dir:
            raise ServiceError("--unit-dir has no meaning on Windows: the service lives in the service control manager")
        from agent.service.windows import WindowsService

        return WindowsService()
    raise ServiceError(f"no service support for this OS ({platform}); run `miwei-agent run` from your own init system")


def check_config_file(path: str) -> None:
    """A service runs as root (SYSTEM on Windows): a config that other users may change would let
    them steer it, so the file and its folder must be writable by their owner alone (POSIX)."""
    if os.name != "posix":
        return  # NTFS permissions are ACLs: docs/deploy.md says how to set them
    import stat

    for target in (path, os.path.dirname(path)):
        try:
            mode = os.stat(target).st_mode
        except OSError as exc:
            raise ServiceError(f"cannot check {target}: {exc.strerror}") from exc
        if mode & (stat.S_IWGRP | stat.S_IWOTH) and not (stat.S_ISDIR(mode) and mode & stat.S_ISVTX and target != path):
            raise ServiceError(
                f"{target} is writable by other users (mode {stat.S_IMODE(mode):04o}); a root service must not "
                f"read a config they can change: chmod go-w {target}"
            )
