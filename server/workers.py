"""Several ingest workers on one host: a supervisor process and `server.workers` children.

One collector process stores events on one core (its per-event work is Python under one GIL); a
second process on the same database nearly doubled the rate. So `miwei-server run` with
`server.workers` above 1 (0 or absent: one per core this process may run on) works like this:

- The supervisor does everything a single collector does before serving (migrate, activate the
  policy, load the signing key, build the app), closes its database connections, freezes what is
  alive (gc.freeze: the children share those pages copy-on-write) and binds the address once,
  without listening. Then it forks one child per slot. It starts no thread and opens no connection
  itself, so a fork never copies a lock held by another thread or a connection another process uses.
- Each child serves HTTP with uvicorn on an inherited socket of its slot (TLS settings unchanged),
  bound with SO_REUSEPORT on Linux so that the kernel spreads connections over the workers
  (`bind_all`). A worker calls listen() once its app has started, so until one can answer a client
  is refused, as with one process, not left waiting.
- On SQLite the workers queue for the one writer in an flock (server/writerlock.py).
- Slot 0 alone runs the background tasks: absence checks, the notification sender, retention and
  daily seals (`app.state.background`, read by the app's lifespans). A restarted slot 0 takes them
  up again. Each of them is also safe with several collectors on one database (absence silences
  are inserted ON CONFLICT DO NOTHING, notifications are leased, seals lock their day, a purge of
  rows already gone deletes nothing), so an overlap during a restart cannot double them.
- A child that dies is restarted in its slot, after RESTART_DELAY_S, doubling while it keeps
  dying within FAST_FAILURE_S of its start; after MAX_FAST_FAILURES such deaths in a row the
  supervisor stops everything and exits with a failure (a broken database or config: systemd's
  Restart= takes over). SIGTERM or SIGINT to the supervisor: SIGTERM to every child, which finish
  the requests in flight and stop their tasks; after STOP_TIMEOUT_S the rest are killed.

What stays per process (hence per worker) is written down in docs/architecture.md, "Several
ingest workers".
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

RESTART_DELAY_S = 0.5
MAX_RESTART_DELAY_S = 30.0
FAST_FAILURE_S = 10.0  # a child that dies sooner after its start counts as failing to start
MAX_FAST_FAILURES = 5
STOP_TIMEOUT_S = 25.0  # below the systemd unit's TimeoutStopSec=30
POLL_S = 0.2
REUSE_PORT = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")  # the kernel balances connections


def worker_count(setting: int) -> int:
    """`server.workers`: 0 means one per core this process may run on."""
    if setting > 0:
        return setting
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def bind_all(host: str, port: int, count: int) -> list[socket.socket]:
    """One bound socket per worker (Linux: SO_REUSEPORT), or one shared by all elsewhere.

    With one shared socket the workers' event loops race for each new connection and a winner
    takes all that are queued: measured with 24 agents connecting at once, one worker held 20 of
    their keep-alive connections. With SO_REUSEPORT the kernel spreads connections over the
    workers' sockets by a hash of their addresses. The address is first bound exclusively, so
    another collector already on the port is an error here too, not a silent partner.
    """
    probe = bind(host, port)
    if count == 1 or not REUSE_PORT:
        return [probe]
    probe.close()
    return [bind(host, port, reuse_port=True) for _ in range(count)]


def bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A socket bound to the address (what uvicorn would bind for one process)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    # not listening yet: a worker's event loop calls listen() once its app has started, so until a
    # worker can answer a client's connect is refused, as with one process (not left waiting)
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True)
class Exit:
    """How a child ended, from its wait status."""

    pid: int
    code: int | None  # exit code, or None when a signal ended it
    signal: int | None

    @staticmethod
    def of(pid: int, status: int) -> Exit:
        if os.WIFSIGNALED(status):
            return Exit(pid, None, os.WTERMSIG(status))
        return Exit(pid, os.waitstatus_to_exitcode(status), None)

    def describe(self) -> str:
        return f"code={self.code}" if self.signal is None else f"signal={signal.Signals(self.signal).name}"


@dataclass
class _Slot:
    index: int
    pid: int | None = None
    started_at: float = 0.0
    fast_failures: int = 0
    restart_at: float = 0.0


class Supervisor:
    """Forks `count` children running `serve(slot)` (its return is the child's exit code) and keeps
    them running until SIGTERM/SIGINT; `run()` returns the supervisor's exit code."""

    def __init__(self, count: int, serve: Callable[[int], int], clock: Callable[[], float] = time.monotonic):
        self.count, self.serve, self.clock = count, serve, clock
        self.slots = [_Slot(i) for i in range(count)]
        self._stopping = False
        self._failed = False

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            logger.info("supervisor started pid={} workers={}", os.getpid(), self.count)
            for slot in self.slots:
                self._start(slot)
            while not self._stopping:
                self._reap()
                self._restart_due()
                if not self._stopping:
                    time.sleep(POLL_S)
            self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        logger.info("collector stopped workers={}", self.count)
        return 1 if self._failed else 0

    def pids(self) -> list[int]:
        return [s.pid for s in self.slots if s.pid is not None]

    def _on_stop(self, signum, _frame) -> None:
        if not self._stopping:
            logger.info("stopping signal={} workers={}", signal.Signals(signum).name, len(self.pids()))
        self._stopping = True

    def _start(self, slot: _Slot) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(slot.index)
        slot.pid, slot.started_at = pid, self.clock()
        logger.info("worker started slot={} pid={}{}", slot.index, pid, " background=yes" if slot.index == 0 else "")

    def _child(self, index: int) -> None:
        """Never returns: the child's life ends in os._exit, not in the supervisor's code."""
        code = 1
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            code = self.serve(index)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        except BaseException as exc:  # noqa: BLE001 - the child must end here, whatever happened
            logger.error("worker failed slot={} error={}: {!r}", index, type(exc).__name__, str(exc))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is None:
                continue
            ended = Exit.of(pid, status)
            slot.pid = None
            if self._stopping:
                continue
            now = self.clock()
            slot.fast_failures = slot.fast_failures + 1 if now - slot.started_at < FAST_FAILURE_S else 0
            if slot.fast_failures >= MAX_FAST_FAILURES:
                logger.error("worker keeps failing at start slot={} {} failures={}; stopping", slot.index, ended.describe(), slot.fast_failures)
                self._failed = self._stopping = True
                return
            delay_s = min(MAX_RESTART_DELAY_S, RESTART_DELAY_S * 2 ** slot.fast_failures)
            slot.restart_at = now + delay_s
            logger.warning("worker died slot={} pid={} {}; restarting in {:.1f} s", slot.index, pid, ended.describe(), delay_s)

    def _restart_due(self) -> None:
        now = self.clock()
        for slot in self.slots:
            if slot.pid is None and not self._stopping and now >= slot.restart_at:
                self._start(slot)

    def _stop_all(self) -> None:
        for pid in self.pids():
            _signal(pid, signal.SIGTERM)
        deadline = self.clock() + STOP_TIMEOUT_S
        while self.pids() and self.clock() < deadline:
            self._reap()
            time.sleep(0.05)
        for pid in self.pids():
            logger.warning("worker did not stop within timeout_s={} pid={}; killing it", STOP_TIMEOUT_S, pid)
            _signal(pid, signal.SIGKILL)
        while self.pids():
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            for slot in self.slots:
                if slot.pid == pid:
                    slot.pid = None


def run_workers(config, store, count: int, uvicorn_options: dict) -> int:
    """Serve `config.listen` with `count` worker processes until stopped; returns the exit code."""
    import uvicorn

    from server import heap, writerlock
    from server.app import _activate_policy, create_app
    from server.enrolgate import EnrolGate
    from server.filemodes import sqlite_path

    host, port = config.listen
    try:
        sockets = bind_all(host, port, count)
    except OSError as exc:
        logger.error("cannot listen address={}:{} error={!r}", host, port, str(exc))
        return 1
    app = create_app(config, store)
    _activate_policy(config, store)  # once, here: the workers inherit the built policy
    app.state.policy_activated = True
    app.state.enrol_gate = EnrolGate(*share_of((config.enroll_per_address_per_min, config.enroll_total_per_min), count))
    database_file = sqlite_path(config.database)
    if database_file:  # the workers queue for SQLite's one writer in the kernel (server/writerlock.py)
        writerlock.install(store.engine, database_file + "-writer")
    store.engine.dispose()  # no connection crosses a fork: each worker opens its own
    heap.settle()  # server/heap.py; the frozen heap is shared with the workers copy-on-write

    def serve(slot: int) -> int:
        _die_with_parent()
        sock = sockets[slot % len(sockets)]
        for other in sockets:  # the supervisor keeps them: connections queued on a dead worker's wait for its successor
            if other is not sock:
                other.close()
        app.state.background = slot == 0
        server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options))
        signal.signal(signal.SIGTERM, _exit_quietly)  # what uvicorn puts back and raises again after its clean stop
        server.run(sockets=[sock])
        return 0 if server.started else 3

    code = Supervisor(count, serve).run()
    for sock in sockets:
        sock.close()
    return code


def share_of(per_min: tuple[float, ...], count: int) -> tuple[float, ...]:
    """A worker's part of collector-wide rates (at least one a minute, so each still admits)."""
    return tuple(max(1.0, rate / count) for rate in per_min)


def _exit_quietly(_signum, _frame) -> None:
    raise SystemExit(0)


def _die_with_parent() -> None:
    """A supervisor killed outright (SIGKILL) takes its workers with it (Linux), as a single process would."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
