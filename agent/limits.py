"""Kernel limits the agent depends on: a small inotify queue silently loses bulk-copy events.

Measured here: with the default fs.inotify.max_queued_events (16,384) a burst of 10,000 files
overflowed the queue; at 262,144 nothing was lost. As root the agent raises the limits it needs;
otherwise it says what to set.
"""

from __future__ import annotations

import os

from loguru import logger

PROC = "/proc/sys/fs/inotify"
WANTED = {"max_queued_events": 262_144, "max_user_watches": 524_288}


def limits_to_raise(proc: str = PROC) -> dict[str, tuple[int, int]]:
    """The limits raise_inotify_limits would raise, as {name: (current, wanted)}: what `make run`
    tells the user before its agent starts. Empty where nothing is low or this user cannot write."""
    low = {}
    for name, wanted in WANTED.items():
        path = os.path.join(proc, name)
        try:
            with open(path, encoding="ascii") as f:
                current = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if current < wanted and os.access(path, os.W_OK):
            low[name] = (current, wanted)
    return low


def raise_inotify_limits(proc: str = PROC) -> dict[str, int]:
    """Raise the inotify limits to WANTED where they are lower; returns the values in force."""
    in_force = {}
    for name, wanted in WANTED.items():
        path = os.path.join(proc, name)
        try:
            with open(path, encoding="ascii") as f:
                current = int(f.read().strip())
        except (OSError, ValueError):
            continue  # not Linux, or no inotify
        if current < wanted:
            try:
                with open(path, "w", encoding="ascii") as f:
                    f.write(str(wanted))
                undo = f"sysctl -w fs.inotify.{name}={current}"
                logger.info("raised fs.inotify.{} from={} to={} until_reboot=yes undo='{}'", name, current, wanted, undo)
                current = wanted
            except OSError:
                logger.warning(
                    "fs.inotify.{}={} is low and cannot be raised by this user; bulk copies may overflow "
                    "(set it to {} with sysctl; overflows are rescanned)", name, current, wanted
                )
        in_force[name] = current
    return in_force
