"""Two `miwei-server run` processes over one SQLite file: correlation state is in the database.

A burst of 25 classified files from one user, sent to both collectors at once, must raise exactly
one bulk-egress alert (and one classified-egress alert per file); a silent agent, watched by both
collectors' background checks, exactly one agent-offline alert.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.server.factories import ENROLL_SECRET, at, make_egress
from tests.server.test_process import MIWEI_SERVER, TIMEOUT_S, _free_port

pytestmark = pytest.mark.slow
OFFLINE_S = 2  # agent_offline_s of both collectors


@pytest.fixture
def collectors(tmp_path):
    """Two collector processes on one database; their URLs and an API token."""
    database = tmp_path / "shared" / "miwei.db"
    configs, urls = [], []
    for name in ("a", "b"):
        port = _free_port()
        config = tmp_path / f"{name}.yaml"
        config.write_text(
            "server:\n"
            f"  listen: 127.0.0.1:{port}\n"
            f"  database: sqlite:///{database}\n"
            f"  enroll_secret: {ENROLL_SECRET}\n"
            f"  agent_offline_s: {OFFLINE_S}\n",
            encoding="utf-8",
        )
        configs.append(config)
        urls.append(f"http://127.0.0.1:{port}")
    made = subprocess.run([MIWEI_SERVER, "create-token", "-c", str(configs[0]), "ops"], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    logs = [(tmp_path / f"{name}.log").open("w+", encoding="utf-8") for name in ("a", "b")]
    procs = [subprocess.Popen([MIWEI_SERVER, "run", "-c", str(c)], stdout=log, stderr=subprocess.STDOUT) for c, log in zip(configs, logs, strict=True)]
    try:
        for proc, url, log in zip(procs, urls, logs, strict=True):
            _wait_healthy(proc, url, log.name)
        yield urls, {"Authorization": f"Bearer {made.stdout.strip()}"}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
    for proc, log in zip(procs, logs, strict=True):
        output = Path(log.name).read_text(encoding="utf-8")
        assert proc.returncode in (0, -signal.SIGTERM), output
        assert "Traceback" not in output and "database is locked" not in output, output


def _wait_healthy(proc, url: str, log: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, f"miwei-server exited with {proc.returncode}:\n{Path(log).read_text()}"
        try:
            if requests.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer /api/v1/health in 30 s"
        time.sleep(0.1)


def _alerts(url: str, reader: dict, category: str) -> list[dict]:
    response = requests.get(f"{url}/api/v1/alerts", params={"category": category, "limit": 1000}, headers=reader, timeout=TIMEOUT_S)
    assert response.status_code == 200, response.text
    return response.json()["alerts"]


@pytest.mark.reliability(area="fault", fault="Two collectors over one database", how="two processes (SQLite) and two engines (SQLite and PostgreSQL) ingesting one burst, checking one silent agent, judging one broken chain, sending notifications", outcome="each alert raised once, each notification sent once, concurrent enrolments with one id get distinct ids")
def test_two_collectors_raise_one_bulk_alert_for_one_burst(collectors):
    (a, b), reader = collectors
    enrolled = requests.post(
        f"{a}/api/v1/enroll", json={"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": "pc-0042"}, timeout=TIMEOUT_S
    ).json()
    agent = {"Authorization": f"Bearer {enrolled['token']}"}
    # one heartbeat, as an agent sends right after enrolling (one that never did is not judged silent)
    beat = requests.post(f"{a}/api/v1/heartbeat", json={"hostname": "pc-0042", "version": "0.1.0"}, headers=agent, timeout=TIMEOUT_S)
    assert beat.status_code == 200, beat.text
    files = [
        make_egress("core", ts=at(i * 5), path=f"/media/zhang/KINGSTON/part-{i:02d}.dwg", user="zhang.san")
        for i in range(25)
    ]
    # one or two files per request, alternating between the collectors, eight requests in flight
    batches, i = [], 0
    while i < len(files):
        size = 1 + len(batches) % 2
        batches.append((a if len(batches) % 2 else b, files[i : i + size]))
        i += size

    def post(job) -> dict:
        url, chunk = job
        response = requests.post(f"{url}/api/v1/events", json={"events": chunk}, headers=agent, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, batches))

    assert sum(x["accepted"] for x in answers) == 25
    for url in (a, b):  # both see the same state
        (bulk,) = _alerts(url, reader, "bulk-egress")
        assert bulk["count"] == 25 and sorted(bulk["event_ids"]) == sorted(e["id"] for e in files)
        assert bulk["explanation"].startswith("25 classified files")
        (incident,) = _alerts(url, reader, "classified-egress")  # one incident of one session (issue 19)
        assert (incident["file_count"], incident["count"]) == (25, 25)

    # the agent sends no more heartbeats: both collectors' background checks see it silent
    deadline = time.monotonic() + 30
    while not _alerts(a, reader, "agent-offline"):
        assert time.monotonic() < deadline, "no agent-offline alert within 30 s"
        time.sleep(0.2)
    time.sleep(6)  # longer than a check round of both collectors
    (offline,) = _alerts(b, reader, "agent-offline")
    assert offline["agent_id"] == enrolled["agent_id"]
