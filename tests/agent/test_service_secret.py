"""The enrolment secret from a file: how a rollout hands it out, checked as an inline one is."""

from __future__ import annotations

import pytest

from agent.config import load_agent_config
from rules.errors import InvalidInput

GOOD = "k3Jx9-enrolment-secret-from-config-management"


def _load(tmp_path, content: str | None, mode: int = 0o600) -> str:
    secret = tmp_path / "enroll.secret"
    if content is not None:
        secret.write_text(content)
        secret.chmod(mode)
    config = tmp_path / "config.yaml"
    config.write_text("agent:\n  server_url: http://127.0.0.1:9\n  enroll_secret_file: enroll.secret\n")
    return load_agent_config(str(config)).enroll_secret


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640])
def test_a_secret_file_closed_to_other_users_is_read_and_stripped(tmp_path, mode):
    assert _load(tmp_path, f"{GOOD}\n", mode) == GOOD


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        (GOOD, 0o644, "the secret file is open to every user (mode 0644) (chmod 600 {secret})"),
        (GOOD, 0o602, "the secret file is open to every user (mode 0602) (chmod 600 {secret})"),
        ("change-me\n", 0o600, "the secret in this file is still a placeholder (set a long random secret)"),
        ("short\n", 0o600, "the secret in this file must be at least 16 characters (set a long random secret)"),
        ("\n", 0o600, "the secret in this file must be at least 16 characters (set a long random secret)"),
        (None, 0o600, "cannot read the secret file: No such file or directory"),
    ],
)
def test_a_bad_secret_file_is_refused_at_the_key_that_names_it(tmp_path, content, mode, message):
    with pytest.raises(InvalidInput) as caught:
        _load(tmp_path, content, mode)
    [error] = caught.value.errors
    assert str(error) == f"{tmp_path / 'config.yaml'}:3:23: agent.enroll_secret_file: " + message.format(
        secret=tmp_path / "enroll.secret"
    )


def test_a_secret_file_that_is_not_text_is_refused(tmp_path):
    secret = tmp_path / "enroll.secret"
    with pytest.raises(InvalidInput, match="cannot read the secret file"):
        secret.write_bytes(b"\xff\xfe" + GOOD.encode("utf-16-le"))
        secret.chmod(0o600)
        _load(tmp_path, None)
