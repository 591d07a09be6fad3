"""`miwei-agent index`, `scan` and `status` as a user runs them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AGENT = str(Path(sys.executable).parent / "miwei-agent")


@pytest.fixture
def setup(tmp_path):
    drawings = tmp_path / "drawings"
    drawings.mkdir()
    (drawings / "impeller.dwg").write_bytes(b"impeller " + os.urandom(300_000))
    (drawings / "housing.dwg").write_bytes(b"housing " + os.urandom(1000))
    config = tmp_path / "config.yaml"
    config.write_text(
        "agent:\n"
        "  server_url: http://127.0.0.1:9\n"
        "  enroll_secret: a-long-enough-secret-value\n"
        "  state_dir: ./state\n"
        "  classified:\n"
        "    - path: ./drawings\n"
        "      level: core\n"
        "      name: Drawings\n",
        encoding="utf-8",
    )
    return tmp_path, config, drawings


def _run(*args, config):
    return subprocess.run([AGENT, *args, "-c", str(config)], capture_output=True, text=True, timeout=60)


def test_index_builds_with_progress_then_rehashes_nothing(setup):
    root, config, _ = setup
    first = _run("index", config=config)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("indexed 2 files: 2 hashed")
    assert "hashing" in first.stderr and "100%" in first.stderr  # the progress bar
    second = _run("index", "--quiet", config=config)
    assert second.stdout.startswith("indexed 2 files: 0 hashed (0 bytes)")
    assert (root / "state" / "index.db").exists()


def test_scan_explains_a_renamed_copy_and_an_unknown_file(setup, tmp_path):
    root, config, drawings = setup
    _run("index", "--quiet", config=config)
    copy = tmp_path / "holiday.jpg"
    copy.write_bytes((drawings / "impeller.dwg").read_bytes())
    other = tmp_path / "notes.txt"
    other.write_bytes(b"shopping list")
    done = _run("scan", "--json", str(copy), str(other), config=config)
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["source_path"] == str(drawings / "impeller.dwg")
    assert first["level"] == "core" and first["severity"] == "critical"
    assert first["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert second["level"] is None
    text = _run("scan", str(copy), config=config).stdout
    assert "exact copy of classified file" in text and str(drawings / "impeller.dwg") in text


def test_scan_of_missing_file_says_so_and_fails(setup, tmp_path):
    _, config, _ = setup
    done = _run("scan", str(tmp_path / "nope.txt"), config=config)
    assert done.returncode == 1
    assert "cannot read: No such file or directory" in done.stdout


def test_status_before_and_after_indexing(setup):
    root, config, _ = setup
    _run("index", "--quiet", config=config)
    done = _run("status", "--json", config=config)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["enrolled"] is False and status["spool_depth"] == 0 and status["indexed_files"] == 2
    assert status["classified"] == [{"path": str(root / "drawings"), "level": "core", "name": "Drawings"}]
    human = _run("status", config=config).stdout
    assert "enrolled:       no" in human and "indexed files:  2" in human
