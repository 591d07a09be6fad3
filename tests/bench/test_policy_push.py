"""`python -m bench policy --quick` works end to end: a real collector, 50 agents in two groups that
enrol, heartbeat and fetch the policy, a register change pushed to all of them. What the figures
are is not asserted (no timing in tests); that each exists, is measured and is consistent is."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bench import policy_push
from bench.report import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NAMES = [
    "policy push: until all 50 agents fetched",
    "policy push: collector CPU",
    "policy push: policy fetch",
    "policy push: collector peak RSS",
    "policy push: enrolment of 50 agents",
]


def test_quick_push_reaches_every_agent_and_measures_the_collector():
    figures = policy_push.run(quick=True)
    assert [f.name for f in figures] == NAMES
    reached, cpu, fetch, rss, enrol = figures
    # every agent fetched the changed policy (the driver fails otherwise), after the PATCH, and no
    # heartbeat sent after the PATCH was answered announced the old version
    assert reached.value > 0 and reached.baseline == policy_push.QUICK_HEARTBEAT_S and reached.met is not None
    assert "0 heartbeats sent after its answer still announced the old version" in reached.notes
    assert "50 policy fetches (200)" in reached.notes
    # the ratio is of the unrounded CPU seconds; value and baseline are shown rounded to 0.01 s
    low, high = (cpu.value - 0.005) / (cpu.baseline + 0.005), (cpu.value + 0.005) / max(cpu.baseline - 0.005, 1e-9)
    assert cpu.value > 0 and cpu.baseline > 0 and low <= cpu.ratio <= high
    assert fetch.value > 0 and fetch.baseline > 0 and fetch.runs == 50
    assert rss.value > 10 and rss.baseline > 10  # MB: the collector's process was alive and read
    assert enrol.value > 0


def test_policy_is_a_registered_section():
    done = subprocess.run(
        [sys.executable, "-m", "bench", "nosuch"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert re.search(r"\bpolicy\b", done.stderr), done.stderr


def test_a_stalled_run_stops_before_pytest_and_shows_both_logs(monkeypatch):
    # the run's own limit, cut so short the driver is killed mid-run: the failure must say how far it
    # got and carry the collector's log, not leave pytest's timeout to kill a silent test
    monkeypatch.setattr(policy_push, "QUICK_RUN_LIMIT_S", 1.0)
    with pytest.raises(RuntimeError) as failed:
        policy_push.run(quick=True)
    message = str(failed.value)
    assert "the driver failed (exit -9; a run is stopped, -9, after 1 s)" in message
    assert "push-done" not in message.split("after phases", 1)[1].split("]", 1)[0]
    assert "INFO" in message.split("--- the collector's log:\n", 1)[1]  # what it logged, whatever the phase


def test_a_driver_that_hangs_after_its_last_phase_does_not_fail_the_run(monkeypatch):
    # CI once saw the driver print push-done and never exit (a cancelled agent loop that went on):
    # everything measured is in push-done, so the run waits DRIVER_EXIT_S for the exit, then kills
    # it and gives the figures, instead of waiting for the run's limit and failing
    phases = [
        ("enrolled", {"seconds": 1.0}),
        ("baseline-start", {}),
        ("baseline-end", {"heartbeats": 40, "heartbeat_ms": [2.0, 3.0]}),
        ("push-start", {}),
        ("push-done", {"reached_s": [0.5, 1.5], "fetch_ms": [4.0, 5.0], "heartbeats": 60, "payload_bytes": 900,
                       "patch_ms": 12.0, "stale": 0}),
    ]  # fmt: skip
    script = (
        "import json, sys, time\n"
        f"for phase, data in {phases!r}:\n"
        "    print(phase, json.dumps(data), flush=True)\n"
        "    time.sleep(0.2)\n"
        "time.sleep(3600)\n"
    )
    monkeypatch.setattr(policy_push, "DRIVER", [sys.executable, "-c", script])
    monkeypatch.setattr(policy_push, "DRIVER_EXIT_S", 1.0)
    monkeypatch.setattr(policy_push, "QUICK_RUN_LIMIT_S", 60.0)
    figures = policy_push.run(quick=True)
    assert [f.name for f in figures] == NAMES
    assert figures[0].value == 1.5 and "60 heartbeats and 2 policy fetches (200)" in figures[0].notes
