"""The agent as a macOS LaunchDaemon: a plist rendered with plistlib, loaded with launchctl.

`launchctl bootstrap system <plist>` loads it (RunAtLoad starts it), `bootout system/<label>`
stops and unloads it. launchd refuses a daemon plist that others may write, so it is written
0644 by root. Reading users' Desktop, Documents and removable volumes also needs Full Disk Access
for the interpreter, granted by an MDM profile (docs/deploy.md).
"""

from __future__ import annotations

import os
import plistlib
import shutil
from collections.abc import Callable

from agent.files import write_atomically
from agent.service import Runner, ServiceError, ServiceSpec, checked, effective_uid

LABEL = "cn.miwei.agent"
DAEMONS_DIR = "/Library/LaunchDaemons"
LAUNCHCTL = "/bin/launchctl"


def plist_for(spec: ServiceSpec) -> dict:
    return {
        "Label": LABEL,
        "ProgramArguments": list(spec.command),
        "RunAtLoad": True,
        # restarted when it exits with an error or is killed; a clean stop (exit 0) stays stopped
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,  # seconds between restarts: a broken start cannot spin
        "ProcessType": "Standard",  # not Background: file events must not be throttled
        "UserName": "root",  # reads every user's files and volumes (with Full Disk Access)
        "Umask": 0o077,  # state files hold classified paths and hashes
        "ExitTimeOut": 30,  # seconds from SIGTERM (a clean stop) to SIGKILL
        "WorkingDirectory": spec.state_dir,
        "StandardOutPath": os.path.join(spec.log_dir, "launchd.out.log"),
        "StandardErrorPath": os.path.join(spec.log_dir, "launchd.err.log"),
    }


def render_plist(spec: ServiceSpec) -> str:
    return plistlib.dumps(plist_for(spec), fmt=plistlib.FMT_XML, sort_keys=True).decode("utf-8")


class LaunchdService:
    kind = "launchd daemon"

    def __init__(
        self,
        runner: Runner,
        daemons_dir: str = DAEMONS_DIR,
        euid: Callable[[], int] = effective_uid,
        which: Callable[[str], str | None] = shutil.which,
    ):
        self.runner, self.daemons_dir, self.euid, self.which = runner, daemons_dir, euid, which

    @property
    def plist_path(self) -> str:
        return os.path.join(self.daemons_dir, f"{LABEL}.plist")

    def render(self, spec: ServiceSpec) -> str:
        return render_plist(spec)

    def _launchctl(self) -> str:
        if self.euid() != 0:
            raise ServiceError(f"installing a LaunchDaemon needs root: run it with sudo (it writes {self.plist_path})")
        launchctl = self.which("launchctl")
        if not launchctl:
            raise ServiceError("launchctl not found: this is not macOS; use --print to see the plist")
        return launchctl

    def _loaded(self, launchctl: str) -> bool:
        return self.runner([launchctl, "print", f"system/{LABEL}"]).returncode == 0

    def install(self, spec: ServiceSpec, start: bool = True) -> list[str]:
        launchctl = self._launchctl()
        text = self.render(spec)
        if not os.path.isdir(self.daemons_dir):
            raise ServiceError(f"no LaunchDaemons folder {self.daemons_dir}")
        os.makedirs(spec.log_dir, mode=0o700, exist_ok=True)  # launchd opens the log files before the agent runs
        done = []
        if self._loaded(launchctl):  # a new plist takes effect only after the old job is unloaded
            checked(self.runner, [launchctl, "bootout", f"system/{LABEL}"])
            done.append(f"stopped the running {LABEL}")
        write_atomically(self.plist_path, text)
        done.append(f"wrote {self.plist_path}")
        checked(self.runner, [launchctl, "enable", f"system/{LABEL}"])  # clears an earlier `disable`
        if start:
            checked(self.runner, [launchctl, "bootstrap", "system", self.plist_path])
            done.append(f"loaded and started {LABEL}")
        else:
            done.append(f"enabled {LABEL}; launchd starts it at the next boot (--no-start)")
        return done

    def uninstall(self) -> list[str]:
        launchctl = self._launchctl()
        done = []
        if self._loaded(launchctl):
            checked(self.runner, [launchctl, "bootout", f"system/{LABEL}"])
            done.append(f"stopped and unloaded {LABEL}")
        if os.path.exists(self.plist_path):
            os.unlink(self.plist_path)
            done.append(f"removed {self.plist_path} (the state folder is kept: it may hold unsent events)")
        return done or [f"{LABEL} is not installed: nothing to remove"]
