"""What the agent trusts before it writes (agent/trust.py) and how it writes its private files
(agent/files.py): folders and links other users control are refused, temporary files are new and
never followed links, a config that shows its enrolment secret to others is refused."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent import files
from agent.reporter import Reporter
from agent.trust import UntrustedPath, check_config, prepare_state_dir

OTHER_UID = 65534  # nobody: a user who is neither root nor the agent's
AGENT = str(Path(sys.executable).parent / "miwei-agent")

needs_root = pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="changing owners needs root")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_missing_folders_are_made_0700_under_a_sticky_shared_folder(tmp_path):
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    state = shared / "miwei" / "state"
    old = os.umask(0o022)
    try:
        created = prepare_state_dir(str(state))
    finally:
        os.umask(old)
    assert created == [str(shared / "miwei"), str(state)]
    assert _mode(shared / "miwei") == 0o700 and _mode(state) == 0o700


def test_a_state_folder_of_ours_left_readable_is_made_private(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)
    assert prepare_state_dir(str(state)) == []
    assert _mode(state) == 0o700


@needs_root
def test_a_state_folder_another_user_owns_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, OTHER_UID, OTHER_UID)
    with pytest.raises(UntrustedPath, match=f"owned by uid {OTHER_UID}, not the agent's user"):
        prepare_state_dir(str(state))


def test_a_state_folder_others_may_write_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    with pytest.raises(UntrustedPath, match="writable by other users"):
        prepare_state_dir(str(state))


@needs_root
def test_a_folder_above_that_another_user_owns_is_refused_before_anything_is_made(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, OTHER_UID, OTHER_UID)  # they could rename the state folder and put theirs there
    with pytest.raises(UntrustedPath, match=f"{theirs} is owned by uid {OTHER_UID}"):
        prepare_state_dir(str(theirs / "state"))


def test_a_folder_above_that_others_may_write_is_refused(tmp_path):
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)  # not sticky
    with pytest.raises(UntrustedPath, match="writable by other users"):
        prepare_state_dir(str(open_folder / "state"))


@needs_root
def test_a_link_another_user_made_as_the_state_folder_is_refused(tmp_path):
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    target = tmp_path / "root-owned"
    target.mkdir(mode=0o700)  # root's and private: only the link gives it away
    (shared / "state").symlink_to(target)
    os.lchown(shared / "state", OTHER_UID, OTHER_UID)
    with pytest.raises(UntrustedPath, match="is a link owned by uid"):
        prepare_state_dir(str(shared / "state"))


def test_the_token_is_not_written_through_a_link_at_the_old_temporary_name(tmp_path):
    loot = tmp_path / "loot"
    loot.write_text("")
    (tmp_path / "token.tmp").symlink_to(loot)  # where the agent wrote its token before the rename
    Reporter._save_token(SimpleNamespace(_token_path=lambda: str(tmp_path / "token")), "mwa_secret")
    assert loot.read_text() == ""
    assert (tmp_path / "token").read_text() == "mwa_secret" and not (tmp_path / "token").is_symlink()
    assert _mode(tmp_path / "token") == 0o600


def test_a_temporary_file_is_new_and_never_a_followed_link(tmp_path, monkeypatch):
    loot = tmp_path / "loot"
    loot.write_text("")
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "guessed")
    (tmp_path / ".miwei-guessed.tmp").symlink_to(loot)  # the one name it will use, guessed and planted
    with pytest.raises(FileExistsError):
        files.write_atomically(str(tmp_path / "token"), "mwa_secret", 0o600)
    assert loot.read_text() == "" and not (tmp_path / "token").exists()


def test_the_mode_is_set_on_the_descriptor_whatever_the_umask(tmp_path):
    old = os.umask(0o000)
    try:
        files.write_atomically(str(tmp_path / "agent_id"), "x\n", 0o600)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "agent_id") == 0o600


def _config(tmp_path: Path, secret_line: str, mode: int) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"agent:\n  server_url: http://127.0.0.1:9\n  {secret_line}\n  state_dir: ./state\n", encoding="utf-8")
    config.chmod(mode)
    return config


@pytest.mark.reliability(
    area="access",
    fault="Enrolment secret in a config every local user can read",
    how="`miwei-agent run` with `enroll_secret:` in a config of mode 0644",
    outcome="refused before anything is created (exit 2, `chmod 600` named); 0600 or enroll_secret_file runs",
)
def test_run_refuses_an_inline_secret_others_can_read(tmp_path):
    config = _config(tmp_path, "enroll_secret: a-long-enough-secret-value", 0o644)
    proc = subprocess.Popen([AGENT, "run", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        pytest.fail("the agent ran with a config that shows its secret to every user")
    assert proc.returncode == 2, err
    assert f"{config} holds agent.enroll_secret and group or others can read it (mode 0644)" in err
    assert f"chmod 600 {config}" in err
    assert not (tmp_path / "state").exists(), "nothing may be created"


def test_an_inline_secret_in_a_private_config_or_a_secret_file_is_accepted(tmp_path):
    check_config(str(_config(tmp_path, "enroll_secret: a-long-enough-secret-value", 0o600)), True, service=False)
    check_config(str(_config(tmp_path, "enroll_secret_file: s", 0o644)), False, service=False)
    with pytest.raises(UntrustedPath, match="mode 0640"):
        check_config(str(_config(tmp_path, "enroll_secret: a-long-enough-secret-value", 0o640)), True, service=False)


@needs_root
def test_a_service_refuses_a_config_root_does_not_own(tmp_path):
    config = _config(tmp_path, "enroll_secret_file: s", 0o600)
    check_config(str(config), False, service=True)  # root's config, venv and package (this checkout)
    os.chown(config, OTHER_UID, OTHER_UID)
    check_config(str(config), False, service=False)  # not a service: the owner is not asked about
    with pytest.raises(UntrustedPath, match=f"config {config} is owned by uid {OTHER_UID}, not root"):
        check_config(str(config), False, service=True)


def test_the_installed_unit_runs_the_agent_as_a_service(tmp_path):
    from agent.config import load_agent_config
    from agent.service import spec_for

    (tmp_path / "s").write_text("a-long-enough-secret-value\n")
    (tmp_path / "s").chmod(0o600)
    config = _config(tmp_path, "enroll_secret_file: s", 0o600)
    assert spec_for(load_agent_config(str(config)), str(config)).command[-4:] == ("run", "--service", "--config", str(config))
