"""The reporter against a scripted local collector: ack only after 2xx, retry, never lose."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.reporter import Reporter
from agent.spool import Spool
from rules.events import Event


class FakeCollector:
    """A real HTTP server on loopback whose answers the test scripts."""

    def __init__(self):
        self.received: list[dict] = []
        self.requests: list[tuple[str, str]] = []  # (path, authorization)
        self.failures: list[int] = []  # status codes to answer before behaving
        self.refuse_path_marker = "BAD"
        self.tokens_issued = 0
        self.assign_id: str | None = None  # answer enrolments with this id instead of the proposed one
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append((self.path, self.headers.get("Authorization", "")))
                    if self.path == "/api/v1/enroll":
                        outer.tokens_issued += 1
                        agent_id = outer.assign_id or body["agent_id"]
                        return self._answer(200, {"agent_id": agent_id, "token": f"mwa_token{outer.tokens_issued}"})
                    if self.headers.get("Authorization") != f"Bearer mwa_token{outer.tokens_issued}":
                        return self._answer(401, {"detail": "unknown token"})
                    if outer.failures:
                        return self._answer(outer.failures.pop(0), {"detail": "scripted failure"})
                    if self.path == "/api/v1/events":
                        if any(outer.refuse_path_marker in (e.get("path") or "") for e in body["events"]):
                            return self._answer(422, {"detail": "refused"})
                        outer.received += body["events"]
                        return self._answer(200, {"accepted": len(body["events"]), "duplicates": 0})
                    return self._answer(200, {"status": "ok"})

            def _answer(self, code, data):
                raw = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector():
    c = FakeCollector()
    yield c
    c.close()


@pytest.fixture
def spool(tmp_path):
    s = Spool(str(tmp_path / "spool.db"))
    yield s
    s.close()


def _reporter(collector, spool, tmp_path, **kw) -> Reporter:
    return Reporter(collector.url, "x" * 20, str(tmp_path), "7b5a99a8-7013-4964-ac70-813090623ca9", "pc1", spool, heartbeat_s=60, **kw)


def _wait(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _deliver_all(reporter, spool):
    reporter.start()
    try:
        _wait(lambda: spool.depth() == 0)
    finally:
        reporter.stop()


def _events(n, prefix="ok"):
    return [Event(type="egress.file", path=f"/media/usb/{prefix}-{i}") for i in range(n)]


def test_enrols_keeps_token_private_and_delivers(collector, spool, tmp_path):
    events = _events(25)
    spool.put(events)
    reporter = _reporter(collector, spool, tmp_path, batch_max=10)
    _deliver_all(reporter, spool)
    assert [e["id"] for e in collector.received] == [e.id for e in events]
    token_file = tmp_path / "token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert token_file.read_text() == "mwa_token1"
    assert any(path == "/api/v1/heartbeat" for path, _ in collector.requests)


def test_failed_deliveries_keep_events_and_retry(collector, spool, tmp_path):
    spool.put(_events(5))
    collector.failures = [503, 500]
    reporter = _reporter(collector, spool, tmp_path)
    _deliver_all(reporter, spool)
    assert len(collector.received) == 5
    assert collector.failures == []


def test_refused_event_is_quarantined_and_the_rest_delivered(collector, spool, tmp_path):
    spool.put(_events(6) + _events(1, "BAD") + _events(3, "late"))
    reporter = _reporter(collector, spool, tmp_path)
    _deliver_all(reporter, spool)
    assert len(collector.received) == 9
    assert spool.dead_count() == 1


def test_refused_token_leads_to_enrolling_again(collector, spool, tmp_path):
    (tmp_path / "token").write_text("mwa_stale")
    spool.put(_events(2))
    reporter = _reporter(collector, spool, tmp_path)
    _deliver_all(reporter, spool)
    assert (tmp_path / "token").read_text() == "mwa_token1"
    assert len(collector.received) == 2


def test_new_agent_id_from_the_collector_is_adopted_and_kept(collector, spool, tmp_path):
    collector.assign_id = "0b7c5d2e-8f1a-4e3b-9c6d-2a1f0e9d8c7b"
    spool.put(_events(1))
    reporter = _reporter(collector, spool, tmp_path)
    _deliver_all(reporter, spool)
    assert reporter.agent_id == collector.assign_id
    assert (tmp_path / "agent_id").read_text().strip() == collector.assign_id
