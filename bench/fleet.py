"""The fleet page with 5,000 agents (issue 18 item 3): rendered server-side, filtered, paged.

A real `miwei-server run` process (uvicorn, one worker, SQLite in WAL mode) serves a database
filled beforehand: 5,000 agents (one in ten a version behind, 5% offline, 1% stopped, 1% pending,
2% retired, three watched folders and an index size each) in four groups, and 50,000 events naming
2,000 users (the page shows each listed agent's last user from them). A signed-in admin GETs each
variant `runs` times after one warm-up; the figure is the median time to the last byte, with the
95th percentile beside it. The baseline is GET /api/v1/health on the same connection in the same
run, so the ratio says how much the page costs above the floor of any answer on this machine.

`python -m bench.fleet [--quick]` runs this section alone and prints its figures.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.console import PASSWORD, _free_port, _sign_in, _times, _wait_healthy
from bench.measure import median, percentile
from bench.report import Figure, ratio, reproduce

TITLE = "Fleet page (5,000 agents)"
GOAL_MS = 300.0
AGENTS, EVENTS, USERS = 5_000, 50_000, 2_000
PAGES = [  # (name, path)
    ("agents, page 1", "/console/agents"),
    ("agents, last page", "/console/agents?page=100"),
    ("host search", "/console/agents?host=pc-04"),
    ("offline", "/console/agents?state=offline"),
    ("lagging, by last seen", "/console/agents?lags=1&sort=last_seen&order=desc"),
    ("by user", "/console/agents?user=user0042"),
    ("group and OS", "/console/agents?group=2&os=windows"),
    ("API, 100 per page", "/api/v1/agents?limit=100"),
]
NOTES = (
    "One uvicorn worker serving a database filled beforehand; times are to the last byte over loopback with requests, one "
    "warm-up each. The baseline is GET /api/v1/health on the same keep-alive connection in the same run. 50 agents per page."
)


def run(quick: bool) -> list[Figure]:
    runs = 5 if quick else 20
    root = Path(tempfile.mkdtemp(prefix="miwei-bench-fleet-"))
    try:
        return _measure(root, runs, quick)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _measure(root: Path, runs: int, quick: bool) -> list[Figure]:
    db, config, port = root / "miwei.db", root / "config.yaml", _free_port()
    config.write_text(
        f"server:\n  listen: 127.0.0.1:{port}\n  database: sqlite:///{db}\n  enroll_secret: {uuid.uuid4().hex}\n",
        encoding="utf-8",
    )
    started = time.monotonic()
    token = fill(f"sqlite:///{db}", datetime.now(UTC), random.Random(18))
    fill_s = time.monotonic() - started
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "miwei-server"), "run", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        session = _sign_in(url)
        session.headers["Authorization"] = f"Bearer {token}"  # the API pages; the console reads the cookie
        base = median(_times(session, url + "/api/v1/health", runs))
        figures, first = [], {}
        for name, path in PAGES:
            times = _times(session, url + path, runs, first)
            p95 = percentile(times, 95)
            figures.append(
                Figure(
                    name=f"fleet: {name}", value=round(median(times), 1), unit="ms median", baseline=round(base, 2),
                    baseline_unit="ms /api/v1/health", ratio=ratio(median(times), base), goal=f"p95 < {GOAL_MS:.0f} ms",
                    met=p95 < GOAL_MS, runs=runs, reproduce=reproduce("fleet", quick),
                    notes=f"p95 {p95:.1f} ms, first visit {first[url + path]:.0f} ms; {path}",
                )
            )  # fmt: skip
        figures.append(
            Figure(
                name="fleet: database fill",
                value=round(fill_s, 1),
                unit="s",
                notes=f"{AGENTS:,} agents, {EVENTS:,} events",
            )
        )
        return figures
    finally:
        server.terminate()
        server.wait(20)


def fill(url: str, now: datetime, rng: random.Random) -> str:
    """Migrate and fill: agents in every state across four groups, and events naming users; returns an API token."""
    from argon2 import PasswordHasher
    from sqlalchemy import insert

    from server.auth import API_TOKEN_PREFIX, new_token
    from server.database import make_engine, migrate, writing
    from server.schema import agent_groups, agents, api_tokens, events, users
    from server.store import token_hash

    engine = make_engine(url)
    migrate(engine)
    groups = [{"id": g, "name": n, "agent_version": v, "created_at": now, "updated_at": now}
              for g, n, v in ((2, "plant", "0.3.0"), (3, "office", ""), (4, "lab", "0.2.0"))]  # fmt: skip
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(AGENTS)]
    rows = []
    for i, agent_id in enumerate(ids):
        kind = rng.random()
        seen = now - timedelta(seconds=rng.uniform(0, 50) if kind < 0.9 else rng.uniform(4000, 30 * 86400))
        watched = [f"/home/user{i % USERS:04d}/研发/图纸", "/srv/sales/quotation", f"/media/user{i % USERS:04d}"]
        rows.append({
            "agent_id": agent_id, "hostname": f"pc-{i:05d}", "token_hash": f"{i:064x}", "enrolled_at": now - timedelta(days=90),
            "last_seen": seen, "version": "0.2.9" if i % 10 == 0 else "0.3.0", "policy_version": rng.choice(["p-a", "p-b"]),
            "spool_depth": rng.randrange(0, 5), "status": json.dumps({"watched": watched, "dead_events": 0, "indexed_files": rng.randrange(100, 50_000)}, ensure_ascii=False),
            "stopped_at": seen if 0.90 <= kind < 0.91 else None, "state": "pending" if kind > 0.99 else "retired" if kind > 0.97 else "active",
            "group_id": rng.choice([None, 2, 3, 4]), "os": rng.choice(["linux", "windows", "windows", "macos", None]),
        })  # fmt: skip
    event_rows = []
    for n in range(EVENTS):
        a = rng.randrange(AGENTS)
        ts = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
        body = {"id": str(uuid.UUID(int=rng.getrandbits(128))), "type": "file.modified",
                "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "agent_id": ids[a], "host": f"pc-{a:05d}",
                "user": f"user{(a + rng.randrange(2)) % USERS:04d}", "path": f"/home/x/研发/图纸/{n}.dwg"}  # fmt: skip
        event_rows.append({k: body.get(k) for k in ("id", "type", "ts", "agent_id", "host", "user", "path")} | {
            "received_at": ts, "body": json.dumps(body, ensure_ascii=False)})  # fmt: skip
    event_rows.sort(key=lambda r: r["ts"])
    with writing(engine) as conn:
        conn.execute(insert(agent_groups), groups)
        conn.execute(insert(agents), rows)
        for chunk in range(0, len(event_rows), 10_000):
            conn.execute(insert(events), event_rows[chunk : chunk + 10_000])
        conn.execute(
            insert(users).values(
                name="bench", role="admin", password_hash=PasswordHasher().hash(PASSWORD), created_at=now
            )
        )
        token = new_token(API_TOKEN_PREFIX)
        conn.execute(
            insert(api_tokens).values(name="bench", token_hash=token_hash(token), created_at=now, role="analyst")
        )
    engine.dispose()
    return token


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=TITLE)
    parser.add_argument("--quick", action="store_true", help="5 runs per page instead of 20")
    for figure in run(parser.parse_args().quick):
        print(
            f"{figure.name}: {figure.value} {figure.unit} (ratio {figure.ratio and round(figure.ratio, 1)}; {figure.notes})"
        )
