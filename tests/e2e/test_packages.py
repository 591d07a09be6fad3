"""The .debs as an administrator uses them: built by packaging/build.py, installed into this machine
with no network (dpkg runs in an empty network namespace), configured from the installed files,
an agent enrolled and a classified copy alerted, then upgraded (state kept) and removed.

There is no booted systemd here, so the postinsts write and enable the units without starting
them, and this test starts the commands the units name (ExecStart=, as their User=). The build
takes about a minute (the wheelhouse of this platform only; `make dist` adds aarch64 and Windows):
set MIWEI_DIST to a folder `make dist` filled to reuse its wheelhouse.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.harness import free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("miwei-agent", "miwei-server")
ETC = Path("/etc/miwei")
MADE_HERE = (ETC / "agent.yaml", ETC / "server.yaml", ETC / "enroll.secret")
UNITS = Path("/etc/systemd/system")
DRAWING = b"AC1032 impeller rev D\n" + os.urandom(40_000)


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "installing .debs needs root"
    for tool in ("dpkg", "dpkg-deb", "unshare", "setpriv", "useradd"):
        if not shutil.which(tool):
            return f"{tool} is missing: not a Debian-like system"
    system_python = subprocess.run(
        ["/usr/bin/python3", "-c", "import sys, venv; print(sys.version_info[:2])"], capture_output=True, text=True
    )
    if system_python.returncode != 0 or system_python.stdout.strip() != str(sys.version_info[:2]):
        return "the packages need Debian's python3 (with python3-venv) of the same minor version as the build's Python"
    for package in PACKAGES:
        if subprocess.run(["dpkg-query", "-W", package], capture_output=True).returncode == 0:
            return f"{package} is installed on this machine already: not touching it"
    if any(path.exists() for path in MADE_HERE):
        return f"{ETC} holds a MiWei config already: not touching it"
    return None


def dpkg(*args: str) -> str:
    """dpkg in a network namespace of its own: no route to any package index while it installs."""
    done = subprocess.run(["unshare", "--net", "dpkg", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"dpkg {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def build(out: Path, revision: str, reuse: bool) -> tuple[Path, Path, float]:
    started = time.monotonic()
    argv = [sys.executable, str(ROOT / "packaging" / "build.py"), "--out", str(out), "--revision", revision]
    argv += ["--reuse-wheelhouse"] if reuse else ["--no-other-platforms"]
    subprocess.run(argv, check=True, capture_output=True, timeout=900)
    version = f"{_project_version()}-{revision}"
    return (
        out / f"miwei-agent_{version}_amd64.deb",
        out / f"miwei-server_{version}_amd64.deb",
        time.monotonic() - started,
    )


def _project_version() -> str:
    return re.search(r"^version = (\S+)", (ROOT / "setup.cfg").read_text(encoding="utf-8"), re.M)[1]


def exec_start(unit: str) -> list[str]:
    """The command the installed unit runs (plain words: both units are written unquoted here)."""
    text = (UNITS / unit).read_text(encoding="utf-8")
    return re.search(r"^ExecStart=(.+)$", text, re.M)[1].split()


class Installed:
    """The installed programs started as their units would start them; killed at the end."""

    def __init__(self, root: Path, port: int):
        self.root, self.url = root, f"http://127.0.0.1:{port}"
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str]) -> None:
        log = open(self.root / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, umask=0o077)
        log.close()

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def start_both(self) -> None:
        miwei = pwd.getpwnam("miwei")
        as_miwei = ["setpriv", f"--reuid={miwei.pw_uid}", f"--regid={miwei.pw_gid}", "--init-groups"]
        self.start("server", [*as_miwei, *exec_start("miwei-server.service")])
        wait_for(self._healthy, 60, 0.2, "the installed collector to answer")
        self.start("agent", exec_start("miwei-agent.service"))
        wait_for(lambda: "agent ready" in self.log("agent"), 60, 0.2, "the installed agent to be ready")

    def _healthy(self) -> bool:
        if self.procs["server"].poll() is not None:
            raise AssertionError(f"the installed miwei-server exited:\n{self.log('server')}")
        try:
            return requests.get(self.url + "/api/v1/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()


def alerts(url: str, token: str) -> list[dict]:
    r = requests.get(url + "/api/v1/alerts", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    r.raise_for_status()
    return r.json()["alerts"]


def _files(found: list[dict]) -> int:
    """Files the classified-egress alerts hold (an incident grows by its files, not by alerts)."""
    return sum(a.get("file_count") or 1 for a in found if a["category"] == "classified-egress")


def as_miwei(*argv: str) -> str:
    done = subprocess.run(["runuser", "-u", "miwei", "--", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def clean_machine():
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    try:
        yield
    finally:
        for package in PACKAGES:  # whatever the test reached, nothing of it stays
            subprocess.run(["dpkg", "--purge", package], capture_output=True, timeout=300)
        for path in (*MADE_HERE, UNITS / "miwei-agent.service", UNITS / "miwei-server.service"):
            path.unlink(missing_ok=True)
        if ETC.is_dir() and not any(ETC.iterdir()):
            ETC.rmdir()
        for folder in ("/var/lib/miwei-agent", "/var/lib/miwei-server", "/opt/miwei-agent", "/opt/miwei-server"):
            shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(["systemctl", "disable", "miwei-agent.service", "miwei-server.service"], capture_output=True)
        if subprocess.run(["getent", "passwd", "miwei"], capture_output=True).returncode == 0:
            subprocess.run(["userdel", "miwei"], capture_output=True)


def test_debs_install_offline_alert_upgrade_and_purge(tmp_path, clean_machine):
    reused = os.environ.get("MIWEI_DIST")
    out = tmp_path / "dist"
    if reused:
        shutil.copytree(Path(reused) / "wheelhouse", out / "wheelhouse")
    agent_deb, server_deb, build_s = build(out, "1", reuse=bool(reused))
    print(
        f"build {build_s:.0f} s; agent .deb {agent_deb.stat().st_size >> 10} KiB, server .deb {server_deb.stat().st_size >> 10} KiB"
    )

    # the collector first, with no config yet: installed, and says what to do
    started = time.monotonic()
    # an admin's earlier run as root left a signing key in the state folder (as a test once did):
    # the package hands its folder to the service user, or the collector could not read its key
    from server.signing import load_or_create

    load_or_create("/var/lib/miwei-server/signing-key.pem")
    said = dpkg("-i", str(server_deb))
    assert "no service yet" in said and not (UNITS / "miwei-server.service").exists()
    assert pwd.getpwnam("miwei").pw_shell == "/usr/sbin/nologin"
    port, secret = free_port(), secrets.token_urlsafe(24)
    config = (ETC / "server.example.yaml").read_text(encoding="utf-8")
    config = config.replace("0.0.0.0:8765", f"127.0.0.1:{port}").replace(
        "enroll_secret: change-me", f"enroll_secret: {secret}"
    )
    (ETC / "server.yaml").write_text(config, encoding="utf-8")
    shutil.chown(ETC / "server.yaml", "root", "miwei")
    (ETC / "server.yaml").chmod(0o640)
    subprocess.run(["miwei-server", "install-service", "--config", str(ETC / "server.yaml"), "--no-start"], check=True)
    unit = (UNITS / "miwei-server.service").read_text(encoding="utf-8")
    assert "User=miwei" in unit and "UMask=0077" in unit and "StateDirectory=miwei-server" in unit

    # the agent with its config in place before the package: postinst installs the service
    drawings, usb = tmp_path / "rnd" / "drawings", tmp_path / "usb"
    drawings.mkdir(parents=True)
    usb.mkdir()
    (drawings / "impeller.dwg").write_bytes(DRAWING)
    (ETC / "enroll.secret").write_text(secret + "\n", encoding="utf-8")
    (ETC / "enroll.secret").chmod(0o600)
    (ETC / "agent.yaml").write_text(_agent_config(port, drawings, usb), encoding="utf-8")
    (ETC / "agent.yaml").chmod(0o600)
    said = dpkg("-i", str(agent_deb))
    install_s = time.monotonic() - started
    assert "enabled miwei-agent.service" in said, said
    assert (ETC / "agent.example.yaml").exists()  # a conffile of the package
    assert exec_start("miwei-agent.service")[0] == "/opt/miwei-agent/venv/bin/miwei-agent"
    # the wheel carries the compiled winnowing loops (setup.py), and Debian's python3 loads them
    native = "from agent.content import winnow_fast; print(winnow_fast._native is not None)"
    loaded = subprocess.run(["/opt/miwei-agent/venv/bin/python", "-c", native], capture_output=True, text=True)
    assert loaded.stdout.split()[-1:] == ["True"], loaded.stderr
    print(f"dpkg -i of both, venvs built offline: {install_s:.0f} s")

    running = Installed(tmp_path, port)
    try:
        running.start_both()
        token = as_miwei("miwei-server", "create-token", "pkg-test", "-c", str(ETC / "server.yaml")).strip()
        shutil.copyfile(drawings / "impeller.dwg", usb / "impeller.dwg")
        first = wait_for(lambda: alerts(running.url, token), 60, 0.5, "the alert of the copy")
        agent_token = Path("/var/lib/miwei-agent/token").read_bytes()
        db_mode = os.stat("/var/lib/miwei-server/miwei.db")
        assert db_mode.st_uid == pwd.getpwnam("miwei").pw_uid and db_mode.st_mode & 0o077 == 0
        running.stop()
        state_files = {p.name for p in Path("/var/lib/miwei-agent").iterdir()}  # after a clean stop: no WAL

        # upgrade: a second build with the next revision, installed over the first
        agent_deb2, server_deb2, rebuild_s = build(out, "2", reuse=True)
        started = time.monotonic()
        dpkg("-i", str(server_deb2), str(agent_deb2))
        print(f"rebuild {rebuild_s:.0f} s; upgrade of both {time.monotonic() - started:.0f} s")
        for package in PACKAGES:
            version = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True
            ).stdout
            assert version == f"{_project_version()}-2"
        assert Path("/var/lib/miwei-agent/token").read_bytes() == agent_token  # not enrolled again
        assert state_files <= {p.name for p in Path("/var/lib/miwei-agent").iterdir()}
        running.start_both()
        shutil.copyfile(drawings / "impeller.dwg", usb / "impeller-again.dwg")
        # the copy after the upgrade joins the same incident (one user, one destination, within the window)
        wait_for(lambda: _files(alerts(running.url, token)) > _files(first), 60, 0.5, "the copy after the upgrade alerting")
        running.stop()
    finally:
        running.stop()

    # remove: programs and units go, state stays; purge: state and the user go
    dpkg("-r", "miwei-agent", "miwei-server")
    for gone in (
        "/opt/miwei-agent",
        "/opt/miwei-server",
        "/usr/bin/miwei-agent",
        UNITS / "miwei-agent.service",
        UNITS / "miwei-server.service",
    ):
        assert not os.path.lexists(gone), gone
    assert Path("/var/lib/miwei-agent/token").exists() and Path("/var/lib/miwei-server/miwei.db").exists()
    dpkg("--purge", "miwei-agent", "miwei-server")
    assert not Path("/var/lib/miwei-agent").exists() and not Path("/var/lib/miwei-server").exists()
    assert subprocess.run(["getent", "passwd", "miwei"], capture_output=True).returncode != 0


def _agent_config(port: int, drawings: Path, usb: Path) -> str:
    return "\n".join(
        [
            "agent:",
            f"  server_url: http://127.0.0.1:{port}",
            f"  enroll_secret_file: {ETC / 'enroll.secret'}",
            "  state_dir: /var/lib/miwei-agent",
            "  heartbeat_s: 1",
            "  stable_s: 0.3",
            "  classified:",
            f"    - {{path: {drawings}, level: core, name: Pump drawings}}",
            "  egress:",
            "    removable: false",
            f"    folders: [{usb}]",
            "",
        ]
    )
