"""How the agent's previous run ended, known when it starts: a kill must not pass unseen.

A kill -9 followed by a restart within the collector's `agent_offline_s` leaves no silence long
enough for an agent-offline alert, so the agent says it itself. Three facts live in the spool's
state (durable, in the same file as the events):

- `clean_stop`: written with agent.stopped in one transaction at a clean stop, cleared at start
  (agent/app.py). Missing at start after a run that spooled anything: the run ended otherwise
  (killed, crashed, power lost).
- `alive_at`: the reporter stamps it at every heartbeat round, so the next start can say when the
  previous run was last known to be running.
- `boot_id`: the kernel's boot id (Linux) of the run that wrote it: another one now means the PC
  booted again in between, i.e. the unclean stop came with the whole PC going down (power lost,
  reset), which the shipped rules do not call a kill.

`agent.started` carries them as `details.previous_stop`, `unclean_stop`, `last_alive` and
`rebooted`; MW-AGENT-KILLED turns an unclean stop without a reboot into an agent-health alert.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.spool import Spool

CLEAN_STOP = "clean_stop"  # spool state: set with agent.stopped, cleared with the next agent.started
ALIVE_AT = "alive_at"  # spool state: the last heartbeat round of the run (ISO 8601 UTC)
BOOT_ID = "boot_id"  # spool state: the boot the run was started in
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


def current_boot_id(path: str = BOOT_ID_PATH) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip() or None
    except (OSError, UnicodeDecodeError):  # not Linux, or /proc not mounted
        return None


def read_previous_run(spool: Spool, boot_id: str | None) -> PreviousRun:
    """Read before anything of this run can spool (agent.started clears the clean-stop mark)."""
    if spool.get_state(CLEAN_STOP) is not None:
        stop = "clean"
    else:
        stop = "crash" if spool.chain_head()[0] > 0 else "none"
    before = spool.get_state(BOOT_ID)
    rebooted = before != boot_id if before and boot_id else None
    return PreviousRun(stop, spool.get_state(ALIVE_AT), rebooted)
