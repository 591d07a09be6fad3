"""The collector's database, its WAL and SHM and its logs are for its own user: a real `miwei-server
run` started from a process whose umask is 022 (a shell's) makes them 0600, and warns at start
about files an operator left open to other users."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from server.filemodes import open_files, sqlite_path
from tests.server.factories import ENROLL_SECRET
from tests.server.test_process import _free_port

MIWEI_SERVER = str(Path(sys.executable).parent / "miwei-server")


def _config(folder: Path, port: int) -> Path:
    config = folder / "config.yaml"
    config.write_text(
        "server:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "  database: sqlite:///./var/miwei.db\n"
        f"  enroll_secret: {ENROLL_SECRET}\n"
        "  log_file: ./logs/collector.log\n"
        "  log_level: info\n",
        encoding="utf-8",
    )
    return config


def _run_collector(folder: Path, side_mode: int = 0o600) -> str:
    """Start `miwei-server run` under umask 022, enrol one agent (a write: the WAL fills), stop it
    cleanly; returns what it printed."""
    port = _free_port()
    config = _config(folder, port)
    url = f"http://127.0.0.1:{port}"
    old = os.umask(0o022)
    try:
        proc = subprocess.Popen(
            [MIWEI_SERVER, "run", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    finally:
        os.umask(old)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if requests.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the collector did not answer in 30 s"
            time.sleep(0.1)
        r = requests.post(
            f"{url}/api/v1/enroll", json={"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": "pc-1", "version": "0.1.0"}, timeout=10
        )
        assert r.status_code == 200, r.text
        modes = {name: _mode(folder / name) for name in ("var/miwei.db-wal", "var/miwei.db-shm")}
        assert None not in modes.values(), f"no WAL or SHM while the collector runs: {modes}"
        assert set(modes.values()) == {side_mode}, modes  # seen while it runs: a clean stop removes them
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    return out


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


@pytest.mark.reliability(
    area="access",
    fault="Collector files readable by every local user",
    how="a real `miwei-server run` started under umask 022 (a shell's): database, WAL, SHM, log",
    outcome="all 0600 (umask 077; the database made 0600 before SQLite opens it), their folders 0700",
)
def test_a_collector_started_under_umask_022_keeps_its_files_private(tmp_path):
    out = _run_collector(tmp_path)
    assert _mode(tmp_path / "var" / "miwei.db") == 0o600
    assert _mode(tmp_path / "var") == 0o700
    assert _mode(tmp_path / "logs") == 0o700
    assert _mode(tmp_path / "logs" / "collector.log") == 0o600
    assert "collector file open to other users" not in out


def test_files_left_open_are_named_at_start(tmp_path):
    (tmp_path / "var").mkdir(mode=0o755)
    (tmp_path / "var").chmod(0o755)
    (tmp_path / "var" / "miwei.db").touch()
    (tmp_path / "var" / "miwei.db").chmod(0o644)  # an install from before: kept as the operator left it
    out = _run_collector(tmp_path, side_mode=0o644)  # SQLite gives them the database file's mode
    assert _mode(tmp_path / "var" / "miwei.db") == 0o644
    line = next(x for x in out.splitlines() if "path=" + repr(str(tmp_path / "var" / "miwei.db")) in x)
    assert "WARNING" in line and "what='database'" in line and "mode=0644" in line and "fix='chmod 600" in line
    assert f"what='database folder' path={str(tmp_path / 'var')!r} mode=0755" in out
    assert f"what='database' path={str(tmp_path / 'var' / 'miwei.db-wal')!r} mode=0644" in out


def test_shared_log_folder_is_not_named_unless_others_can_change_it(tmp_path):
    log = tmp_path / "logs" / "collector.log"
    log.parent.mkdir()
    log.write_text("")
    log.chmod(0o600)
    for folder_mode, named in ((0o755, False), (0o1777, False), (0o777, True)):
        log.parent.chmod(folder_mode)
        found = [f.what for f in open_files("postgresql+psycopg://x@y/z", str(log))]
        assert found == (["log folder"] if named else []), oct(folder_mode)


@pytest.mark.parametrize(
    "url, path",
    [
        ("sqlite:////var/lib/miwei/miwei.db", "/var/lib/miwei/miwei.db"),
        ("sqlite:///./miwei.db", "./miwei.db"),
        ("sqlite:///:memory:", None),
        ("sqlite://", None),
        ("postgresql+psycopg://u@h/db", None),
    ],
)
def test_sqlite_path(url, path):
    assert sqlite_path(url) == path
