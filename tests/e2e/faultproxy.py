"""A TCP proxy between an agent and its collector that misbehaves on request.

Modes (switched while it runs; a switch closes the connections already open, so the agent's
next request meets the new mode):

- `pass`: bytes go both ways untouched;
- `drop`: like pass, but the answers to the first `drop_first` requests whose path starts with
  `drop_path` are thrown away the moment the collector starts sending them (so the collector has
  done the work and committed) and both connections are closed: the agent never learns that its
  request succeeded. With `drop_rate` and a seed, answers after those are dropped at random;
- `blackhole`: connections are accepted and whatever arrives is read and ignored; nothing is ever
  answered (a route that swallows packets);
- `refuse`: the port is closed: connections are refused.

Requests are told apart by their request line (`POST /api/v1/events HTTP/1.1`), which a JSON
body can never contain (CR and LF are escaped in JSON strings). Plain HTTP only.
"""

from __future__ import annotations

import random
import re
import socket
import threading

MODES = ("pass", "drop", "blackhole", "refuse")
_REQUEST_LINE = re.compile(rb"(?:GET|POST|PUT|PATCH|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n")


class FaultProxy:
    def __init__(self, upstream_port: int, port: int = 0, host: str = "127.0.0.1"):
        self.host, self.upstream = host, (host, upstream_port)
        self.port = port
        self.mode = "pass"
        self.drop_path, self.drop_first, self.drop_rate = "/api/v1/events", 0, 0.0
        self._random = random.Random(0)
        self.dropped = 0  # answers thrown away after the collector sent them
        self.swallowed = 0  # connections the black hole took in
        self.requests: list[str] = []  # request paths seen, in order
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._closed = False
        self._listen()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- control ---------------------------------------------------------------------------

    def set_mode(self, mode: str, drop_first: int = 0, drop_rate: float = 0.0, seed: int = 0, drop_path: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r}; one of {', '.join(MODES)}")
        with self._lock:
            self.mode = mode
            self.drop_first, self.drop_rate = drop_first, drop_rate
            self._random = random.Random(seed)
            if drop_path is not None:
                self.drop_path = drop_path
        self._close_connections()
        if mode == "refuse":
            self._stop_listening()
        elif self._listener is None:
            self._listen()

    def close(self) -> None:
        self._closed = True
        self._stop_listening()
        self._close_connections()

    # --- plumbing --------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]  # the same port again after `refuse`
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="faultproxy-accept", daemon=True).start()

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
            except OSError:
                pass
            listener.close()

    def _close_connections(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            _close(conn)

    def _track(self, *conns: socket.socket) -> None:
        with self._lock:
            self._conns.update(conns)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            self._track(client)
            if self.mode == "blackhole":
                self.swallowed += 1
                threading.Thread(target=_swallow, args=(client,), name="faultproxy-hole", daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)  # the collector is down: so are we
                continue
            self._track(upstream)
            paths: list[str] = []  # the requests sent on this connection, oldest first
            threading.Thread(target=self._requests, args=(client, upstream, paths), name="faultproxy-up", daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client, paths), name="faultproxy-down", daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, paths: list[str]) -> None:
        try:
            while data := client.recv(65536):
                for match in _REQUEST_LINE.finditer(data):
                    path = match.group(1).decode("ascii", "replace")
                    paths.append(path)
                    self.requests.append(path)
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)

    def _answers(self, upstream: socket.socket, client: socket.socket, paths: list[str]) -> None:
        answered = 0  # requests whose answer has started (one at a time: HTTP/1.1 without pipelining)
        try:
            while data := upstream.recv(65536):
                if len(paths) > answered:  # the first bytes of the answer to the newest request
                    answered = len(paths)
                    if self._should_drop(paths[-1]):
                        return  # the collector did the work; the agent will never hear it
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)

    def _should_drop(self, path: str) -> bool:
        with self._lock:
            if self.mode != "drop" or not path.startswith(self.drop_path):
                return False
            if self.drop_first > 0:
                self.drop_first -= 1
            elif not (self.drop_rate and self._random.random() < self.drop_rate):
                return False
            self.dropped += 1
            return True


def _swallow(conn: socket.socket) -> None:
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass
    finally:
        _close(conn)


def _close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()
