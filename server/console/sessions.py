"""Console sign-in: argon2-checked passwords, server-side sessions, CSRF tokens and a login rate limit.

The session cookie holds 32 random bytes; the database keeps only their SHA-256, so a copy of the
database signs no one in, and signing out deletes the row (the session is gone everywhere). Every
session carries its own synchronizer token that each state-changing form must send back. Failed
logins are counted per client address and per user name in this process: five failures within
five minutes answer 429 with Retry-After until the oldest failure ages out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from server.console.tables import console_sessions
from server.database import writing
from server.schema import users
from server.times import aware

SESSION_COOKIE = "mw_session"
LOGIN_COOKIE = "mw_login"  # double-submit token of the login form (there is no session yet)
SESSION_S = 12 * 3600
MAX_FAILURES = 5
FAILURE_WINDOW_S = 300.0
_HASHER = PasswordHasher()
# verified against when the user does not exist, so an unknown name costs the same time as a wrong password
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class ConsoleUser:
    id: int
    name: str
    role: str  # admin | analyst
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_password(engine: Engine, name: str, password: str) -> tuple[int, str] | None:
    """(user id, role) when the password is right, else None."""
    with engine.connect() as conn:
        row = conn.execute(select(users.c.id, users.c.role, users.c.password_hash).where(users.c.name == name)).first()
    try:
        _HASHER.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return (row.id, row.role) if row else None


def open_session(engine: Engine, user_id: int, now: datetime) -> str:
    """A new session for the user; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    with writing(engine) as conn:
        conn.execute(delete(console_sessions).where(console_sessions.c.expires_at < now))
        conn.execute(
            insert(console_sessions).values(
                id_hash=_digest(token), user_id=user_id, csrf=secrets.token_urlsafe(32), created_at=now,
                expires_at=now + timedelta(seconds=SESSION_S),
            )
        )
    return token


def session_user(engine: Engine, token: str | None, now: datetime) -> ConsoleUser | None:
    if not token or len(token) > 128:
        return None
    query = (
        select(users.c.id, users.c.name, users.c.role, console_sessions.c.csrf, console_sessions.c.expires_at)
        .join(users, users.c.id == console_sessions.c.user_id)
        .where(console_sessions.c.id_hash == _digest(token))
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None or aware(row.expires_at) <= now:
        return None
    return ConsoleUser(row.id, row.name, row.role, row.csrf)


def close_session(engine: Engine, token: str | None) -> None:
    if token:
        with writing(engine) as conn:
            conn.execute(delete(console_sessions).where(console_sessions.c.id_hash == _digest(token)))


def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class LoginLimiter:
    """Failed logins per key (client address, user name) in a sliding window."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S, clock=time.monotonic):
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after_s(self, keys: list[str]) -> int:
        """0 when a login may be tried; else the seconds until one may."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.max_failures:
                    wait = max(wait, times[0] + self.window_s - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, keys: list[str]) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # a flood of made-up names must not grow memory without end
                self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > now - self.window_s}

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times


def hash_password(password: str) -> str:
    return _HASHER.hash(password)
