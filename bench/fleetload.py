"""Several ingest workers under a fleet's load (issue 21 item 1): simulated agents against a real
`miwei-server run` with `server.workers` 1, 2 and one per core, on SQLite and PostgreSQL.

Each simulated agent enrols through the API, then, on its own thread, heartbeats (with its chain's
position, so the collector judges gaps) and sends chained batches of bench/ingest.py's event mix
(80% file events in classified folders, 15% unclassified and 5% core egress.file events; its own
host and users): mostly small batches, some of a few hundred, and now and then a burst of 500 (a
copy to a stick). Every batch is built and serialised before the clock starts; an agent sends the
next one as soon as the previous one is acknowledged, so the fleet keeps the collector busy, for a
bounded time. A batch the collector refuses for the moment (503, 429) or loses on the way is sent
again, as the agent's spool does. Afterwards every acknowledged event must be stored exactly once.

`python -m bench.fleetload [--quick]` runs this section alone and prints its figures.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import requests
from sqlalchemy import create_engine, func, select

from bench.baselines import scratch_dir
from bench.ingest import _Chain, _cpu_s, _daytime_working_time, _event
from bench.measure import percentile
from bench.report import Figure, ratio, reproduce
from server.schema import chain_incidents, events
from tests.e2e.harness import free_port

TITLE = "Ingest workers under a fleet's load"
MIWEI_SERVER = str(Path(sys.executable).parent / "miwei-server")
ENROLL_SECRET = "fleet-load-enrol-secret-0123456789"
MIX_TYPES = ("file.created", "file.modified", "file.deleted", "egress.file")
SIZES = ((0.70, 1, 20), (0.25, 50, 200), (0.05, 500, 500))  # (share, least, most events): small, medium, a burst
NOTES = (
    "A real `miwei-server run` with server.workers = 1, 2 and one per core (os.sched_getaffinity; with two "
    "cores that is the 2-worker row), a fresh "
    "database each, serves simulated agents over loopback: each enrols through the API, heartbeats every "
    "few seconds and sends chained batches of the ingest section's event mix with its own host and users "
    "(70% of batches 1-20 events, 25% 50-200, 5% a burst of 500), the next as soon as the last is "
    "acknowledged, for a fixed time. Events/s is acknowledged events over the wall time; p99 is over every "
    "POST of every agent (request sent to answer read); CPU per event is the CPU time (user + system) of the "
    "supervisor and all its workers over the acknowledged events, which other load on the machine does not "
    "inflate. Lost = acknowledged events not stored, duplicated = stored rows beyond the acknowledged ids "
    "(both must be 0). The load generator runs on the same machine and takes CPU the workers could use: with "
    "two cores the N-worker figure is a floor. PostgreSQL is a throwaway cluster (tests/server/postgres.py, "
    "fsync off)."
)


# --- the collector ---------------------------------------------------------------------------


class Collector:
    """A `miwei-server run` process with `workers` workers on a fresh database, killed at close()."""

    def __init__(self, root: Path, database: str, workers: int, extra: str = "", offline_s: float = 3600.0):
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.database, self.workers = root, database, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = root / "config.yaml"
        self.config.write_text(
            "server:\n"
            f"  listen: 127.0.0.1:{self.port}\n"
            f'  database: "{database}"\n'
            f"  enroll_secret: {ENROLL_SECRET}\n"
            f"  workers: {workers}\n"
            f"  agent_offline_s: {offline_s:g}\n"
            "  agent_rate_limit: 0\n"
            "  enroll_per_address_per_min: 100000\n"
            "  enroll_total_per_min: 100000\n" + extra + _daytime_working_time(datetime.now(UTC)),
            encoding="utf-8",
        )
        self.config.chmod(0o600)
        self.log_path = root / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([MIWEI_SERVER, "run", "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"miwei-server exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if requests.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"miwei-server not healthy within {timeout_s} s:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def worker_pids(self) -> list[int]:
        """The supervisor's children (none with one worker: the process serves itself)."""
        try:
            return [p.pid for p in psutil.Process(self.proc.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def cpu_s(self) -> float:
        return _cpu_s(self.proc.pid)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, as systemd stops it; returns the exit code (negative: a signal)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


# --- the agents ------------------------------------------------------------------------------


@dataclass
class SimulatedAgent:
    """One agent: its token, its batches (serialised, chained) and what the collector acknowledged."""

    index: int
    url: str
    hostname: str = ""
    token: str = ""
    bodies: list[tuple[bytes, list[str]]] = field(default_factory=list)  # (body, event ids)
    last_seq: int = 0
    sent: int = 0  # batches acknowledged
    acknowledged: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    retries: int = 0

    def enrol(self) -> None:
        self.hostname = f"load-pc-{self.index:04d}"
        body = {"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": self.hostname, "version": "bench"}
        for _ in range(50):
            response = requests.post(self.url + "/api/v1/enroll", json=body, timeout=30)
            if response.status_code == 200:
                self.token = response.json()["token"]
                return
            time.sleep(0.2)
        raise RuntimeError(f"enrolment refused: {response.status_code} {response.text[:200]}")

    def prepare(self, events_total: int, rng: random.Random, start: datetime) -> None:
        """Chained batches holding about `events_total` events, dated from `start` on."""
        chain, made, ms = _Chain(), 0, 0
        while made < events_total:
            draw, acc = rng.random(), 0.0
            size = SIZES[-1][1]
            for share, least, most in SIZES:
                acc += share
                if draw < acc:
                    size = rng.randint(least, most)
                    break
            batch = []
            for _ in range(size):
                event = _event(rng, start + timedelta(milliseconds=ms))
                event.update(host=self.hostname, user=f"{self.hostname}-{event['user']}")
                batch.append(chain.link(event))
                ms += 1
            self.bodies.append((json.dumps({"events": batch}, ensure_ascii=False).encode(), [e["id"] for e in batch]))
            made += size
        self.last_seq = chain.seq

    def run(self, deadline: float, heartbeat_s: float, stop: threading.Event) -> None:
        """Send the batches in order until they are all acknowledged or the deadline passes."""
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        next_beat = 0.0
        seq = 0
        for body, ids in self.bodies:
            if time.monotonic() >= deadline or stop.is_set():
                break
            if time.monotonic() >= next_beat:
                self._heartbeat(session, headers, seq)
                next_beat = time.monotonic() + heartbeat_s
            while True:
                started = time.perf_counter()
                try:
                    response = session.post(self.url + "/api/v1/events", data=body, headers=headers, timeout=120)
                except requests.RequestException:  # a worker went away mid-request: the spool sends it again
                    self.retries += 1
                    session = requests.Session()
                    time.sleep(0.2)
                    continue
                if response.status_code == 200:
                    self.latencies_s.append(time.perf_counter() - started)
                    break
                if response.status_code in (429, 503):
                    self.retries += 1
                    time.sleep(min(2.0, float(response.headers.get("Retry-After", "1"))))
                    continue
                raise RuntimeError(f"{self.hostname}: the collector answered {response.status_code}: {response.text[:300]}")
            self.acknowledged += ids
            self.sent += 1
            seq += len(ids)
        self._heartbeat(session, headers, seq)  # everything up to seq delivered: gaps are judged

    def _heartbeat(self, session: requests.Session, headers: dict, seq: int) -> None:
        body = {"hostname": self.hostname, "version": "bench", "spool_depth": 0, "chain": {"seq": seq, "unsent_from": seq + 1}}
        for _ in range(20):
            try:
                if session.post(self.url + "/api/v1/heartbeat", json=body, headers=headers, timeout=60).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)


@dataclass(frozen=True)
class LoadResult:
    workers: int
    agents: int
    seconds: float
    acknowledged: int
    batches: int
    events_per_s: float
    p99_ms: float
    cpu_us_per_event: float
    lost: int
    duplicated: int
    chain_findings: int
    retries: int
    cores_used: float  # the collector's CPU seconds over the wall seconds: above 1, more than one core ingested
    client_cores: float  # the same for the load generator, on the same machine


def run_fleet(collector: Collector, agents: int, seconds: float, events_per_agent: int, heartbeat_s: float = 5.0, seed: int = 7) -> LoadResult:
    """Enrol `agents`, then let them send for at most `seconds`; checks what was stored."""
    fleet = [SimulatedAgent(i, collector.url) for i in range(agents)]
    for agent in fleet:
        agent.enrol()
    rng = random.Random(seed)
    start = datetime.now(UTC)
    for agent in fleet:
        agent.prepare(events_per_agent, rng, start)
    stop = threading.Event()
    errors: list[BaseException] = []

    def drive(agent: SimulatedAgent) -> None:
        try:
            agent.run(deadline, heartbeat_s, stop)
        except BaseException as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=drive, args=(a,), daemon=True) for a in fleet]
    client_before = _own_cpu_s()
    cpu_before, began = collector.cpu_s(), time.monotonic()
    deadline = began + seconds
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 180)
    wall_s = time.monotonic() - began
    cpu_s = collector.cpu_s() - cpu_before
    client_s = _own_cpu_s() - client_before
    if errors:
        raise errors[0]
    acknowledged = [i for a in fleet for i in a.acknowledged]
    stored, findings = stored_ids(collector.database)
    latencies = [t for a in fleet for t in a.latencies_s]
    wanted = set(acknowledged)
    return LoadResult(
        workers=collector.workers, agents=agents, seconds=wall_s, acknowledged=len(acknowledged), batches=len(latencies),
        events_per_s=len(acknowledged) / wall_s, p99_ms=percentile(latencies, 99) * 1000 if latencies else 0.0,
        cpu_us_per_event=cpu_s / max(1, len(acknowledged)) * 1e6, lost=len(wanted - set(stored)),
        duplicated=len(stored) - len(set(stored)) + len(set(stored) - wanted), chain_findings=findings,
        retries=sum(a.retries for a in fleet), cores_used=cpu_s / wall_s, client_cores=client_s / wall_s,
    )


def _own_cpu_s() -> float:
    """CPU seconds of this process (the simulated agents' threads)."""
    times = os.times()
    return times.user + times.system


def stored_ids(database: str) -> tuple[list[str], int]:
    """(ids of the stored events of the mix, one per row; chain findings)."""
    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            ids = list(conn.execute(select(events.c.id).where(events.c.type.in_(MIX_TYPES))).scalars())
            findings = conn.execute(select(func.count()).select_from(chain_incidents)).scalar_one()
    finally:
        engine.dispose()
    return ids, findings


# --- the section -----------------------------------------------------------------------------


def worker_counts() -> list[int]:
    from server.workers import worker_count

    return list(dict.fromkeys([1, 2, worker_count(0)]))


def run(quick: bool) -> list[Figure]:
    agents, seconds, per_agent = (8, 5.0, 1500) if quick else (48, 20.0, 3000)
    figures = _backend("SQLite", None, agents, seconds, per_agent)
    from tests.server import postgres

    reason = postgres.why_not()
    if reason:
        return figures + [Figure(name="workers PostgreSQL", value=None, unit="events/s", met=None, runs=0,
                                 reproduce=reproduce("workers"), notes=f"Skipped: {reason}.")]
    cluster = postgres.Cluster()
    cluster.start()
    try:
        figures += _backend("PostgreSQL", cluster, agents, seconds, per_agent)
    finally:
        cluster.stop()
    return figures


def _backend(label: str, cluster, agents: int, seconds: float, per_agent: int) -> list[Figure]:
    results: list[LoadResult] = []
    for workers in worker_counts():
        root = Path(scratch_dir(f"workers-{label.lower()}-{workers}"))
        collector = Collector(root, _database(root, cluster, workers), workers)
        try:
            collector.start()
            results.append(run_fleet(collector, agents, seconds, per_agent))
        finally:
            code = collector.stop()
            if code not in (0, -signal.SIGTERM):
                raise RuntimeError(f"the collector ended with {code}:\n{collector.log()[-2000:]}")
            shutil.rmtree(root, ignore_errors=True)
    one = results[0]
    figures = []
    load = os.getloadavg()[0]
    for r in results:
        common = dict(runs=1, reproduce=reproduce("workers"))
        what = (f"{r.agents} agents, {r.seconds:.0f} s, {r.batches} batches, {r.acknowledged} events acknowledged, {r.retries} resent; "
                f"the collector used {r.cores_used:.2f} cores (its CPU s over wall s), the load generator {r.client_cores:.2f}")
        figures += [
            Figure(name=f"workers {label} {r.workers} events/s", value=r.events_per_s, unit="events/s", baseline=one.events_per_s,
                   baseline_unit="events/s (1 worker, same run)", ratio=ratio(r.events_per_s, one.events_per_s),
                   goal="more than 1 worker" if r.workers > 1 else "", met=(r.events_per_s > one.events_per_s) if r.workers > 1 else None,
                   notes=f"{what}; load average {load:.1f} at the end of the section.", **common),
            Figure(name=f"workers {label} {r.workers} p99 batch latency", value=r.p99_ms, unit="ms", baseline=one.p99_ms,
                   baseline_unit="ms (1 worker)", ratio=ratio(r.p99_ms, one.p99_ms), **common),
            Figure(name=f"workers {label} {r.workers} CPU per event", value=r.cpu_us_per_event, unit="µs", baseline=one.cpu_us_per_event,
                   baseline_unit="µs (1 worker)", ratio=ratio(r.cpu_us_per_event, one.cpu_us_per_event), **common),
            Figure(name=f"workers {label} {r.workers} lost + duplicated", value=float(r.lost + r.duplicated), unit="events",
                   goal="0", met=r.lost + r.duplicated == 0 and r.chain_findings == 0,
                   notes=f"lost {r.lost}, duplicated {r.duplicated}, chain findings {r.chain_findings} "
                         f"(stored rows of the mix against the {r.acknowledged} acknowledged ids).", **common),
        ]
    return figures


def _database(root: Path, cluster, workers: int) -> str:
    if cluster is None:
        return f"sqlite:///{root / 'collector.db'}"
    import psycopg

    name = f"fleet_{workers}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(host=str(cluster.root), port=cluster.port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.url(name)


if __name__ == "__main__":
    for figure in run("--quick" in sys.argv):
        print(f"{figure.name}: {figure.value if figure.value is None else round(figure.value, 1)} {figure.unit}"
              + (f" (x{figure.ratio:.2f})" if figure.ratio else "") + (f" {figure.notes}" if figure.notes else ""))
