"""`miwei-server run` with `server.workers: 2` (server/workers.py), as real processes on loopback:
both workers serve, simulated agents posting chained batches from threads get every event stored
once with the alerts one process raises, the background tasks run once, a killed worker is
replaced without losing anything, and SIGTERM stops them all. SQLite always, PostgreSQL when
installed (tests/server/postgres.py)."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests
from sqlalchemy import create_engine, func, select

from bench.fleetload import ENROLL_SECRET, MIWEI_SERVER, Collector, run_fleet
from server.notify.tables import notifications
from server.schema import alerts
from server.workers import share_of, worker_count
from tests.server import postgres
from tests.server.notify_rig import http_receiver
from tests.server.postgres import cluster  # noqa: F401 - one cluster per module when PostgreSQL is asked for

pytestmark = pytest.mark.slow
BACKENDS = ["sqlite", pytest.param("postgresql", marks=postgres.MARKS)]


@pytest.fixture
def database(request, tmp_path):
    """A fresh database URL per collector: `database()` may be called more than once in a test."""
    made = []

    def fresh() -> str:
        if request.param == "sqlite":
            path = tmp_path / f"db{len(made)}" / "miwei.db"
            path.parent.mkdir(mode=0o700)
            made.append(None)
            return f"sqlite:///{path}"
        context = postgres.fresh_database(request.getfixturevalue("cluster"))
        made.append(context)
        return context.__enter__()

    yield fresh
    for context in made:
        if context is not None:
            context.__exit__(None, None, None)


@pytest.fixture
def collectors():
    started: list[Collector] = []
    yield started
    for collector in started:
        collector.stop()
        output = collector.log()
        assert "Traceback" not in output, output[-4000:]


def _start(collectors, root: Path, url: str, workers: int, **kwargs) -> Collector:
    collector = Collector(root, url, workers, **kwargs)
    collectors.append(collector)
    collector.start()
    return collector


def _served_by(collector: Collector, stop: threading.Event) -> set[int]:
    """Worker pids seen holding an established connection of the collector's port."""
    seen: set[int] = set()
    while not stop.is_set():
        for pid in collector.worker_pids():
            try:
                connections = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            if any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == collector.port for c in connections):
                seen.add(pid)
        time.sleep(0.05)
    return seen


def _alert_summary(url: str) -> dict[str, tuple[int, int]]:
    """rule -> (alerts, files in them): what the rules made of the events, whoever stored them."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(alerts.c.rule_id, func.count(), func.sum(alerts.c.file_count)).group_by(alerts.c.rule_id)).all()
    finally:
        engine.dispose()
    return {rule: (count, int(files or 0)) for rule, count, files in rows}


@pytest.mark.parametrize("database", BACKENDS, indirect=True)
def test_two_workers_store_every_event_once_with_the_alerts_of_one(tmp_path, database, collectors):
    one = _start(collectors, tmp_path / "one", database(), 1)
    assert one.worker_pids() == []  # workers: 1 is a single process, as before
    alone = run_fleet(one, agents=12, seconds=120, events_per_agent=300)
    two = _start(collectors, tmp_path / "two", database(), 2)
    pids = two.worker_pids()
    assert len(pids) == 2 and all(psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    stop = threading.Event()
    watched: list[set[int]] = []
    watcher = threading.Thread(target=lambda: watched.append(_served_by(two, stop)))
    watcher.start()
    cpu_before = {p: sum(psutil.Process(p).cpu_times()[:2]) for p in pids}
    try:
        both = run_fleet(two, agents=12, seconds=120, events_per_agent=300)
    finally:
        stop.set()
        watcher.join()
    assert watched[0] == set(pids), "both workers held connections of the agents"
    assert all(sum(psutil.Process(p).cpu_times()[:2]) - cpu_before[p] > 0.2 for p in pids), "both workers worked"
    assert both.acknowledged == alone.acknowledged > 3000  # every batch sent and acknowledged
    assert (both.lost, both.duplicated, both.chain_findings) == (0, 0, 0)
    assert (alone.lost, alone.duplicated, alone.chain_findings) == (0, 0, 0)
    summary = _alert_summary(two.database)
    assert summary and summary == _alert_summary(one.database)


def test_background_tasks_run_once_with_two_workers(tmp_path, collectors):
    with http_receiver() as rig:
        extra = (
            "  agent_offline_escalate: []\n"
            "  notify_allow_private: true\n"
            "  notify:\n"
            f"    - url: json://127.0.0.1:{rig.port}/hook\n"
            "      max_per_hour: 1000\n"
        )
        two = _start(collectors, tmp_path, f"sqlite:///{tmp_path / 'miwei.db'}", 2, extra=extra, offline_s=2)
        body = {"enroll_secret": ENROLL_SECRET, "agent_id": "0f0e0d0c-0b0a-4900-8877-665544332211", "hostname": "pc-quiet"}
        token = requests.post(two.url + "/api/v1/enroll", json=body, timeout=10).json()["token"]
        beat = requests.post(two.url + "/api/v1/heartbeat", json={"hostname": "pc-quiet"}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert beat.status_code == 200
        deadline = time.monotonic() + 60
        while not rig.hits:
            assert time.monotonic() < deadline, "no agent-offline notification within 60 s"
            time.sleep(0.1)
        time.sleep(12)  # two more absence rounds (every 5 s) and sender polls in each worker, had they run there
        engine = create_engine(two.database)
        with engine.connect() as conn:
            raised = conn.execute(select(alerts.c.rule_id, alerts.c.host)).all()
            sent = list(conn.execute(select(notifications.c.status)).scalars())
        engine.dispose()
        assert raised == [("MW-AGENT-OFFLINE", "pc-quiet")]
        assert len(rig.hits) == 1 and sent == ["sent"]
        assert "pc-quiet" in rig.hits[0].body.decode()
    log = two.log()
    assert log.count("notification sender started") == 1, log[-3000:]  # slot 0 alone runs the tasks
    assert "worker started slot=0" in log and "worker started slot=1" in log


@pytest.mark.reliability(area="fault", fault="A collector worker killed (SIGKILL) while agents post", how="8 simulated agents posting chained batches from threads to `miwei-server run` with 2 workers (SQLite and PostgreSQL); the worker that runs the background tasks killed mid-load", outcome="restarted in its slot; every acknowledged event stored once, no chain finding; batches cut off were resent by the agents")
@pytest.mark.parametrize("database", BACKENDS, indirect=True)
def test_a_killed_worker_is_restarted_and_nothing_is_lost(tmp_path, database, collectors):
    two = _start(collectors, tmp_path, database(), 2)
    first = two.worker_pids()
    result = []
    load = threading.Thread(target=lambda: result.append(run_fleet(two, agents=8, seconds=120, events_per_agent=600)))
    load.start()
    engine = create_engine(two.database)
    deadline = time.monotonic() + 60
    with engine.connect() as conn:  # events arriving: the fleet is posting
        while not conn.execute(select(func.count()).select_from(alerts)).scalar() and time.monotonic() < deadline:
            time.sleep(0.1)
    engine.dispose()
    os.kill(first[0], signal.SIGKILL)  # slot 0: the one that also runs the background tasks
    load.join(180)
    assert result, "the fleet did not finish"
    assert result[0].acknowledged > 4000 and (result[0].lost, result[0].duplicated, result[0].chain_findings) == (0, 0, 0)
    deadline = time.monotonic() + 30
    while len(two.worker_pids()) < 2:
        assert time.monotonic() < deadline, two.log()[-3000:]
        time.sleep(0.1)
    now = two.worker_pids()
    assert first[0] not in now and first[1] in now
    assert f"worker died slot=0 pid={first[0]} signal=SIGKILL" in two.log()
    assert requests.get(two.url + "/api/v1/health", timeout=10).status_code == 200


RULE = """\
- id: ACME-CAD
  title: CAD drawing to USB
  category: classified-egress
  severity: high
  when:
    type: egress.file
    extension: dwg
"""


def test_a_policy_changed_through_one_worker_is_in_force_in_every_worker(tmp_path, collectors):
    two = _start(collectors, tmp_path, f"sqlite:///{tmp_path / 'miwei.db'}", 2)
    made = subprocess.run([MIWEI_SERVER, "create-token", "ops", "-c", str(two.config)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    admin = {"Authorization": f"Bearer {made.stdout.strip()}"}
    body = {"enroll_secret": ENROLL_SECRET, "agent_id": "1f0e0d0c-0b0a-4900-8877-665544332211", "hostname": "pc-rules"}
    agent = {"Authorization": f"Bearer {requests.post(two.url + '/api/v1/enroll', json=body, timeout=10).json()['token']}"}

    def versions_seen() -> set[str]:
        """The policy versions heartbeat answers name over 40 new connections, kept open until both
        workers are seen holding some of them (the kernel hands each new one to either)."""
        sessions = [requests.Session() for _ in range(40)]
        try:
            versions = set()
            for session in sessions:
                answer = session.post(two.url + "/api/v1/heartbeat", json={"hostname": "pc-rules"}, headers=agent, timeout=10)
                assert answer.status_code == 200, answer.text
                versions.add(answer.json()["policy_version"])
            holding = [
                pid for pid in two.worker_pids()
                if any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == two.port for c in psutil.Process(pid).net_connections("tcp"))
            ]
            assert len(holding) == 2, "both workers answered some of the heartbeats"
            return versions
        finally:
            for session in sessions:
                session.close()

    before = versions_seen()
    changed = requests.put(two.url + "/api/v1/policy", json={"files": [{"name": "acme.yaml", "text": RULE}]}, headers=admin, timeout=30)
    assert changed.status_code == 200, changed.text
    after = versions_seen()
    assert len(before) == 1 and after == {changed.json()["version"]} != before


def test_sigterm_stops_every_worker_and_frees_the_port(tmp_path, collectors):
    two = _start(collectors, tmp_path, f"sqlite:///{tmp_path / 'miwei.db'}", 2)
    children = [psutil.Process(p) for p in two.worker_pids()]
    assert len(children) == 2
    assert two.stop() == 0
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", two.port))
    assert "collector stopped workers=2" in two.log()


def test_a_supervisor_killed_outright_takes_its_workers_along(tmp_path, collectors):
    two = _start(collectors, tmp_path, f"sqlite:///{tmp_path / 'miwei.db'}", 2)
    children = [psutil.Process(p) for p in two.worker_pids()]
    two.proc.kill()
    two.proc.wait(10)
    deadline = time.monotonic() + 10
    while any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children):
        assert time.monotonic() < deadline, "a worker outlived its supervisor"
        time.sleep(0.05)


def test_workers_default_to_the_cores_this_process_may_use():
    assert worker_count(0) == len(os.sched_getaffinity(0))
    assert worker_count(3) == 3
    assert share_of((20.0, 120.0), 4) == (5.0, 30.0) and share_of((2.0,), 4) == (1.0,)


def _sqlite_engine(path: Path, busy_ms: int):
    from sqlalchemy import event

    from server.database import make_engine

    engine = make_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", lambda dbapi, _record: dbapi.execute(f"PRAGMA busy_timeout={busy_ms}"))
    return engine


def test_sqlite_writers_of_two_processes_queue_in_the_writer_lock(tmp_path):
    from sqlalchemy import text

    from server import writerlock
    from server.database import writing

    engine = _sqlite_engine(tmp_path / "w.db", 100)  # SQLite alone would give up after 100 ms
    writerlock.install(engine, str(tmp_path / "w.db-writer"))
    with writing(engine) as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    engine.dispose()
    pid = os.fork()
    if pid == 0:  # a worker holding the write lock for 1 s
        code = 1
        try:
            with writing(engine) as conn:
                conn.execute(text("INSERT INTO t VALUES (1)"))
                time.sleep(1.0)
            code = 0
        finally:
            os._exit(code)
    time.sleep(0.3)
    started = time.monotonic()
    with writing(engine) as conn:  # waits in the flock, not in SQLite's busy handler (which would fail)
        conn.execute(text("INSERT INTO t VALUES (2)"))
    waited_s = time.monotonic() - started
    assert os.waitpid(pid, 0)[1] == 0
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT n FROM t")).scalars()) == [1, 2]
    engine.dispose()
    assert waited_s > 0.4


def test_a_write_that_cannot_begin_gives_the_writer_lock_back(tmp_path):
    import sqlite3

    from sqlalchemy import exc, text

    from server import writerlock
    from server.database import writing

    engine = _sqlite_engine(tmp_path / "w.db", 100)
    writerlock.install(engine, str(tmp_path / "w.db-writer"))
    with writing(engine) as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None)  # a writer outside writing(): no flock
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(exc.OperationalError, match="locked"):
        with writing(engine) as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
    other.execute("COMMIT")
    other.close()
    probe = os.open(tmp_path / "w.db-writer", os.O_RDWR)
    try:  # another process could take it now
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(probe)
    done = threading.Event()

    def write() -> None:
        with writing(engine) as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(10), "the writer lock stayed taken after a failed BEGIN IMMEDIATE"
    engine.dispose()


def test_a_worker_that_keeps_failing_at_start_stops_the_supervisor(monkeypatch):
    from server import workers

    monkeypatch.setattr(workers, "RESTART_DELAY_S", 0.01)
    started = time.monotonic()
    supervisor = workers.Supervisor(1, lambda slot: 3)  # what uvicorn's failed startup exits with
    assert supervisor.run() == 1  # systemd's Restart=on-failure takes over
    assert time.monotonic() - started < 10
    assert supervisor.slots[0].fast_failures == workers.MAX_FAST_FAILURES and supervisor.pids() == []


def test_a_second_collector_on_the_same_port_is_refused_not_a_silent_partner(tmp_path, collectors):
    first = _start(collectors, tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}", 2)
    other = tmp_path / "b.yaml"  # another database on the same port: SO_REUSEPORT must not split the agents between them
    other.write_text(first.config.read_text(encoding="utf-8").replace(str(tmp_path / "a.db"), str(tmp_path / "b.db")), encoding="utf-8")
    other.chmod(0o600)
    done = subprocess.run([MIWEI_SERVER, "run", "-c", str(other)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "cannot listen" in done.stderr, done.stderr[-2000:]
    assert requests.get(first.url + "/api/v1/health", timeout=10).status_code == 200
