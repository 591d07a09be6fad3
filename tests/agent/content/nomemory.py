"""Making one allocation fail (CPython's _testcapi.set_nomemory) for the C extensions' tests.

The hook is the process's: under pytest-xdist, a thread of its own (the channel to the
controller) allocating while the test thread's n-th allocation is due took the MemoryError
instead ("cannot send to Channel"), now and then. While a failure is armed, the test thread keeps
the GIL (a switch interval longer than any run), so no other thread allocates meanwhile."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

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
