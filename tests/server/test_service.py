"""`miwei-server install-service`'s unit: its own user, umask 077, a state directory, checked by systemd."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.config import load_server_config
from server.service import STATE_DIR, UNIT_NAME, ServerUnit, ServiceError, check_paths, render_unit

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SERVER = str(Path(sys.executable).parent / "miwei-server")


def _directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def _config(tmp_path: Path, database: str, extra: str = ""):
    path = tmp_path / "server.yaml"
    path.write_text(f"server:\n  database: {database}\n  enroll_secret: {'s' * 24}\n{extra}", encoding="utf-8")
    return load_server_config(str(path))


def test_the_unit_runs_as_its_own_user_with_umask_077_and_a_state_directory():
    d = _directives(render_unit(ServerUnit((SERVER,), "/etc/miwei/server.yaml", "miwei", 8765)))
    assert d["ExecStart"] == [f"{SERVER} run --config /etc/miwei/server.yaml"]
    assert d["User"] == ["miwei"] and d["Group"] == ["miwei"] and d["UMask"] == ["0077"]
    assert d["StateDirectory"] == ["miwei-server"] and d["StateDirectoryMode"] == ["0700"]
    assert d["CapabilityBoundingSet"] == [""] and d["AmbientCapabilities"] == [""]
    assert d["ProtectSystem"] == ["strict"] and d["ProtectHome"] == ["yes"] and d["PrivateUsers"] == ["yes"]


def test_a_port_below_1024_gets_the_one_capability_to_bind_it():
    d = _directives(render_unit(ServerUnit((SERVER,), "/etc/miwei/server.yaml", "miwei", 443)))
    assert d["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"] and d["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert d["PrivateUsers"] == ["no"]


def test_a_path_the_unit_would_have_to_quote_is_refused():
    with pytest.raises(ServiceError, match="quote"):
        render_unit(ServerUnit((SERVER,), "/etc/miwei/my server.yaml", "miwei", 8765))


def test_a_database_outside_the_state_directory_is_refused_before_install(tmp_path):
    with pytest.raises(ServiceError, match="outside /var/lib/miwei-server"):
        check_paths(_config(tmp_path, f"sqlite:///{tmp_path}/miwei.db"))
    check_paths(_config(tmp_path, f"sqlite:///{STATE_DIR}/miwei.db"))  # accepted
    with pytest.raises(ServiceError, match="log_file"):
        check_paths(_config(tmp_path, f"sqlite:///{STATE_DIR}/miwei.db", f"  log_file: {tmp_path}/server.log\n"))


@pytest.mark.skipif(not SYSTEMD_ANALYZE, reason="systemd-analyze not installed (Debian package systemd)")
@pytest.mark.parametrize("port", [8765, 443])
def test_systemd_analyze_verify_accepts_the_unit(tmp_path, port):
    path = tmp_path / UNIT_NAME
    path.write_text(render_unit(ServerUnit((SERVER,), "/etc/miwei/server.yaml", "root", port)), encoding="utf-8")
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if UNIT_NAME in line]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr
