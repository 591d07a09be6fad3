"""The agent as a systemd unit: rendered from the checked config, installed atomically, removed.

Hardening follows what the agent does and no more: it reads every watched file and mount, writes
only its state folder, talks HTTP to the collector, and runs a helper (blkid) to read a stick's
label. Everything else is taken away. `systemd-analyze verify` accepts the unit (tested), and
`systemd-analyze security` scores it (see docs/deploy.md for the figure).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable

from agent.files import write_atomically
from agent.service import Runner, ServiceError, ServiceSpec, checked, effective_uid

UNIT_NAME = "miwei-agent.service"
UNIT_DIR = "/etc/systemd/system"
STATE_ROOT = "/var/lib"  # where StateDirectory= puts its folders
TMP_DIRS = ("/tmp", "/var/tmp")  # PrivateTmp= hides them from the service
CAPABILITIES = ("CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE", "CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_SYS_ADMIN")
EXIT_BAD_INPUT = 2  # rules.cli: a config or rule error; restarting cannot fix it
_PLAIN = re.compile(r"[A-Za-z0-9_./:+=,@-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def quote(word: str, what: str, env: bool = True) -> str:
    """One word as systemd reads it back: quoted when needed, `%` (and in commands `$`) doubled.

    A newline or other control character cannot be written into a unit file: refused.
    """
    if _CONTROL.search(word):
        raise ServiceError(f"{what} holds a control character, which a unit file cannot carry: {word!r}")
    word = word.replace("%", "%%")  # specifiers (%h, %n, ...) would be expanded
    if env:
        word = word.replace("$", "$$")  # ExecStart= expands $VAR
    if _PLAIN.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _command(argv: tuple[str, ...], what: str) -> str:
    """systemd expands $VAR in the arguments but not in the program's path (measured with
    systemd-analyze verify: "$$" stays "$$" there)."""
    return " ".join([quote(argv[0], what, env=False), *(quote(word, what) for word in argv[1:])])


def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _state_lines(spec: ServiceSpec) -> list[str]:
    """StateDirectory= when the state folder is under /var/lib (systemd creates it 0700),
    else the folder is made writable where it is (install-service creates it first)."""
    if _is_under(spec.state_dir, STATE_ROOT) and spec.state_dir.rstrip("/") != STATE_ROOT:
        name = os.path.relpath(spec.state_dir, STATE_ROOT)
        return [f"StateDirectory={quote(name, 'state_dir', env=False)}", "StateDirectoryMode=0700"]
    return [f"ReadWritePaths={quote(spec.state_dir, 'state_dir', env=False)}"]


def _tmp_lines(spec: ServiceSpec) -> list[str]:
    in_tmp = [p for p in (*spec.watched, spec.state_dir) if any(_is_under(p, t) for t in TMP_DIRS)]
    if in_tmp:
        return [f"# PrivateTmp= is off: the config watches or keeps state in {', '.join(in_tmp)}"]
    return ["PrivateTmp=yes"]


def render_unit(spec: ServiceSpec, python: str = sys.executable) -> str:
    exec_start = _command(spec.command, "the agent's command")
    prestart = _command((os.path.abspath(python), "-m", "agent.service.prestart"), "the interpreter")
    lines = [
        f"# Written by `miwei-agent install-service` for {spec.config_path}.",
        "# `miwei-agent uninstall-service` removes it. Edit the config, not this file.",
        "[Unit]",
        "Description=MiWei endpoint agent (trade-secret leak monitoring)",
        "After=network-online.target remote-fs.target local-fs.target",
        "Wants=network-online.target",
        "StartLimitIntervalSec=600",
        "StartLimitBurst=10",
        "",
        "[Service]",
        "Type=exec",
        # ProtectKernelTunables= makes /proc/sys read-only for the agent, so the inotify limits it
        # would raise itself (agent/limits.py) are raised here, outside the sandbox ('+'); a
        # failure does not stop the start ('-'): the agent then logs that bulk copies may overflow.
        f"ExecStartPre=-+{prestart}",
        f"ExecStart={exec_start}",
        "Restart=on-failure",
        "RestartSec=5",
        f"RestartPreventExitStatus={EXIT_BAD_INPUT}",  # a broken config stays failed, not a crash loop
        "TimeoutStopSec=30",
        "KillMode=mixed",  # SIGTERM to the agent (a clean stop), SIGKILL to leftovers after the timeout
        # root: the agent must read every user's files and mounts (/run/media/<user> is 0750) and
        # the block devices it labels (root:disk). Its root is cut down below to reading, with
        # no write outside its state folder. CAP_DAC_READ_SEARCH: read and search any file.
        # CAP_SYS_PTRACE: see which files other processes hold open (/proc/<pid>/fd, exe), how
        # agent/attribution.py finds the writer of an egress file; without it psutil is refused
        # for every process with capabilities or another owner (measured: tests/agent/
        # test_service_caps.py). The ptrace, process_vm_readv/writev and pidfd_getfd calls stay
        # outside the system call filter below. CAP_SETUID, CAP_SETGID: the content inspection
        # workers (agent/content/worker.py) drop to agent.inspect_user before they parse a byte,
        # so a parser bug in a hostile document is not root; they are the only users of the
        # @setuid calls allowed back below. CAP_KILL: a worker that overruns its deadline runs as
        # another user by then, and root without it may not kill it (measured: EPERM).
        # CAP_SYS_ADMIN: fanotify_init(2) of the notification class with a descriptor per event
        # and the reader's pid, which is how the agent learns who read a classified file
        # (agent/readwatch.py) and who wrote on a stick (agent/fanotify.py); there is no narrower
        # capability for it (unprivileged fanotify, Linux 5.13+, gives no descriptors, no mount
        # marks and no other users' pids). It is the broadest capability: what it would open is
        # closed by the rest of this unit, not by leaving it out. mount, umount, setns, unshare,
        # swapon, sethostname, bpf, open_by_handle_at and the rest of @privileged stay outside the
        # system call filter (only fanotify_init and fanotify_mark come back), namespaces are
        # refused (RestrictNamespaces=), kernel tunables, modules, logs and control groups are
        # read-only or hidden, and the file system is read-only but for the state folder. Without
        # it (a unit edited to drop it) the agent says so once in agent.started (reads_unwatched)
        # and runs on.
        "User=root",
        "UMask=0077",
        f"CapabilityBoundingSet={' '.join(CAPABILITIES)}",
        "AmbientCapabilities=",
        "NoNewPrivileges=yes",
        # The whole file system read-only except the state folder. Mounts made later (a stick)
        # still propagate into the service's namespace, read-write for everyone else.
        "ProtectSystem=strict",
        *_state_lines(spec),
        *_tmp_lines(spec),
        # Home folders hold classified and sync folders: readable, never hidden (not yes/tmpfs).
        "ProtectHome=read-only",
        # Not PrivateDevices=: blkid reads the stick's device node to learn its label. Not
        # ProtectProc=invisible: which process wrote a file is read from other users' /proc.
        "PrivateMounts=yes",
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
        "MemoryDenyWriteExecute=yes",  # CPython, ctypes calls, watchdog and RE2 run under it (tested)
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged",  # no chown, mount, bpf, setns, sethostname, ...
        "SystemCallFilter=@setuid",  # back in the allow list: the inspection workers drop root
        "SystemCallFilter=fanotify_init fanotify_mark",  # back too: readers and writers (CAP_SYS_ADMIN above)
        "SystemCallErrorNumber=EPERM",
        # inotify watches count against fs.inotify.max_user_watches (raised above), not open files;
        # descriptors go to SQLite, files being hashed and sockets. Generous, never the bottleneck.
        "LimitNOFILE=65536",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def systemd_running() -> bool:
    """What sd_booted() tests: systemd is PID 1 (not in a container without it, not in a chroot)."""
    return os.path.isdir("/run/systemd/system")


class SystemdService:
    kind = "systemd unit"

    def __init__(
        self,
        runner: Runner,
        unit_dir: str = UNIT_DIR,
        euid: Callable[[], int] = effective_uid,
        booted: Callable[[], bool] = systemd_running,
        which: Callable[[str], str | None] = shutil.which,
    ):
        self.runner, self.unit_dir = runner, unit_dir
        self.euid, self.booted, self.which = euid, booted, which

    @property
    def unit_path(self) -> str:
        return os.path.join(self.unit_dir, UNIT_NAME)

    def render(self, spec: ServiceSpec) -> str:
        return render_unit(spec)

    def _preflight(self, need_running: bool) -> str:
        if self.euid() != 0:
            raise ServiceError(f"installing a system service needs root: run it with sudo (it writes {self.unit_path})")
        systemctl = self.which("systemctl")
        if not systemctl:
            raise ServiceError("systemctl not found: this system does not use systemd; use --print and your init system")
        if need_running and not self.booted():
            raise ServiceError(
                "systemd is not running here (no /run/systemd/system: a container or chroot); "
                "use --no-start to only write and enable the unit"
            )
        return systemctl

    def install(self, spec: ServiceSpec, start: bool = True) -> list[str]:
        systemctl = self._preflight(need_running=start)
        unit = self.render(spec)  # before anything is written: a path a unit cannot carry is refused
        if not os.path.isdir(self.unit_dir):
            raise ServiceError(f"no unit folder {self.unit_dir}")
        if not (_is_under(spec.state_dir, STATE_ROOT) and spec.state_dir.rstrip("/") != STATE_ROOT):
            # ReadWritePaths= needs the folder at start; the agent keeps it 0700 itself too
            os.makedirs(spec.state_dir, mode=0o700, exist_ok=True)
        replacing = os.path.exists(self.unit_path)
        write_atomically(self.unit_path, unit)
        done = [f"{'replaced' if replacing else 'wrote'} {self.unit_path}"]
        if self.booted():
            checked(self.runner, [systemctl, "daemon-reload"])
        if not start:
            checked(self.runner, [systemctl, "enable", UNIT_NAME])
            done.append(f"enabled {UNIT_NAME} (not started: --no-start)")
        elif replacing:  # `enable --now` leaves a running agent on its old unit and code
            checked(self.runner, [systemctl, "enable", UNIT_NAME])
            checked(self.runner, [systemctl, "restart", UNIT_NAME])
            done.append(f"enabled {UNIT_NAME} and restarted it")
        else:
            checked(self.runner, [systemctl, "enable", "--now", UNIT_NAME])
            done.append(f"enabled {UNIT_NAME} and started it")
        return done

    def uninstall(self) -> list[str]:
        systemctl = self._preflight(need_running=False)
        if not os.path.exists(self.unit_path):
            return [f"{UNIT_NAME} is not installed in {self.unit_dir}: nothing to remove"]
        done = []
        problems = []
        try:  # stop and disable first; the unit file goes even when that fails
            checked(self.runner, [systemctl, "disable", *(["--now"] if self.booted() else []), UNIT_NAME])
            done.append(f"stopped and disabled {UNIT_NAME}")
        except ServiceError as exc:
            problems.append(str(exc))
        os.unlink(self.unit_path)
        done.append(f"removed {self.unit_path} (the state folder is kept: it may hold unsent events)")
        if self.booted():
            checked(self.runner, [systemctl, "daemon-reload"])
        if problems:
            raise ServiceError("; ".join([*done, *problems]))
        return done
