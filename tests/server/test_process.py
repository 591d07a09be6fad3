"""`miwei-server` as a user runs it: create-token, then run, on a free loopback port, over real HTTP."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from server.app import MAX_BODY_BYTES
from tests.server.factories import ENROLL_SECRET, make_egress, make_event

MIWEI_SERVER = str(Path(sys.executable).parent / "miwei-server")
TIMEOUT_S = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_config(tmp_path) -> tuple[Path, str]:
    port = _free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        "server:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "  database: sqlite:///./var/miwei.db\n"  # relative: against the config's folder
        f"  enroll_secret: {ENROLL_SECRET}\n"
        "  agent_offline_s: 60\n"
        "  log_level: info\n",
        encoding="utf-8",
    )
    return config, f"http://127.0.0.1:{port}"


@pytest.fixture
def api_token(server_config) -> str:
    config, _ = server_config
    done = subprocess.run(
        [MIWEI_SERVER, "create-token", "-c", str(config), "ops"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("mwt_") and "\n" not in token
    return token


@pytest.fixture
def collector(server_config, api_token, tmp_path):
    """The collector process; SIGTERM at teardown, and it must stop cleanly."""
    config, url = server_config
    log = (tmp_path / "server.log").open("w+", encoding="utf-8")
    proc = subprocess.Popen([MIWEI_SERVER, "run", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"miwei-server exited with {proc.returncode}:\n{Path(log.name).read_text()}"
            try:
                if requests.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "miwei-server did not answer /api/v1/health in 30 s"
            time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
        log.close()
    output = Path(log.name).read_text(encoding="utf-8")
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells it was SIGTERM
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output, output
    assert "Traceback" not in output, output
    assert (tmp_path / "var" / "miwei.db").is_file()


def test_collector_process_ingests_once_and_serves_alerts(collector, api_token):
    url = collector
    reader = {"Authorization": f"Bearer {api_token}"}
    agent_id = str(uuid.uuid4())
    enrolled = requests.post(
        f"{url}/api/v1/enroll",
        json={"enroll_secret": ENROLL_SECRET, "agent_id": agent_id, "hostname": "pc-0042"},
        timeout=TIMEOUT_S,
    )
    assert enrolled.status_code == 200, enrolled.text
    agent = {"Authorization": f"Bearer {enrolled.json()['token']}"}

    batch = {"events": [make_egress("important"), make_event(), make_event("file.deleted")]}
    first = requests.post(f"{url}/api/v1/events", json=batch, headers=agent, timeout=TIMEOUT_S)
    again = requests.post(f"{url}/api/v1/events", json=batch, headers=agent, timeout=TIMEOUT_S)
    assert first.json() == {"accepted": 3, "duplicates": 0}
    assert again.json() == {"accepted": 0, "duplicates": 3}
    assert requests.post(f"{url}/api/v1/heartbeat", json={"hostname": "pc-0042"}, headers=agent, timeout=TIMEOUT_S).ok

    alerts = requests.get(f"{url}/api/v1/alerts", headers=reader, timeout=TIMEOUT_S)
    assert alerts.status_code == 200, alerts.text
    (alert,) = alerts.json()["alerts"]
    assert (alert["severity"], alert["agent_id"]) == ("high", agent_id)
    assert alerts.headers["x-content-type-options"] == "nosniff"
    acked = requests.patch(
        f"{url}/api/v1/alerts/{alert['id']}",
        json={"status": "acknowledged", "comment": "on it"},
        headers=reader,
        timeout=TIMEOUT_S,
    )
    assert acked.json()["history"][-1]["actor"] == "token:ops"
    (listed,) = requests.get(f"{url}/api/v1/agents", headers=reader, timeout=TIMEOUT_S).json()["agents"]
    assert (listed["agent_id"], listed["online"]) == (agent_id, True)

    assert requests.get(f"{url}/api/v1/alerts", headers=agent, timeout=TIMEOUT_S).status_code == 403
    assert requests.post(f"{url}/api/v1/events", json=batch, headers=reader, timeout=TIMEOUT_S).status_code == 403
    assert requests.get(f"{url}/api/v1/alerts", timeout=TIMEOUT_S).status_code == 401
    assert requests.get(f"{url}/openapi.json", timeout=TIMEOUT_S).status_code == 200


def test_collector_process_refuses_bad_bodies_without_failing(collector):
    url = collector
    enrolled = requests.post(
        f"{url}/api/v1/enroll",
        json={"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": "pc-0042"},
        timeout=TIMEOUT_S,
    )
    agent = {"Authorization": f"Bearer {enrolled.json()['token']}", "Content-Type": "application/json"}
    event_id = uuid.uuid4()
    bodies = [
        b'{"events": [',
        b'{"events": [{"id": "%s", "type": "file.created", "ts": "2026-03-02T08:00:00Z", "path": "\\udce9"}]}'
        % str(event_id).encode(),
        b'{"events": [{"id": "%s", "type": "file.created", "ts": "0001-01-01T00:00:00+01:00"}]}'
        % str(event_id).encode(),
        b'{"events": [{"id": "%s", "type": "egress.file", "ts": "2026-03-02T08:00:00Z", "match": {"method": "exact", "similarity": NaN}}]}'
        % str(event_id).encode(),
        b"\xff\xfe\x00",
    ]
    for body in bodies:
        response = requests.post(f"{url}/api/v1/events", data=body, headers=agent, timeout=TIMEOUT_S)
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text)
        assert response.json()["detail"]

    huge = requests.post(f"{url}/api/v1/events", data=b" " * (MAX_BODY_BYTES + 1), headers=agent, timeout=60)
    assert huge.status_code == 413

    def chunks():  # no Content-Length: requests sends it chunked
        yield b'{"events": ['
        for _ in range(MAX_BODY_BYTES // (1 << 20) + 1):
            yield b" " * (1 << 20)
        yield b"]}"

    try:
        streamed = requests.post(f"{url}/api/v1/events", data=chunks(), headers=agent, timeout=60)
    except requests.ConnectionError:
        pass  # the server may answer and close before the upload is done: refused either way
    else:
        assert streamed.status_code == 413, streamed.text

    assert requests.get(f"{url}/api/v1/health", timeout=TIMEOUT_S).json()["status"] == "ok"
