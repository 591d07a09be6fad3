"""The agent watching itself, in the spirit of osquery's watchdog: CPU and memory caps.

The agent runs on every employee PC and must stay small. Every `interval_s` it samples its own CPU
time and resident memory (psutil). CPU above `cpu_percent` of one core, averaged over `window_s`,
and resident memory above `memory_mb` are reported as an `agent.limit` event (at most once per
`quiet_s` per kind, so a busy hour is one event, not hundreds). Over the CPU cap the agent also
lowers its own scheduling priority once (nice 10): a bulk copy then yields to the user's work
instead of competing with it. Memory held above `restart_factor` times the cap for `window_s`
asks for a restart (`on_restart`): the agent stops cleanly, everything spooled is kept, and the
service manager starts it again (Restart=on-failure), as osquery's watchdog restarts its worker.
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import psutil
from loguru import logger

MB = 1024 * 1024
RESTART_EXIT_CODE = 75  # EX_TEMPFAIL: the service manager restarts the agent


@dataclass(frozen=True)
class Caps:
    cpu_percent: float = 25.0  # of one core, averaged over window_s
    memory_mb: int = 200  # resident
    window_s: float = 60.0
    interval_s: float = 5.0
    quiet_s: float = 3600.0  # one event per kind per this long
    restart_factor: float = 2.0


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    cpu_s: float  # user + system CPU seconds so far
    rss: int  # bytes


def own_sample(process: psutil.Process | None = None) -> Sample:
    p = process or psutil.Process()
    times = p.cpu_times()
    return Sample(time.monotonic(), times.user + times.system, p.memory_info().rss)


class SelfWatch:
    def __init__(
        self,
        caps: Caps,
        emit: Callable[..., None],
        on_restart: Callable[[str], None],
        sample: Callable[[], Sample] = own_sample,
        renice: Callable[[int], None] = os.nice,
    ) -> None:
        self.caps = caps
        self.emit = emit  # emit(event_type, **fields)
        self.on_restart = on_restart
        self.sample = sample
        self.renice = renice
        self._samples: deque[Sample] = deque()
        self._last_event: dict[str, float] = {}
        self._over_memory_since: float | None = None
        self._reniced = False
        self._restart_asked = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="selfwatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.caps.interval_s):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - watching ourselves must never stop the agent
                logger.warning("self-check failed error={!r}", type(exc).__name__)

    def check(self) -> None:
        """Take a sample and act on it; called every interval_s (tests call it directly)."""
        now = self.sample()
        self._samples.append(now)
        while len(self._samples) > 2 and now.at - self._samples[1].at >= self.caps.window_s:
            self._samples.popleft()  # keep just over one window
        first = self._samples[0]
        span = now.at - first.at
        if span >= self.caps.window_s * 0.9:
            cpu = 100.0 * (now.cpu_s - first.cpu_s) / span
            if cpu > self.caps.cpu_percent:
                self._over("cpu", now.at, round(cpu, 1), self.caps.cpu_percent, "%")
                if not self._reniced:
                    self._reniced = True
                    try:
                        self.renice(10)
                        logger.warning("agent over its CPU cap: running at lower priority cpu_percent={:.1f}", cpu)
                    except OSError:
                        pass
        self._check_memory(now)

    def _check_memory(self, now: Sample) -> None:
        cap = self.caps.memory_mb * MB
        if now.rss <= cap:
            self._over_memory_since = None
            return
        self._over("memory", now.at, round(now.rss / MB, 1), self.caps.memory_mb, "MB")
        if now.rss <= cap * self.caps.restart_factor:
            self._over_memory_since = None
            return
        if self._over_memory_since is None:
            self._over_memory_since = now.at
        elif now.at - self._over_memory_since >= self.caps.window_s and not self._restart_asked:
            self._restart_asked = True
            why = f"resident memory {now.rss / MB:.0f} MB over {self.caps.restart_factor:g} x the {self.caps.memory_mb} MB cap"
            logger.error("agent restarting itself reason={!r}", why)
            self.on_restart(why)

    def _over(self, kind: str, at: float, value: float, cap: float, unit: str) -> None:
        last = self._last_event.get(kind)
        if last is not None and at - last < self.caps.quiet_s:
            return
        self._last_event[kind] = at
        logger.warning("agent over its {} cap value={}{} cap={}{}", kind, value, unit, cap, unit)
        self.emit(
            "agent.limit",
            error=f"{kind} over the cap: {value} {unit} (cap {cap} {unit})",
            details={"limit": kind, "value": value, "cap": cap, "unit": unit},
        )


def release_memory() -> None:
    """Hand memory freed by a burst of work (the start-up index refresh holds a row and a stat for
    every classified file at once) back to the system, so the idle agent's resident size is what it
    keeps, not what it once needed. glibc keeps freed heap for reuse unless asked (malloc_trim);
    elsewhere only the collection runs."""
    gc.collect()
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without it)
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
