"""A watcher that polls: once at start, then every interval on a daemon thread.

Mounts (agent/media.py) and the IM and cloud-drive folders in the homes (agent/discovery.py) are
found by listing, not by events. The first poll runs in `start`, so what is there when the agent
starts is handled before it reports itself started; a poll that raises is logged and tried again
at the next round, so one bad listing never ends the watching.
"""

from __future__ import annotations

import threading

from loguru import logger


class Poller:
    """Subclasses set `poll_name` (the thread's and the log's name) and define `poll` and `poll_interval_s`."""

    poll_name = "poller"

    def poll(self) -> None:
        raise NotImplementedError

    def poll_interval_s(self) -> float:
        raise NotImplementedError

    def _init_poller(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.poll_name, daemon=True)

    def start(self) -> None:
        self._poll_once()  # what is there at start is handled before the thread starts
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval_s()):
            self._poll_once()

    def _poll_once(self) -> None:
        try:
            self.poll()
        except Exception:  # one bad poll must not end the watching: the next round tries again
            logger.exception("{} poll failed", self.poll_name)
