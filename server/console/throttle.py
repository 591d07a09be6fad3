"""Console sign-in throttling that holds when the guesses arrive all at once.

Counting failures after the password check lets a burst through: 60 guesses sent together were
all checked before the first failure was counted (41 of 60 reached argon2 in one measured run, up
to 16 at a time, 64 MiB each with the default parameters: 80 parallel logins took the collector
to 2.4 GiB). So an attempt is reserved before it is verified, in one check-and-increment under a
lock: failures in the window plus attempts in flight must stay under the limit, for the user name
and for the client address. Then at most MAX_VERIFYING password checks run at once in the
process; a sign-in that finds them busy waits up to VERIFY_WAIT_S (at most MAX_WAITING do), else
it is 429 with Retry-After: no queue grows without bound.

Two keys, two limits, for a shared office address (NAT) as much as for an attacker:
- per user name (case-insensitive): MAX_NAME_FAILURES (5) failures in FAILURE_WINDOW_S (5 min)
  lock that name, from every address, until the oldest failure ages out; a success clears them.
- per client address: MAX_ADDRESS_FAILURES (50) failures in the same window lock the address for
  every name. Only failures count, so colleagues behind the same NAT keep signing in while one
  name is locked; a guesser spraying many names from one address is stopped at 50. IPv6
  clients count per /64 (one host usually holds the whole /64).
Refusals (429) are neither failures nor verifications. The state is in memory, per process.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

MAX_NAME_FAILURES = 5
MAX_ADDRESS_FAILURES = 50
FAILURE_WINDOW_S = 300.0
MAX_VERIFYING = 2  # argon2 checks at once: 64 MiB and about 0.1 s of CPU each with the default parameters
MAX_WAITING = 8  # sign-ins waiting for a check
VERIFY_WAIT_S = 2.0
BUSY_RETRY_S = 1
MAX_KEYS = 100_000  # a flood of made-up names must not grow memory without end
T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    """A reserved sign-in attempt: settle or cancel it exactly once."""

    name_key: str
    address_key: str


@dataclass(frozen=True)
class Refusal:
    retry_after_s: int
    locked: str  # "name" or "address": failures reached its limit; "busy": attempts in flight did


@dataclass
class _Count:
    failures: deque[float]
    in_flight: int = 0


def address_key(address: str) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return f"ip:{address}"
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is None:
        return f"ip:{ipaddress.ip_network(f'{parsed}/64', strict=False)}"
    return f"ip:{parsed.ipv4_mapped or parsed}" if isinstance(parsed, ipaddress.IPv6Address) else f"ip:{parsed}"


class LoginThrottle:
    """Per-name and per-address failure counts with reservations; thread-safe."""

    def __init__(
        self, max_name_failures: int = MAX_NAME_FAILURES, max_address_failures: int = MAX_ADDRESS_FAILURES,
        window_s: float = FAILURE_WINDOW_S, clock: Callable[[], float] = time.monotonic,
    ):  # fmt: skip
        self.limits = {"name": max_name_failures, "address": max_address_failures}
        self.window_s, self.clock = window_s, clock
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def reserve(self, name: str, address: str) -> Attempt | Refusal:
        """Take one attempt for the name and the address, or say how long to wait."""
        attempt = Attempt(f"user:{name.casefold()}", address_key(address))
        now = self.clock()
        with self._lock:
            refusals = []
            for kind, key in (("name", attempt.name_key), ("address", attempt.address_key)):
                count = self._count(key, now)
                if len(count.failures) >= self.limits[kind]:  # locked until the oldest failure ages out
                    refusals.append(Refusal(int(count.failures[0] + self.window_s - now) + 1, kind))
                elif len(count.failures) + count.in_flight >= self.limits[kind]:  # attempts in flight: soon
                    refusals.append(Refusal(BUSY_RETRY_S, "busy"))
            if refusals:
                return max(refusals, key=lambda r: r.retry_after_s)
            self._counts[attempt.name_key].in_flight += 1
            self._counts[attempt.address_key].in_flight += 1
        return attempt

    def settle(self, attempt: Attempt, succeeded: bool) -> tuple[str, ...]:
        """The attempt's outcome; returns the limits ("name", "address") this failure reached."""
        now = self.clock()
        reached = []
        with self._lock:
            for kind, key in (("name", attempt.name_key), ("address", attempt.address_key)):
                count = self._count(key, now)
                count.in_flight = max(0, count.in_flight - 1)
                if not succeeded:
                    count.failures.append(now)
                    if len(count.failures) == self.limits[kind]:
                        reached.append(kind)
            if succeeded:
                self._counts[attempt.name_key].failures.clear()  # the address keeps its count
            if len(self._counts) > MAX_KEYS:
                self._prune(now)
        return tuple(reached)

    def cancel(self, attempt: Attempt) -> None:
        """The attempt was not tried (no verification slot): neither a failure nor a success."""
        with self._lock:
            for key in (attempt.name_key, attempt.address_key):
                if key in self._counts:
                    self._counts[key].in_flight = max(0, self._counts[key].in_flight - 1)

    def _count(self, key: str, now: float) -> _Count:
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = _Count(deque())
        while count.failures and count.failures[0] <= now - self.window_s:
            count.failures.popleft()
        return count

    def _prune(self, now: float) -> None:
        self._counts = {
            k: c for k, c in self._counts.items() if c.in_flight or (c.failures and c.failures[-1] > now - self.window_s)
        }


class VerifySlots:
    """At most `slots` password checks at once; a bounded number of callers wait a bounded time.

    `run` blocks its thread (call it in the threadpool, where argon2 runs anyway)."""

    def __init__(self, slots: int = MAX_VERIFYING, max_waiting: int = MAX_WAITING, wait_s: float = VERIFY_WAIT_S):
        self.max_waiting, self.wait_s = max_waiting, wait_s
        self._slots = threading.BoundedSemaphore(slots)
        self._waiting = 0
        self._lock = threading.Lock()

    def run(self, check: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, check()) when a slot came free in time, else (False, None) without running it."""
        with self._lock:
            if self._waiting >= self.max_waiting:
                return False, None
            self._waiting += 1
        try:
            acquired = self._slots.acquire(timeout=self.wait_s)
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            return False, None
        try:
            return True, check()
        finally:
            self._slots.release()
