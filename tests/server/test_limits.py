"""Honest limits: nesting 400, batch 413, agent rate 429 + Retry-After, unwritable database 503 +
Retry-After, and the agent's reporter waiting out what the collector asks."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import threading
import uuid

import pytest
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError

from agent.reporter import Reporter, retry_after_s
from agent.spool import Spool
from rules.events import Event
from server.app import create_app
from server.limits import MAX_JSON_DEPTH, TokenBuckets, json_shape
from tests.e2e.harness import free_port, wait_for
from tests.server.factories import ENROLL_SECRET, make_event

# --- the byte scan ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, depth, events",
    [
        (b'{"events": []}', 2, 0),
        (b'{"events": [ ]}', 2, 0),
        (b'{"events": [{}]}', 3, 1),
        (b'{"events": [{"a": [1, 2, {"b": 3}]}, {}, {}]}', 5, 3),
        (b'{"x": [1, 2, 3], "events": [1, 2]}', 2, 2),
        (b'{"events": [{"path": "a,b]}[{\\"events\\": [1,2,3]"}, {"path": "\\\\"}]}', 3, 2),
        (b'{"nested": {"events": [1, 2, 3]}}', 3, None),
        (b'[[[[]]]]', 4, None),
        (b'"just a string with [[[ in it"', 0, None),
        (b"{broken", 1, None),
    ],
)
def test_json_shape_counts_depth_and_top_level_events(body, depth, events):
    shape = json_shape(body)
    assert (shape.depth, shape.events) == (depth, events)
    if events is not None and depth < 5:  # agrees with the real parser where the body parses
        try:
            parsed = json.loads(body)
        except ValueError:
            return
        assert len(parsed["events"]) == events


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["events", '"events"', "\\", "[{", "a,b", "中文"]), st.text(max_size=8),
)  # fmt: skip
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["events", "a", "events2", ""]), inner, max_size=3), max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(top=_VALUES | st.fixed_dictionaries({"events": st.lists(_VALUES, max_size=6)}, optional={"x": _VALUES}), indent=st.sampled_from([None, 0, 2]), ascii=st.booleans())
def test_json_shape_agrees_with_the_parser_on_any_json(top, indent, ascii):
    body = json.dumps(top, indent=indent, ensure_ascii=ascii).encode()
    shape = json_shape(body)
    assert shape.depth == _depth(top)
    expected = len(top["events"]) if isinstance(top, dict) and isinstance(top.get("events"), list) else None
    assert shape.events == expected


def test_json_shape_stops_just_past_the_cap():
    assert json_shape(b"[" * 1_000_000).depth == MAX_JSON_DEPTH + 1


def test_token_buckets_refill_at_the_rate_up_to_the_burst():
    now = [0.0]
    buckets = TokenBuckets(rate=10, burst=50, clock=lambda: now[0])
    assert buckets.wait_s(b"a", 50) == 0
    buckets.charge(b"a", 50)
    assert buckets.wait_s(b"a", 10) == pytest.approx(1.0)
    assert buckets.wait_s(b"b", 50) == 0  # another agent has its own bucket
    now[0] = 0.5
    assert buckets.wait_s(b"a", 10) == pytest.approx(0.5)
    now[0] = 100.0
    assert buckets.wait_s(b"a", 50) == 0 and buckets.wait_s(b"a", 51) == pytest.approx(0.0)  # capped at the burst


def test_token_buckets_forget_the_least_recently_used_beyond_their_cap():
    buckets = TokenBuckets(rate=1, burst=1, max_keys=3)
    for key in (b"a", b"b", b"c", b"d"):
        buckets.charge(key, 1)
    assert list(buckets._buckets) == [b"b", b"c", b"d"]


# --- through the app -------------------------------------------------------------------------


@pytest.fixture
def limited(config, store):
    """The app with a batch cap of 10 and 2 events/s per agent (a burst of 20)."""
    app = create_app(dataclasses.replace(config, max_batch_events=10, agent_rate_limit=2.0), store)
    with TestClient(app) as client:
        yield client


def _enroll(client, hostname: str = "pc-0042") -> dict:  # make_event's host: the events are the agent's own
    body = {"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": hostname}
    token = client.post("/api/v1/enroll", json=body).json()["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path, method", [("/api/v1/events", "post"), ("/api/v1/heartbeat", "post"), ("/api/v1/enroll", "post")])
@pytest.mark.reliability(area="input", fault="JSON nested deeper than 64", how="65 and 100,000 levels to `/events`, `/heartbeat`, `/enroll`", outcome="400 `JSON nested deeper than 64 levels` from a byte scan (or, for a valid batch, measured after the one-pass decode, whose Rust parser stops at its own recursion limit); Python's recursive json parser never sees it")
def test_json_nested_deeper_than_the_cap_is_400_before_parsing(client, agent, path, method):
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        body = '{"events": [' + "[" * depth + "]" * depth + "]}"
        response = getattr(client, method)(path, content=body, headers={**agent.headers, "Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json() == {"detail": f"JSON nested deeper than {MAX_JSON_DEPTH} levels"}
        assert response.headers["x-content-type-options"] == "nosniff"


def test_nesting_at_the_cap_reaches_validation(client, agent):
    inner = "[" * (MAX_JSON_DEPTH - 2) + "]" * (MAX_JSON_DEPTH - 2)
    response = client.post("/api/v1/events", content='{"events": ' + inner + "}", headers={**agent.headers, "Content-Type": "application/json"})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "raw, what",
    [(b'{"events": [{"size": NaN}]}', "NaN"), (b'{"events": [{"path": "\\ud800"}]}', "lone surrogate")],
)
@pytest.mark.reliability(area="input", fault="NaN, infinities, lone surrogates, NUL", how="raw JSON text", outcome="4xx, nothing stored, errors echo the input safely")
def test_nan_and_lone_surrogates_are_refused_with_4xx(client, agent, store, raw, what):
    event = json.dumps(make_event())
    body = raw.replace(b"{", ("{" + event[1:-1] + ", ").encode(), 2).replace(b'{"events": [' + event[1:-1].encode() + b", ", b'{"events": [', 1)
    response = client.post("/api/v1/events", content=body, headers={**agent.headers, "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, (what, response.text)
    assert store.count_events() == 0


@pytest.mark.reliability(area="input", fault="More events than `server.max_batch_events` (default 5,000)", how="a batch of 5,001 (and 11 with a cap of 10)", outcome="413 `batch of N events; at most M per request`, counted before the app sees the body (a byte scan, or the one-pass decode of a valid batch); nothing stored; the agent bisects a 413 batch")
def test_batch_over_the_configured_cap_is_413_and_stores_nothing(limited, store):
    headers = _enroll(limited)
    response = limited.post("/api/v1/events", json={"events": [make_event() for _ in range(11)]}, headers=headers)
    assert response.status_code == 413
    assert response.json() == {"detail": "batch of 11 events; at most 10 per request"}
    assert store.count_events() == 0
    response = limited.post("/api/v1/events", json={"events": [make_event() for _ in range(10)]}, headers=headers)
    assert response.json() == {"accepted": 10, "duplicates": 0}


def test_a_repeated_header_is_judged_as_the_app_reads_it(limited, store):
    """Starlette reads the first of a repeated header: the limits read the same one, so a second
    Authorization header cannot buy a fresh bucket, nor a second Content-Type skip the scan."""
    one = _enroll(limited)
    decoy = ("Authorization", "Bearer mwa_" + "x" * 43)
    for i in range(3):
        headers = [*one.items(), (decoy[0], decoy[1] + str(i)), ("content-type", "application/json")]
        answer = limited.post("/api/v1/events", content=json.dumps({"events": [make_event() for _ in range(10)]}), headers=headers)
        assert answer.status_code == (200 if i < 2 else 429), (i, answer.text)
    deep = b'{"events": ' + b"[" * 100 + b"]" * 100 + b"}"
    answer = limited.post("/api/v1/events", content=deep, headers=[*one.items(), ("content-type", "application/json"), ("content-type", "text/plain")])
    assert answer.status_code == 400 and "nested deeper" in answer.json()["detail"]


@pytest.mark.reliability(area="input", fault="An agent over its event rate", how="2 events/s per agent (burst 20): a third batch of 10", outcome="429 with `Retry-After` (seconds); another agent is not affected; tokens that fail authentication never get a bucket")
def test_an_agent_over_its_rate_gets_429_with_retry_after_and_others_do_not(limited, store):
    one, other = _enroll(limited), _enroll(limited, "pc-0043")
    for _ in range(2):  # the burst: 20 events
        assert limited.post("/api/v1/events", json={"events": [make_event() for _ in range(10)]}, headers=one).status_code == 200
    response = limited.post("/api/v1/events", json={"events": [make_event() for _ in range(10)]}, headers=one)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 5  # 10 events at 2/s, less what refilled meanwhile
    assert "2 events/s" in response.json()["detail"]
    assert store.count_events() == 20
    assert limited.post("/api/v1/events", json={"events": [make_event(host="pc-0043")]}, headers=other).status_code == 200


@pytest.mark.reliability(area="input", fault="An agent over its event rate", how="2 events/s per agent (burst 20): a third batch of 10", outcome="429 with `Retry-After` (seconds); another agent is not affected; tokens that fail authentication never get a bucket")
def test_unknown_tokens_never_get_a_bucket(limited):
    middleware = _limits(limited.app)
    for i in range(50):
        response = limited.post("/api/v1/events", json={"events": [make_event()]}, headers={"Authorization": f"Bearer mwa_bad{i}"})
        assert response.status_code == 401
    assert len(middleware.buckets._buckets) == 0


def _limits(app):
    from server.limits import RequestLimits

    layer = app.middleware_stack
    while not isinstance(layer, RequestLimits):
        layer = layer.app
    return layer


@pytest.mark.reliability(area="fault", fault="Database cannot write (locked, I/O error, PostgreSQL gone)", how="`store.ingest` raising SQLAlchemy `OperationalError`", outcome="503 + `Retry-After: 5` (was 500)")
def test_database_that_cannot_write_is_503_with_retry_after(client, agent, store, monkeypatch):
    def locked(events, **_):
        raise OperationalError("INSERT INTO events ...", {}, Exception("database is locked"))

    monkeypatch.setattr(store, "ingest", locked)
    response = client.post("/api/v1/events", json={"events": [make_event()]}, headers=agent.headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {"detail": "the database cannot take writes now; retry later"}
    monkeypatch.undo()
    assert store.count_events() == 0


@pytest.mark.reliability(area="fault", fault="Collector database disk full", how="the SQLite file on a loop-mounted 64 MB ext4, filled by another file (root only; skipped otherwise)", outcome="503 + `Retry-After: 5`, nothing half-written; the same batch after freeing space: 500 accepted, 0 duplicates, 500 rows")
def test_full_database_disk_is_503_and_the_retried_batch_is_stored_once(small_ext4, tmp_path):
    """The SQLite file on a 64 MB ext4 filled up by another file: 503 + Retry-After, nothing half
    written; once there is room, the same batch is stored whole."""
    from server.config import ServerConfig
    from server.database import make_engine, migrate
    from server.store import Store

    url = f"sqlite:///{small_ext4 / 'collector.db'}"
    engine = make_engine(url)
    migrate(engine)
    store = Store(engine)
    config = ServerConfig(listen=("127.0.0.1", 0), database=url, enroll_secret=ENROLL_SECRET)
    with TestClient(create_app(config, store)) as client:
        headers = _enroll(client)
        batch = {"events": [make_event(details={"pad": "x" * 2000}) for _ in range(500)]}
        filler = small_ext4 / "filler"
        subprocess.run(["fallocate", "-l", "1G", str(filler)], capture_output=True)  # fails: fills what is left
        if not filler.exists() or os.statvfs(small_ext4).f_bavail > 64:
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)
        response = client.post("/api/v1/events", json=batch, headers=headers)
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "5"
        filler.unlink()
        again = client.post("/api/v1/events", json=batch, headers=headers)
        assert again.json() == {"accepted": 500, "duplicates": 0}
        assert store.count_events() == 500
    engine.dispose()


# --- the agent waits out Retry-After -----------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [("7", 7.0), (" 12 ", 12.0), ("0", 0.0), ("99999", 300.0), ("-3", None), ("soon", None), (None, None), ("", None)],
)
def test_retry_after_seconds_are_read_and_capped(value, expected):
    assert retry_after_s(value) == expected


def test_retry_after_as_an_http_date():
    assert retry_after_s("Thu, 01 Jan 1970 00:01:40 GMT", now=90.0) == pytest.approx(10.0)
    assert retry_after_s("Thu, 01 Jan 1970 00:01:40 GMT", now=500.0) == 0.0


class _Served:
    """The real app behind uvicorn on loopback, in a thread: what the reporter talks to."""

    def __init__(self, app):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 20, what="uvicorn to start")

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)


class _RecordingStop(threading.Event):
    """The reporter's stop event: records every wait, which is how the reporter sleeps."""

    def __init__(self):
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        return super().wait(timeout)


@pytest.mark.parametrize("answer", [429, 503])
@pytest.mark.reliability(area="fault", fault="Collector answers 503 / 429 to a real agent reporter", how="the real app behind uvicorn: two `OperationalError`s, or an agent rate of 10 events/s with 110 events to send", outcome="the reporter waits exactly the `Retry-After` (5 s twice; 1 s), then delivers every event once")
def test_the_reporter_waits_out_retry_after_and_delivers_everything_once(config, store, tmp_path, monkeypatch, answer):
    app = create_app(dataclasses.replace(config, max_batch_events=10, agent_rate_limit=10.0 if answer == 429 else 0), store)
    if answer == 503:
        real, failures = store.ingest, [2]

        def sometimes_locked(events, **kwargs):
            if failures[0]:
                failures[0] -= 1
                raise OperationalError("INSERT", {}, Exception("database is locked"))
            return real(events, **kwargs)

        monkeypatch.setattr(store, "ingest", sometimes_locked)
    served = _Served(app)
    spool = Spool(str(tmp_path / "spool.db"))
    events = [Event(type="file.created", path=f"/data/f{i}") for i in range(110 if answer == 429 else 20)]
    spool.put(events)
    reporter = Reporter(served.url, ENROLL_SECRET, str(tmp_path), str(uuid.uuid4()), "pc", spool, heartbeat_s=60, batch_max=10)
    reporter._stop = _RecordingStop()
    try:
        reporter.start()
        wait_for(lambda: spool.depth() == 0, 60, 0.05, "the spool to drain")
    finally:
        reporter.stop()
        served.close()
        spool.close()
    monkeypatch.undo()
    stored = store.list_events("file.created", None, None, 1000, None).items
    assert sorted(e["path"] for e in stored) == sorted(e.path for e in events)  # each exactly once
    honoured = [w for w in reporter._stop.waits if w is not None and w >= 1.0]
    # 429: 110 events at 10/s with a burst of 100 -> at least one Retry-After of 1 s; 503: Retry-After 5, twice
    expected = [1.0] if answer == 429 else [5.0, 5.0]
    assert honoured[: len(expected)] == expected, reporter._stop.waits


def test_a_batch_written_with_an_escaped_events_key_still_pays_per_event(limited, store):
    """Whatever the byte scan counted, the charge is settled to the collector's own count."""
    headers = {**_enroll(limited), "Content-Type": "application/json"}
    for _ in range(2):
        body = '{"\\u0065vents": ' + json.dumps([make_event() for _ in range(10)]) + "}"
        assert limited.post("/api/v1/events", content=body, headers=headers).status_code == 200
    response = limited.post("/api/v1/events", json={"events": [make_event()]}, headers=headers)
    assert response.status_code == 429, response.text  # 20 events paid: the burst is spent
    assert store.count_events() == 20
