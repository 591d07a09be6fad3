"""The reporter against a scripted local collector: ack only after 2xx, retry, never lose;
follow the collector's policy, keep the current one when the new one is broken."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.policy import PolicyStore
from agent.reporter import Reporter
from agent.spool import Spool
from rules.events import Event
from rules.loader import default_pack_sources
from rules.policy import build_policy, default_policy
from rules.worktime import WorkTime

SITE_RULES = """\
- id: SITE-TXT-EGRESS
  title: A text file written to an egress place
  category: classified-egress
  severity: low
  when:
    type: egress.file
    extension: txt
"""


class FakeCollector:
    """A real HTTP server on loopback whose answers the test scripts."""

    def __init__(self):
        self.received: list[dict] = []
        self.requests: list[tuple[str, str]] = []  # (path, authorization)
        self.failures: list[int] = []  # status codes to answer before behaving
        self.refuse_path_marker = "BAD"
        self.tokens_issued = 0
        self.assign_id: str | None = None  # answer enrolments with this id instead of the proposed one
        self.heartbeats: list[dict] = []  # heartbeat bodies
        self.policy: dict | None = None  # served at GET /api/v1/policy (None: 404, like an older collector)
        self.announce: str | None = None  # the policy version heartbeat answers name (default: the served one's)
        self.policy_requests: list[tuple[str, int]] = []  # (If-None-Match, status answered)
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
                    outer.heartbeats.append(body)
                    announced = outer.announce or (outer.policy or {}).get("version")
                    return self._answer(200, {"status": "ok", **({"policy_version": announced} if announced else {})})

            def do_GET(self):
                with outer.lock:
                    outer.requests.append((self.path, self.headers.get("Authorization", "")))
                    if self.headers.get("Authorization") != f"Bearer mwa_token{outer.tokens_issued}":
                        return self._answer(401, {"detail": "unknown token"})
                    if self.path != "/api/v1/policy" or outer.policy is None:
                        return self._answer(404, {"detail": "Not Found"})
                    etag = f'"{outer.policy.get("version")}"' if isinstance(outer.policy, dict) else '"?"'
                    code = 304 if self.headers.get("If-None-Match") == etag else 200
                    outer.policy_requests.append((self.headers.get("If-None-Match", ""), code))
                    if code == 304:
                        self.send_response(304)
                        self.send_header("ETag", etag)
                        self.end_headers()
                        return None
                    return self._answer(200, outer.policy, {"ETag": etag})

            def _answer(self, code, data, headers=None):
                raw = data if isinstance(data, bytes) else json.dumps(data).encode()
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
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


# --- the collector's policy -------------------------------------------------------------------


def _site_policy():
    return build_policy(default_pack_sources() + [("site.yaml", SITE_RULES)], WorkTime())


def _following(collector, spool, tmp_path, heartbeat_s=0.1) -> tuple[Reporter, PolicyStore]:
    store = PolicyStore(str(tmp_path))
    store.load()
    reporter = Reporter(
        collector.url, "x" * 20, str(tmp_path), "7b5a99a8-7013-4964-ac70-813090623ca9", "pc1", spool,
        heartbeat_s=heartbeat_s, policy=store, make_event=lambda t, **f: store.stamp(Event(type=t, **f)),
    )
    return reporter, store


def _run_until(reporter, predicate, timeout_s=10.0):
    reporter.start()
    try:
        _wait(predicate, timeout_s)
    finally:
        reporter.stop()


def test_a_policy_the_collector_announces_is_fetched_cached_and_reported_back(collector, spool, tmp_path):
    policy = _site_policy()
    collector.policy = policy.to_payload()
    reporter, store = _following(collector, spool, tmp_path)

    _run_until(reporter, lambda: any(h.get("policy_version") == policy.version for h in collector.heartbeats))

    assert collector.heartbeats[0]["policy_version"] == default_policy().version
    assert collector.policy_requests[0] == (f'"{default_policy().version}"', 200)
    assert store.current.version == policy.version
    assert json.loads((tmp_path / "policy.json").read_text(encoding="utf-8")) == policy.to_payload()
    assert store.stamp(Event(type="egress.file", path="/media/usb/notes.txt")).rule_ids == ("SITE-TXT-EGRESS",)
    assert spool.depth() == 0 and not [e for e in collector.received if e["type"] == "agent.error"]


def test_the_cached_policy_is_used_after_a_restart_without_the_collector(collector, spool, tmp_path):
    policy = _site_policy()
    collector.policy = policy.to_payload()
    reporter, store = _following(collector, spool, tmp_path)
    _run_until(reporter, lambda: store.current.version == policy.version)
    collector.close()

    restarted = PolicyStore(str(tmp_path)).load()

    assert (restarted.version, restarted.source) == (policy.version, "collector")


def test_an_unchanged_policy_answers_304_and_nothing_is_swapped(collector, spool, tmp_path):
    collector.policy = default_policy().to_payload()
    collector.announce = "0123456789abcdef"  # announces another version, serves ours: If-None-Match matches
    reporter, store = _following(collector, spool, tmp_path)
    before = store.current

    _run_until(reporter, lambda: len(collector.policy_requests) >= 2)

    assert set(collector.policy_requests) == {(f'"{before.version}"', 304)}
    assert store.current is before
    assert not (tmp_path / "policy.json").exists()
    assert spool.depth() == 0


def test_a_collector_without_policies_leaves_the_rules_alone(collector, spool, tmp_path):
    collector.announce = "0123456789abcdef"  # but GET /api/v1/policy answers 404
    reporter, store = _following(collector, spool, tmp_path)
    before = store.current
    _run_until(reporter, lambda: sum(path == "/api/v1/policy" for path, _ in collector.requests) >= 2)
    assert store.current is before and spool.depth() == 0


def test_a_broken_policy_keeps_the_old_one_and_is_reported_once(collector, spool, tmp_path):
    good = _site_policy()
    collector.policy = good.to_payload()
    reporter, store = _following(collector, spool, tmp_path)
    broken = build_policy(default_pack_sources(), WorkTime()).to_payload()
    broken["files"].append({"name": "site.yaml", "text": "- id: SITE-X\n  title: x\n  category: x-y\n  severity: hihg\n  when: {type: egress.file}\n"})
    reporter.start()
    try:
        _wait(lambda: store.current.version == good.version)
        with collector.lock:
            collector.policy = broken  # announced with a version its content does not have
            fetched = len(collector.policy_requests)
        _wait(lambda: len(collector.policy_requests) >= fetched + 3 and spool.depth() == 0)
    finally:
        reporter.stop()

    assert store.current.version == good.version and store.current.source == "collector"
    assert json.loads((tmp_path / "policy.json").read_text(encoding="utf-8")) == good.to_payload()
    errors = [e for e in collector.received if e["type"] == "agent.error"]
    assert len(errors) == 1, "one agent.error per refused version, not one per heartbeat"
    [error] = errors
    assert error["error"] == (
        f"policy {broken['version']} refused, kept {good.version}: "
        "invalid rules: site.yaml:4:13: SITE-X.severity: unknown severity 'hihg' (did you mean 'high'?)"
    )
    assert error["details"] == {"announced_policy_version": broken["version"], "policy_version": good.version}
    assert error["policy_version"] == good.version
    assert collector.heartbeats[-1]["policy_version"] == good.version


@pytest.mark.parametrize(
    "answer, reason",
    [
        ({"version": "0123456789abcdef"}, "not a valid policy: KeyError: 'files'"),
        (b"<html>proxy error</html>", "the answer is not JSON: JSONDecodeError"),
    ],
)
def test_an_answer_that_is_not_a_policy_is_refused_like_a_broken_one(collector, spool, tmp_path, answer, reason):
    collector.policy = answer
    collector.announce = "0123456789abcdef"
    reporter, store = _following(collector, spool, tmp_path)
    before = store.current
    _run_until(reporter, lambda: any(e["type"] == "agent.error" for e in collector.received))
    [error] = [e for e in collector.received if e["type"] == "agent.error"]
    assert reason in error["error"]
    assert store.current is before
