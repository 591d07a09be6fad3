"""The unit's capability bounding set is enough for what the agent does, and each capability is
there for a reason: run as root cut down to exactly those (setpriv), as systemd runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from agent.service.systemd import CAPABILITIES

NOBODY = 65534
PROBE = textwrap.dedent(
    """
    import json, sys, psutil
    pid, secret = int(sys.argv[1]), sys.argv[2]
    found = {}
    try:
        found["open_files"] = [f.path for f in psutil.Process(pid).open_files()]
    except psutil.AccessDenied:
        found["open_files"] = "denied"
    try:
        with open(secret) as f:
            found["read"] = f.read()
    except PermissionError:
        found["read"] = "denied"
    print(json.dumps(found))
    """
)

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="needs root and setpriv (util-linux) to run with a cut-down capability set",
)


def _probe(caps: tuple[str, ...], pid: int, secret: str) -> dict:
    bounding = ",".join(["-all", *(f"+{c.removeprefix('CAP_').lower()}" for c in caps)])
    done = subprocess.run(
        ["setpriv", f"--bounding-set={bounding}", sys.executable, "-c", PROBE, str(pid), secret],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_unit_capabilities_read_any_file_and_see_other_users_open_files(tmp_path):
    secret = tmp_path / "drawing.dwg"
    secret.write_text("classified")
    os.chown(secret, NOBODY, NOBODY)
    secret.chmod(0o600)  # another user's file that root without capabilities may not read
    held = open(tmp_path / "copying.tmp", "w")  # a file another user's program is writing
    writer = subprocess.Popen(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "sleep", "60"], pass_fds=(held.fileno(),)
    )
    try:
        granted = _probe(CAPABILITIES, writer.pid, str(secret))
        without_ptrace = _probe(tuple(c for c in CAPABILITIES if c != "CAP_SYS_PTRACE"), writer.pid, str(secret))
        nothing = _probe((), writer.pid, str(secret))
    finally:
        writer.kill()
        writer.wait()
        held.close()
    assert granted == {"open_files": [str(tmp_path / "copying.tmp")], "read": "classified"}
    assert without_ptrace["open_files"] == "denied" and without_ptrace["read"] == "classified"
    assert nothing["read"] == "denied"


WORKER_PROBE = textwrap.dedent(
    """
    import json, os, signal, sys
    from agent.inspector import InspectorProcess, open_regular
    inspector = InspectorProcess("nobody", max_seconds=1, grace_s=0.5)
    fd, _st = open_regular(sys.argv[1])
    found = [d.detector for d in inspector.inspect(fd, os.path.basename(sys.argv[1])).detections]
    try:
        if inspector.pid() is None:  # it died: it could not drop root
            raise ProcessLookupError
        os.kill(inspector.pid(), signal.SIGSTOP)  # hung: the deadline must kill it
        found += [d.detector for d in inspector.inspect(fd, "hung.txt").detections]
    except PermissionError:
        found.append("may not signal the worker")
    except ProcessLookupError:
        found.append("no worker")
    inspector.close()
    print(json.dumps(found))
    """
)


def _worker_probe(caps: tuple[str, ...], document: str) -> list[str]:
    bounding = ",".join(["-all", *(f"+{c.removeprefix('CAP_').lower()}" for c in caps)])
    done = subprocess.run(
        ["setpriv", f"--bounding-set={bounding}", sys.executable, "-c", WORKER_PROBE, document],
        capture_output=True, text=True, timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_unit_capabilities_let_the_inspection_workers_drop_root(tmp_path):
    document = tmp_path / "memo.txt"
    document.write_text("商业秘密\n", encoding="utf-8")
    assert _worker_probe(CAPABILITIES, str(document)) == ["trade_secret_marking", "inspection_timeout"]
    without_setuid = tuple(c for c in CAPABILITIES if c not in ("CAP_SETUID", "CAP_SETGID"))
    assert _worker_probe(without_setuid, str(document))[0] == "inspection_failed", "a worker that cannot drop root never parses"
    without_kill = tuple(c for c in CAPABILITIES if c != "CAP_KILL")
    assert _worker_probe(without_kill, str(document))[-1] == "may not signal the worker", "root may not kill another user's process"
