"""The reporter against a scripted local collector: ack only after 2xx, retry, never lose;
follow the collector's policy, keep the current one when the new one is broken."""

from __future__ import annotations

import json
import os
import sqlite3
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
from tests.samples import SITE_RULES


class FakeCollector:
    """A real HTTP server on loopback whose answers the test scripts."""

    def __init__(self):
        self.received: list[dict] = []
        self.requests: list[tuple[str, str]] = []  # (path, authorization)
        self.failures: list[int] = []  # status codes to answer before behaving
        self.scripted: dict[str, list[int]] = {}  # per path: status codes to answer before behaving
        self.always: dict[str, int] = {}  # per path: a status code answered every time
        self.refuse_path_marker = "BAD"
        self.refuse_code = 422
        self.tokens_issued = 0
        self.assign_id: str | None = None  # answer enrolments with this id instead of the proposed one
        self.heartbeats: list[dict] = []  # heartbeat bodies
        self.policy: dict | None = None  # served at GET /api/v1/policy (None: 404, like an older collector)
        self.announce: str | None = None  # the policy version heartbeat answers name (default: the served one's)
        self.policy_requests: list[tuple[str, int]] = []  # (If-None-Match, status answered)
        self.gets: list[str] = []  # every path asked for with GET
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
                    if outer.scripted.get(self.path):
                        return self._scripted(outer.scripted[self.path].pop(0))
                    if self.path in outer.always:
                        return self._scripted(outer.always[self.path])
                    if self.path == "/api/v1/events":
                        if any(outer.refuse_path_marker in (e.get("path") or "") for e in body["events"]):
                            return self._answer(outer.refuse_code, {"detail": "refused"})
                        outer.received += body["events"]
                        return self._answer(200, {"accepted": len(body["events"]), "duplicates": 0})
                    outer.heartbeats.append(body)
                    announced = outer.announce or (outer.policy or {}).get("version")
                    return self._answer(200, {"status": "ok", **({"policy_version": announced} if announced else {})})

            def do_GET(self):
                with outer.lock:
                    outer.requests.append((self.path, self.headers.get("Authorization", "")))
                    outer.gets.append(self.path)
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

            def _scripted(self, code):
                if 300 <= code < 400:  # what a proxy in front of the collector says during a move to https
                    return self._answer(code, {"detail": "moved"}, {"Location": "/moved" + self.path})
                return self._answer(code, {"detail": "scripted failure"})

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


@pytest.mark.reliability(area="fault", fault="Collector unreachable, 3xx, 403, 404, 5xx", how="a scripted collector", outcome="backoff and retry, never dropped; redirects not followed")
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
    delivered = [e for e in collector.received if e["type"] != "agent.gap"]
    assert len(delivered) == 9
    assert spool.dead_count() == 1
    # the hole the refused event leaves in the chain is explained
    [gap] = [e for e in collector.received if e["type"] == "agent.gap"]
    assert (gap["details"]["seq_from"], gap["details"]["seq_to"]) == (7, 7)
    assert sorted(e["seq"] for e in collector.received) == [1, 2, 3, 4, 5, 6, 8, 9, 10, 11]


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


# --- what each answer means -------------------------------------------------------------------


def _errors(collector) -> list[dict]:
    """agent.error events the collector got, each once (a batch sent again repeats them)."""
    return list({e["id"]: e for e in collector.received if e["type"] == "agent.error"}.values())


@pytest.mark.parametrize("code", [403, 404, 405, 409, 451, 301, 302, 307, 308])
@pytest.mark.reliability(area="fault", fault="Collector unreachable, 3xx, 403, 404, 5xx", how="a scripted collector", outcome="backoff and retry, never dropped; redirects not followed")
def test_answers_about_the_path_not_the_content_are_retried_never_quarantined(collector, spool, tmp_path, code):
    """A proxy or WAF during a rollout (403/404/405...) or a redirect says nothing about the events."""
    events = _events(1)
    spool.put(events)
    collector.scripted = {"/api/v1/events": [code, code]}
    reporter = _reporter(collector, spool, tmp_path)
    _deliver_all(reporter, spool)
    assert [e["id"] for e in collector.received] == [e.id for e in events]
    assert spool.dead_count() == 0
    assert collector.gets == [], "a redirect must not be followed (requests turns the POST into a GET)"
    assert collector.tokens_issued == 1 and (tmp_path / "token").read_text() == "mwa_token1"


@pytest.mark.parametrize("code", [400, 413, 422])
def test_answers_refusing_the_content_quarantine_only_the_bad_event(collector, spool, tmp_path, code):
    collector.refuse_code = code
    spool.put(_events(3) + _events(1, "BAD") + _events(2, "late"))
    reporter = _reporter(collector, spool, tmp_path)
    _deliver_all(reporter, spool)
    assert len([e for e in collector.received if e["type"] != "agent.gap"]) == 5
    assert [e["details"]["seq_from"] for e in collector.received if e["type"] == "agent.gap"] == [4]
    assert spool.dead_count() == 1


def test_403_backs_off_and_keeps_the_token_and_the_agent_id(collector, spool, tmp_path):
    spool.put(_events(2))
    collector.scripted = {"/api/v1/heartbeat": [403, 403]}
    reporter = _reporter(collector, spool, tmp_path)
    _deliver_all(reporter, spool)
    assert collector.tokens_issued == 1, "only a 401 means the token is gone"
    assert sum(path == "/api/v1/enroll" for path, _ in collector.requests) == 1
    assert reporter.agent_id == "7b5a99a8-7013-4964-ac70-813090623ca9"
    assert len(collector.received) == 2


def test_a_refused_heartbeat_neither_ends_the_reporter_nor_holds_back_events(collector, spool, tmp_path):
    collector.always = {"/api/v1/heartbeat": 422}
    events = _events(3)
    spool.put(events)
    reporter = _reporter(collector, spool, tmp_path)
    reporter.heartbeat_s = 0.1
    reporter.start()
    try:
        _wait(lambda: {e.id for e in events} <= {e["id"] for e in collector.received})
        spool.put(_events(2, "later"))
        _wait(lambda: len([e for e in collector.received if "later" in (e.get("path") or "")]) == 2)
        heartbeats = sum(path == "/api/v1/heartbeat" for path, _ in collector.requests)
        _wait(lambda: sum(path == "/api/v1/heartbeat" for path, _ in collector.requests) >= heartbeats + 3)
        _wait(lambda: spool.depth() == 0)
        assert reporter._thread.is_alive()
    finally:
        reporter.stop()
    [error] = _errors(collector)  # once, not once per heartbeat
    assert error["details"] == {"failure": "Refused", "where": "heartbeat"}
    assert error["error"].startswith("reporter heartbeat failed: Refused: 422")


class _SpoolFailingAck(Spool):
    """A real spool whose acknowledgements fail a few times, like a disk that is briefly full."""

    def __init__(self, path, failures):
        super().__init__(path)
        self.failures = failures

    def ack(self, batch, state=None):
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        super().ack(batch, state)


def test_a_spool_error_does_not_end_the_reporter_and_is_reported_once(collector, tmp_path):
    spool = _SpoolFailingAck(str(tmp_path / "spool.db"), failures=2)
    events = _events(3)
    spool.put(events)
    reporter = _reporter(collector, spool, tmp_path)
    try:
        _deliver_all(reporter, spool)
        assert spool.failures == 0
    finally:
        spool.close()
    assert {e.id for e in events} <= {e["id"] for e in collector.received}  # sent again: the collector dedups
    [error] = _errors(collector)
    assert error["details"] == {"failure": "OperationalError", "where": "cycle"}
    assert "database or disk is full" in error["error"]


def test_an_unexpected_error_in_the_loop_is_contained(collector, spool, tmp_path):
    calls = []

    def status():  # the heartbeat's extra fields: the first call hits a bug
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("watched")
        return {}

    spool.put(_events(2))
    reporter = _reporter(collector, spool, tmp_path, status=status)
    _deliver_all(reporter, spool)
    assert [e["details"] for e in _errors(collector)] == [{"failure": "KeyError", "where": "cycle"}]
    assert len([e for e in collector.received if e["type"] == "egress.file"]) == 2


def test_heartbeats_say_how_far_the_chain_was_delivered_and_the_agents_time(collector, spool, tmp_path):
    spool.put(_events(3))
    reporter = _reporter(collector, spool, tmp_path)
    reporter.heartbeat_s = 0.1
    reporter.start()
    try:
        _wait(lambda: spool.depth() == 0 and any(h["chain"] == {"seq": 3, "unsent_from": None} for h in collector.heartbeats))
    finally:
        reporter.stop()
    first = collector.heartbeats[0]
    assert first["chain"] == {"seq": 3, "unsent_from": 1}  # sent before the first batch: nothing delivered yet
    assert first["agent_time"].endswith("Z")


def test_a_pending_agents_403_says_why_and_how_long_to_wait():
    """A second live agent of one host name is pending: its token gets 403 with the reason and a
    Retry-After until an admin approves it. The error the agent logs carries the reason, and it
    waits as long as told (its events stay in the spool: 403 is never a refusal of them)."""
    import requests

    from agent.reporter import DeliveryError, Refused, _check_status

    r = requests.Response()
    r.status_code, r.reason = 403, "Forbidden"
    r._content = json.dumps({"detail": "this agent waits for an admin's approval"}).encode()
    r.headers["Retry-After"] = "300"
    with pytest.raises(DeliveryError) as raised:
        _check_status(r)
    assert not isinstance(raised.value, Refused)
    assert "waits for an admin's approval" in str(raised.value) and raised.value.retry_after_s == 300


def test_a_burst_goes_out_in_fewer_batches_and_a_lone_event_at_once(collector, spool, tmp_path, monkeypatch):
    """A batch right after another waits GATHER_S for more; the first after a quiet spell does not.
    The window is widened from its 50 ms so that five fsync'd writes 10 ms apart fall inside it on
    a loaded machine too (at load 6 they took longer than 50 ms and went out in four batches)."""
    from agent import reporter as reporting

    monkeypatch.setattr(reporting, "GATHER_S", 0.5)
    reporter = _reporter(collector, spool, tmp_path, batch_max=500)
    reporter.start()
    try:
        spool.put(_events(1, "lone"))
        _wait(lambda: spool.depth() == 0, timeout_s=reporting.GATHER_S * 0.9 + 1.0)
        sent_at = time.monotonic()
        for i in range(5):  # a burst arriving a few at a time
            spool.put(_events(3, f"burst{i}"))
            time.sleep(0.01)
        _wait(lambda: spool.depth() == 0)
        assert time.monotonic() - sent_at >= reporting.GATHER_S * 0.9
    finally:
        reporter.stop()
    batches = [r for r, _ in collector.requests if r == "/api/v1/events"]
    assert len(collector.received) == 16
    assert len(batches) <= 3  # the lone event, then the burst in one or two batches (not five)
