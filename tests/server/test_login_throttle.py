"""The console's sign-in throttle under an attacker's script: parallel guesses from threads.

Each test sends its burst from real threads through one TestClient (one event loop, argon2 in the
threadpool, as uvicorn runs it), or against a real `miwei-server run` process on loopback, and
counts what reached the password check by wrapping the argon2 hasher the console verifies with.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text

import server.console.sessions as sessions
from server.console.throttle import MAX_NAME_FAILURES, MAX_VERIFYING
from tests.console.conftest import csrf_of
from tests.server.factories import ENROLL_SECRET

PASSWORD = "correct-horse-battery"
# dearer than the console tests' hash, so a burst overlaps the way real ones do (about 20 ms each)
SLOW = PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1)
BURST = 60
BURST_TIMEOUT_S = 60
MIWEI_SERVER = str(Path(sys.executable).parent / "miwei-server")
ARGON2_MIB = 64  # the default PasswordHasher's memory_cost


class CountingHasher:
    """The console's hasher, counting calls to verify and how many ran at once."""

    def __init__(self, hasher: PasswordHasher, hold_s: float = 0.0):
        self.hasher, self.hold_s = hasher, hold_s
        self.calls = self.running = self.peak = 0
        self._lock = threading.Lock()

    def verify(self, hashed: str, password: str) -> bool:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(self.hold_s)
            return self.hasher.verify(hashed, password)
        finally:
            with self._lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)


@pytest.fixture
def hasher(monkeypatch) -> CountingHasher:
    counting = CountingHasher(sessions._HASHER)
    monkeypatch.setattr(sessions, "_HASHER", counting)
    return counting


def burst(app, logins: list[tuple[str, str]], client: tuple[str, int] = ("testclient", 50000)) -> list:
    """Send the logins at once from one thread each (all from `client`); the answers in order."""
    answers: list = [None] * len(logins)
    ready = threading.Barrier(len(logins))

    def one(i: int, name: str, password: str) -> None:
        browser = TestClient(app, client=client, cookies={"mw_lang": "en"})
        token = csrf_of(browser.get("/console/login").text)
        ready.wait(timeout=BURST_TIMEOUT_S)
        answers[i] = browser.post(
            "/console/login", data={"csrf": token, "name": name, "password": password}, follow_redirects=False
        )

    threads = [threading.Thread(target=one, args=(i, *login), daemon=True) for i, login in enumerate(logins)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BURST_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a login did not finish in time"
    return answers


def audit_rows(engine, action: str) -> list:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT actor, target, details FROM audit_log WHERE action = :a ORDER BY id"), {"a": action}
        ).all()


@pytest.mark.reliability(
    area="access",
    fault="Parallel password guesses for one user",
    how=f"{BURST} wrong guesses for `admin` from {BURST} threads at once, then {BURST - 1} wrong and the right one at once, one address",
    outcome=f"at most {MAX_NAME_FAILURES} reach argon2 (41 of 60 did before), the rest 429 with Retry-After; the right guess in the second burst does not sign in",
)
def test_parallel_guesses_reach_the_password_check_at_most_the_limit(client, store, engine, hasher):
    store.create_user("admin", "admin", SLOW.hash(PASSWORD))

    first = burst(client.app, [("admin", f"wrong-guess-{i}") for i in range(BURST)])

    assert hasher.calls <= MAX_NAME_FAILURES, f"{hasher.calls} of {BURST} parallel guesses reached argon2"
    statuses = Counter(a.status_code for a in first)
    assert statuses == {401: hasher.calls, 429: BURST - hasher.calls}
    assert all(0 < int(a.headers["retry-after"]) <= 300 for a in first if a.status_code == 429)

    second = burst(client.app, [("admin", f"wrong-again-{i}") for i in range(BURST - 1)] + [("admin", PASSWORD)])
    assert {a.status_code for a in second} == {429}, "the right password got through a locked name"
    assert hasher.calls <= MAX_NAME_FAILURES
    assert len(audit_rows(engine, "login.failed")) == hasher.calls
    (locked,) = audit_rows(engine, "login.locked")
    assert locked.target == "user:admin" and json.loads(locked.details)["limit"] == "name"


@pytest.mark.reliability(
    area="access",
    fault="Parallel logins holding argon2's memory",
    how=f"{BURST} parallel logins of {BURST} different users with the right password, verification held 50 ms",
    outcome=f"at most {MAX_VERIFYING} password checks at once (16 and more before); the others sign in or get 429 with Retry-After: 1, none waits more than a few seconds",
)
def test_password_checks_at_once_are_bounded(client, store, monkeypatch):
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    hashed = cheap.hash(PASSWORD)
    for i in range(BURST):
        store.create_user(f"user{i}", "analyst", hashed)
    counting = CountingHasher(cheap, hold_s=0.05)
    monkeypatch.setattr(sessions, "_HASHER", counting)

    started = time.monotonic()
    answers = burst(client.app, [(f"user{i}", PASSWORD) for i in range(BURST)])

    assert counting.peak <= MAX_VERIFYING, f"{counting.peak} password checks ran at once"
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {303, 429} and statuses[303] == counting.calls >= MAX_VERIFYING
    refused = [(a.headers["retry-after"], re.findall(r"role=\"alert\">([^<]+)<", a.text)) for a in answers if a.status_code == 429]
    assert all(r == ("1", ["Too many sign-ins at once. Try again in a moment."]) for r in refused), [r for r in refused if r[1] != ["Too many sign-ins at once. Try again in a moment."]]
    assert time.monotonic() - started < 30


@pytest.mark.reliability(
    area="access",
    fault="One user's lockout from a shared office address",
    how="`admin` locked by wrong passwords sent in parallel; an analyst then signs in from the same address",
    outcome="the analyst signs in (before: 429 for everyone at that address); `login.ok`, `login.failed` and `login.locked` audit rows name the client, never a password",
)
def test_a_locked_name_does_not_lock_colleagues_behind_the_same_address(client, store, engine):
    store.create_user("admin", "admin", SLOW.hash(PASSWORD))
    store.create_user("li.na", "analyst", SLOW.hash(PASSWORD))
    office = ("198.51.100.7", 40000)

    guesses = burst(client.app, [("admin", f"wrong-{i}") for i in range(BURST // 4)], client=office)
    assert Counter(a.status_code for a in guesses)[401] <= MAX_NAME_FAILURES
    browser = TestClient(client.app, client=office)
    token = csrf_of(browser.get("/console/login").text)
    signed_in = browser.post(
        "/console/login", data={"csrf": token, "name": "li.na", "password": PASSWORD}, follow_redirects=False
    )
    assert signed_in.status_code == 303, signed_in.text
    assert browser.get("/console/").status_code == 200

    (ok,) = audit_rows(engine, "login.ok")
    assert (ok.actor, ok.target, json.loads(ok.details)) == ("console:li.na", "user:li.na", {"client": "198.51.100.7", "role": "analyst"})
    failed = audit_rows(engine, "login.failed")
    assert failed and all(json.loads(r.details) == {"client": "198.51.100.7"} and r.actor == "anonymous" for r in failed)
    with engine.connect() as conn:
        everything = " ".join(str(v) for row in conn.execute(text("SELECT * FROM audit_log")).all() for v in row)
    assert PASSWORD not in everything and "wrong-" not in everything


def test_a_typed_name_is_bounded_and_escaped_in_the_audit_log(client, engine):
    browser = TestClient(client.app)
    token = csrf_of(browser.get("/console/login").text)
    typed = "ad\x1b[31mmin\u202e" + "x" * 500
    browser.post("/console/login", data={"csrf": token, "name": typed, "password": "wrong"}, follow_redirects=False)
    (row,) = audit_rows(engine, "login.failed")
    assert row.target.startswith("user:ad\\x1b[31mmin\\u202e") and "\x1b" not in row.target and len(row.target) < 100


# --- a real collector process -----------------------------------------------------------------


def _vm_hwm_kib(pid: int) -> int:
    """Peak resident memory of a process so far (VmHWM)."""
    found = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert found, "no VmHWM in /proc: not Linux?"
    return int(found.group(1))


@pytest.fixture
def collector_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "config.yaml"
    config.write_text(
        f"server:\n  listen: 127.0.0.1:{port}\n  database: sqlite:///./var/miwei.db\n  enroll_secret: {ENROLL_SECRET}\n",
        encoding="utf-8",
    )
    made = subprocess.run(
        [MIWEI_SERVER, "create-user", "-c", str(config), "admin", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    log = (tmp_path / "server.log").open("w+", encoding="utf-8")
    proc = subprocess.Popen([MIWEI_SERVER, "run", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"miwei-server exited:\n{Path(log.name).read_text()}"
            try:
                if requests.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "miwei-server did not answer in 30 s"
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _login(url: str, name: str, password: str, ready: threading.Barrier | None = None) -> int:
    with requests.Session() as browser:
        page = browser.get(f"{url}/console/login", timeout=30)
        if ready is not None:
            ready.wait(timeout=BURST_TIMEOUT_S)
        return browser.post(
            f"{url}/console/login", data={"csrf": csrf_of(page.text), "name": name, "password": password},
            allow_redirects=False, timeout=30,
        ).status_code  # fmt: skip


@pytest.mark.slow
@pytest.mark.reliability(
    area="access",
    fault="Parallel logins against the collector's memory",
    how="80 parallel logins (40 names, wrong passwords) against `miwei-server run` on loopback; peak RSS (VmHWM) before and after",
    outcome=f"peak memory grows by less than {MAX_VERIFYING + 2} argon2 checks ({ARGON2_MIB} MiB each; before: 2.4 GiB); every login is answered",
)
def test_parallel_logins_do_not_multiply_argon2_memory(collector_process):
    url, pid = collector_process
    assert _login(url, "admin", PASSWORD) == 303  # the first check maps argon2's memory once
    before_kib = _vm_hwm_kib(pid)

    logins = [(f"someone{i % 40}", f"wrong-{i}") for i in range(80)]
    ready = threading.Barrier(len(logins))
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda n=n, p=p: statuses.append(_login(url, n, p, ready)), daemon=True) for n, p in logins
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BURST_TIMEOUT_S)
    grown_mib = (_vm_hwm_kib(pid) - before_kib) / 1024

    assert len(statuses) == len(logins) and set(statuses) <= {401, 429}
    assert grown_mib < (MAX_VERIFYING + 2) * ARGON2_MIB, f"peak RSS grew by {grown_mib:.0f} MiB"
