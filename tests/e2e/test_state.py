"""The agent's state folder holds classified paths, hashes and events: nobody else may read it."""

from __future__ import annotations

import os
import stat
import subprocess

from tests.e2e.conftest import copy
from tests.e2e.harness import BIN, Deployment, wait_for


def _open_to_others(root) -> list[str]:
    """Everything under root that a group or other user could read, write or enter."""
    found = []
    for folder, _dirs, files in os.walk(root):
        for path in [folder] + [os.path.join(folder, name) for name in files]:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & 0o077:
                found.append(f"{os.path.relpath(path, root)} {mode:o}")
    return sorted(found)


def test_state_folder_and_files_are_private_to_the_agent(deployment, classified):
    d = deployment
    old_umask = os.umask(0o022)  # what a service manager or a shell usually gives
    try:
        d.start_server()
        d.start_agent()
    finally:
        os.umask(old_umask)
    copy(classified["drawings"] / "pump-impeller.dwg", d.usb / "copy.dwg")
    wait_for(lambda: d.alerts(category="classified-egress"), 20, what="the alert")
    wait_for((d.state_dir / "token").exists, 20, what="the token")
    assert stat.S_IMODE(os.stat(d.state_dir).st_mode) == 0o700
    assert {"spool.db", "index.db", "agent_id", "token"} <= set(os.listdir(d.state_dir))
    assert _open_to_others(d.state_dir) == []


def test_index_command_makes_a_private_index(tmp_path, classified):
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Drawings")])
    old_umask = os.umask(0o022)
    try:
        done = subprocess.run([str(BIN / "miwei-agent"), "index", "--quiet", "-c", str(d.config)], capture_output=True, text=True, timeout=60)
    finally:
        os.umask(old_umask)
        d.close()
    assert done.returncode == 0, done.stderr
    assert _open_to_others(d.state_dir) == []
