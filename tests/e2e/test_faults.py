"""Fault injection against real `miwei-server` and `miwei-agent` processes: each case ends with the
oracle (tests/e2e/oracle.py) — every event the agent made is stored exactly once, or was
announced lost by the agent itself.

The agent makes real events: real files copied into an egress folder. Delivery goes in batches
of 10 so a fault lands in the middle of it, with a 2 s request timeout and backoff capped at 2 s
(agent.request_timeout_s, agent.retry_max_s) so the cases stay short.
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.e2e import mounts
from tests.e2e.faultproxy import FaultProxy
from tests.e2e.harness import Deployment, wait_for
from tests.e2e.oracle import Ledger, assert_stored_exactly_once

pytestmark = pytest.mark.e2e

FAST_RETRY = "\n".join(["  batch_max: 10", "  request_timeout_s: 2", "  retry_max_s: 2"])


def _deployment(tmp_path: Path, classified: dict, extra: str = "") -> Deployment:
    usb = tmp_path / "usb"
    usb.mkdir()
    d = Deployment(
        tmp_path, [(classified["drawings"], "core", "Drawings")], egress_folders=[usb],
        agent_extra=FAST_RETRY + ("\n" + extra if extra else ""),
    )
    d.usb = usb
    return d


def _through(d: Deployment, proxy: FaultProxy) -> None:
    """Point the agent at the proxy; the collector keeps listening where it did."""
    text = d.config.read_text(encoding="utf-8")
    d.config.write_text(text.replace(f"  server_url: {d.url}\n", f"  server_url: {proxy.url}\n", 1), encoding="utf-8")


def _write_files(folder: Path, n: int, prefix: str) -> None:
    for i in range(n):
        (folder / f"{prefix}-{i:05d}.txt").write_bytes(f"{prefix} file number {i}\n".encode())


def _spooled_egress(d: Deployment) -> int:
    path = d.state_dir / "spool.db"
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path, timeout=5)) as conn:
        return conn.execute("""SELECT count(*) FROM spool WHERE body LIKE '%"type":"egress.file"%'""").fetchone()[0]


def _stored_paths(d: Deployment) -> list[str]:
    with closing(sqlite3.connect(d.db_path, timeout=10)) as conn:
        return [p for (p,) in conn.execute("SELECT path FROM events WHERE type = 'egress.file'")]


def _assert_each_file_once(d: Deployment) -> None:
    paths = _stored_paths(d)
    expected = {str(p) for p in d.usb.rglob("*") if p.is_file()}
    assert len(paths) == len(set(paths)), "an egress file was stored twice"
    assert set(paths) == expected, f"{len(expected - set(paths))} files never reported"


def _count(d: Deployment, needle: str) -> int:
    return d.log("miwei-agent").count(needle)


def _alive(d: Deployment) -> None:
    assert d.agent is not None and d.agent.poll() is None, f"the agent exited:\n{d.log('miwei-agent')[-3000:]}"


# --- the oracle itself ----------------------------------------------------------------------


def test_the_oracle_names_missing_and_duplicated_seqs():
    from collections import Counter

    ledger = Ledger("a", 10, 0, Counter({1: 1, 2: 2, 3: 1, 6: 1, 9: 1, 10: 1, 12: 1}), ("e1",), ((7, 8),), ())
    problems = "\n".join(ledger.problems())
    assert "2 seqs neither stored nor announced lost: 4-5" in problems
    assert "1 seqs stored more than once: 2" in problems
    assert "above the agent's head 10: 12" in problems
    assert "e1" in problems
    assert ledger.lost() == 2
    clean = Ledger("a", 5, 0, Counter({1: 1, 2: 1, 5: 1}), (), ((3, 4),), ())
    assert clean.problems() == []


# --- the cases ------------------------------------------------------------------------------


@pytest.mark.reliability(
    area="fault", fault="Response lost after commit",
    how="a TCP proxy between agent and collector forwards each `POST /api/v1/events`, lets the collector commit, then"
    " closes both connections before the answer reaches the agent: the first 5 answers, then 30% at random (seed 7);"
    " 300 events in batches of 10",
    outcome="the agent retries every unanswered batch; the collector stores the replays as duplicates; each seq stored"
    " once, no tamper finding",
)
def test_a_response_lost_after_commit_is_replayed_idempotently(tmp_path, classified):
    d = _deployment(tmp_path, classified)
    proxy = FaultProxy(d.port)
    try:
        _through(d, proxy)
        proxy.set_mode("drop", drop_first=5, drop_rate=0.3, seed=7)
        d.start_server()
        d.start_agent()
        _write_files(d.usb, 300, "replayed")
        ledger = assert_stored_exactly_once(d)
        _assert_each_file_once(d)
        assert proxy.dropped >= 5, f"only {proxy.dropped} answers dropped"
        sent = sum(1 for p in proxy.requests if p.startswith("/api/v1/events"))
        assert sent >= 30 + proxy.dropped  # every dropped answer was followed by a resend
        assert ledger.lost() == 0
    finally:
        proxy.close()
        d.close()


@pytest.mark.slow
@pytest.mark.reliability(
    area="fault", fault="Agent killed with 10,000 events unsent",
    how="10,000 files copied into an egress folder with no collector running; `SIGKILL` to `miwei-agent` once all"
    " 10,000 `egress.file` events are spooled; collector and agent started again",
    outcome="each seq stored once, each file reported once (the rescan at start reports nothing twice)",
)
def test_agent_killed_with_ten_thousand_events_unsent(tmp_path, classified):
    n = 10_000
    d = _deployment(tmp_path, classified, extra="  limits: {cpu_percent: 100}")
    try:
        staging = tmp_path / "staging"
        staging.mkdir()
        _write_files(staging, n, "unsent")
        d.start_agent()  # no collector: everything waits in the spool
        subprocess.run(["cp", "-r", f"{staging}/.", str(d.usb)], check=True)
        wait_for(lambda: _spooled_egress(d) >= n, 300, 0.5, f"{n} events in the spool")
        d.kill("agent", signal.SIGKILL)
        assert _spooled_egress(d) == n
        d.config.write_text(d.config.read_text(encoding="utf-8").replace("  batch_max: 10\n", "  batch_max: 500\n"), encoding="utf-8")
        d.start_server()
        d.start_agent()
        assert_stored_exactly_once(d, timeout_s=300)
        _assert_each_file_once(d)
    finally:
        d.close()


@pytest.mark.reliability(
    area="fault", fault="Collector frozen, then resumed",
    how="`SIGSTOP` to `miwei-server` while the agent delivers 1,000 spooled events in batches of 10, held until the"
    " agent's 2 s request timeout has fired twice, then `SIGCONT`",
    outcome="the agent times out and retries (never hangs); the frozen collector then answers the requests queued"
    " meanwhile, storing the batches it had and treating the retries as duplicates; each seq stored once",
)
def test_a_frozen_collector_that_resumes_stores_each_event_once(tmp_path, classified):
    n = 1000
    d = _deployment(tmp_path, classified)
    try:
        d.start_agent()
        _write_files(d.usb, n, "frozen")
        wait_for(lambda: _spooled_egress(d) == n, 60, 0.2, f"{n} events in the spool")
        d.start_server()
        wait_for(lambda: 0 < d.stored_count("egress.file") < n, 60, 0.005, "delivery to be under way")
        _freeze(d, signal.SIGSTOP)
        try:
            frozen_at = d.stored_count("egress.file")
            assert frozen_at < n, "delivery ended before the freeze"
            wait_for(lambda: _count(d, "ReadTimeout") >= 2, 60, 0.2, "two request timeouts in the agent's log")
            _alive(d)
        finally:
            _freeze(d, signal.SIGCONT)
        assert_stored_exactly_once(d)
        _assert_each_file_once(d)
    finally:
        d.close()


def _freeze(d: Deployment, sig: int) -> None:
    """SIGSTOP or SIGCONT to the whole collector: with several workers (server.workers) the
    supervisor accepts nothing itself, its children serve; stopped supervisor first, resumed last."""
    import psutil

    supervisor = psutil.Process(d.server.pid)
    workers = supervisor.children(recursive=True)
    order = [supervisor, *workers] if sig == signal.SIGSTOP else [*workers, supervisor]
    for process in order:
        process.send_signal(sig)


@pytest.mark.reliability(
    area="fault", fault="Network black hole, then refusal",
    how="a TCP proxy between agent and collector first accepts connections and never answers (black hole), then"
    " closes its port (connection refused), then forwards again; 100 events before, 100 during",
    outcome="the agent times out after its 2 s request timeout (never hangs), then backs off on the refusals, and"
    " delivers everything once the route is back; each seq stored once",
)
def test_a_black_hole_then_refusal_then_recovery_loses_nothing(tmp_path, classified):
    d = _deployment(tmp_path, classified)
    proxy = FaultProxy(d.port)
    try:
        _through(d, proxy)
        d.start_server()
        d.start_agent()
        _write_files(d.usb, 100, "before")
        wait_for(lambda: d.stored_count("egress.file") >= 100, 60, 0.2, "the first 100 events")

        proxy.set_mode("blackhole")
        _write_files(d.usb, 100, "during")
        wait_for(lambda: _count(d, "ReadTimeout") >= 2, 60, 0.2, "two request timeouts in the agent's log")
        assert proxy.swallowed >= 2
        _alive(d)

        proxy.set_mode("refuse")
        wait_for(lambda: _count(d, "Connection refused") >= 2, 60, 0.2, "two refused connections in the agent's log")
        _alive(d)

        proxy.set_mode("pass")
        assert_stored_exactly_once(d)
        _assert_each_file_once(d)
    finally:
        proxy.close()
        d.close()


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MB tmpfs for the agent's state folder (mounting needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    target = tmp_path / "agent-state"
    target.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(target)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield target
    mounts.unmount(target)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True)
    return filler


@pytest.mark.reliability(
    area="fault", fault="Spool disk full",
    how="the agent's state folder on a 2 MB tmpfs, filled up by another file while the agent runs; 200 files"
    " copied meanwhile; then the file removed (root only; skipped otherwise)",
    outcome="the agent keeps running and keeps the events it cannot spool in memory (the outbox retries; nothing"
    " dropped: the spool itself failing drops nothing); once there is room they are spooled and delivered; each seq"
    " stored once",
)
def test_a_full_spool_disk_holds_events_back_and_loses_none(tmp_path, classified, small_tmpfs):
    d = _deployment(tmp_path, classified)
    assert d.state_dir == small_tmpfs
    try:
        d.start_server()
        d.start_agent()
        _write_files(d.usb, 50, "room")
        wait_for(lambda: d.stored_count("egress.file") >= 50, 60, 0.2, "the first 50 events")

        filler = _fill(small_tmpfs)
        assert os.statvfs(small_tmpfs).f_bavail == 0
        _write_files(d.usb, 200, "full")
        wait_for(lambda: _count(d, "database or disk is full") >= 1, 60, 0.2, "the agent to hit the full disk")
        time.sleep(2)  # a few rounds of failing writes
        _alive(d)
        stored_while_full = d.stored_count("egress.file")

        filler.unlink()
        # the events the agent holds in memory are not in its spool yet, so the ledger alone could
        # read "drained" before they are spooled: wait until all 250 reached the collector first
        wait_for(lambda: d.stored_count("egress.file") >= 250, 120, 0.2, "all 250 events once there is room")
        ledger = assert_stored_exactly_once(d)
        _assert_each_file_once(d)
        assert d.stored_count("egress.file") == 250 > stored_while_full
        assert ledger.lost() == 0
    finally:
        d.close()


@pytest.mark.reliability(
    area="fault", fault="Collector database disk full, with a real agent",
    how="the collector's SQLite file on a loop-mounted 64 MB ext4, filled up by another file while a real agent"
    " delivers; then the file removed (root only; skipped otherwise)",
    outcome="the collector answers 503 with `Retry-After`, the agent waits and retries; once there is room every"
    " event is stored once",
)
def test_a_full_collector_disk_with_a_real_agent_loses_nothing(tmp_path, classified, small_ext4):
    d = _deployment(tmp_path, classified)
    try:
        db_path = small_ext4 / "miwei.db"
        text = d.config.read_text(encoding="utf-8")
        d.config.write_text(text.replace(f"sqlite:///{d.db_path}", f"sqlite:///{db_path}"), encoding="utf-8")
        d.db_path = db_path
        d.start_server()
        d.start_agent()
        _write_files(d.usb, 50, "room")
        wait_for(lambda: d.stored_count("egress.file") >= 50, 60, 0.2, "the first 50 events")

        filler = small_ext4 / "filler"
        subprocess.run(["fallocate", "-l", "1G", str(filler)], capture_output=True)  # fails: takes what is left
        if not filler.exists() or os.statvfs(small_ext4).f_bavail > 64:
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)
        _write_files(d.usb, 200, "full")
        wait_for(lambda: re.search(r"collector asks us to wait error='DeliveryError: 503", d.log("miwei-agent")), 60, 0.2, "a 503")
        _alive(d)

        filler.unlink()
        # every file's event first: the oracle's drained spool can be a moment between two of the
        # agent's writes while it still hashes the last files (once: 241 of 251 seqs, then 10 more)
        wait_for(lambda: d.stored_count("egress.file") >= 250, 120, 0.25, "the 250 files' events")
        assert_stored_exactly_once(d)
        _assert_each_file_once(d)
    finally:
        d.close()


def _spool_events(d: Deployment, of_type: str) -> list[dict]:
    with closing(sqlite3.connect(d.db_path, timeout=10)) as conn:
        return [json.loads(b) for (b,) in conn.execute("SELECT body FROM events WHERE type = ? ORDER BY seq", (of_type,))]


@pytest.mark.parametrize("damage", ["torn log", "overwritten"])
@pytest.mark.reliability(
    area="fault", fault="Torn or damaged spool file",
    how="300 events spooled with no collector; then (a) `SIGKILL` to the agent and its `spool.db-wal` cut inside its"
    " sixth frame, or (b) a clean stop and 12 KB in the middle of `spool.db` overwritten; collector and agent"
    " started again",
    outcome="the agent starts (no crash loop): (a) keeps the commits before the tear, (b) moves the file aside to"
    " `spool.db.corrupt-<time>` and reads back what it can; the chain continues above the seqs reserved in"
    " `spool.db.head`, and one `agent.gap` announces the range that may be lost (an agent-tamper alert); every seq"
    " stored once or announced lost, every file reported",
)
def test_a_torn_or_damaged_spool_is_recovered_and_the_loss_announced(tmp_path, classified, damage):
    d = _deployment(tmp_path, classified)
    try:
        d.start_agent()
        _write_files(d.usb, 300, "spooled")
        wait_for(lambda: _spooled_egress(d) == 300, 60, 0.2, "300 events in the spool")
        spool = d.state_dir / "spool.db"
        if damage == "torn log":
            # our own reads of spool.db must be finished while the agent runs: a connection the
            # garbage collector closes later would be the last one, checkpoint the log and delete it
            gc.collect()
            d.kill("agent", signal.SIGKILL)
            wal = Path(f"{spool}-wal")
            assert wal.stat().st_size > 100_000, "the events are not in the log"
            page_size = int.from_bytes(wal.read_bytes()[8:12], "big")
            os.truncate(wal, 32 + 5 * (24 + page_size) + 57)  # inside the sixth frame: later commits are gone
        else:
            d.kill("agent", signal.SIGTERM)  # a clean stop checkpoints: the events are in spool.db
            assert not Path(f"{spool}-wal").exists() or Path(f"{spool}-wal").stat().st_size == 0
            size = spool.stat().st_size
            with open(spool, "r+b") as f:
                f.seek(size // 2 // 4096 * 4096)
                f.write(b"\xa5" * 3 * 4096)
        d.start_server()
        d.start_agent()
        expected = {str(p) for p in d.usb.rglob("*") if p.is_file()}
        wait_for(lambda: set(_stored_paths(d)) >= expected, 60, 0.2, "every file reported (again, where its mark was lost)")
        ledger = assert_stored_exactly_once(d)
        [gap] = [g for g in _spool_events(d, "agent.gap") if g["details"].get("reason", "").startswith("spool")]
        assert gap["details"]["reason"] == ("spool journal torn" if damage == "torn log" else "spool damaged")
        assert (gap["details"]["seq_from"], gap["details"]["seq_to"]) in ledger.announced
        if damage == "torn log":
            assert ledger.lost() > 0, "the cut log lost no commit"
        if damage == "overwritten":
            assert list(d.state_dir.glob("spool.db.corrupt-*")), "the damaged file was not kept"
        assert set(_stored_paths(d)) == expected  # a lost mark: reported again, never lost
        assert wait_for(lambda: d.alerts(category="agent-tamper"), 30, 0.5, "an agent-tamper alert for the announced loss")
    finally:
        d.close()
