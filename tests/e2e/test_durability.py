"""Nothing is lost and nothing is stored twice when the collector or the agent is killed."""

from __future__ import annotations

import signal
import sqlite3
import time
from contextlib import closing

import pytest

from tests.e2e.harness import Deployment, wait_for
from tests.e2e.oracle import assert_stored_exactly_once

N_SERVER = 1000
N_AGENT = 300


def _spooled_egress(d) -> int:
    path = d.state_dir / "spool.db"
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path, timeout=5)) as conn:
        return conn.execute("""SELECT count(*) FROM spool WHERE body LIKE '%"type":"egress.file"%'""").fetchone()[0]


def _write_files(folder, n: int, prefix: str) -> None:
    for i in range(n):
        (folder / f"{prefix}-{i:04d}.txt").write_bytes(f"{prefix} file number {i}\n".encode())


def _stored_paths(d) -> list[str]:
    return [e["path"] for e in d.all_pages("/api/v1/events", "events", type="egress.file")]


@pytest.mark.reliability(area="fault", fault="Collector killed mid-stream", how="`SIGKILL` to `miwei-server` while the agent delivers 1,000 spooled events in batches of 10; restart", outcome="all 1,000 stored exactly once (no duplicate paths), spool drained; the seq oracle holds")
def test_server_killed_while_agent_delivers(tmp_path, classified):
    usb = tmp_path / "usb"
    usb.mkdir()
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Drawings")], egress_folders=[usb], agent_extra="  batch_max: 10")
    try:
        d.start_agent()  # no collector yet: every event waits in the spool
        _write_files(usb, N_SERVER, "bulk")
        wait_for(lambda: _spooled_egress(d) == N_SERVER, 60, 0.2, f"{N_SERVER} events in the spool")

        d.start_server()
        wait_for(lambda: 0 < d.stored_count("egress.file") < N_SERVER, 60, 0.005, "delivery to be under way")
        d.kill("server", signal.SIGKILL)
        killed_at = d.stored_count("egress.file")
        assert 0 < killed_at < N_SERVER, f"the kill did not land mid-delivery ({killed_at} stored)"

        d.start_server()
        wait_for(lambda: d.stored_count("egress.file") >= N_SERVER, 120, 0.2, "all events after the restart")
        wait_for(lambda: _spooled_egress(d) == 0, 30, 0.2, "the spool to drain")
        paths = _stored_paths(d)
        assert len(paths) == N_SERVER
        assert len(set(paths)) == N_SERVER, "an egress file was stored twice"
        assert d.stored_count("egress.file") == N_SERVER
        assert_stored_exactly_once(d)
    finally:
        d.close()


@pytest.mark.reliability(area="fault", fault="Agent killed with events unsent", how="`SIGKILL` to `miwei-agent` with 300 events spooled and no collector; restart both", outcome="all 300 stored once; the rescan on start reports nothing twice; the seq oracle holds")
def test_agent_killed_with_events_spooled(tmp_path, classified):
    usb = tmp_path / "usb"
    usb.mkdir()
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Drawings")], egress_folders=[usb])
    try:
        d.start_agent()
        _write_files(usb, N_AGENT, "spooled")
        wait_for(lambda: _spooled_egress(d) == N_AGENT, 60, 0.2, f"{N_AGENT} events in the spool")
        d.kill("agent", signal.SIGKILL)

        d.start_server()
        d.start_agent()
        wait_for(lambda: d.stored_count("egress.file") >= N_AGENT, 60, 0.2, "the spooled events to arrive")
        time.sleep(1.5)  # a rescan on start must not report the same files again
        paths = _stored_paths(d)
        assert len(paths) == N_AGENT
        assert len(set(paths)) == N_AGENT
        assert _spooled_egress(d) == 0
        assert_stored_exactly_once(d)
    finally:
        d.close()
