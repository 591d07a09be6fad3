"""`miwei-server create-user`, `create-token` and `migrate` as an administrator runs them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

SERVER = str(Path(sys.executable).parent / "miwei-server")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  database: sqlite:///./miwei.db\n  enroll_secret: a-long-enough-secret-value\n")
    return path


def _run(config, *args, stdin: str = ""):
    return subprocess.run([SERVER, *args, "-c", str(config)], input=stdin, capture_output=True, text=True, timeout=60)


def test_create_user_stores_an_argon2_hash_never_the_password(config, tmp_path):
    done = _run(config, "create-user", "wang.li", "--role", "analyst", "--password-stdin", stdin="correct horse battery\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "created analyst 'wang.li'"
    with sqlite3.connect(tmp_path / "miwei.db") as conn:
        role, stored = conn.execute("SELECT role, password_hash FROM users WHERE name = 'wang.li'").fetchone()
    assert role == "analyst"
    assert "correct horse" not in stored and stored.startswith("$argon2")
    assert PasswordHasher().verify(stored, "correct horse battery")


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["create-user", "bob", "--role", "admin", "--password-stdin"], "short\n", "at least 12 characters"),
        (["create-user", "bob smith", "--role", "admin", "--password-stdin"], "long enough password\n", "a user name is"),
        (["create-user", "<b>x</b>", "--role", "admin", "--password-stdin"], "long enough password\n", "a user name is"),
        (["create-token", "bad name!"], "", "a token name is"),
    ],
)
def test_bad_input_is_refused_with_exit_2(config, args, stdin, message):
    done = _run(config, *args, stdin=stdin)
    assert done.returncode == 2
    assert message in done.stderr


def test_role_must_be_admin_or_analyst(config):
    done = _run(config, "create-user", "bob", "--role", "root", "--password-stdin", stdin="long enough password\n")
    assert done.returncode == 2
    assert "invalid choice: 'root'" in done.stderr


def test_existing_user_is_not_overwritten(config):
    _run(config, "create-user", "admin", "--role", "admin", "--password-stdin", stdin="first password 123\n")
    done = _run(config, "create-user", "admin", "--role", "analyst", "--password-stdin", stdin="second password 123\n")
    assert done.returncode == 2 and "exists already" in done.stderr


def test_create_token_prints_a_new_token_each_time_and_stores_only_its_hash(config, tmp_path):
    first, second = (_run(config, "create-token", "soc-script").stdout.strip() for _ in range(2))
    assert first.startswith("mwt_") and second.startswith("mwt_") and first != second
    with sqlite3.connect(tmp_path / "miwei.db") as conn:
        stored = [row[0] for row in conn.execute("SELECT token_hash FROM api_tokens")]
    assert len(stored) == 2 and first not in stored and second not in stored


def test_migrate_says_what_it_did(config):
    first = _run(config, "migrate")
    assert first.returncode == 0 and "(was None)" in first.stdout
    again = _run(config, "migrate")
    assert "already up to date" in again.stdout
