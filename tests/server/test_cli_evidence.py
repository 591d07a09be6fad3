"""`miwei-server signing-key`, `seal` and `verify-pack` as an administrator runs them (real processes)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

SERVER = str(Path(sys.executable).parent / "miwei-server")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  database: sqlite:///./var/miwei.db\n  enroll_secret: a-long-enough-secret-value\n")
    return path


def _run(*args):
    return subprocess.run([SERVER, *args], capture_output=True, text=True, timeout=60)


def test_signing_key_is_made_once_0600_and_printed(config, tmp_path):
    first = _run("signing-key", "-c", str(config))
    assert first.returncode == 0, first.stderr
    key = tmp_path / "var" / "signing-key.pem"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and stat.S_IMODE(os.stat(key.parent).st_mode) == 0o700
    assert "-----BEGIN PUBLIC KEY-----" in first.stdout and "BEGIN PRIVATE" not in first.stdout
    fingerprint = first.stdout.splitlines()[0].split(": ")[1]
    assert len(fingerprint) == 64
    second = _run("signing-key", "-c", str(config))
    assert second.stdout.splitlines()[0].endswith(fingerprint)  # the same key, not a new one
    assert (tmp_path / "var" / "signing-key.pem.pub.pem").read_text() in first.stdout


def test_seal_refuses_a_day_not_over_and_seals_yesterday_once(config):
    today = datetime.now(timezone(timedelta(hours=8))).date()  # the firm's day (Asia/Shanghai by default)
    refused = _run("seal", "--day", today.isoformat(), "-c", str(config))
    assert refused.returncode == 2 and "is not over yet" in refused.stderr
    assert _run("seal", "--day", "yesterday", "-c", str(config)).returncode == 2
    first = _run("seal", "-c", str(config))
    sealable = (datetime.now(timezone(timedelta(hours=8))) - timedelta(seconds=600)).date()  # 10 minutes' grace after midnight
    assert first.returncode == 0 and first.stdout.strip() == f"{sealable - timedelta(days=1)}: sealed, 0 agent(s)", first.stdout
    again = _run("seal", "-c", str(config))
    assert again.stdout.strip() == "nothing to seal: every day up to yesterday is sealed"
    checked = _run("seal", "--check", "-c", str(config))
    assert checked.returncode == 0 and "no seals" in checked.stdout


def test_verify_pack_refuses_what_is_not_a_pack(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    done = _run("verify-pack", str(tmp_path / "x.zip"))
    assert done.returncode == 1 and "NOT VALID" in done.stdout and "not a readable pack" in done.stdout
    assert _run("verify-pack", str(tmp_path / "missing.zip")).returncode == 2
