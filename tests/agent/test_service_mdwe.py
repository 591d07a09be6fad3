"""The unit sets MemoryDenyWriteExecute=yes: the agent's code must run where no memory is ever
both writable and executable. Linux 6.3+ applies the same rule to one process with
prctl(PR_SET_MDWE), so the agent's own work is run here under it: watchdog's inotify, the statx
call through ctypes, a ctypes callback, RE2, SQLite, the rules and content inspection (scan)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

UNSUPPORTED = 77

SCRIPT = textwrap.dedent(
    """
    import ctypes, json, mmap, os, sys, tempfile, time
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(%(unsupported)d)  # kernel older than 6.3
    found = {}
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        found["wx_refused"] = False
    except OSError:
        found["wx_refused"] = True

    from agent.mountid import mount_identity
    found["mount_identity"] = bool(mount_identity("/"))
    callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)
    found["ctypes_callback"] = callback(41)

    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer
    seen = []
    class Handler(FileSystemEventHandler):
        def on_any_event(self, event):
            seen.append(event.event_type)
    folder = tempfile.mkdtemp()
    observer = Observer()
    observer.schedule(Handler(), folder, recursive=True)
    observer.start()
    with open(os.path.join(folder, "new.txt"), "w") as f:
        f.write("x")
    deadline = time.monotonic() + 10
    while "created" not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
    observer.stop()
    observer.join()
    found["watchdog_created"] = "created" in seen

    import contextlib, io
    from agent.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        found["scan_exit"] = main(["scan", "--json", sys.argv[2], "-c", sys.argv[1]])
    found["scan"] = json.loads(out.getvalue().splitlines()[0])
    print(json.dumps(found))
    """
) % {"unsupported": UNSUPPORTED}


def test_the_agent_runs_with_write_xor_execute_memory(tmp_path):
    secret = tmp_path / "enroll.secret"
    secret.write_text("a-long-enough-secret-value\n")
    secret.chmod(0o600)
    config = tmp_path / "config.yaml"
    config.write_text(f"agent:\n  server_url: http://127.0.0.1:9\n  enroll_secret_file: {secret}\n  state_dir: ./state\n")
    memo = tmp_path / "memo.txt"
    memo.write_text("商业秘密 严禁外传\n客户名单：张三 13912345678 联系电话\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(config), str(memo)], capture_output=True, text=True, timeout=120
    )
    if done.returncode == UNSUPPORTED:
        pytest.skip("prctl(PR_SET_MDWE) needs Linux 6.3 or newer")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["wx_refused"], "PR_SET_MDWE was not in force: the test would prove nothing"
    assert found["mount_identity"] and found["ctypes_callback"] == 42 and found["watchdog_created"]
    assert found["scan_exit"] == 0
    assert found["scan"]["detections"], found["scan"]
