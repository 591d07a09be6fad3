"""Fixtures shared by every test package."""

from __future__ import annotations

import threading

import pytest

AGENT_THREADS = {"pipeline", "reporter", "media"}


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
