"""The console's pages with 100,000 events and 5,000 alerts in the database (issue 7 item 7).

A real `miwei-server run` process (uvicorn, one worker, SQLite in WAL mode) serves a database
filled beforehand: 100 agents, 200 users, 100,000 events over the last 30 days (70% file events in
classified folders, 20% egress.file, 5% media.mounted, 5% agent events) and 5,000 alerts linked to
their egress events, 500 of them already handled; each is an incident with the columns the alert
list shows (first file and count, level, register item, device, assignee: issue 19), and the list
is timed with each of its filters. A signed-in session GETs every page in turn,
each `runs` times after one warm-up; the figure is the median time to the last byte, with the 95th
percentile beside it; the baseline is GET /api/v1/health on the same connection (the floor of any
answer). Exports are measured too, without a goal: they are downloads, not pages.

`python -m bench.console [--quick]` runs this section alone and prints its figures.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from bench.measure import median, percentile
from bench.report import Figure, ratio, reproduce

TITLE = "Console pages"
GOAL_MS = 300.0
EVENTS, ALERTS, AGENTS, USERS = 100_000, 5_000, 100, 200
BIG_FILES = 10_000  # the files of one incident (a share copied to a stick): its page must open as fast
BIG_INCIDENT = ALERTS + 1
PASSWORD = "bench-console-password"
PAGES = [  # (name, path): every page of the console, and the heavy variants of the lists
    ("dashboard", "/console/"),
    ("alerts", "/console/alerts"),
    ("alerts filtered", "/console/alerts?status=open&severity=critical&category=classified-egress"),
    ("alerts sorted, page 50", "/console/alerts?sort=severity&order=asc&page=50"),
    ("alerts, all statuses", "/console/alerts?status=all"),
    ("alerts by user", "/console/alerts?status=all&user=user042"),
    ("alerts assigned to me", "/console/alerts?assignee=me"),
    ("alerts by level and register item", "/console/alerts?level=core&register_item=Product+drawings+3"),
    ("alerts by device and host", "/console/alerts?status=all&device=STICK7&host=pc-0007"),
    ("alerts in a week", "/console/alerts?status=all&since={week_ago}&until={today}"),
    ("alerts all statuses, page 90", "/console/alerts?status=all&page=90"),
    ("alert", "/console/alerts/{alert}"),
    ("incident of 10,000 files", "/console/alerts/{incident}"),  # files paged 100 a page (issue 19)
    ("incident of 10,000 files, page 100", "/console/alerts/{incident}?page=100"),
    ("events", "/console/events"),
    ("events path search", "/console/events?path=quotation"),
    ("events by user", "/console/events?user=user042"),
    ("events rare type", "/console/events?type=agent.tamper"),
    ("user page", "/console/people/user?name=user042"),
    ("host page", "/console/people/host?name=pc-0042"),
    ("device page", "/console/devices/1"),
    ("agents", "/console/agents"),
    ("secret register", "/console/register"),
    ("devices", "/console/devices"),
    ("rules", "/console/rules"),
    ("users", "/console/users"),
    ("tokens", "/console/tokens"),
    ("channels", "/console/channels"),
    ("audit log", "/console/audit"),
]
EXPORTS = [
    ("alerts.xlsx (5,000 rows)", "/console/export/alerts.xlsx"),
    ("events.csv (100,000 rows)", "/console/export/events.csv"),
    ("evidence pack", "/console/alerts/{alert}/evidence.zip"),
]
NOTES = (
    "One uvicorn worker serving a database filled beforehand; times are to the last byte over loopback with "
    "requests, one warm-up each. The baseline is GET /api/v1/health on the same keep-alive connection."
)


def run(quick: bool) -> list[Figure]:
    runs = 5 if quick else 20
    root = Path(_scratch())
    try:
        return _measure(root, runs, quick)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _scratch() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="miwei-bench-console-")


def _measure(root: Path, runs: int, quick: bool) -> list[Figure]:
    db = root / "miwei.db"
    config = root / "config.yaml"
    port = _free_port()
    config.write_text(
        f"server:\n  listen: 127.0.0.1:{port}\n  database: sqlite:///{db}\n  enroll_secret: {uuid.uuid4().hex}\n", encoding="utf-8"
    )
    started = time.monotonic()
    alert_id = fill(f"sqlite:///{db}", datetime.now(UTC), random.Random(7))
    fill_s = time.monotonic() - started
    bin_dir = Path(sys.executable).parent
    server = subprocess.Popen([str(bin_dir / "miwei-server"), "run", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        session = _sign_in(url)
        health = _times(session, url + "/api/v1/health", runs)
        base = median(health)
        figures = []
        first: dict[str, float] = {}
        for name, path in PAGES:
            path = path.format(alert=alert_id, incident=BIG_INCIDENT, **_days())
            times = _times(session, url + path, runs, first)
            p95 = percentile(times, 95)
            figures.append(
                Figure(
                    name=f"page: {name}", value=round(median(times), 1), unit="ms median", baseline=round(base, 2),
                    baseline_unit="ms /api/v1/health", ratio=ratio(median(times), base), goal=f"p95 < {GOAL_MS:.0f} ms",
                    met=p95 < GOAL_MS, runs=runs, reproduce=reproduce("console", quick),
                    notes=f"p95 {p95:.1f} ms, first visit {first[url + path]:.0f} ms; {path}",
                )
            )
        for name, path in EXPORTS:
            times = _times(session, url + path.format(alert=alert_id), max(3, runs // 5))
            figures.append(
                Figure(
                    name=f"export: {name}", value=round(median(times), 1), unit="ms median", baseline=round(base, 2),
                    baseline_unit="ms /api/v1/health", ratio=ratio(median(times), base), runs=max(3, runs // 5),
                    reproduce=reproduce("console", quick), notes="a download, no goal",
                )
            )
        figures.append(Figure(name="database fill", value=round(fill_s, 1), unit="s", runs=1, notes=f"{EVENTS:,} events, {ALERTS:,} alerts; {NOTES}"))
        return figures
    finally:
        server.terminate()
        server.wait(20)


def _days() -> dict[str, str]:
    """A week's range for the time filter, typed as a person would (the firm's days)."""
    today = datetime.now(UTC).date()
    return {"week_ago": (today - timedelta(days=7)).isoformat(), "today": today.isoformat()}


def _times(session: requests.Session, url: str, runs: int, first: dict | None = None) -> list[float]:
    start = time.perf_counter()
    answer = session.get(url, timeout=120)  # warm-up: caches, the policy, SQLite's pages, the register's fold
    if first is not None:
        first[url] = (time.perf_counter() - start) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"GET {url} answered {answer.status_code}: {answer.text[:300]}")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        answer = session.get(url, timeout=120)
        _ = answer.content
        times.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {url} answered {answer.status_code}")
    return times


def _sign_in(url: str) -> requests.Session:
    session = requests.Session()
    session.cookies.set("mw_lang", "zh")
    page = session.get(url + "/console/login", timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = session.post(url + "/console/login", data={"csrf": token, "name": "bench", "password": PASSWORD}, timeout=30, allow_redirects=False)
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")
    return session


def _wait_healthy(url: str, server: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"miwei-server exited with {server.returncode}")
        try:
            if requests.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError("miwei-server did not become healthy")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the database -----------------------------------------------------------------------------------


def fill(url: str, now: datetime, rng: random.Random) -> int:
    """Migrate and fill the database; returns the id of an alert whose user is busy (for the alert page)."""
    from argon2 import PasswordHasher
    from sqlalchemy import insert

    from server.database import make_engine, migrate, writing
    from server.schema import agents, alert_events, alert_history, alerts, devices, events, users

    engine = make_engine(url)
    migrate(engine)
    agent_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(AGENTS)]
    hosts = [f"pc-{i:04d}" for i in range(AGENTS)]
    people = [f"user{i:03d}" for i in range(USERS)]
    start = now - timedelta(days=30)
    event_rows, egress = [], []
    for i in range(EVENTS):
        a = rng.randrange(AGENTS)
        user = people[(a * 2 + rng.randrange(2)) % USERS]
        ts = start + timedelta(seconds=rng.uniform(0, 30 * 86400))
        kind = rng.random()
        level = rng.choice(["core", "important", "general", "internal", None])
        folder = rng.choice(["/srv/rnd/drawings", "/srv/sales/quotation", "/srv/process/formulas"])
        name = f"{rng.choice(['pump', 'housing', 'quotation', 'formula', 'report'])}-{i}.{rng.choice(['dwg', 'docx', 'xlsx', 'pdf'])}"
        if kind < 0.70:
            type_, path = rng.choice(["file.created", "file.modified", "file.opened", "file.deleted", "file.moved"]), f"{folder}/{name}"
        elif kind < 0.90:
            type_, path = "egress.file", f"/media/{user}/KINGSTON/{name}"
        elif kind < 0.95:
            type_, path, level = "media.mounted", None, None
        else:
            type_, path, level = rng.choice(["agent.started", "agent.stopped", "agent.tamper", "agent.error"]), None, None
        event = {"id": str(uuid.UUID(int=rng.getrandbits(128))), "type": type_, "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                 "agent_id": agent_ids[a], "host": hosts[a], "user": user, "path": path, "size": rng.randrange(1, 10_000_000) if path else None,
                 "sha256": f"{rng.getrandbits(256):064x}" if path else None, "level": level,
                 "source_path": f"{folder}/{name}" if type_ == "egress.file" and level else None, "severity": None}  # fmt: skip
        event_rows.append({**event, "received_at": ts, "body": json.dumps(event, ensure_ascii=False)})
        if type_ == "egress.file":
            egress.append(event)
    alert_rows, links, history = [], [], []
    categories = ["classified-egress", "marked-egress", "personal-data-egress", "bulk-egress", "unknown-device", "agent-offline", "mass-deletion"]
    for i in range(1, ALERTS + 1):
        e = egress[(i * 7) % len(egress)]
        created = datetime.fromisoformat(e["ts"].replace("Z", "+00:00"))
        status = "open" if i % 10 else rng.choice(["acknowledged", "resolved", "false_positive"])
        alert_rows.append({"id": i, "rule_id": "MW-EGRESS-CLASSIFIED", "category": rng.choice(categories),
                           "severity": rng.choice(["critical", "high", "medium", "low", "info"]), "title": "Classified content written to an egress place",
                           "status": status, "created_at": created, "updated_at": created, "agent_id": e["agent_id"], "host": e["host"],
                           "user": e["user"], "count": 1, "explanation": f"{e['path']} is a copy of classified file {e['source_path']}",
                           # an incident of 1-40 files (issue 19): what the list shows of it
                           "kind": "incident", "first_file": e["path"].rsplit("/", 1)[-1], "file_count": rng.randrange(1, 41),
                           "total_bytes": rng.randrange(1, 10**9), "top_level": rng.choice(["core", "important", "general", "internal"]),
                           "register_item": f"Product drawings {rng.randrange(20)}", "device_label": f"STICK{rng.randrange(200)}",
                           "device_vendor": "Kingston", "place_kind": "removable", "destination": "KINGSTON",
                           "assignee": rng.choice([None, None, "bench", "analyst1", "analyst2"])})  # fmt: skip
        links.append({"alert_id": i, "event_id": e["id"]})
        if status != "open":
            history.append({"alert_id": i, "at": created, "actor": "console:bench", "status": status, "comment": "reviewed"})
    agent_rows = [{"agent_id": agent_ids[i], "hostname": hosts[i], "token_hash": f"{i:064x}", "enrolled_at": start, "last_seen": now - timedelta(seconds=rng.choice([5, 5, 5, 4000])),
                   "version": "0.1.0", "policy_version": "x", "spool_depth": 0, "status": json.dumps({"watched": ["/srv/rnd/drawings", "/srv/sales/quotation"]})}
                  for i in range(AGENTS)]  # fmt: skip
    device_rows = [{"key_hash": f"{i:064x}", "identity": f"0951:1666:serial{i}", "vendor_id": "0951", "product_id": "1666", "serial": f"serial{i}", "vendor": "Kingston",
                    "model": "DataTraveler", "bus": "usb", "fstype": "vfat", "label": f"STICK{i}", "first_seen": start.isoformat(), "last_seen": now.isoformat(),
                    "last_agent_id": agent_ids[i % AGENTS], "last_host": hosts[i % AGENTS], "last_user": people[i % USERS], "times_seen": rng.randrange(1, 500)}
                   for i in range(200)]  # fmt: skip
    with writing(engine) as conn:
        conn.execute(insert(agents), agent_rows)
        for chunk in range(0, len(event_rows), 10_000):
            conn.execute(insert(events), event_rows[chunk : chunk + 10_000])
        conn.execute(insert(alerts), alert_rows)
        conn.execute(insert(alert_events), links)
        conn.execute(insert(alert_history), history)
        conn.execute(insert(devices), device_rows)
        conn.execute(insert(users).values(name="bench", role="admin", password_hash=PasswordHasher().hash(PASSWORD), created_at=now))
        big_incident(conn, BIG_INCIDENT, egress[0], BIG_FILES, rng)
    engine.dispose()
    busiest = max(range(1, ALERTS + 1), key=lambda i: (alert_rows[i - 1]["user"] == "user042", i))
    return busiest


def big_incident(conn, alert_id: int, event: dict, files: int, rng: random.Random) -> None:
    """One incident of `files` files (a whole share copied to a stick in one session), with its
    history as a slow copy writes it: one 'repeated' row per file."""
    from sqlalchemy import insert

    from server.schema import alert_history, alerts, incident_files

    first = datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))
    rows = [
        {"alert_id": alert_id, "seq": n, "event_id": str(uuid.UUID(int=rng.getrandbits(128))), "at": first + timedelta(seconds=n),
         "path": f"/media/{event['user']}/KINGSTON/share/图纸-{n:05d}.dwg", "name": f"图纸-{n:05d}.dwg", "size": rng.randrange(1, 10**7),
         "sha256": f"{rng.getrandbits(256):064x}", "level": rng.choice(["core", "important", "general"]), "register_item": f"Product drawings {n % 20}",
         "source": f"/srv/rnd/drawings/share/图纸-{n:05d}.dwg", "match": json.dumps({"method": "exact", "similarity": 1.0}),
         "facets": json.dumps([{"category": "classified-egress", "rule_id": "MW-EGRESS-CLASSIFIED", "severity": "critical"}])}
        for n in range(1, files + 1)
    ]  # fmt: skip
    last = first + timedelta(seconds=files)
    conn.execute(insert(alerts).values(
        id=alert_id, rule_id="MW-EGRESS-CLASSIFIED", category="classified-egress", severity="critical", title="Classified content written to an egress place",
        status="open", created_at=first, updated_at=last, agent_id=event["agent_id"], host=event["host"], user=event["user"], count=files,
        explanation="a share copied to a stick", kind="incident", first_file=rows[0]["name"], file_count=files, total_bytes=sum(r["size"] for r in rows),
        top_level="core", register_item="Product drawings 0", device_label="KINGSTON", device_vendor="Kingston", place_kind="removable",
        destination="Kingston DataTraveler 3.0 (serial 60A44C3FAE22F0B1)", facets='["classified-egress"]',
        first_ts=first.isoformat(timespec="milliseconds").replace("+00:00", "Z"), last_ts=last.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    ))  # fmt: skip
    for chunk in range(0, files, 5_000):
        conn.execute(insert(incident_files), rows[chunk : chunk + 5_000])
    history = [{"alert_id": alert_id, "at": first, "actor": "system", "action": "created", "status": "open", "comment": ""}]
    history += [{"alert_id": alert_id, "at": r["at"], "actor": "system", "action": "repeated", "status": "open", "comment": "1 more file"} for r in rows[1:]]
    conn.execute(insert(alert_history), history)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.console", description=TITLE)
    parser.add_argument("--quick", action="store_true", help="5 runs per page instead of 20")
    args = parser.parse_args()
    for figure in run(args.quick):
        base = f"(baseline {figure.baseline} {figure.baseline_unit})" if figure.baseline is not None else ""
        print(f"{figure.name:32s} {figure.value!s:>8} {figure.unit:10s} {'met' if figure.met else '' if figure.met is None else 'MISSED'} {base} {figure.notes}")
