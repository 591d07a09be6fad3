"""The agent's side of the inspection workers: one process per caller, with a deadline.

`InspectorProcess.inspect(fd, name)` hands an open descriptor to a worker process
(agent/content/worker.py) and waits for its answer until a deadline. A worker that overruns it,
crashes or answers nonsense is killed and replaced, and the file gets an `inspection_timeout` or
`inspection_failed` detection instead of an answer: the agent never waits on a parser, and a
hostile document costs at most one deadline.

Workers run as an unprivileged user (`agent.inspect_user`, default `nobody`) when the agent is
root. Each lane of the pipeline owns one InspectorProcess, so inspection is a bounded pool.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from loguru import logger

from agent.content.archive import TEXT_TRACED_FINGERPRINTS, Member
from agent.content.chunks import KEEP
from agent.content.inspect import MAX_BYTES, MAX_SECONDS, Inspection, inspect_source
from agent.content.worker import HEADER, MAX_ANSWER_BYTES, receive_exactly, send_message
from agent.walk import open_file
from rules.events import Detection

GRACE_S = 5.0  # beyond the worker's own budget: pages that overrun their check (start-up has its own)
START_TIMEOUT_S = 30.0
FAILURES_BEFORE_REST = 3  # workers dying one after another (one that cannot start dies at once)...
REST_S = 30.0  # ...are not restarted for this long: each file then fails fast, not after a start
IDLE_S = 120.0  # a worker with nothing to inspect for this long is ended (restarted on demand)
UNPRIVILEGED_FALLBACK = 65534  # the conventional nobody/nogroup where no such user exists

Inspect = Callable[[int, str], Inspection]  # (open descriptor, file name) -> Inspection


def worker_ids(user: str | None) -> tuple[int, int]:
    """The uid and gid workers run as: the named user when the agent is root, else our own."""
    import pwd  # POSIX only: workers run in processes of their own only there (see make_inspector)

    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam(user or "nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        if user and user != "nobody":
            raise ValueError(f"agent.inspect_user: no such user {user!r}") from None
        return UNPRIVILEGED_FALLBACK, UNPRIVILEGED_FALLBACK


class InspectorProcess:
    """One worker process; not shared between threads (each lane owns one)."""

    def __init__(
        self,
        user: str | None = "nobody",
        max_bytes: int = MAX_BYTES,
        max_seconds: float = MAX_SECONDS,
        grace_s: float = GRACE_S,
    ) -> None:
        self.uid, self.gid = worker_ids(user)
        self.max_bytes, self.max_seconds, self.grace_s = max_bytes, max_seconds, grace_s
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self.replaced = 0  # workers killed for overrunning or failing (status and tests read it)
        self._used_at = 0.0  # time.monotonic() of the last inspection
        self._failed_in_a_row = 0  # workers that died without an answer, one after another
        self._resting_until = 0.0  # time.monotonic(): no new worker before then

    def inspect(self, fd: int, name: str) -> Inspection:
        with self._lock:
            self._used_at = time.monotonic()
            if time.monotonic() < self._resting_until:  # a worker that cannot start is not restarted per file
                return _failed("inspection_failed", "inspection workers keep failing; see the agent log")
            try:
                self._ensure_started()
                request = {"name": name, "max_bytes": self.max_bytes, "max_seconds": self.max_seconds, "deadline_s": self.max_seconds + self.grace_s}
                send_message(self._sock, request, fd)
                answer = self._answer(time.monotonic() + self.max_seconds + self.grace_s)
                self._failed_in_a_row = 0
                return decode_inspection(answer)
            except TimeoutError:
                logger.warning("inspection overran its deadline name={!r} deadline_s={}", name, self.max_seconds + self.grace_s)
                self._replace()
                return _failed("inspection_timeout", f"no answer within {self.max_seconds + self.grace_s:.0f} s")
            except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
                logger.warning("inspection worker failed name={!r} error={!r}", name, type(exc).__name__)
                self._replace()
                self._failed_in_a_row += 1
                if self._failed_in_a_row >= FAILURES_BEFORE_REST:
                    logger.error("inspection workers keep failing count={} resting_s={}", self._failed_in_a_row, REST_S)
                    self._resting_until = time.monotonic() + REST_S
                return _failed("inspection_failed", f"worker failed: {type(exc).__name__}")

    def close(self) -> None:
        with self._lock:
            self._kill()

    def close_if_idle(self, idle_s: float = IDLE_S) -> None:
        """End the worker when it has had nothing to do for idle_s (about 50 MB an idle agent
        need not hold); the next file starts a fresh one. Never waits for a busy worker."""
        if self._proc is None or time.monotonic() - self._used_at < idle_s or not self._lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._used_at >= idle_s:
                self._kill()
        finally:
            self._lock.release()

    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._kill()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.set_inheritable(False)
        argv = [sys.executable, "-m", "agent.content.worker", str(theirs.fileno()), str(self.uid), str(self.gid)]
        try:
            self._proc = subprocess.Popen(argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, cwd="/")
        finally:
            theirs.close()
        self._sock = ours
        # started, warmed up (its parsers loaded) and unprivileged: a file's deadline counts the
        # inspection alone, so a slow start on a busy PC is not taken for a hostile file
        try:
            ready = self._answer(time.monotonic() + START_TIMEOUT_S)
        except TimeoutError:
            raise OSError(f"the inspection worker did not start within {START_TIMEOUT_S:.0f} s") from None
        if ready != {"ready": True}:
            raise ValueError("the inspection worker did not say it was ready")

    def _answer(self, deadline: float) -> dict:
        (length,) = HEADER.unpack(receive_exactly(self._sock, HEADER.size, deadline))
        if length > MAX_ANSWER_BYTES:
            raise ValueError("answer too large")
        return json.loads(receive_exactly(self._sock, length, deadline))

    def _replace(self) -> None:
        self.replaced += 1
        self._kill()  # the next call starts a fresh worker

    def _kill(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(START_TIMEOUT_S)
        except PermissionError:  # it runs as another user, and we lack CAP_KILL: its own alarm ends it
            logger.error("cannot kill inspection worker pid={} (the service needs CAP_KILL)", proc.pid)
        except subprocess.TimeoutExpired:
            logger.error("inspection worker did not die pid={}", proc.pid)


class InProcessInspector:
    """Inspection on the calling thread, for tools that run as the user (tests, `scan` without
    root). Same answers as a worker, none of its isolation."""

    def __init__(self, max_bytes: int = MAX_BYTES, max_seconds: float = MAX_SECONDS) -> None:
        self.max_bytes, self.max_seconds = max_bytes, max_seconds

    def inspect(self, fd: int, name: str) -> Inspection:
        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            return inspect_source(f, name, self.max_bytes, self.max_seconds)

    def close(self) -> None:
        pass

    def close_if_idle(self, idle_s: float = IDLE_S) -> None:
        pass


def make_inspector(user: str | None, max_seconds: float) -> InspectorProcess | InProcessInspector:
    """A worker process where descriptors can be passed (POSIX); on Windows, inspection in the
    agent's own process until a restricted-token worker exists (README, what is not here yet)."""
    if os.name != "posix":
        return InProcessInspector(max_seconds=max_seconds)
    return InspectorProcess(user, max_seconds=max_seconds)


def decode_inspection(answer: dict) -> Inspection:
    """A worker's JSON answer as an Inspection, checked field by field (a worker parsed a hostile
    file: its answer is input, not trusted data)."""
    file_type = answer["file_type"]
    mismatch = answer["type_mismatch"]
    if not (file_type is None or isinstance(file_type, str)) or not (mismatch is None or isinstance(mismatch, bool)):
        raise TypeError("bad type fields")
    members = tuple(
        Member(_text(name), _int(depth), _int(size), _text(sha256), _detections(found), _sketch(sketch), _fingerprints(texts))
        for name, depth, size, sha256, found, sketch, texts in answer["members"]
    )
    if sum(len(m.fingerprints) for m in members) > TEXT_TRACED_FINGERPRINTS:
        raise TypeError("too many member fingerprints")
    fingerprints = _fingerprints(answer["fingerprints"])
    return Inspection(file_type, mismatch, _detections(answer["detections"]), members, fingerprints)


def _fingerprints(items: list) -> frozenset[int]:
    if not isinstance(items, list):
        raise TypeError("bad fingerprints")
    return frozenset(_int(h) for h in items)


def _sketch(items: list) -> tuple[int, ...]:
    if not isinstance(items, list) or len(items) > KEEP:
        raise TypeError("bad member sketch")
    return tuple(_int(h) for h in items)


def _detections(items: list) -> tuple[Detection, ...]:
    return tuple(Detection(_text(d), _int(c), _text(s)) for d, c, s in items)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected text")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected an integer")
    return value


def _failed(detector: str, why: str) -> Inspection:
    return Inspection(None, None, (Detection(detector, 1, why),))


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """Open a file once for hashing and inspection: no symlink followed, no blocking on a FIFO,
    and only a regular file kept (OSError otherwise)."""
    fd = open_file(path)  # any length: past PATH_MAX one directory at a time
    try:
        return fd, os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise




class WorkerFingerprints:
    """The fingerprints of a classified document for the index (its `fingerprint` callable), read
    by an inspection worker: employees save documents into classified folders too, so the same
    parsers run there without root as for egress files."""

    def __init__(self, inspector: InspectorProcess | InProcessInspector) -> None:
        self.inspector = inspector

    def __call__(self, path: str) -> frozenset[int]:
        try:
            fd = open_file(path)
        except OSError:
            return frozenset()
        try:
            return self.inspector.inspect(fd, os.path.basename(path)).fingerprints
        finally:
            os.close(fd)
