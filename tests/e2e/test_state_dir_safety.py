"""An employee who creates the agent's state folder before the agent does, with links planted in
it, must not receive the agent's token: the agent (root) refuses the folder and writes nothing."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.e2e.conftest import as_user


@pytest.fixture
def shared_tmp():
    """A folder like /tmp (root's, 1777: everyone may create in it, nobody may rename another's)."""
    folder = Path(tempfile.mkdtemp(prefix="miwei-shared-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _agents_enrolled(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        with closing(sqlite3.connect(db_path, timeout=5)) as conn:
            return conn.execute("SELECT count(*) FROM agents").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.reliability(
    area="access",
    fault="State folder made first by another user, links planted for the token",
    how="an unprivileged user creates `state_dir` (0777) in a 1777 folder with `token`, `token.tmp`, `agent_id.tmp`,"
    " `policy.json.tmp` linked to a file of theirs (0666), then the agent (root) starts",
    outcome="the agent refuses the folder (exit 2, owner named), enrols nowhere; the user's file stays empty",
)
def test_a_state_folder_planted_by_an_employee_is_refused(deployment, employee, shared_tmp):
    d = deployment
    state = shared_tmp / "agent-state"
    loot = shared_tmp / "loot"
    links = ("token", "token.tmp", "agent_id.tmp", "policy.json.tmp")
    plant = f"mkdir -m 777 {state} && : > {loot} && chmod 666 {loot}" + "".join(f" && ln -s {loot} {state}/{n}" for n in links)
    done = subprocess.run(as_user(employee, "/bin/sh", "-c", plant), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert os.stat(state).st_uid == employee.pw_uid
    text = d.config.read_text(encoding="utf-8").replace(f"state_dir: {d.state_dir}", f"state_dir: {state}")
    d.config.write_text(text, encoding="utf-8")
    d.start_server()
    agent = d._spawn("miwei-agent", "run")
    deadline = time.monotonic() + 20
    while agent.poll() is None and loot.stat().st_size == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    leaked = loot.stat().st_size
    d.agent = agent  # killed at teardown if it still runs
    assert leaked == 0, "the employee's file received what the agent wrote"
    assert agent.poll() == 2, d.log("miwei-agent")
    log = d.log("miwei-agent")
    assert f"state_dir {state} is owned by uid {employee.pw_uid}" in log, log
    assert _agents_enrolled(d.db_path) == 0
    assert sorted(os.listdir(state)) == sorted(links), "the agent wrote into the folder"
