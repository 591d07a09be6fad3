"""The batch ingest path gives the answers of the per-event reference (issue 21 item 2).

The same 10,000 events, in the same batches, heartbeats and clock steps, go through two
collectors on two fresh SQLite files: one on the product's path (server/batchdecode.py: one typed
decode in the request limits, the chain digest from the dict the body is written from), one with
`app.state.reference_ingest` (the byte scan, json.loads, pydantic on Python objects,
EventIn.to_event, the digest parsed back from the body text). Every row of every table must be
equal, ids included (both collectors insert in the same order); only what is random by
construction is left out: token hashes. The collector's own events take their ids from a counter
in both runs (rules.events.new_event_id, and uuid4 for anything else).

The mix: file events in classified folders (some deleted in bursts that trip MW-MASS-DELETION),
egress of core, unclassified and marked files and of personal data (resident IDs, bank cards,
mobile numbers) to USB sticks, in bursts that trip MW-BULK-EGRESS and grow incidents; several
agents, one in a group that narrows its rules; working hours and evenings; tamper events, chain
gaps (explained by agent.gap or not, judged by heartbeats), a forged link, a reused seq, a body
naming another host, resent batches and duplicates within a batch, odd but valid fields (extra
fields of a newer agent, details with nested values, integral floats, non-ASCII paths).
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

import server.limits
from rules import events as events_module
from rules.events import Event, chain_digest
from server.app import create_app
from server.auth import API_TOKEN_PREFIX, new_token
from server.config import ServerConfig
from server.database import make_engine, migrate
from server.limits import MAX_JSON_DEPTH
from server.models import MAX_EVENTS_PER_BATCH
from server.store import Store
from tests.server.factories import ENROLL_SECRET, KINGSTON, FakeClock, make_event

EVENTS = 10_000
AGENTS = ("pc-rnd-01", "pc-rnd-02", "pc-sales-01", "front-01")
USERS = ("zhang.wei", "li.na", "wang.fang", "chen.jie", "刘洋")
LEFT_OUT = {"token_hash"}  # random tokens, by construction
T0 = datetime(2026, 3, 2, 9, 15, 0, tzinfo=UTC)  # Monday 17:15 in Shanghai: the run crosses 18:00


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Agent:
    """An agent's spool: seq and prev_hash as agent/spool.py gives them, with faults on request."""

    def __init__(self, agent_id: str, host: str):
        self.agent_id, self.host = agent_id, host
        self.seq, self.prev_hash = 0, None

    def link(self, event: dict, rng: random.Random) -> dict:
        self.seq += 1
        if rng.random() < 0.004:  # events deleted before they were sent: a hole in the chain
            self.seq += rng.randint(1, 3)
        event = {**event, "seq": self.seq, "prev_hash": self.prev_hash}
        if rng.random() < 0.002:  # a forged link
            event["prev_hash"] = "f" * 64
        # the digest of the event as the agent spools it: every field, and a newer agent's extra ones
        known = Event.from_dict(event).to_dict()
        self.prev_hash = chain_digest({**{k: v for k, v in event.items() if k not in known}, **known})
        return event


def _event(rng: random.Random, agent: _Agent, ts: datetime, kind: str, user: str | None = None) -> dict:
    user = user or rng.choice(USERS)
    n = rng.randint(0, 400)
    base = {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "ts": _iso(ts), "host": agent.host, "user": user}
    if kind == "file":
        base.update(type=rng.choice(("file.created", "file.modified", "file.deleted", "file.opened")),
                    path=f"/srv/rnd/图纸/part-{n}.dwg", level=rng.choice(("core", "core", "important", None)),
                    size=rng.randint(1, 10**7), sha256=f"{rng.getrandbits(256):064x}")  # fmt: skip
    elif kind == "delete":
        base.update(type="file.deleted", path=f"/srv/rnd/图纸/old-{n}.dwg", level="core")
    elif kind == "egress":
        level = rng.choice(("core", "core", "important", "general", None, None))
        base.update(type="egress.file", path=f"/media/{user}/KINGSTON/file-{n % 60}.bin", size=rng.randint(1000, 3 * 10**7),
                    sha256=f"{(n % 60):064x}", egress="removable", media=dict(KINGSTON), level=level)  # fmt: skip
        if level:
            base.update(source_path=f"/srv/rnd/图纸/part-{n}.dwg", register_entry="Product drawings",
                        match={"method": rng.choice(("exact", "partial")), "similarity": rng.choice((1.0, 0.93, 1))})  # fmt: skip
        draw = rng.random()
        if draw < 0.15:
            base["detections"] = [
                {"detector": "trade_secret_marking", "count": rng.randint(1, 3), "sample": "商业秘密"}
            ]
        elif draw < 0.3:
            detector = rng.choice(("cn_resident_id", "bank_card", "cn_mobile"))
            base["detections"] = [{"detector": detector, "count": rng.choice((1, 5, 12, 150))}]
            base["file_type"], base["type_mismatch"] = "xlsx", rng.random() < 0.2
    elif kind == "tamper":
        base.update(
            type="agent.tamper",
            error="config changed",
            details={"kind": "config_changed", "by": {"uid": 0, "names": ["root"]}},
        )
    elif kind == "gap":
        low = max(1, agent.seq - 2)
        base.update(type="agent.gap", details={"seq_from": low, "seq_to": low + 1, "reason": "spool full"})
    elif kind == "odd":  # a newer agent's extra fields, an integral float, a mounted stick
        base.update(type="media.mounted", media={**KINGSTON, "serial": f"S{n}", "size_bytes": 16 * 2**30}, egress="removable",
                    future_field={"nested": [1, 2.0, {"x": None}]}, details={"ratio": 2.0, "deep": {"a": [[1]]}})  # fmt: skip
    return base


def _script(seed: int = 21) -> list[tuple]:
    """The steps both collectors take: ("post", host, body bytes), ("beat", host, body), ("tick", s)."""
    rng = random.Random(seed)
    agents = {host: _Agent(str(uuid.UUID(int=rng.getrandbits(128), version=4)), host) for host in AGENTS}
    steps: list[tuple] = []
    sent, now, total = [], T0, 0
    while total < EVENTS:
        host = rng.choice(AGENTS)
        agent = agents[host]
        size = min(EVENTS - total, rng.choice((1, 20, 120, 250, 400)))
        mode = rng.random()
        batch = []
        burster = rng.choice(USERS[:2]) if mode < 0.25 else None  # one user copies or deletes many files
        if mode < 0.25:
            size = min(EVENTS - total, rng.choice((120, 250, 400)))
        for i in range(size):
            ts = now + timedelta(milliseconds=150 * i)
            if mode < 0.15:
                kind = "egress"  # a burst to a stick: bulk egress, incidents
            elif mode < 0.25:
                kind = "delete"  # mass deletion
            else:
                kind = rng.choices(("file", "egress", "tamper", "gap", "odd"), (80, 15, 1, 1, 3))[0]
            event = _event(rng, agent, ts, kind, burster)
            if rng.random() < 0.003:  # a body naming another host
                event["host"] = "someone-else"
            event = agent.link(event, rng)
            batch.append(event)
        if batch and rng.random() < 0.05:  # a seq given twice: the second event is forged
            twin = {
                **batch[-1],
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "path": "/srv/rnd/图纸/forged.dwg",
            }
            batch.append(twin)
        if sent and rng.random() < 0.1:  # part of an earlier batch again (a resend), and a duplicate inside
            batch += rng.sample(sent[-1][1], min(10, len(sent[-1][1])))
        if batch and rng.random() < 0.05:
            batch.append(batch[0])
        total += size
        body = json.dumps({"events": batch}, ensure_ascii=rng.random() < 0.5).encode()
        steps.append(("post", host, body))
        sent.append((host, batch))
        if rng.random() < 0.08:
            steps.append(("post", host, body))  # the whole batch resent (the answer was lost)
        if rng.random() < 0.3:
            unsent = agent.seq + 1 if rng.random() < 0.8 else max(1, agent.seq - 5)
            beat = {"hostname": host, "version": "0.9", "os": "linux", "spool_depth": 0, "chain": {"seq": agent.seq, "unsent_from": unsent},
                    "agent_time": _iso(now + timedelta(seconds=400 if rng.random() < 0.05 else 1))}  # fmt: skip
            steps.append(("beat", host, beat))
        step_s = rng.choice((5, 30, 60, 240))
        now += timedelta(seconds=step_s)
        steps.append(("tick", step_s))
    return steps, {host: a.agent_id for host, a in agents.items()}


def _collector(tmp_path, name: str, reference: bool):
    url = f"sqlite:///{tmp_path / name}"
    engine = make_engine(url)
    migrate(engine)
    clock = FakeClock(T0)
    store = Store(engine, clock=clock)
    config = ServerConfig(
        listen=("127.0.0.1", 0), database=url, enroll_secret=ENROLL_SECRET, signing_key_file=str(tmp_path / f"{name}-key.pem"),
    )  # fmt: skip
    app = create_app(config, store, absence_check_s=10**6)  # no absence check by the wall clock midway
    app.state.reference_ingest = reference
    return app, store, clock, engine, tmp_path / name


def _run(tmp_path, name: str, reference: bool, steps, agent_ids, monkeypatch) -> tuple:
    """Play the script; (database file, answers)."""
    counter = iter(range(1, 10**9))
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(counter), version=4))
    monkeypatch.setattr(events_module, "new_event_id", lambda: str(uuid.UUID(int=next(counter), version=4)))  # the collector's own event ids
    app, store, clock, engine, path = _collector(tmp_path, name, reference)
    answers = []
    with TestClient(app) as client:
        token = new_token(API_TOKEN_PREFIX)
        store.create_api_token("secops", token)
        reader = {"Authorization": f"Bearer {token}"}
        r = client.post("/api/v1/groups", json={"name": "前台", "rule_files": ["packs/reads.yaml"]}, headers=reader)
        assert r.status_code == 201, r.text
        client.put(
            "/api/v1/groups/rules",
            json={"rules": [{"group_id": r.json()["id"], "hostname": "front-*"}]},
            headers=reader,
        )
        tokens = {}
        for host in AGENTS:
            body = {
                "enroll_secret": ENROLL_SECRET,
                "agent_id": agent_ids[host],
                "hostname": host,
                "version": "0.9",
                "os": "linux",
            }
            r = client.post("/api/v1/enroll", json=body)
            assert r.status_code == 200 and r.json()["agent_id"] == agent_ids[host], r.text
            tokens[host] = {"Authorization": f"Bearer {r.json()['token']}", "Content-Type": "application/json"}
        for step in steps:
            if step[0] == "post":
                r = client.post("/api/v1/events", content=step[2], headers=tokens[step[1]])
                answers.append((r.status_code, r.json()))
            elif step[0] == "beat":
                r = client.post("/api/v1/heartbeat", json=step[2], headers=tokens[step[1]])
                answers.append((r.status_code, r.json()["status"]))
            else:
                clock.advance(step[1])
        alerts = []
        cursor = None
        while True:
            r = client.get(
                "/api/v1/alerts", params={"limit": 1000, **({"cursor": cursor} if cursor else {})}, headers=reader
            )
            page = r.json()
            alerts += [client.get(f"/api/v1/alerts/{a['id']}", headers=reader).json() for a in page["alerts"]]
            cursor = page.get("next")
            if not cursor:
                break
    engine.dispose()
    return path, answers, alerts


def _clocked(value):
    """Times of the wall clock (the migrations' default group and policy rows, written before the
    fake clock runs; the run's own times are in March 2026) differ by construction."""
    if isinstance(value, str) and value[:10] in _WALL_DAYS:
        return "<wall clock>"
    return value


_WALL_DAYS = {str((datetime.now(UTC) + timedelta(days=d)).date()) for d in (-1, 0, 1)}


def _tables(path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        found = {}
        for name in names:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")') if r[1] not in LEFT_OUT]
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = [tuple(_clocked(v) for v in row) for row in conn.execute(f'SELECT {quoted} FROM "{name}"')]
            found[name] = (
                columns,
                sorted(rows, key=lambda row: [(v is None, str(type(v)), v if v is not None else 0) for v in row]),
            )
        return found
    finally:
        conn.close()


@pytest.fixture(scope="module")
def script():
    return _script()


def test_batch_path_stores_every_row_and_alert_as_the_per_event_reference(tmp_path, monkeypatch, script):
    steps, agent_ids = script
    decoded = []
    original = server.limits.decode_batch

    def counting(*args):
        result = original(*args)
        decoded.append(result is not None)
        return result

    monkeypatch.setattr(server.limits, "decode_batch", counting)
    new_db, new_answers, new_alerts = _run(tmp_path, "batch.db", False, steps, agent_ids, monkeypatch)
    assert sum(decoded) >= 0.9 * sum(1 for s in steps if s[0] == "post"), "the batch path decoded too few bodies itself"
    decoded.clear()
    ref_db, ref_answers, ref_alerts = _run(tmp_path, "reference.db", True, steps, agent_ids, monkeypatch)
    assert decoded == [], "the reference path must not use the one-pass decode"

    assert new_answers == ref_answers
    assert all(status == 200 for status, _ in new_answers)
    new, ref = _tables(new_db), _tables(ref_db)
    assert sorted(new) == sorted(ref)
    for name in ref:
        assert new[name][0] == ref[name][0], name
        assert len(new[name][1]) == len(ref[name][1]), (
            f"{name}: {len(new[name][1])} rows, the reference {len(ref[name][1])}"
        )
        for a, b in zip(new[name][1], ref[name][1], strict=True):
            assert a == b, (
                f"{name}: {dict(zip(new[name][0], a, strict=True))} != {dict(zip(ref[name][0], b, strict=True))}"
            )
    assert new_alerts == ref_alerts

    # the script is the mix it claims to be
    stored = {name: len(rows) for name, (_, rows) in ref.items()}
    assert stored["events"] >= EVENTS * 0.95
    categories = {a["category"] for a in ref_alerts} | {c for a in ref_alerts for c in a.get("facets") or ()}
    assert {
        "classified-egress",
        "bulk-egress",
        "mass-deletion",
        "agent-tamper",
        "personal-data-egress",
        "marked-egress",
        "off-hours",
    } <= categories, categories
    kinds = {(json.loads(row[ref["events"][0].index("body")]).get("details") or {}).get("kind") for row in ref["events"][1]
             if row[ref["events"][0].index("type")] == "agent.tamper"}  # fmt: skip
    assert {"chain_gap", "chain_break", "seq_reused", "host_mismatch"} <= kinds, kinds
    assert stored["incident_files"] > 0 and stored["chain_gaps"] > 0 and stored["rule_hits"] > 0
    assert any(row[ref["events"][0].index("claimed_host")] for row in ref["events"][1])


# --- the limits' checks folded into the one-pass decode ------------------------------------------


def _nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"in": value}
    return value


@pytest.fixture
def decodes(monkeypatch) -> list[bool]:
    """Whether each ingest body was settled by the one-pass decode (True) or went to the scan."""
    seen: list[bool] = []
    original = server.limits.decode_batch

    def counting(*args):
        result = original(*args)
        seen.append(result is not None)
        return result

    monkeypatch.setattr(server.limits, "decode_batch", counting)
    return seen


def test_a_valid_batch_nested_past_the_cap_in_its_details_is_400_from_the_decode(client, agent, store, decodes):
    # the body nests 3 levels to an event's object ({"events": [{...}]}), the details the rest
    at_cap = make_event(details=_nested(MAX_JSON_DEPTH - 3))
    past = make_event(details=_nested(MAX_JSON_DEPTH - 2))
    headers = {**agent.headers, "Content-Type": "application/json"}
    response = client.post("/api/v1/events", content=json.dumps({"events": [past]}), headers=headers)
    assert response.status_code == 400, response.text
    assert response.json() == {"detail": f"JSON nested deeper than {MAX_JSON_DEPTH} levels"}
    extra = make_event(future={"list": [_nested(MAX_JSON_DEPTH - 3)]})  # a newer agent's field, one level deeper
    response = client.post("/api/v1/events", content=json.dumps({"events": [extra]}), headers=headers)
    assert response.status_code == 400, response.text
    assert store.count_events() == 0
    response = client.post("/api/v1/events", content=json.dumps({"events": [at_cap]}), headers=headers)
    assert response.status_code == 200, response.text
    assert decodes == [True, True, True]


def test_a_body_naming_events_twice_is_counted_by_the_scan(client, agent, store, decodes):
    """A JSON parser keeps the last of two equal keys; the limits count the largest array."""
    headers = {**agent.headers, "Content-Type": "application/json"}
    many = json.dumps([make_event() for _ in range(MAX_EVENTS_PER_BATCH + 1)])
    body = '{"events": ' + many + ', "events": [' + json.dumps(make_event()) + "]}"
    response = client.post("/api/v1/events", content=body, headers=headers)
    assert response.status_code == 413, response.text
    escaped = '{"\\u0065vents": ' + many + ', "events": []}'
    response = client.post("/api/v1/events", content=escaped, headers=headers)
    assert response.status_code == 413, response.text
    assert store.count_events() == 0
    assert decodes == [False, False]
