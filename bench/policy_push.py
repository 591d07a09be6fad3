"""Policy push to 1,000 agents (issue 18): how long until every agent runs a changed register item.

A real `miwei-server run` process (uvicorn, one worker, SQLite in WAL mode, enrolment limits raised
in its config so 1,000 agents can enrol through the ordinary POST /api/v1/enroll in one go) and a
separate driver process (`python -m bench.policy_push --drive`, asyncio + httpx keeping connections
alive) that does what agents and an admin do over HTTP:

1. two register items are created, and two groups carry them ({A, B} and {A, C});
2. the agents enrol, half are moved into each group (POST /api/v1/groups/move), and each runs the
   agent's loop (agent/reporter.py): a heartbeat every interval (a random phase each), and when the
   answer announces a policy version other than its own, GET /api/v1/policy with If-None-Match;
   after a new policy, one heartbeat at once (so the first heartbeat fetches the group's policy);
3. once every agent holds its group's version and heartbeats steadily, one heartbeat interval is
   the baseline window: the collector's CPU seconds per second, its RSS, the heartbeat round trip;
4. then item A's location is changed (PATCH /api/v1/register/A, which both groups carry), and the
   window lasts until every agent has fetched a policy whose ETag is the newly announced version
   (and whose body holds the new pattern).

The collector's CPU (user + system, psutil on its pid) and RSS are read by this process, not the
driver's, so only the collector is measured. The goal is the issue's "a change in the console
reaches a running agent within one heartbeat".

`python -m bench.policy_push [--quick]` runs this section alone and prints its figures.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.console import _free_port, _wait_healthy
from bench.measure import median, percentile
from bench.report import Figure, ratio, reproduce

TITLE = "Policy push (1,000 agents)"
AGENTS, HEARTBEAT_S = 1_000, 30.0  # the agent's default heartbeat (config.example.yaml agent.heartbeat_s)
QUICK_AGENTS, QUICK_HEARTBEAT_S = 50, 3.0
CONNECTIONS = 100  # the driver's keep-alive pool: real agents each hold one; uvicorn serves them alike
# A request the collector leaves unanswered this long fails the driver, naming it; the whole run is
# stopped before pytest's own timeout (300 s) so a stall reports the driver's and collector's logs.
REQUEST_TIMEOUT_S = 30.0
QUICK_RUN_LIMIT_S, RUN_LIMIT_S = 240.0, 1800.0
# Once the driver said push-done it has nothing left to tell: it is given this long to exit, then
# killed, and the figures stand (a driver that hung on its way out failed the test once, in CI)
DRIVER_EXIT_S = 20.0
DRIVER = [sys.executable, "-m", "bench.policy_push", "--drive"]  # + its JSON arguments
OLD_PATTERN, NEW_PATTERN = "/home/*/研发/图纸", "/home/*/研发/图纸-2026"
NOTES = (
    "One uvicorn worker on SQLite; agents enrolled through POST /api/v1/enroll (the bench's config raises "
    "server.enroll_per_address_per_min and enroll_total_per_min to 100,000) and moved into two groups through the groups "
    "API. The agents are one driver process (asyncio + httpx, 100 keep-alive connections) doing the agent's heartbeat "
    "loop; the collector's CPU and RSS are psutil readings of its own process. The baseline window is one heartbeat "
    "interval of the same agents heartbeating with nothing changed, just before the push."
)


def run(quick: bool) -> list[Figure]:
    root = Path(tempfile.mkdtemp(prefix="miwei-bench-policy-"))
    try:
        return _measure(root, QUICK_AGENTS if quick else AGENTS, QUICK_HEARTBEAT_S if quick else HEARTBEAT_S, quick)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the measuring process: the collector, its CPU and RSS --------------------------------------------


class _Collector:
    """CPU seconds (user + system, with any children) and RSS of the collector's process tree."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self._peak_rss = 0
        self._sampling = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _tree(self) -> list:
        return [self.process, *self.process.children(recursive=True)]

    def cpu_s(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self._tree())

    def rss(self) -> int:
        return sum(p.memory_info().rss for p in self._tree())

    def window(self) -> None:
        """Start a new peak-RSS window."""
        self._peak_rss = self.rss()
        self._sampling.set()

    def peak_rss(self) -> int:
        return max(self._peak_rss, self.rss())

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            if self._sampling.is_set():
                try:
                    self._peak_rss = max(self._peak_rss, self.rss())
                except Exception:  # noqa: BLE001 - the process ended; the last peak stands
                    return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


def _measure(root: Path, n_agents: int, heartbeat_s: float, quick: bool) -> list[Figure]:
    db, config, port, secret = root / "miwei.db", root / "config.yaml", _free_port(), uuid.uuid4().hex
    config.write_text(
        f"server:\n  workers: 1\n  listen: 127.0.0.1:{port}\n  database: sqlite:///{db}\n  enroll_secret: {secret}\n"
        "  enroll_per_address_per_min: 100000\n  enroll_total_per_min: 100000\n",
        encoding="utf-8",
    )
    token = _admin_token(f"sqlite:///{db}")
    server_log = tempfile.TemporaryFile("w+", encoding="utf-8")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "miwei-server"), "run", "-c", str(config)],
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    driver = None
    stopper = None
    try:
        _wait_healthy(url, server)
        collector = _Collector(server.pid)
        args = json.dumps(
            {"url": url, "token": token, "secret": secret, "agents": n_agents, "heartbeat_s": heartbeat_s}
        )
        driver_log = tempfile.TemporaryFile("w+", encoding="utf-8")
        driver = subprocess.Popen(
            [*DRIVER, args],
            stdout=subprocess.PIPE,
            stderr=driver_log,  # a file: a pipe nobody reads while stdout is followed fills and stops the driver
            text=True,
        )
        stopper = threading.Timer(QUICK_RUN_LIMIT_S if quick else RUN_LIMIT_S, driver.kill)
        stopper.start()
        marks: dict[str, tuple[float, float, dict]] = {}  # phase -> (monotonic, collector CPU s, driver's data)
        peaks: dict[str, int] = {}
        for line in driver.stdout:
            phase, _, data = line.strip().partition(" ")
            marks[phase] = (time.monotonic(), collector.cpu_s(), json.loads(data or "{}"))
            if phase in ("baseline-start", "push-start"):
                collector.window()
            elif phase in ("baseline-end", "push-done"):
                peaks[phase] = collector.peak_rss()
            if phase == "push-done":
                break
        collector.close()
        if "push-done" in marks:
            try:
                driver.wait(DRIVER_EXIT_S)
            except subprocess.TimeoutExpired:
                driver.kill()  # what it measured is all in push-done
                driver.wait(10)
                return _figures(marks, peaks, n_agents, heartbeat_s, quick)
        if driver.wait(60) != 0 or "push-done" not in marks:
            driver_log.seek(0)
            server_log.seek(0)
            raise RuntimeError(
                f"the driver failed (exit {driver.returncode}; a run is stopped, -9, after {stopper.interval:g} s) after phases "
                f"{list(marks)}: {driver_log.read()[-2000:]}\n--- the collector's log:\n{server_log.read()[-2000:]}"
            )
        return _figures(marks, peaks, n_agents, heartbeat_s, quick)
    finally:
        if stopper is not None:
            stopper.cancel()
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait(10)
        server.terminate()
        server.wait(20)
        server_log.close()


def _figures(marks: dict, peaks: dict, n: int, heartbeat_s: float, quick: bool) -> list[Figure]:
    b0, b1, p0, p1 = (marks[k] for k in ("baseline-start", "baseline-end", "push-start", "push-done"))
    base_s, base_cpu = b1[0] - b0[0], b1[1] - b0[1]
    push_s, push_cpu = p1[0] - p0[0], p1[1] - p0[1]
    steady_cpu = base_cpu / base_s * push_s  # what the same seconds cost with nothing changed
    done, beats = p1[2], b1[2]
    fetch_ms, reached_s, hb_ms = done["fetch_ms"], done["reached_s"], beats["heartbeat_ms"]
    all_s = max(reached_s)
    goal_s = heartbeat_s + 1.0
    again = reproduce("policy", quick)
    return [
        Figure(
            name=f"policy push: until all {n:,} agents fetched", value=round(all_s, 2), unit="s", baseline=heartbeat_s,
            baseline_unit="s heartbeat interval", ratio=ratio(all_s, heartbeat_s),
            goal=f"<= one heartbeat + 1 s ({goal_s:g} s)", met=all_s <= goal_s, reproduce=again,
            notes=f"per agent p50 {median(reached_s):.2f} s, p95 {percentile(reached_s, 95):.2f} s; "
            f"{done['heartbeats']:,} heartbeats and {len(fetch_ms):,} policy fetches (200) in the window; "
            f"PATCH /api/v1/register answered in {done['patch_ms']:.0f} ms; "
            f"{done['stale']} heartbeats sent after its answer still announced the old version",
        ),
        Figure(
            name="policy push: collector CPU", value=round(push_cpu, 2), unit="CPU s in the push",
            baseline=round(steady_cpu, 2), baseline_unit="CPU s for as long with nothing changed",
            ratio=ratio(push_cpu, steady_cpu), reproduce=again,
            notes=f"{push_cpu / push_s * 100:.1f}% of one core over {push_s:.1f} s, steady {base_cpu / base_s * 100:.1f}% "
            f"({beats['heartbeats']:,} heartbeats in {base_s:.1f} s, {base_cpu / max(beats['heartbeats'], 1) * 1000:.1f} ms CPU "
            f"each); {(push_cpu - steady_cpu) / n * 1000:.1f} ms CPU per agent above steady (its fetch and the heartbeat "
            "it sends at once after)",
        ),
        Figure(
            name="policy push: policy fetch", value=round(median(fetch_ms), 2), unit="ms p50",
            baseline=round(median(hb_ms), 2), baseline_unit="ms heartbeat p50, steady",
            ratio=ratio(median(fetch_ms), median(hb_ms)), runs=len(fetch_ms), reproduce=again,
            notes=f"fetch p95 {percentile(fetch_ms, 95):.2f} ms, heartbeat p95 {percentile(hb_ms, 95):.2f} ms; "
            f"{done['payload_bytes']:,} bytes per policy",
        ),
        Figure(
            name="policy push: collector peak RSS", value=round(peaks["push-done"] / 2**20, 1), unit="MB",
            baseline=round(peaks["baseline-end"] / 2**20, 1), baseline_unit="MB peak, steady",
            ratio=ratio(peaks["push-done"], peaks["baseline-end"]), reproduce=again,
            notes="sampled every 50 ms",
        ),
        Figure(
            name=f"policy push: enrolment of {n:,} agents", value=round(marks["enrolled"][2]["seconds"], 1), unit="s",
            reproduce=again,
            notes="POST /api/v1/enroll, 16 at a time, then two POST /api/v1/groups/move",
        ),
    ]  # fmt: skip


def _admin_token(url: str) -> str:
    from sqlalchemy import insert

    from server.auth import API_TOKEN_PREFIX, new_token
    from server.database import make_engine, migrate, writing
    from server.schema import api_tokens
    from server.store import token_hash

    engine = make_engine(url)
    migrate(engine)
    token = new_token(API_TOKEN_PREFIX)
    with writing(engine) as conn:
        conn.execute(
            insert(api_tokens).values(
                name="bench", token_hash=token_hash(token), created_at=datetime.now(UTC), role="admin"
            )
        )
    engine.dispose()
    return token


# --- the driver process: the admin and the agents -------------------------------------------------


@dataclass
class _Agent:
    agent_id: str
    hostname: str
    token: str
    version: str = ""
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Push:
    """What the agents saw since the PATCH; `announced` is each group's new version."""

    started: float = 0.0
    old: dict = field(default_factory=dict)  # agent_id -> version before the push
    reached_s: dict = field(default_factory=dict)  # agent_id -> seconds from the PATCH to its fetch
    fetch_ms: list = field(default_factory=list)
    heartbeats: int = 0
    patched: float = 0.0  # when the PATCH was answered: a heartbeat sent after it must announce the new version
    stale: int = 0  # heartbeats sent after the PATCH's answer that still announced the old version
    payload_bytes: int = 0
    wrong: list = field(default_factory=list)


def _say(phase: str, data: dict | None = None) -> None:
    print(phase, json.dumps(data or {}), flush=True)


async def _drive(url: str, token: str, secret: str, n: int, heartbeat_s: float) -> None:
    import httpx

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_S) as http:
        admin = {"Authorization": f"Bearer {token}"}

        async def call(method: str, path: str, body: dict) -> dict:
            r = await http.request(method, path, json=body, headers=admin)
            if r.status_code >= 300:
                raise RuntimeError(f"{method} {path} answered {r.status_code}: {r.text[:300]}")
            return r.json()

        item = {"level": "core", "category": "技术信息", "period": "长期", "reason": "bench"}
        a = await call(
            "POST",
            "/api/v1/register",
            item | {"name": "泵叶轮图纸", "locations": [{"os": "linux", "pattern": OLD_PATTERN}]},
        )
        b = await call(
            "POST",
            "/api/v1/register",
            item | {"name": "报价单", "locations": [{"os": "linux", "pattern": "/srv/sales/报价"}]},
        )
        c = await call(
            "POST",
            "/api/v1/register",
            item | {"name": "配方", "locations": [{"os": "linux", "pattern": "/srv/lab/配方"}]},
        )
        groups = [
            await call("POST", "/api/v1/groups", {"name": "plant", "register_items": [a["id"], b["id"]]}),
            await call("POST", "/api/v1/groups", {"name": "office", "register_items": [a["id"], c["id"]]}),
        ]

        started = time.monotonic()
        gate = asyncio.Semaphore(16)

        async def enrol(i: int) -> _Agent:
            async with gate:
                host = f"pc-{i:05d}"
                body = {
                    "enroll_secret": secret,
                    "agent_id": str(uuid.uuid4()),
                    "hostname": host,
                    "version": "0.3.0",
                    "os": "linux",
                }
                r = await http.post("/api/v1/enroll", json=body)
                if r.status_code != 200 or r.json().get("state") != "active":
                    raise RuntimeError(f"enrolment answered {r.status_code}: {r.text[:300]}")
                return _Agent(r.json()["agent_id"], host, r.json()["token"])

        agents = await asyncio.gather(*(enrol(i) for i in range(n)))
        for g, group in enumerate(groups):
            await call(
                "POST", "/api/v1/groups/move", {"agents": [x.agent_id for x in agents[g::2]], "group_id": group["id"]}
            )
        _say("enrolled", {"seconds": time.monotonic() - started})

        push: _Push | None = None
        steady: dict = {"on": False, "heartbeats": 0, "ms": []}
        # set when the push is measured: each agent's loop ends at its next turn even if it missed
        # its cancellation (asyncio.wait_for in Python 3.11 can swallow one)
        finished = {"on": False}
        settled: set[str] = set()

        async def fetch(agent: _Agent, announced: str) -> None:
            headers = {"Authorization": f"Bearer {agent.token}", "If-None-Match": f'"{agent.version}"'}
            t = time.perf_counter()
            r = await http.get("/api/v1/policy", headers=headers)
            body = r.content
            ms = (time.perf_counter() - t) * 1000
            if r.status_code == 304:
                return
            if r.status_code != 200:
                raise RuntimeError(f"GET /api/v1/policy answered {r.status_code}: {r.text[:300]}")
            agent.version = r.headers["etag"].strip('"')
            if push is not None and agent.agent_id in push.old and agent.version != push.old[agent.agent_id]:
                push.fetch_ms.append(ms)
                push.payload_bytes = len(body)
                if NEW_PATTERN not in r.text or agent.version != announced:
                    push.wrong.append(agent.agent_id)
                push.reached_s.setdefault(agent.agent_id, time.monotonic() - push.started)
            agent.wake.set()  # the agent heartbeats at once with its new version

        async def live(agent: _Agent, rng: random.Random) -> None:
            await asyncio.sleep(rng.uniform(0, heartbeat_s))  # agents start at different times
            body = {"hostname": agent.hostname, "version": "0.3.0", "os": "linux", "watched": [OLD_PATTERN]}
            headers = {"Authorization": f"Bearer {agent.token}"}
            while not finished["on"]:
                agent.wake.clear()
                t = time.perf_counter()
                r = await http.post("/api/v1/heartbeat", json=body | {"policy_version": agent.version}, headers=headers)
                ms = (time.perf_counter() - t) * 1000
                if r.status_code != 200:
                    raise RuntimeError(f"POST /api/v1/heartbeat answered {r.status_code}: {r.text[:300]}")
                if steady["on"]:
                    steady["heartbeats"] += 1
                    steady["ms"].append(ms)
                announced = r.json()["policy_version"]
                if push is not None:
                    push.heartbeats += 1
                    sent = time.monotonic() - ms / 1000
                    if push.patched and sent > push.patched and announced == push.old[agent.agent_id]:
                        push.stale += 1
                if announced != agent.version:
                    await fetch(agent, announced)
                else:
                    settled.add(agent.agent_id)
                try:
                    await asyncio.wait_for(agent.wake.wait(), heartbeat_s)
                except TimeoutError:
                    pass

        rng = random.Random(18)
        tasks = [asyncio.create_task(live(x, random.Random(rng.random()))) for x in agents]
        deadline = time.monotonic() + 3 * heartbeat_s + 60
        while len(settled) < n:
            _check(tasks, deadline, "agents to settle")
            await asyncio.sleep(0.2)
        await asyncio.sleep(heartbeat_s)  # one whole interval of steady heartbeats before measuring
        _check(tasks, deadline + heartbeat_s, "the steady state")
        _say("baseline-start")
        steady["on"] = True
        await asyncio.sleep(heartbeat_s)
        steady["on"] = False
        _say("baseline-end", {"heartbeats": steady["heartbeats"], "heartbeat_ms": steady["ms"]})

        push = _Push(old={x.agent_id: x.version for x in agents})
        _say("push-start")
        push.started = time.monotonic()
        t = time.perf_counter()
        await call(
            "PATCH",
            f"/api/v1/register/{a['id']}",
            {"locations": [{"os": "linux", "pattern": NEW_PATTERN}], "reason": "bench: moved"},
        )
        patch_ms = (time.perf_counter() - t) * 1000
        push.patched = time.monotonic()
        deadline = time.monotonic() + 3 * heartbeat_s + 60
        while len(push.reached_s) < n:
            _check(tasks, deadline, "every agent to fetch the new policy")
            await asyncio.sleep(0.02)
        if push.wrong:
            raise RuntimeError(
                f"{len(push.wrong)} agents fetched a policy without the new location or not the announced version"
            )
        _say("push-done", {"reached_s": list(push.reached_s.values()), "fetch_ms": push.fetch_ms, "heartbeats": push.heartbeats,
                           "payload_bytes": push.payload_bytes, "patch_ms": patch_ms, "stale": push.stale})  # fmt: skip
        finished["on"] = True
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=heartbeat_s + REQUEST_TIMEOUT_S)


def _check(tasks: list[asyncio.Task], deadline: float, waiting_for: str) -> None:
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()
    if time.monotonic() > deadline:
        raise RuntimeError(f"timed out waiting for {waiting_for}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.policy_push", description=TITLE)
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_AGENTS} agents, {QUICK_HEARTBEAT_S:g} s heartbeats"
    )
    parser.add_argument("--drive", metavar="JSON", help=argparse.SUPPRESS)  # the driver process run() starts
    options = parser.parse_args()
    if options.drive:
        o = json.loads(options.drive)
        asyncio.run(_drive(o["url"], o["token"], o["secret"], o["agents"], o["heartbeat_s"]))
    else:
        for figure in run(options.quick):
            print(
                f"{figure.name}: {figure.value} {figure.unit} (ratio {figure.ratio and round(figure.ratio, 2)}; {figure.notes})"
            )
