"""How the previous run ended (agent/lastrun.py), and the heartbeat facts the collector judges
liveness by: the pipeline's progress and the spool stamped alive at every round."""

from __future__ import annotations

import os
import sqlite3
import time

import pytest

from agent.lastrun import BOOT_ID, CLEAN_STOP, PreviousRun, current_boot_id, last_alive, read_previous_run, stamp_alive
from agent.reporter import Reporter
from agent.spool import Spool
from rules.events import Event
from tests.agent.test_reporter import FakeCollector

BOOT_A, BOOT_B = "0f3c0c6e-1111-4c4c-9d9d-aaaaaaaaaaaa", "0f3c0c6e-2222-4c4c-9d9d-bbbbbbbbbbbb"


@pytest.fixture
def spool(tmp_path):
    s = Spool(str(tmp_path / "spool.db"))
    yield s
    s.close()


def test_a_first_run_has_no_previous_stop(spool, tmp_path):
    assert read_previous_run(spool, BOOT_A, str(tmp_path)) == PreviousRun("none", None, None)


def test_a_run_killed_after_spooling_reads_as_a_crash_with_when_it_was_last_alive(spool, tmp_path):
    spool.put([Event(type="agent.started")], state={CLEAN_STOP: None, BOOT_ID: BOOT_A})
    stamp_alive(str(tmp_path))  # the reporter's last round; then kill -9
    os.utime(tmp_path / "alive", (1796464830.0, 1796464830.0))

    previous = read_previous_run(spool, BOOT_A, str(tmp_path))
    assert previous == PreviousRun("crash", "2026-12-05T10:00:30.000Z", False)
    assert previous.details() == {
        "previous_stop": "crash",
        "unclean_stop": True,
        "last_alive": "2026-12-05T10:00:30.000Z",
        "rebooted": False,
    }
    assert previous.unclean_text() == (
        "the previous run ended without a clean stop (killed, crashed or power lost); it was last known alive at"
        " 2026-12-05T10:00:30.000Z, and nothing was watched until this start; the PC kept running"
    )


def test_a_clean_stop_is_clean_and_a_new_boot_id_says_the_pc_rebooted(spool, tmp_path):
    spool.put([Event(type="agent.stopped")], state={CLEAN_STOP: "2026-12-05T10:01:00.000Z", BOOT_ID: BOOT_A})
    assert read_previous_run(spool, BOOT_B, str(tmp_path)) == PreviousRun("clean", None, True)
    assert read_previous_run(spool, BOOT_B, str(tmp_path)).unclean_text() is None
    assert read_previous_run(spool, None, str(tmp_path)).rebooted is None  # this OS does not say


def test_the_boot_id_is_read_from_the_kernel_or_is_unknown(tmp_path):
    assert current_boot_id(str(tmp_path / "absent")) is None
    (tmp_path / "boot_id").write_text(BOOT_A + "\n")
    assert current_boot_id(str(tmp_path / "boot_id")) == BOOT_A


def test_heartbeats_carry_the_pipeline_progress_and_stamp_the_spool_alive(spool, tmp_path):
    collector = FakeCollector()
    progress = {"stepped_at": time.time() - 5, "queued": 12}
    status = lambda: {"watched": [], "dead_events": 0, "pipeline": progress}  # noqa: E731 - as agent/app.py wires it
    reporter = Reporter(
        collector.url,
        "x" * 20,
        str(tmp_path),
        "7b5a99a8-7013-4964-ac70-813090623ca9",
        "pc1",
        spool,
        heartbeat_s=0.1,
        status=status,
    )
    before = time.time()
    reporter.start()
    try:
        deadline = time.monotonic() + 10
        while len(collector.heartbeats) < 2:
            assert time.monotonic() < deadline, "no heartbeats"
            time.sleep(0.02)
    finally:
        reporter.stop()
        collector.close()
    assert collector.heartbeats[0]["pipeline"] == progress
    alive_at = last_alive(str(tmp_path))
    assert alive_at is not None and alive_at >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(before - 1))


def test_a_locked_spool_does_not_hold_back_the_heartbeat(spool, tmp_path):
    """Another process holding the spool's write lock (the way a stuck pipeline is made in
    tests/e2e/test_liveness.py) must not delay the heartbeat that reports the stall."""
    collector = FakeCollector()
    reporter = Reporter(
        collector.url, "x" * 20, str(tmp_path), "7b5a99a8-7013-4964-ac70-813090623ca9", "pc1", spool, heartbeat_s=0.1
    )
    locker = sqlite3.connect(str(tmp_path / "spool.db"), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    reporter.start()
    try:
        deadline = time.monotonic() + 5  # far below the spool's 30 s busy timeout
        while len(collector.heartbeats) < 3:
            assert time.monotonic() < deadline, "heartbeats held back by the locked spool"
            time.sleep(0.02)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        reporter.stop()
        collector.close()
