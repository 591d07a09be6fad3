"""The agent's state files: classified paths, hashes and events are readable by the agent alone."""

from __future__ import annotations

import os
import stat

from agent.config import ClassifiedFolder
from agent.index import FingerprintIndex
from agent.spool import Spool
from rules.events import Event


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_folder_and_databases_are_private_whatever_the_umask(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o755)
    old_umask = os.umask(0o022)  # what a service gets by default
    try:
        spool = Spool(str(state / "spool.db"))
        spool.put([Event(type="agent.started")])
        index = FingerprintIndex(str(state / "index.db"), (ClassifiedFolder(str(tmp_path), "core"),))
        index.refresh()
    finally:
        os.umask(old_umask)
    try:
        assert _mode(state) == 0o700
        files = sorted(p.name for p in state.iterdir())
        assert {"spool.db", "spool.db-wal", "index.db"} <= set(files)
        assert {name: _mode(state / name) for name in files} == {name: 0o600 for name in files}
    finally:
        spool.close()
        index.close()


def test_files_an_older_agent_made_readable_are_made_private_on_open(tmp_path):
    path = tmp_path / "spool.db"
    Spool(str(path)).close()
    for name in ("spool.db", "spool.db-wal", "spool.db-shm"):
        if (tmp_path / name).exists():
            os.chmod(tmp_path / name, 0o644)
    os.chmod(tmp_path, 0o755)
    Spool(str(path)).close()
    assert _mode(tmp_path) == 0o700
    assert _mode(path) == 0o600
