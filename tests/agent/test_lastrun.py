"""How the previous run ended (agent/lastrun.py), and the heartbeat facts the collector judges
liveness by: the pipeline's progress and the spool stamped alive at every round."""

from __future__ import annotations

import time

import pytest

from agent.lastrun import ALIVE_AT, BOOT_ID, CLEAN_STOP, PreviousRun, current_boot_id, read_previous_run
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


def test_a_first_run_has_no_previous_stop(spool):
    assert read_previous_run(spool, BOOT_A) == PreviousRun("none", None, None)


def test_a_run_killed_after_spooling_reads_as_a_crash_with_when_it_was_last_alive(spool):
    spool.put([Event(type="agent.started")], state={CLEAN_STOP: None, BOOT_ID: BOOT_A})
    spool.set_state(ALIVE_AT, "2026-12-05T10:00:30.000Z")  # the reporter's last round; then kill -9

    previous = read_previous_run(spool, BOOT_A)
    assert previous == PreviousRun("crash", "2026-12-05T10:00:30.000Z", False)
    assert previous.details() == {
        "previous_stop": "crash",
        "unclean_stop": True,
        "last_alive": "2026-12-05T10:00:30.000Z",
        "rebooted": False,
    }


def test_a_clean_stop_is_clean_and_a_new_boot_id_says_the_pc_rebooted(spool):
    spool.put([Event(type="agent.stopped")], state={CLEAN_STOP: "2026-12-05T10:01:00.000Z", BOOT_ID: BOOT_A})
    assert read_previous_run(spool, BOOT_B) == PreviousRun("clean", None, True)
    assert read_previous_run(spool, None).rebooted is None  # this OS does not say


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
    alive_at = spool.get_state(ALIVE_AT)
    assert alive_at is not None and alive_at >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(before - 1))
