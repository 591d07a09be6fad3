"""How the agent's previous run ended, known when it starts: a kill must not pass unseen.

A kill -9 followed by a restart within the collector's `agent_offline_s` leaves no silence long
enough for an agent-offline alert, so the agent says it itself. What it knows at start:

- `clean_stop` (spool state): written with agent.stopped in one transaction at a clean stop,
  cleared at start (agent/app.py). Missing at start after a run that spooled anything: the run
  ended otherwise (killed, crashed, power lost).
- `boot_id` (spool state): the kernel's boot id (Linux) of the run that wrote it: another one now
  means the PC booted again in between, i.e. the unclean stop came with the whole PC going down
  (power lost, reset), which the shipped rules do not call a kill.
- the `alive` file in state_dir: the reporter sets its mtime at every heartbeat round, so the next
  start can say when the previous run was last known to be running. A file's mtime, not a spool
  write: a spool that is locked or slow must not hold back the heartbeat that reports it.

`agent.started` carries them as `details.previous_stop`, `unclean_stop`, `last_alive` and
`rebooted`; MW-AGENT-KILLED turns an unclean stop without a reboot into an agent-health alert.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.spool import Spool

CLEAN_STOP = "clean_stop"  # spool state: set with agent.stopped, cleared with the next agent.started
BOOT_ID = "boot_id"  # spool state: the boot the run was started in
ALIVE_FILE = "alive"  # in state_dir: its mtime is the run's last heartbeat round
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True)
class PreviousRun:
    stop: str  # clean | crash (no clean stop) | none (the first run with this state folder)
    last_alive: str | None  # when it was last known to be running (its last heartbeat round)
    rebooted: bool | None  # the PC booted again since; None when either boot is unknown

    def details(self) -> dict:
        """What agent.started says about it."""
        return {
            "previous_stop": self.stop,
            "unclean_stop": self.stop == "crash",
            "last_alive": self.last_alive,
            "rebooted": self.rebooted,
        }

    def unclean_text(self) -> str | None:
        """For agent.started's `error`, which alert explanations quote: what went unseen, since when."""
        if self.stop != "crash":
            return None
        boot = {True: "; the PC booted again since", False: "; the PC kept running"}.get(self.rebooted, "")
        return (
            f"the previous run ended without a clean stop (killed, crashed or power lost); it was last known alive at"
            f" {self.last_alive or 'an unknown time'}, and nothing was watched until this start{boot}"
        )


def current_boot_id(path: str = BOOT_ID_PATH) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip() or None
    except (OSError, UnicodeDecodeError):  # not Linux, or /proc not mounted
        return None


def stamp_alive(state_dir: str) -> None:
    """This run is alive now (the reporter, every heartbeat round)."""
    path = os.path.join(state_dir, ALIVE_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:  # the file opened, not the path again (a link put there meanwhile is not followed)
        os.utime(fd if os.utime in os.supports_fd else path)
    finally:
        os.close(fd)


def last_alive(state_dir: str) -> str | None:
    """When the previous run last stamped itself alive, ISO 8601 UTC; None if it never did."""
    try:
        mtime = os.stat(os.path.join(state_dir, ALIVE_FILE), follow_symlinks=False).st_mtime
    except OSError:
        return None
    return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_previous_run(spool: Spool, boot_id: str | None, state_dir: str) -> PreviousRun:
    """Read before anything of this run can spool (agent.started clears the clean-stop mark) and
    before its reporter starts (it stamps the alive file)."""
    if spool.get_state(CLEAN_STOP) is not None:
        stop = "clean"
    else:
        stop = "crash" if spool.chain_head()[0] > 0 else "none"
    before = spool.get_state(BOOT_ID)
    rebooted = before != boot_id if before and boot_id else None
    return PreviousRun(stop, last_alive(state_dir), rebooted)
