"""A collector task that runs on its own thread: once after a first delay, then at a fixed interval,
until stopped. A round that fails is logged and tried again at the next one: the collector keeps
serving whatever a background task does (retention's purge, the daily seals)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from loguru import logger


class Periodic:
    def __init__(self, name: str, call: Callable[[], object], first_delay_s: float, every_s: float):
        self.name, self.call, self.first_delay_s, self.every_s = name, call, first_delay_s, every_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        wait = self.first_delay_s
        while not self._stopping.wait(wait):
            wait = self.every_s
            try:
                self.call()
            except Exception as exc:  # tried again at the next round; the collector keeps serving
                logger.error("{} failed error={}: {!r}", self.name, type(exc).__name__, str(exc))
