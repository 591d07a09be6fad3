"""Two `miwei-server run` processes on one SQLite file, each with its sender thread, one webhook
channel from the config: every alert reaches the receiver once, and both stop cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from server.notify.tables import notifications
from tests.server.factories import ENROLL_SECRET, make_egress
from tests.server.notify_rig import http_receiver
from tests.server.test_process import MIWEI_SERVER, TIMEOUT_S, _free_port
from tests.server.test_two_collectors import _wait_healthy

pytestmark = pytest.mark.slow


@pytest.mark.reliability(area="fault", fault="Two collectors over one database", how="two processes (SQLite) and two engines (SQLite and PostgreSQL) ingesting one burst, checking one silent agent, judging one broken chain, sending notifications", outcome="each alert raised once, each notification sent once, concurrent enrolments with one id get distinct ids")
def test_two_collector_processes_send_each_alert_once(tmp_path):
    database = tmp_path / "shared" / "miwei.db"
    with http_receiver() as rig:
        urls, procs, logs = [], [], []
        for name in ("a", "b"):
            port = _free_port()
            config = tmp_path / f"{name}.yaml"
            config.write_text(
                "server:\n"
                f"  listen: 127.0.0.1:{port}\n"
                f"  database: sqlite:///{database}\n"
                f"  enroll_secret: {ENROLL_SECRET}\n"
                "  notify_allow_private: true\n"
                "  notify:\n"
                f"    - url: json://ops:hook-Pa55word@127.0.0.1:{rig.port}/hook\n"
                "      severities: critical\n"
                "      max_per_hour: 1000\n",
                encoding="utf-8",
            )
            log = (tmp_path / f"{name}.log").open("w+", encoding="utf-8")
            # one after the other: the first migrates the database
            procs.append(
                subprocess.Popen([MIWEI_SERVER, "run", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
            )
            _wait_healthy(procs[-1], f"http://127.0.0.1:{port}", log.name)
            urls.append(f"http://127.0.0.1:{port}")
            logs.append(log)
        try:
            body = {"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": "pc-0042"}
            token = requests.post(f"{urls[0]}/api/v1/enroll", json=body, timeout=TIMEOUT_S).json()["token"]
            files = [make_egress("core", sha256=f"{i:064x}", user=f"u{i:03d}") for i in range(10)]  # 10 users: 10 alerts

            def post(job):
                url, chunk = job
                response = requests.post(
                    f"{url}/api/v1/events",
                    json={"events": chunk},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                )
                assert response.status_code == 200, response.text

            jobs = [(urls[i % 2], files[i : i + 1]) for i in range(10)] + [
                (urls[1], files),
                (urls[0], files),
            ]  # and resent
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(post, jobs))
            deadline = time.monotonic() + 60
            while len(rig.hits) < 10:
                assert time.monotonic() < deadline, f"{len(rig.hits)} of 10 notifications arrived in 60 s"
                time.sleep(0.1)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
        outputs = []
        for proc, log in zip(procs, logs, strict=True):
            log.close()
            outputs.append(Path(log.name).read_text(encoding="utf-8"))
            assert proc.returncode in (0, -signal.SIGTERM), outputs[-1]
            assert "Traceback" not in outputs[-1] and "hook-Pa55word" not in outputs[-1], outputs[-1]
        assert sum("notification sent" in out for out in outputs) >= 1
    sent = sorted(h.json()["miwei"]["alert"]["id"] for h in rig.hits)
    assert len(sent) == 10 and len(set(sent)) == 10  # each alert once, though both collectors were sending
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        statuses = list(conn.execute(select(notifications.c.status)).scalars())
    engine.dispose()
    assert statuses == ["sent"] * 10
