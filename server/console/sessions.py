"""Console sign-in: argon2-checked passwords, server-side sessions, CSRF tokens and the sign-in audit.

The session cookie holds 32 random bytes; the database keeps only their SHA-256, so a copy of the
database signs no one in, and signing out deletes the row (the session is gone everywhere). Every
session carries its own synchronizer token that each state-changing form must send back. How
many sign-ins may be tried, and how many passwords checked at once, is server/console/throttle.py.

Sign-ins (`login.ok`, in the transaction that opens the session), failures (`login.failed`),
lockouts (`login.locked`) and sign-outs (`logout`, in the transaction that closes the session) go
to the audit log with the client address. Attempts the throttle refuses before any password is
checked are logged, not audited: the lockout row says it began. The user name is written
as typed, at most MAX_NAME_CHARS, with characters that do not print escaped; never a password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from server import audit
from server.console.tables import console_sessions
from server.database import writing
from server.schema import users
from server.times import aware

SESSION_COOKIE = "mw_session"
LOGIN_COOKIE = "mw_login"  # double-submit token of the login form (there is no session yet)
SESSION_S = 12 * 3600
MAX_NAME_CHARS = 64  # a longer user name typed into the form is cut here
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


@dataclass(frozen=True)
class SignIn:
    """Who signed in from where, for the audit row written with the session."""

    name: str
    role: str
    client: str


def shown_name(name: str) -> str:
    """A user name as typed, for logs and the audit log: bounded, non-printing characters escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name[:MAX_NAME_CHARS])


def audit_sign_in(engine: Engine, now: datetime, action: str, name: str, client: str, details: dict | None = None) -> None:
    """A `login.failed` or `login.locked` row; the actor is unknown (no one signed in)."""
    with writing(engine) as conn:
        audit.record(conn, now, "anonymous", action, f"user:{shown_name(name)}", {"client": client, **(details or {})})


def open_session(engine: Engine, user_id: int, now: datetime, signed_in: SignIn | None = None) -> str:
    """A new session for the user, and its `login.ok` audit row; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    with writing(engine) as conn:
        if signed_in is not None:
            name = shown_name(signed_in.name)
            audit.record(conn, now, f"console:{name}", "login.ok", f"user:{name}", {"client": signed_in.client, "role": signed_in.role})
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


def close_session(engine: Engine, token: str | None, now: datetime | None = None, signed_out: SignIn | None = None) -> None:
    """Sign out: the session row goes, and with `signed_out` a `logout` audit row (who, from where)
    is written in the same transaction, only when there was a session to close."""
    if token:
        with writing(engine) as conn:
            gone = conn.execute(delete(console_sessions).where(console_sessions.c.id_hash == _digest(token))).rowcount
            if gone and signed_out is not None and now is not None:
                name = shown_name(signed_out.name)
                audit.record(conn, now, f"console:{name}", "logout", f"user:{name}", {"client": signed_out.client, "role": signed_out.role})


def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)
