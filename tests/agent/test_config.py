"""The agent section of the config file: typed values, and every error located and reported."""

from __future__ import annotations

import dataclasses
import os
import subprocess

import pytest

from agent.config import AgentConfig, ClassifiedFolder, EgressConfig, load_agent_config
from rules.errors import InvalidInput
from server.config import load_server_config
from tests.config_cases import (
    EXAMPLE_CONFIG,
    INVALID_DIR,
    SECRET,
    case_path,
    console_script,
    copy_case,
    expected_errors,
    invalid_cases,
    write_filled_example,
)

VALID = f"""\
agent:
  server_url: http://127.0.0.1:8765/
  enroll_secret_file: enroll.secret
  state_dir: state
  classified:
    - path: drawings
      level: core
      name: Product drawings
      owner: R&D
    - path: ./drawings/pricing
      level: important
  egress:
    removable: false
    mount_roots: [/media, usb]
    folders: [sync, {{path: onedrive, kind: sync}}, {{path: finance, kind: share}}]
    poll_s: 2
  rules: []
  heartbeat_s: 10m
  stable_s: 1
  batch_max: 100
  log_level: debug
server:
  enroll_secret: {SECRET}
"""


def test_every_broken_config_has_its_expected_errors_beside_it():
    names = os.listdir(INVALID_DIR)
    configs = {n[: -len(".yaml")] for n in names if n.endswith(".yaml")}
    expected = {n[: -len(".expected")] for n in names if n.endswith(".expected")}
    assert configs == expected
    assert all(n.startswith(("agent-", "server-")) for n in configs), "the prefix picks the loader"
    assert len(invalid_cases("agent-")) >= 15 and len(invalid_cases("server-")) >= 5


@pytest.mark.parametrize("name", invalid_cases("agent-"))
def test_broken_agent_config_is_refused_with_exact_errors(name):
    with pytest.raises(InvalidInput) as caught:
        load_agent_config(case_path(name))
    want = expected_errors(name)
    assert [str(error) for error in caught.value.errors] == want
    assert str(caught.value) == "\n".join(want)


def test_valid_config_parses_into_frozen_values_with_paths_relative_to_its_folder(tmp_path, monkeypatch):
    conf = tmp_path / "etc"
    for folder in ("drawings/pricing", "sync", "onedrive", "finance"):
        (conf / folder).mkdir(parents=True)
    (conf / "enroll.secret").write_text("secret-from-a-file-0123456789\n")
    (conf / "enroll.secret").chmod(0o600)  # a secret file every user may read is refused
    (conf / "config.yaml").write_text(VALID)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths must not depend on the working folder

    config = load_agent_config(str(conf / "config.yaml"))

    assert config == AgentConfig(
        server_url="http://127.0.0.1:8765",
        enroll_secret="secret-from-a-file-0123456789",
        state_dir=str(conf / "state"),
        classified=(
            ClassifiedFolder(str(conf / "drawings"), "core", "Product drawings", "R&D"),
            ClassifiedFolder(str(conf / "drawings" / "pricing"), "important"),
        ),
        egress=EgressConfig(
            removable=False,
            mount_roots=("/media", str(conf / "usb")),
            folders=(str(conf / "sync"), str(conf / "onedrive"), str(conf / "finance")),
            folder_kinds=("folder", "sync", "share"),
            folder_apps=("", "", ""),
            poll_s=2.0,
        ),
        rules=(),
        heartbeat_s=600.0,
        stable_s=1.0,
        batch_max=100,
        log_level="debug",
    )
    assert config.spool_path == str(conf / "state" / "spool.db")
    assert not (conf / "state").exists(), "loading must not create anything"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server_url = "http://10.0.0.5:8765"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.classified[0].level = "internal"


def test_minimal_config_takes_the_defaults(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"agent:\n  server_url: https://miwei.example.com\n  enroll_secret: {SECRET}\n")

    assert load_agent_config(str(path)) == AgentConfig(
        server_url="https://miwei.example.com",
        enroll_secret=SECRET,
        state_dir=str(tmp_path / "var" / "agent"),
        classified=(),
        egress=EgressConfig(removable=True, mount_roots=("/media", "/run/media", "/mnt"), folders=(), folder_kinds=(), poll_s=1.0),
    )


def test_agent_does_not_read_the_server_section(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        f"agent:\n  server_url: http://127.0.0.1:8765\n  enroll_secret: {SECRET}\nserver:\n  listen: nowhere\n"
    )

    assert load_agent_config(str(path)).server_url == "http://127.0.0.1:8765"
    with pytest.raises(InvalidInput) as caught:  # the server section really is broken
        load_server_config(str(path))
    assert [str(e) for e in caught.value.errors] == [
        f"{path}:5:3: server.enroll_secret: required key is missing",
        f"{path}:5:11: server.listen: expected HOST:PORT, got 'nowhere' (e.g. 127.0.0.1:8765)",
    ]


def test_example_config_parses_once_its_placeholders_are_filled_in(tmp_path):
    path, drawings = write_filled_example(str(tmp_path))

    config = load_agent_config(path)

    assert config.server_url == "http://127.0.0.1:8765"
    assert config.enroll_secret == SECRET
    assert config.state_dir == str(tmp_path / "var" / "agent")
    assert config.classified == (ClassifiedFolder(drawings, "core", "Product drawings", "R&D"),)
    assert config.egress == EgressConfig()
    assert (config.heartbeat_s, config.stable_s, config.batch_max, config.log_level) == (30.0, 0.5, 500, "info")


def test_example_config_as_shipped_is_refused_for_its_placeholder():
    with pytest.raises(InvalidInput) as caught:
        load_agent_config(EXAMPLE_CONFIG)
    assert "agent.enroll_secret: is still the example placeholder (set a long random secret)" in str(caught.value)


def test_cli_refuses_a_broken_config_with_exit_2_and_starts_nothing(tmp_path):
    name = "agent-several-errors"
    path = copy_case(name, str(tmp_path))

    done = subprocess.run(
        [console_script("miwei-agent"), "status", "-c", path],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert done.stderr.splitlines() == expected_errors(name, str(tmp_path))
    assert done.stdout == ""
    assert os.listdir(tmp_path) == [os.path.basename(path)], "no state_dir, spool or log may be created"


def test_extra_rule_files_and_folders_resolve_against_the_config_folder(tmp_path, monkeypatch):
    conf = tmp_path / "etc"
    (conf / "rules.d").mkdir(parents=True)
    (conf / "rules.d" / "site.yml").write_text("[]\n")  # what a file holds is checked at start, not here
    (conf / "local.yaml").write_text("[]\n")
    (conf / "config.yaml").write_text(
        f"agent:\n  server_url: http://127.0.0.1:8765\n  enroll_secret: {SECRET}\n  rules: [local.yaml, ./rules.d/]\n"
    )
    monkeypatch.chdir(tmp_path)

    config = load_agent_config(str(conf / "config.yaml"))

    assert config.rules == (str(conf / "local.yaml"), str(conf / "rules.d"))


def test_the_watcher_is_the_agents_own_unless_watchdog_is_asked_for(tmp_path):
    path = tmp_path / "config.yaml"
    head = f"agent:\n  server_url: https://miwei.example.com\n  enroll_secret: {SECRET}\n"
    path.write_text(head)
    assert load_agent_config(str(path)).watcher == "auto"
    path.write_text(head + "  watcher: watchdog\n")
    assert load_agent_config(str(path)).watcher == "watchdog"
    path.write_text(head + "  watcher: fanotify\n")
    with pytest.raises(InvalidInput) as caught:
        load_agent_config(str(path))
    assert "unknown watcher 'fanotify'" in str(caught.value)
