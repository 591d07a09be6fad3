"""The systemd unit: what it says, that systemd accepts it, and installing and removing it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.service import ServiceError, ServiceSpec, agent_executable, check_config_file, spec_for
from agent.service.systemd import UNIT_NAME, SystemdService, quote, render_unit
from tests.agent.service_fakes import FakeRunner

AGENT = str(Path(sys.executable).parent / "miwei-agent")
SECRET = "enrol-secret-that-must-not-leak-0123"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def _config(tmp_path: Path, state_dir: str = "./state", classified: str | None = None) -> Path:
    secret_file = tmp_path / "enroll.secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    lines = ["agent:", "  server_url: http://127.0.0.1:9", "  enroll_secret_file: enroll.secret", f"  state_dir: {state_dir}"]
    if classified:
        lines += ["  classified:", f"    - path: {classified}", "      level: core"]
    config = tmp_path / "config.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _spec(tmp_path: Path, **kwargs) -> ServiceSpec:
    config = _config(tmp_path, **kwargs)
    return spec_for(load_agent_config(str(config)), str(config))


def _directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def _verify(unit_text: str, folder: Path) -> subprocess.CompletedProcess:
    path = folder / UNIT_NAME
    path.write_text(unit_text)
    return subprocess.run([SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60)


def _complaints(done: subprocess.CompletedProcess) -> list[str]:
    """systemd-analyze reports unknown keys and bad values as warnings with exit 0: any line about
    our unit is a failure (lines about units shipped by the host are not ours to judge)."""
    return [line for line in (done.stdout + done.stderr).splitlines() if UNIT_NAME in line]


def test_the_unit_runs_this_installation_with_the_config_and_never_the_secret(tmp_path):
    spec = _spec(tmp_path)
    unit = render_unit(spec)
    d = _directives(unit)
    assert d["ExecStart"] == [f"{AGENT} run --service --config {tmp_path / 'config.yaml'}"]
    assert os.path.isabs(d["ExecStart"][0].split()[0])
    assert SECRET not in unit and "enroll" not in unit
    assert d["Restart"] == ["on-failure"] and d["RestartPreventExitStatus"] == ["2"]
    assert d["User"] == ["root"] and d["CapabilityBoundingSet"] == ["CAP_DAC_READ_SEARCH CAP_SYS_PTRACE CAP_SETUID CAP_SETGID CAP_KILL CAP_SYS_ADMIN"]
    assert d["ReadWritePaths"] == [str(tmp_path / "state")]  # the one place it writes
    for key in ("ProtectSystem", "NoNewPrivileges", "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectControlGroups", "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute"):
        assert d[key] == ["strict" if key == "ProtectSystem" else "yes"], key
    assert d["ExecStartPre"] == [f"-+{os.path.abspath(sys.executable)} -m agent.service.prestart"]
    assert d["WantedBy"] == ["multi-user.target"]
    # privileged calls stay out, but the inspection workers may still drop root and the agent may
    # still learn who reads and writes (fanotify: agent/readwatch.py, agent/fanotify.py)
    assert d["SystemCallFilter"] == ["@system-service", "~@privileged", "@setuid", "fanotify_init fanotify_mark"]


def test_a_state_folder_under_var_lib_is_a_state_directory(tmp_path):
    unit = render_unit(_spec(tmp_path, state_dir="/var/lib/miwei-agent"))
    d = _directives(unit)
    assert d["StateDirectory"] == ["miwei-agent"] and d["StateDirectoryMode"] == ["0700"]
    assert "ReadWritePaths" not in d


def test_watched_folders_under_tmp_keep_tmp_visible(tmp_path):
    """PrivateTmp= would hide /tmp from the agent; pytest's tmp_path is under /tmp here."""
    spec = _spec(tmp_path)
    assert "PrivateTmp" not in _directives(render_unit(ServiceSpec(spec.command, spec.config_path, "/var/lib/m", ("/tmp/x",))))
    assert _directives(render_unit(ServiceSpec(spec.command, spec.config_path, "/var/lib/m", ("/srv",))))["PrivateTmp"] == ["yes"]


@pytest.mark.parametrize(
    ("word", "written"),
    [
        ("/opt/miwei/bin/miwei-agent", "/opt/miwei/bin/miwei-agent"),
        ("/srv/My Configs/config.yaml", '"/srv/My Configs/config.yaml"'),
        ("/srv/100%/$HOME/a\"b\\c", '"/srv/100%%/$$HOME/a\\"b\\\\c"'),
        ("/srv/配置/config.yaml", '"/srv/配置/config.yaml"'),
    ],
)
def test_paths_are_written_so_systemd_reads_them_back_unchanged(word, written):
    assert quote(word, "path") == written


def test_a_path_a_unit_file_cannot_carry_is_refused():
    with pytest.raises(ServiceError, match="control character"):
        quote("/srv/a\nExecStartPost=/bin/evil", "the config path")


@pytest.mark.skipif(not SYSTEMD_ANALYZE, reason="systemd-analyze not installed (Debian package systemd)")
@pytest.mark.parametrize("state_dir", ["./state", "/var/lib/miwei-agent"])
def test_systemd_analyze_verify_accepts_the_unit(tmp_path, state_dir):
    spec = _spec(tmp_path, state_dir=state_dir)
    done = _verify(render_unit(spec), tmp_path)
    assert done.returncode == 0 and not _complaints(done), done.stdout + done.stderr


@pytest.mark.skipif(not SYSTEMD_ANALYZE, reason="systemd-analyze not installed (Debian package systemd)")
def test_systemd_analyze_verify_accepts_awkward_paths(tmp_path):
    folder = tmp_path / "Program 100% $files"
    folder.mkdir()
    script = folder / "miwei agent"
    shutil.copy(AGENT, script)
    script.chmod(0o755)
    spec = _spec(tmp_path)
    spec = ServiceSpec((str(script), "run", "--config", str(folder / "my config.yaml")), spec.config_path, str(folder / "state"))
    done = _verify(render_unit(spec), tmp_path)
    assert done.returncode == 0 and not _complaints(done), done.stdout + done.stderr


@pytest.mark.skipif(not SYSTEMD_ANALYZE, reason="systemd-analyze not installed (Debian package systemd)")
def test_verify_would_catch_a_broken_unit(tmp_path):
    """The check above can fail: a misspelt key and a missing program are both reported."""
    unit = render_unit(_spec(tmp_path)).replace("ProtectSystem=", "ProtectSytem=").replace(AGENT, "/nonexistent/miwei-agent")
    done = _verify(unit, tmp_path)
    said = done.stdout + done.stderr
    assert "ProtectSytem" in said and "/nonexistent/miwei-agent" in said


def _service(tmp_path: Path, runner: FakeRunner, euid: int = 0, booted: bool = True, systemctl: str | None = "/bin/systemctl"):
    units = tmp_path / "units"
    units.mkdir(exist_ok=True)
    return SystemdService(runner, unit_dir=str(units), euid=lambda: euid, booted=lambda: booted, which=lambda _: systemctl)


def test_install_writes_the_unit_reloads_enables_and_starts(tmp_path):
    runner = FakeRunner()
    service = _service(tmp_path, runner)
    spec = _spec(tmp_path)
    said = service.install(spec)
    unit = Path(service.unit_path)
    assert unit.read_text() == render_unit(spec)
    assert unit.stat().st_mode & 0o777 == 0o644
    assert runner.subcommands() == ["daemon-reload", f"enable --now {UNIT_NAME}"]
    assert (tmp_path / "state").is_dir() and (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert said[-1] == f"enabled {UNIT_NAME} and started it"
    assert [p.name for p in unit.parent.iterdir()] == [UNIT_NAME], "no temporary file left behind"


def test_installing_again_replaces_the_unit_and_restarts(tmp_path):
    runner = FakeRunner()
    service = _service(tmp_path, runner)
    service.install(_spec(tmp_path))
    service.install(_spec(tmp_path))
    assert runner.subcommands()[2:] == ["daemon-reload", f"enable {UNIT_NAME}", f"restart {UNIT_NAME}"]


def test_no_start_enables_only_and_works_without_a_running_systemd(tmp_path):
    runner = FakeRunner()
    _service(tmp_path, runner, booted=False).install(_spec(tmp_path), start=False)
    assert runner.subcommands() == [f"enable {UNIT_NAME}"]


@pytest.mark.parametrize(
    ("kwargs", "start", "message"),
    [
        ({"euid": 1000}, True, "needs root: run it with sudo"),
        ({"systemctl": None}, True, "systemctl not found"),
        ({"booted": False}, True, "systemd is not running here"),
    ],
)
def test_install_refuses_before_writing_anything(tmp_path, kwargs, start, message):
    runner = FakeRunner()
    service = _service(tmp_path, runner, **kwargs)
    with pytest.raises(ServiceError, match=message):
        service.install(_spec(tmp_path), start=start)
    assert not os.path.exists(service.unit_path) and runner.calls == []


def test_a_failing_systemctl_is_reported_with_what_it_said(tmp_path):
    runner = FakeRunner(fail={"enable": 1}, stderr="Failed to enable unit: Access denied")
    with pytest.raises(ServiceError, match="enable --now miwei-agent.service failed \\(exit 1\\): Failed to enable unit: Access denied"):
        _service(tmp_path, runner).install(_spec(tmp_path))


def test_uninstall_stops_disables_removes_and_reloads(tmp_path):
    runner = FakeRunner()
    service = _service(tmp_path, runner)
    service.install(_spec(tmp_path))
    runner.calls.clear()
    service.uninstall()
    assert runner.subcommands() == [f"disable --now {UNIT_NAME}", "daemon-reload"]
    assert not os.path.exists(service.unit_path)
    assert (tmp_path / "state").is_dir(), "unsent events are kept"
    assert service.uninstall() == [f"{UNIT_NAME} is not installed in {tmp_path / 'units'}: nothing to remove"]


def test_uninstall_removes_the_unit_even_when_stopping_fails_and_says_so(tmp_path):
    service = _service(tmp_path, FakeRunner())
    service.install(_spec(tmp_path))
    service.runner = FakeRunner(fail={"disable": 5}, stderr="Unit miwei-agent.service not loaded.")
    with pytest.raises(ServiceError, match="removed .*not loaded"):
        service.uninstall()
    assert not os.path.exists(service.unit_path)


def test_uninstall_needs_root(tmp_path):
    with pytest.raises(ServiceError, match="needs root"):
        _service(tmp_path, FakeRunner(), euid=1000).uninstall()


def test_a_config_others_may_change_is_refused(tmp_path):
    config = _config(tmp_path)
    check_config_file(str(config))
    config.chmod(0o666)
    with pytest.raises(ServiceError, match="writable by other users \\(mode 0666\\).*chmod go-w"):
        check_config_file(str(config))


def test_the_agent_command_is_the_console_script_beside_the_interpreter(tmp_path):
    assert agent_executable() == (AGENT,)
    lone = tmp_path / "bin" / "python3"
    lone.parent.mkdir()
    lone.symlink_to(sys.executable)  # a python without the console script: run the module
    assert agent_executable(str(lone)) == (str(lone), "-m", "agent.cli")


# --- the command line, as an administrator runs it ---------------------------------------------


def _cli(*args, env=None):
    return subprocess.run([AGENT, *args], capture_output=True, text=True, timeout=60, env=env)


def _cli_unit(config: Path) -> str:
    """The unit as the console script renders it: with the interpreter its #! line names (pip
    writes .venv/bin/python3 there while pytest may run as .venv/bin/python: the same one)."""
    first = Path(AGENT).read_text(encoding="utf-8", errors="replace").splitlines()[0]
    python = first[2:].strip() if first.startswith("#!/") and " " not in first[2:].strip() else sys.executable
    return render_unit(spec_for(load_agent_config(str(config)), str(config)), python=python)


def test_install_service_print_shows_the_unit_and_installs_nothing(tmp_path):
    config = _config(tmp_path)
    done = _cli("install-service", "--print", "-c", str(config), "--unit-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == _cli_unit(config)
    assert not (tmp_path / UNIT_NAME).exists() and SECRET not in done.stdout


def test_install_service_refuses_a_broken_config_with_located_errors(tmp_path):
    config = _config(tmp_path)
    (tmp_path / "enroll.secret").write_text("short\n")
    done = _cli("install-service", "-c", str(config), "--unit-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"{config}:3:23: agent.enroll_secret_file: the secret in this file must be at least 16 characters "
        "(set a long random secret)"
    )
    assert not (tmp_path / UNIT_NAME).exists()


def test_install_service_refuses_extra_rules_that_do_not_load(tmp_path):
    config = _config(tmp_path)
    (tmp_path / "site.yaml").write_text("- id: X\n  title: t\n  category: nonsense\n")
    with open(config, "a") as f:
        f.write("  rules: [site.yaml]\n")
    done = _cli("install-service", "-c", str(config), "--unit-dir", str(tmp_path))
    assert done.returncode == 2 and "site.yaml:" in done.stderr, done.stderr
    assert not (tmp_path / UNIT_NAME).exists()


def test_install_and_uninstall_service_drive_systemctl(tmp_path):
    """A stand-in systemctl first on PATH records what the real command line asked of it."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    log = tmp_path / "systemctl.log"
    (fake_bin / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (fake_bin / "systemctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    units = tmp_path / "units"
    units.mkdir()
    config = _config(tmp_path)
    booted = os.path.isdir("/run/systemd/system")
    reload = ["daemon-reload"] if booted else []

    done = _cli("install-service", "--no-start", "-c", str(config), "--unit-dir", str(units), env=env)
    assert done.returncode == 0, done.stderr
    assert (units / UNIT_NAME).read_text() == _cli_unit(config)
    assert log.read_text().splitlines() == [*reload, f"enable {UNIT_NAME}"]

    done = _cli("uninstall-service", "--unit-dir", str(units), env=env)
    assert done.returncode == 0, done.stderr
    assert not (units / UNIT_NAME).exists()
    assert log.read_text().splitlines()[len(reload) + 1 :] == [f"disable{' --now' if booted else ''} {UNIT_NAME}", *reload]


def test_uninstall_service_works_without_any_config(tmp_path):
    env = {**os.environ, "MIWEI_CONFIG": str(tmp_path / "gone.yaml"), "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    (tmp_path / "systemctl").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "systemctl").chmod(0o755)
    done = _cli("uninstall-service", "--unit-dir", str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr
    assert "nothing to remove" in done.stdout
