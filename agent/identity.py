"""Who and where: the host name and the user logged in at this PC."""

from __future__ import annotations

import getpass
import os
import socket
import time
import uuid

import psutil

from agent.files import write_atomically


def hostname() -> str:
    return socket.gethostname()


class UserTracker:
    """The most recently logged-in user (psutil), cached briefly; the agent's own user otherwise."""

    def __init__(self, ttl_s: float = 10.0):
        self.ttl_s = ttl_s
        self._cached: tuple[float, str] = (0.0, "")

    def current(self) -> str:
        at, name = self._cached
        if time.monotonic() - at < self.ttl_s and name:
            return name
        try:
            sessions = sorted(psutil.users(), key=lambda u: u.started or 0)
        except (OSError, psutil.Error):
            sessions = []
        name = sessions[-1].name if sessions else _own_user()
        self._cached = (time.monotonic(), name)
        return name


def _own_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def load_or_make_agent_id(state_dir: str) -> str:
    """A stable id for this PC's agent, made once and kept in state_dir."""
    path = os.path.join(state_dir, "agent_id")
    try:
        with open(path, encoding="ascii") as f:
            value = f.read().strip()
        return str(uuid.UUID(value))
    except (OSError, ValueError):
        pass
    value = str(uuid.uuid4())
    save_agent_id(state_dir, value)
    return value


def save_agent_id(state_dir: str, value: str) -> None:
    """Keep the agent id (atomically: a crash leaves the old or the new one, never half)."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    write_atomically(os.path.join(state_dir, "agent_id"), value + "\n", 0o600)  # a new file, never a planted link
