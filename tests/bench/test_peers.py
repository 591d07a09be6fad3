"""bench/peers.py measures a command with its helper processes: their CPU (reaped, through wait4)
and their own memory beside the command's peak."""

from __future__ import annotations

import sys

from bench.peers import measured_run

PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import sys, time; b = bytearray(40 << 20); b[::4096] = b'x' * len(b[::4096]); print('held', flush=True); time.sleep(0.6); x = sum(range(3 * 10**6))"], stdout=subprocess.PIPE)
child.stdout.readline()
child.wait()
"""


def test_a_commands_helpers_count_in_its_cpu_and_their_memory_is_reported():
    run, _ = measured_run([sys.executable, "-c", PARENT])
    assert run.children_mb >= 35  # the child's 40 MB of its own, seen while it held them
    assert run.peak_mb < 35  # the command's own peak does not include them
    assert run.cpu_s >= 0.05  # the child's sum, reaped by the parent, counts
