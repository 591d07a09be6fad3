"""Enrolment is rate-limited per source address and in total, and a burst is reported once.

Before this gate, anyone holding the shared secret created 200 agents in one second (and got 204
agent-offline alerts two minutes later). Now an enrolment that passed the secret check takes one
token from its address's bucket and one from the collector-wide bucket (each holds `per_min`
and refills at `per_min` a minute); when either is empty it is 429 with Retry-After (the agent
waits that long and tries again). The first refusal after a quiet spell of BURST_QUIET_S starts a
burst: the caller reports it once (an agent.tamper event of kind enroll_flood, hence one
agent-tamper alert); refusals during the burst only count. In memory, per collector process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from loguru import logger

BURST_QUIET_S = 600.0  # no refusal for this long ends a burst
MAX_ADDRESSES = 16_384


@dataclass(frozen=True)
class Admission:
    retry_after_s: int  # 0: admitted
    burst_started: bool  # this refusal starts a burst: report it (once)
    refused_in_burst: int  # refusals so far in the current burst
    scope: str  # what refused: "" | address | total


class EnrolGate:
    def __init__(self, per_address_per_min: float, total_per_min: float, clock=time.monotonic, max_addresses: int = MAX_ADDRESSES):
        self.per_address, self.total, self.clock, self.max_addresses = per_address_per_min, total_per_min, clock, max_addresses
        self._addresses: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (level, at)
        self._total = (total_per_min, clock())
        self._burst_last: float | None = None  # when the current burst last refused
        self._refused = 0
        self._lock = threading.Lock()

    @staticmethod
    def _level(bucket: tuple[float, float], per_min: float, now: float) -> float:
        level, at = bucket
        return min(per_min, level + (now - at) * per_min / 60.0)

    def admit(self, address: str) -> Admission:
        with self._lock:
            now = self.clock()
            mine = self._level(self._addresses.get(address, (self.per_address, now)), self.per_address, now)
            total = self._level(self._total, self.total, now)
            if mine >= 1 and total >= 1:
                self._addresses[address] = (mine - 1, now)
                self._addresses.move_to_end(address)
                while len(self._addresses) > self.max_addresses:
                    self._addresses.popitem(last=False)
                self._total = (total - 1, now)
                return Admission(0, False, self._refused, "")
            scope, level, per_min = ("address", mine, self.per_address) if mine < 1 else ("total", total, self.total)
            wait_s = max(1, math.ceil((1 - level) * 60.0 / per_min))
            started = self._burst_last is None or now - self._burst_last > BURST_QUIET_S
            if started:
                self._refused = 0
                logger.warning(
                    "enrolment burst: refusing enrolments over the limit client={} scope={} limit_per_min={:g}", address, scope, per_min
                )
            self._burst_last = now
            self._refused += 1
            return Admission(wait_s, started, self._refused, scope)
