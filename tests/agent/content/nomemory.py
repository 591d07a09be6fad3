"""Making one allocation fail (CPython's _testcapi.set_nomemory) for the C extensions' tests.

The hook is the process's: under pytest-xdist, a thread of its own (the channel to the
controller) allocating while the test thread's n-th allocation is due took the MemoryError
instead, and the worker went down ("node down: ... MemoryError"), now and then. Keeping the GIL
while a failure is armed made it rarer, not impossible; so such a test runs in a pytest of its own
in a child process (in_child, run_in_child), where no other thread allocates."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def testcapi():
    """_testcapi, or the test skipped where this CPython cannot fail allocations."""
    module = pytest.importorskip("_testcapi", reason="needs CPython's _testcapi")
    if not hasattr(module, "set_nomemory"):
        pytest.skip("this CPython's _testcapi cannot fail allocations")
    return module


@contextmanager
def failing(n: int) -> Iterator[None]:
    """The n-th allocation from here fails, no other, and only this thread runs meanwhile."""
    capi = testcapi()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    capi.set_nomemory(n, n + 1)
    try:
        yield
    finally:
        capi.remove_mem_hooks()
        sys.setswitchinterval(interval)


CHILD = "MIWEI_NOMEMORY_CHILD"  # set in the child process that runs the test itself


def in_child() -> bool:
    return os.environ.get(CHILD) == "1"


def run_in_child(test_file: str, name: str) -> None:
    """Run the test `name` of `test_file` in a pytest of its own (no xdist, no plugin threads):
    it passes or skips there, or this fails with its output."""
    env = {k: v for k, v in os.environ.items() if k != "MIWEI_RELIABILITY_DOC"}  # the doc is the parent's
    env[CHILD] = "1"
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", f"{test_file}::{name}"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    if " passed" not in done.stdout:  # skipped there (no _testcapi): say so here too
        pytest.skip(f"in the child process: {done.stdout.strip().splitlines()[-1]}")
