"""A bound on the CPU a block of a test may spend: for attacks whose harm is time (a reader made
quadratic or exponential by a hostile file), counted in CPU so a loaded machine's waiting does not
count."""

from __future__ import annotations

import contextlib
import signal


class TooSlow(Exception):
    pass


@contextlib.contextmanager
def cpu_limit(seconds: float):
    """TooSlow once the process has spent `seconds` of CPU inside the block (SIGVTALRM, so
    pytest-timeout's SIGALRM is left alone)."""

    def expire(signum, frame):
        raise TooSlow(f"more than {seconds} s of CPU")

    previous = signal.signal(signal.SIGVTALRM, expire)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)
