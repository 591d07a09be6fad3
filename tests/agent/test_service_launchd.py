"""The macOS LaunchDaemon: the plist read back, and the launchctl calls in order (fake runner)."""

from __future__ import annotations

import os
import plistlib

import pytest

from agent.service import ServiceError, ServiceSpec, manager_for
from agent.service.launchd import LABEL, LaunchdService, render_plist
from tests.agent.service_fakes import FakeRunner

SPEC = ServiceSpec(
    command=("/usr/local/miwei/bin/miwei-agent", "run", "--config", "/Library/Application Support/MiWei/config.yaml"),
    config_path="/Library/Application Support/MiWei/config.yaml",
    state_dir="/Library/Application Support/MiWei/state",
)


def test_the_plist_reads_back_as_a_daemon_that_restarts_on_failure():
    plist = plistlib.loads(render_plist(SPEC).encode("utf-8"))
    assert plist == {
        "Label": LABEL,
        "ProgramArguments": list(SPEC.command),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,
        "ProcessType": "Standard",
        "UserName": "root",
        "Umask": 0o077,
        "ExitTimeOut": 30,
        "WorkingDirectory": SPEC.state_dir,
        "StandardOutPath": "/Library/Application Support/MiWei/state/logs/launchd.out.log",
        "StandardErrorPath": "/Library/Application Support/MiWei/state/logs/launchd.err.log",
    }


def test_awkward_text_survives_the_plist():
    spec = ServiceSpec(("/opt/m/miwei-agent", "run", "--config", "/Users/李 <&> \"q\"/c.yaml"), "/x", "/s")
    assert plistlib.loads(render_plist(spec).encode())["ProgramArguments"][3] == '/Users/李 <&> "q"/c.yaml'


def _service(tmp_path, runner, euid=0, launchctl="/bin/launchctl"):
    return LaunchdService(runner, daemons_dir=str(tmp_path), euid=lambda: euid, which=lambda _: launchctl)


def _spec(tmp_path) -> ServiceSpec:
    return ServiceSpec(SPEC.command, SPEC.config_path, str(tmp_path / "state"))


def test_install_writes_the_plist_then_enables_and_bootstraps(tmp_path):
    runner = FakeRunner(fail={"print": 113})  # 113: launchctl knows no such service yet
    service = _service(tmp_path, runner)
    service.install(_spec(tmp_path))
    path = tmp_path / f"{LABEL}.plist"
    assert plistlib.loads(path.read_bytes())["Label"] == LABEL
    assert path.stat().st_mode & 0o777 == 0o644  # launchd ignores a daemon plist others may write
    assert runner.subcommands() == [f"print system/{LABEL}", f"enable system/{LABEL}", f"bootstrap system {path}"]
    assert (tmp_path / "state" / "logs").is_dir()


def test_reinstalling_unloads_the_running_daemon_first(tmp_path):
    runner = FakeRunner()  # print succeeds: it is loaded
    _service(tmp_path, runner).install(_spec(tmp_path))
    assert runner.subcommands()[:2] == [f"print system/{LABEL}", f"bootout system/{LABEL}"]
    assert runner.subcommands()[-1].startswith("bootstrap system ")


def test_no_start_only_enables(tmp_path):
    runner = FakeRunner(fail={"print": 113})
    said = _service(tmp_path, runner).install(_spec(tmp_path), start=False)
    assert runner.subcommands() == [f"print system/{LABEL}", f"enable system/{LABEL}"]
    assert "next boot" in said[-1]


def test_uninstall_boots_out_and_removes_the_plist(tmp_path):
    runner = FakeRunner()
    service = _service(tmp_path, runner)
    service.install(_spec(tmp_path))
    runner.calls.clear()
    service.uninstall()
    assert runner.subcommands() == [f"print system/{LABEL}", f"bootout system/{LABEL}"]
    assert not os.path.exists(service.plist_path)
    service.runner = FakeRunner(fail={"print": 113})
    assert service.uninstall() == [f"{LABEL} is not installed: nothing to remove"]


@pytest.mark.parametrize(("kwargs", "message"), [({"euid": 501}, "needs root"), ({"launchctl": None}, "launchctl not found")])
def test_install_refuses_without_root_or_launchctl(tmp_path, kwargs, message):
    runner = FakeRunner()
    with pytest.raises(ServiceError, match=message):
        _service(tmp_path, runner, **kwargs).install(_spec(tmp_path))
    assert runner.calls == [] and not (tmp_path / f"{LABEL}.plist").exists()


def test_a_failing_bootstrap_is_reported(tmp_path):
    runner = FakeRunner(fail={"print": 113, "bootstrap": 5}, stderr="Bootstrap failed: 5: Input/output error")
    with pytest.raises(ServiceError, match="bootstrap system .* failed \\(exit 5\\): Bootstrap failed"):
        _service(tmp_path, runner).install(_spec(tmp_path))


def test_macos_picks_launchd_and_linux_systemd(tmp_path):
    assert manager_for("darwin", str(tmp_path)).kind == "launchd daemon"
    assert manager_for("linux", str(tmp_path)).kind == "systemd unit"
    assert manager_for("win32").kind == "Windows service"
    with pytest.raises(ServiceError, match="no service support for this OS \\(sunos5\\)"):
        manager_for("sunos5")
    with pytest.raises(ServiceError, match="--unit-dir has no meaning on Windows"):
        manager_for("win32", str(tmp_path))
