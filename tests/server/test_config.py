"""The server section of the config file: typed values, and every error located and reported."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from datetime import date, time

import pytest

from agent.config import load_agent_config
from rules.errors import InvalidInput
from rules.worktime import WorkTime
from server.config import ServerConfig, load_server_config
from tests.config_cases import (
    SECRET,
    case_path,
    console_script,
    copy_case,
    expected_errors,
    invalid_cases,
    write_filled_example,
)

# Errors in the YAML itself come before either section is read: both programs report them alike.
DOCUMENT_ERRORS = (
    "agent-yaml-syntax",
    "agent-tab-indent",
    "agent-duplicate-key",
    "agent-not-utf8",
    "agent-alias-bomb",
    "agent-deep-nesting",
    "agent-control-char",
)


@pytest.mark.parametrize("name", invalid_cases("server-"))
def test_broken_server_config_is_refused_with_exact_errors(name):
    with pytest.raises(InvalidInput) as caught:
        load_server_config(case_path(name))
    want = expected_errors(name)
    assert [str(error) for error in caught.value.errors] == want
    assert str(caught.value) == "\n".join(want)


@pytest.mark.parametrize("name", DOCUMENT_ERRORS)
def test_server_reports_errors_in_the_yaml_itself_like_the_agent(name):
    with pytest.raises(InvalidInput) as caught:
        load_server_config(case_path(name))
    assert [str(error) for error in caught.value.errors] == expected_errors(name)


def test_valid_config_parses_into_frozen_values_with_paths_relative_to_its_folder(tmp_path, monkeypatch):
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "config.yaml").write_text(
        "server:\n"
        '  listen: "[::1]:9000"\n'
        "  database: sqlite:///db/miwei.db\n"
        f"  enroll_secret: {SECRET}\n"
        "  agent_offline_s: 2h\n"
        "  notify: []\n"
        "  log_level: warning\n"
        "  log_file: logs/server.log\n"
        "agent:\n"
        "  server_url: not checked by the server\n"
    )
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the working folder

    config = load_server_config(str(conf / "config.yaml"))

    assert config == ServerConfig(
        listen=("::1", 9000),
        database="sqlite:///" + str(conf / "db" / "miwei.db"),
        enroll_secret=SECRET,
        agent_offline_s=7200.0,
        notify=(),
        log_level="warning",
        log_file=str(conf / "logs" / "server.log"),
    )
    assert os.listdir(conf) == ["config.yaml"], "loading must not create the database or the log"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.enroll_secret = "x"


def test_working_time_is_read_with_its_holidays_and_make_up_days(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        f"server:\n  enroll_secret: {SECRET}\n"
        "  working_time:\n"
        "    timezone: Asia/Hong_Kong\n"
        "    days: [sat, mon, tue, wed, thu, fri]\n"
        "    hours: 09:00-17:30\n"
        "    holidays: [2026-10-02, 2026-10-01]\n"
        "    workdays: ['2026-09-27']\n"
    )

    working_time = load_server_config(str(path)).working_time

    assert working_time == WorkTime(
        timezone="Asia/Hong_Kong",
        days=("mon", "tue", "wed", "thu", "fri", "sat"),
        start=time(9),
        end=time(17, 30),
        holidays=(date(2026, 10, 1), date(2026, 10, 2)),
        workdays=(date(2026, 9, 27),),
    )
    assert working_time.is_working_hours("2026-09-27T02:00:00Z")  # Sunday 10:00, a make-up day
    assert not working_time.is_working_hours("2026-10-01T02:00:00Z")  # Thursday, a holiday


def test_working_time_defaults_to_office_hours_in_shanghai(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"server:\n  enroll_secret: {SECRET}\n  working_time: {{}}\n")
    assert load_server_config(str(path)).working_time == WorkTime()


def test_minimal_config_takes_the_defaults(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"server:\n  enroll_secret: {SECRET}\n")

    assert load_server_config(str(path)) == ServerConfig(
        listen=("127.0.0.1", 8765),
        database="sqlite:///" + str(tmp_path / "var" / "miwei.db"),
        enroll_secret=SECRET,
    )


def test_postgresql_url_is_kept_as_written(tmp_path):
    path = tmp_path / "config.yaml"
    url = "postgresql+psycopg://miwei:pw@db.example.com:5432/miwei"
    path.write_text(f"server:\n  database: {url}\n  enroll_secret: {SECRET}\n")

    assert load_server_config(str(path)).database == url


def test_example_config_parses_once_its_placeholders_are_filled_in(tmp_path):
    path, _ = write_filled_example(str(tmp_path))

    assert load_server_config(path) == ServerConfig(
        listen=("127.0.0.1", 8765),
        database="sqlite:///" + str(tmp_path / "var" / "miwei.db"),
        enroll_secret=SECRET,
        agent_offline_s=120.0,
        notify=(),
        log_level="info",
        log_file=None,
        working_time=WorkTime(),
    )
    load_agent_config(path)  # one file serves both programs


def test_cli_refuses_a_broken_config_with_exit_2_and_starts_nothing(tmp_path):
    name = "server-several-errors"
    path = copy_case(name, str(tmp_path))

    done = subprocess.run(
        [console_script("miwei-server"), "check-config", "-c", path],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert done.stderr.splitlines() == expected_errors(name, str(tmp_path))
    assert done.stdout == ""
    assert os.listdir(tmp_path) == [os.path.basename(path)], "no database or log may be created"


def test_cli_accepts_a_valid_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"server:\n  enroll_secret: {SECRET}\n")

    done = subprocess.run(
        [console_script("miwei-server"), "check-config", "-c", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (done.returncode, done.stdout, done.stderr) == (0, f"{path}: server section is valid\n", "")
