"""Test parts for notifications: a local HTTP receiver, a real SMTP server (aiosmtpd), log capture."""

from __future__ import annotations

import json
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from loguru import logger

from tests.server.factories import ENROLL_SECRET, Agent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Hit:
    path: str
    headers: dict
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """http.server on a thread; `answers` are taken in turn ("ok", 500, "redirect", "huge"), then "ok"."""

    answers: list = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    huge_written: list[int] = field(default_factory=list)  # bytes of a huge answer the server got out
    port: int = 0

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"


@contextmanager
def http_receiver(answers=()):
    rig = Receiver(list(answers))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rig.hits.append(Hit(self.path, dict(self.headers), body))
            answer = rig.answers.pop(0) if rig.answers else "ok"
            if answer == "redirect":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{rig.port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif answer == "huge":
                total, chunk, written = 64 * 1024 * 1024, b"x" * 65536, 0
                self.send_response(200)
                self.send_header("Content-Length", str(total))
                self.end_headers()
                try:
                    while written < total:
                        self.wfile.write(chunk)
                        written += len(chunk)
                except OSError:
                    pass
                rig.huge_written.append(written)
            else:
                status = 200 if answer == "ok" else int(answer)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rig.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rig
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def smtp_server(password: str):
    """aiosmtpd on localhost with AUTH (LOGIN/PLAIN, allowed without TLS on loopback); yields (port, envelopes)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    envelopes: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
            envelopes.append(envelope)
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=isinstance(auth_data, LoginPassword) and auth_data.password == password.encode())

    port = free_port()
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        yield port, envelopes
    finally:
        controller.stop()


@contextmanager
def captured_logs():
    """Everything loguru logs meanwhile, at every level, as one list of lines."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{level} {message}")
    try:
        yield lines
    finally:
        logger.remove(sink)


def enroll_agent(client, agent_id: str = "5f0c2a4e-9d7b-4c8e-8a51-2b6f3f1e0a11") -> Agent:
    body = {"enroll_secret": ENROLL_SECRET, "agent_id": agent_id, "hostname": "pc-0042", "version": "0.1.0"}
    response = client.post("/api/v1/enroll", json=body)
    assert response.status_code == 200, response.text
    return Agent(response.json()["agent_id"], response.json()["token"])


def post_events(client, agent: Agent, events: list[dict]) -> dict:
    response = client.post("/api/v1/events", json={"events": events}, headers=agent.headers)
    assert response.status_code == 200, response.text
    return response.json()
