"""Both command lines as a newcomer types them: `-c FILE` before the sub-command, and output
piped into `head` (a reader that stops early), run as real processes."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rules.cli import EXIT_BROKEN_PIPE

BIN = Path(sys.executable).parent
AGENT, SERVER = str(BIN / "miwei-agent"), str(BIN / "miwei-server")


@pytest.fixture
def config(tmp_path):
    (tmp_path / "drawings").mkdir()
    for i in range(3):
        (tmp_path / "drawings" / f"part-{i}.dwg").write_bytes(b"drawing %d " % i + os.urandom(2000))
    path = tmp_path / "config.yaml"
    path.write_text(
        "agent:\n"
        "  server_url: http://127.0.0.1:9\n"
        "  enroll_secret: a-long-enough-secret-value\n"
        "  state_dir: ./state\n"
        "  classified:\n"
        "    - path: ./drawings\n"
        "      level: core\n"
        "server:\n"
        "  database: sqlite:///./miwei.db\n"
        "  enroll_secret: a-long-enough-secret-value\n",
        encoding="utf-8",
    )
    return path


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize(
    "argv",
    [
        (AGENT, "-c", "{config}", "status"),
        (AGENT, "--config", "{config}", "status", "--json"),
        (AGENT, "-c", "{config}", "check-rules"),
        (SERVER, "-c", "{config}", "check-config"),
        (SERVER, "--config={config}", "migrate"),
    ],
)
def test_config_before_the_subcommand_is_used(config, tmp_path, argv):
    elsewhere = tmp_path / "elsewhere"  # no config.yaml here: only the named file can be read
    elsewhere.mkdir()
    done = _run(*(a.format(config=config) for a in argv), cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("cli, command", [(AGENT, "status"), (SERVER, "check-config")])
def test_config_given_before_and_after_is_refused_clearly(config, tmp_path, cli, command):
    other = tmp_path / "other.yaml"
    other.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
    done = _run(cli, "-c", str(config), command, "-c", str(other), cwd=tmp_path)
    assert done.returncode == 2
    assert "-c/--config given twice" in done.stderr and "give it once" in done.stderr
    assert str(config) in done.stderr and str(other) in done.stderr
    assert done.stdout == ""


def test_config_before_a_command_that_reads_none_is_ignored(tmp_path):
    """uninstall-service works with a config that is gone: one named before it is not read."""
    done = _run(
        AGENT, "-c", str(tmp_path / "gone.yaml"), "uninstall-service", "--unit-dir", str(tmp_path), cwd=tmp_path
    )
    assert "gone.yaml" not in done.stderr and "Traceback" not in done.stderr


def _into_closed_pipe(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader is already gone: what `| head` leaves once it has
    its lines, made certain rather than timed."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    try:
        return subprocess.run(argv, stdout=write_fd, stderr=subprocess.PIPE, text=True, timeout=60, cwd=cwd)
    finally:
        os.close(write_fd)


@pytest.mark.parametrize(
    "argv",
    [
        (AGENT, "scan", "drawings", "drawings/part-0.dwg", "-c", "{config}"),
        (AGENT, "scan", "--json", "drawings", "-c", "{config}"),
        (AGENT, "status", "-c", "{config}"),
        (AGENT, "-c", "{config}", "status", "--json"),
        (AGENT, "check-rules", "-c", "{config}"),
        (SERVER, "check-config", "-c", "{config}"),
        (SERVER, "create-token", "ci", "-c", "{config}"),
    ],
)
def test_a_reader_that_stops_early_ends_the_command_quietly(config, tmp_path, argv):
    done = _into_closed_pipe([a.format(config=config) for a in argv], cwd=tmp_path)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert "Exception ignored" not in done.stderr, done.stderr
    assert done.returncode == EXIT_BROKEN_PIPE


def test_status_piped_into_head_prints_its_first_line(config, tmp_path):
    done = subprocess.run(
        ["sh", "-c", f"'{AGENT}' status -c '{config}' | head -n 1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.stdout.startswith("agent id:") and done.stdout.count("\n") == 1
    assert done.stderr == ""


def test_the_readme_says_where_the_commands_live_and_lists_every_one():
    from agent.cli import _parser as agent_parser
    from server.cli import _parser as server_parser

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    commands = readme[readme.index("## Commands") : readme.index("## Rules")]
    assert "`.venv/bin/`" in commands and "`make run`" in commands and "`make test`" in commands
    assert "before or after the sub-command" in commands
    for side, parser in (("agent", agent_parser()), ("server", server_parser())):
        subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
        for name in subs:
            assert f"`miwei-{side} {name}" in commands or f", `{name}" in commands, f"miwei-{side} {name} not listed"
