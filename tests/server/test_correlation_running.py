"""A growing burst is explained from a running total (server/correlation.py, BURST_KEY): the alerts,
evidence, hits and state rows must be the same as when every batch explains the burst from all its
stored hits again (Correlator(running=False), the algorithm before the running total).

Both collectors take the same batches of growing size, out of order, for two bursts of a rule with
count, sum and distinct thresholds and a by-level severity, a closed alert in the middle, and a pause
longer than the window; then every row of the correlation tables is compared.
"""

from __future__ import annotations

import json
import random
import sqlite3
from functools import partial

from fastapi.testclient import TestClient

import server.store
from server.app import create_app
from server.auth import API_TOKEN_PREFIX, new_token
from server.config import ServerConfig
from server.correlation import BURST_KEY, Correlator
from server.database import make_engine, migrate
from server.store import Store
from tests.server.factories import AGENT_OFFLINE_S, ENROLL_SECRET, FakeClock, alerts_of, at, make_egress, put_policy

GROWING = """\
- id: ACME-GROWING
  title: Classified files leaving one host
  category: bulk-egress
  severity: by-level
  correlate:
    rules: [MW-EGRESS-CLASSIFIED]
    group_by: [host]
    window: 10m
    any:
      - count: {gte: 4}
      - sum: {field: size, gte: 1MB}
      - distinct: {field: media.serial, gte: 3}
"""

AGENT_ID = "6f1c2d4e-0000-4000-8000-00000000abcd"
LEVELS = ["general", "important", "internal", "core"]


def _stick(serial: str) -> dict:
    return {"mountpoint": f"/media/{serial}", "vendor": "Kingston", "model": "DataTraveler 3.0", "serial": serial}


def _script() -> list[tuple[str, object]]:
    """Batches of 1, 2, 3 ... events 5 s apart, each shuffled and some reaching back before the last
    batch; a close of the alert after the fourth; a 20-minute pause after the ninth."""
    rng = random.Random(21)
    steps: list[tuple[str, object]] = []
    i, clock_s = 0, 0.0
    for size in range(1, 14):
        batch = []
        for _ in range(size):
            back = 7.0 if rng.random() < 0.2 else 0.0  # late: before events already sent
            batch.append(
                make_egress(
                    LEVELS[rng.randrange(4)],
                    ts=at(clock_s - back),
                    size=rng.choice([1000, 40_000, 70_000]),
                    user=rng.choice(["zhang.wei", "li.na"]),
                    path=f"/media/s/part-{i:03d}.dwg",
                    media=_stick(rng.choice(["S1", "S2", "S3", "S4"])),
                )
            )
            i += 1
            clock_s += 5
        rng.shuffle(batch)
        steps.append(("send", batch))
        if size == 4:
            steps.append(("close", None))
        if size == 9:
            clock_s += 1200
    return steps


def _run(
    tmp_path, name: str, running: bool, monkeypatch, script: list[tuple[str, object]], forget_after: int | None = None
) -> dict[str, list[tuple]]:
    monkeypatch.setattr(server.store, "Correlator", partial(Correlator, running=running))
    path = tmp_path / name
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    config = ServerConfig(
        listen=("127.0.0.1", 0),
        database=f"sqlite:///{path}",
        enroll_secret=ENROLL_SECRET,
        agent_offline_s=AGENT_OFFLINE_S,
        signing_key_file=str(tmp_path / f"{name}-keys" / "signing-key.pem"),
    )
    store = Store(engine, clock=FakeClock())
    token = new_token(API_TOKEN_PREFIX)
    store.create_api_token("secops", token)
    reader = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(config, store)) as client:
        put_policy(client, reader, ("acme.yaml", GROWING))
        body = {"enroll_secret": ENROLL_SECRET, "agent_id": AGENT_ID, "hostname": "pc-0042", "version": "0.1.0"}
        answer = client.post("/api/v1/enroll", json=body).json()
        headers = {"Authorization": f"Bearer {answer['token']}"}
        for n, (step, value) in enumerate(script):
            if n == forget_after:
                _forget_totals(path)
            if step == "send":
                response = client.post("/api/v1/events", json={"events": value}, headers=headers)
                assert response.status_code == 200, response.text
            else:
                (alert,) = [a for a in alerts_of(client, reader) if a["rule_id"] == "ACME-GROWING"]
                closed = client.patch(
                    f"/api/v1/alerts/{alert['id']}",
                    json={"status": "false_positive", "comment": "test"},
                    headers=reader,
                )
                assert closed.status_code == 200, closed.text
    engine.dispose()
    conn = sqlite3.connect(path)
    try:
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in ("alerts", "alert_events", "rule_hits", "correlation_state")
        }
    finally:
        conn.close()


def _forget_totals(path) -> None:
    """State rows as a collector before the running total wrote them: the group's values alone."""
    conn = sqlite3.connect(path)
    try:
        for rule_id, key, values in conn.execute(
            "SELECT rule_id, group_key, group_values FROM correlation_state"
        ).fetchall():
            group = {k: v for k, v in json.loads(values).items() if k != BURST_KEY}
            conn.execute(
                "UPDATE correlation_state SET group_values = ? WHERE rule_id = ? AND group_key = ?",
                (json.dumps(group, ensure_ascii=False, separators=(",", ":")), rule_id, key),
            )
        conn.commit()
    finally:
        conn.close()


def test_a_growing_burst_is_explained_from_its_running_total_as_from_all_its_hits(tmp_path, monkeypatch):
    script = _script()
    running = _run(tmp_path, "running.db", True, monkeypatch, script)
    rebuilt = _run(tmp_path, "rebuilt.db", False, monkeypatch, script)

    growing = [row for row in rebuilt["alerts"] if "ACME-GROWING" in row]
    assert len(growing) == 3, "the script should make three bursts: before the close, after it, after the pause"
    assert len(rebuilt["correlation_state"]) >= 2
    for table in rebuilt:
        assert len(running[table]) == len(rebuilt[table]), table
        for a, b in zip(running[table], rebuilt[table], strict=True):
            assert a == b, f"{table}:\n{a}\n!=\n{b}"
    totals = [json.loads(row[2])[BURST_KEY] for row in running["correlation_state"] if row[0] == "ACME-GROWING"]
    assert totals and all(t["count"] > 4 for t in totals)


def test_a_burst_stored_without_a_running_total_is_rebuilt_from_its_hits_once(tmp_path, monkeypatch):
    script = _script()
    running = _run(tmp_path, "running.db", True, monkeypatch, script, forget_after=3)
    rebuilt = _run(tmp_path, "rebuilt.db", False, monkeypatch, script)

    for table in rebuilt:
        assert running[table] == rebuilt[table], table
