"""Fixtures shared by every test package."""

from __future__ import annotations

import dataclasses
import os
import threading

import pytest

from tests import reliability

AGENT_THREADS = {"pipeline", "reporter", "media"}


@pytest.fixture
def small_ext4(tmp_path):
    """A fresh 64 MB ext4 loop-mounted for the test (the disk-full cases); skipped where it cannot be."""
    from tests.e2e import mounts

    why = mounts.unavailable("ext4")
    if why:
        pytest.skip(why)
    with mounts.scratch("ext4", tmp_path) as mountpoint:
        yield mountpoint


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every long-lived component must stop its threads: a test that leaks one fails."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and t.name in AGENT_THREADS]
    for t in leaked:
        t.join(2.0)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads left running: {still}"


# --- docs/reliability.md from the run (tests/reliability.py) ---------------------------------

_reliability: dict[str, reliability.Result] = {}


def pytest_collection_finish(session):
    """Every marked test that will run, checked; each starts as 'not run' until it reports."""
    problems = []
    for item in session.items:
        marker = item.get_closest_marker("reliability")
        if marker is None:
            continue
        try:
            fields = reliability.marker_fields(item.nodeid, marker.kwargs)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        _reliability[item.nodeid] = reliability.Result(item.nodeid, **fields)
    if problems:
        raise pytest.UsageError("\n".join(problems))


def pytest_runtest_logreport(report):
    """A case's result: a failure in any phase fails it; a skip in setup or call skips it."""
    result = _reliability.get(report.nodeid)
    if result is None:
        return
    if report.failed:
        if result.status != "failed":
            _reliability[report.nodeid] = dataclasses.replace(result, status="failed", reason=reliability.failure_reason(report.longrepr))
    elif report.skipped and result.status != "failed":
        _reliability[report.nodeid] = dataclasses.replace(result, status="skipped", reason=reliability.skip_reason(report.longrepr))
    elif report.when == "call" and report.passed and result.status == "not run":
        _reliability[report.nodeid] = dataclasses.replace(result, status="passed")


def pytest_sessionfinish(session, exitstatus):
    """With MIWEI_RELIABILITY_DOC=1 (`make test`), rewrite docs/reliability.md's tables."""
    if os.environ.get("MIWEI_RELIABILITY_DOC") != "1" or not _reliability:
        return
    if reliability.write(_reliability.values(), reliability.current_run()):
        session.config.get_terminal_writer().line(f"reliability: {reliability.DOC} rewritten from this run")
