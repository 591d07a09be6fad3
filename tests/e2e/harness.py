"""Run `miwei-server` and `miwei-agent` as processes, the way a user does, from a temp config."""

from __future__ import annotations

import json
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.05, what: str = "condition"):
    """Poll until predicate() is truthy; return its value, or fail the test with `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


class Deployment:
    """A collector and one agent sharing a temp folder; every process is killed at teardown."""

    def __init__(
        self, root: Path, classified: list[tuple[Path, str, str]], egress_folders=(), mount_roots=(), agent_extra="",
        poll_s: float = 0.5, tls=None,
    ):
        """`tls`: a tests.server.certs.Pki; the collector then serves HTTPS only and the agent checks it."""
        self.root = root
        self.port = free_port()
        self.url = f"https://localhost:{self.port}" if tls else f"http://127.0.0.1:{self.port}"
        self.verify = str(tls.ca) if tls else True  # what this harness's own requests check the collector against
        self.state_dir = root / "agent-state"
        self.db_path = root / "miwei.db"
        self.config = root / "config.yaml"
        secret = secrets.token_urlsafe(24)
        lines = [
            "agent:",
            f"  server_url: {self.url}",
            f"  enroll_secret: {secret}",
            f"  state_dir: {self.state_dir}",
            "  heartbeat_s: 1",
            "  stable_s: 0.3",
            "  classified:",
        ]
        for path, level, name in classified:
            lines += [f"    - path: {path}", f"      level: {level}", f"      name: {name}"]
        lines += ["  egress:", f"    removable: {'true' if mount_roots else 'false'}", f"    poll_s: {poll_s}"]
        lines += [f"    mount_roots: [{', '.join(str(m) for m in mount_roots)}]"]
        lines += [f"    folders: [{', '.join(str(f) for f in egress_folders)}]"]
        lines += [f"  ca_bundle: {tls.ca}"] if tls else []
        lines += [agent_extra] if agent_extra else []
        lines += ["server:", f"  listen: 127.0.0.1:{self.port}", f"  database: sqlite:///{self.db_path}", f"  enroll_secret: {secret}"]
        lines += [f"  tls_cert: {tls.cert}", f"  tls_key: {tls.key}"] if tls else []
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.config.chmod(0o600)  # it holds the enrolment secret: the agent refuses it readable by others
        self.server: subprocess.Popen | None = None
        self.agent: subprocess.Popen | None = None
        self._token: str | None = None
        self._logs: list = []

    # --- processes --------------------------------------------------------------------------

    def _spawn(self, name: str, *args: str, wrapper: tuple[str, ...] = ()) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")
        self._logs.append(log)
        command = [*wrapper, str(BIN / name), *args, "-c", str(self.config)]
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def start_server(self) -> None:
        self.server = self._spawn("miwei-server", "run")
        wait_for(self._healthy, 30, 0.1, "the collector to answer /api/v1/health")

    def start_agent(self, wrapper: tuple[str, ...] = ()) -> None:
        """Start the agent; `wrapper` runs it under another command (e.g. setpriv)."""
        self.agent = self._spawn("miwei-agent", "run", wrapper=wrapper)
        wait_for(lambda: "agent ready" in self.log("miwei-agent"), 30, 0.1, "the agent to be ready")

    def kill(self, which: str, sig: int = signal.SIGKILL) -> None:
        proc = getattr(self, which)
        if proc and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(20)
        setattr(self, which, None)

    def close(self) -> None:
        for which in ("agent", "server"):
            proc = getattr(self, which)
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for log in self._logs:
            log.close()

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def _healthy(self) -> bool:
        if self.server is not None and self.server.poll() is not None:
            raise AssertionError(f"miwei-server exited with {self.server.returncode}:\n{self.log('miwei-server')}")
        try:
            return requests.get(self.url + "/api/v1/health", timeout=1, verify=self.verify).status_code == 200
        except requests.RequestException:
            return False

    # --- the API, as a script with an API token uses it ---------------------------------------

    @property
    def token(self) -> str:
        if self._token is None:
            done = subprocess.run(
                [str(BIN / "miwei-server"), "create-token", "e2e", "-c", str(self.config)],
                capture_output=True, text=True, check=True,
            )
            self._token = done.stdout.strip()
        return self._token

    def get(self, path: str, **params) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"}
        r = requests.get(self.url + path, params=params, headers=headers, timeout=10, verify=self.verify)
        r.raise_for_status()
        return r.json()

    def all_pages(self, path: str, key: str, **params) -> list[dict]:
        items, cursor = [], None
        while True:
            page = self.get(path, limit=1000, **params, **({"cursor": cursor} if cursor else {}))
            items += page[key]
            cursor = page.get("next")
            if not cursor:
                return items

    def alerts(self, **params) -> list[dict]:
        return self.get("/api/v1/alerts", **params)["alerts"]

    def stored_count(self, event_type: str) -> int:
        """Read the collector's SQLite file directly (works while the server is down)."""
        if not self.db_path.exists():
            return 0
        try:
            with closing(sqlite3.connect(self.db_path, timeout=5)) as conn:
                return conn.execute("SELECT count(*) FROM events WHERE type = ?", (event_type,)).fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    def agent_status(self) -> dict:
        """What the agent's last heartbeat told the collector (read from its database)."""
        if not self.db_path.exists():
            return {}
        try:
            with closing(sqlite3.connect(self.db_path, timeout=5)) as conn:
                row = conn.execute("SELECT status FROM agents").fetchone()
        except sqlite3.OperationalError:
            return {}
        return json.loads(row[0]) if row and row[0] else {}

    def spool_depth(self) -> int:
        path = self.state_dir / "spool.db"
        if not path.exists():
            return 0
        with closing(sqlite3.connect(path, timeout=5)) as conn:
            return conn.execute("SELECT count(*) FROM spool").fetchone()[0]
