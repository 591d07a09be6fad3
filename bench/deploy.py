"""Real `miwei-server` and `miwei-agent` processes for the benchmarks, started the way the
end-to-end tests start them (tests/e2e/harness.py), with the settings a benchmark must control.

The harness writes a test config (heartbeat every second, a 0.3 s stability wait, SQLite); a
benchmark may need the shipped heartbeat, or a PostgreSQL database: those lines are rewritten.
"""

from __future__ import annotations

import re
import subprocess
import uuid

import requests

from tests.e2e.harness import BIN, Deployment, wait_for

__all__ = ["BenchDeployment", "wait_for"]


class BenchDeployment(Deployment):
    def __init__(self, root, classified, egress_folders=(), heartbeat_s: float | None = None,
                 database: str | None = None, poll_s: float = 1.0, workers: int = 1):
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root, classified, egress_folders=egress_folders, poll_s=poll_s)
        text = self.config.read_text(encoding="utf-8")
        if heartbeat_s is not None:
            text = re.sub(r"(?m)^  heartbeat_s: .*$", f"  heartbeat_s: {heartbeat_s:g}", text)
        if database is not None:
            text = re.sub(r"(?m)^  database: .*$", f'  database: "{database}"', text)
        # one collector process unless a section asks for more: its figures and notes speak of one
        # process (bench/fleetload.py measures several workers)
        text = re.sub(r"(?m)^server:\n", f"server:\n  workers: {workers}\n", text, count=1)
        self.config.write_text(text, encoding="utf-8")
        self.enroll_secret = re.search(r"(?m)^  enroll_secret: (.*)$", text).group(1)

    def index(self) -> str:
        """`miwei-agent index`, as an administrator runs it before starting the service."""
        done = subprocess.run([str(BIN / "miwei-agent"), "index", "--quiet", "-c", str(self.config)],
                              capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"miwei-agent index failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        return done.stdout.strip()

    def enroll(self, hostname: str = "bench-pc") -> str:
        """Enrol an agent through the API, as `miwei-agent` does on first start; returns its token."""
        body = {"enroll_secret": self.enroll_secret, "agent_id": str(uuid.uuid4()), "hostname": hostname, "version": "bench"}
        response = requests.post(self.url + "/api/v1/enroll", json=body, timeout=10)
        response.raise_for_status()
        answer = response.json()
        self.agent_id = answer["agent_id"]
        return answer["token"]
