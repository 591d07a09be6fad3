"""Where another process spends its time: `py-spy record` on it while some work runs.

Used on the collector and the agent when a figure misses its goal, in an extra run after the
measured one (py-spy takes CPU too, on a machine with two cores). py-spy is optional: without it
the notes say so.
"""

from __future__ import annotations

import linecache
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable

from bench.report import REPO

WAITING = ("threading.py", "queue.py", "selectors.py")  # py-spy counts some parked threads as busy
# A line that blocks until a descriptor, a queue, a socket or a clock is ready (the agent's
# watchers, its pipeline's queue, its reporter's answer): py-spy cannot always tell such a thread
# idle (a C call made from that line), and counted it busy
_WAIT_CALL = re.compile(r"\bselect\.select\(|\.poll\(|\.get\(timeout=|\.recv_into\(|\btime\.sleep\(|\.wait\(")


def available() -> str | None:
    here = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return here if os.path.exists(here) else shutil.which("py-spy")


SAMPLE_RATE = 200  # samples a second


def record(pid: int, work: Callable[[], object], rate: int = SAMPLE_RATE) -> tuple[str, str]:
    """py-spy's raw output (collapsed stacks) for `pid` while work() runs, and what py-spy said on
    stderr; ('', reason) without py-spy."""
    tool = available()
    if tool is None:
        return "", "py-spy is not installed"
    fd, out = tempfile.mkstemp(prefix="miwei-bench-pyspy-", suffix=".txt")
    os.close(fd)
    spy = subprocess.Popen([tool, "record", "--pid", str(pid), "--format", "raw", "--output", out, "--rate", str(rate)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        work()
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        try:
            _, err = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
    try:
        with open(out, encoding="utf-8", errors="replace") as f:
            return f.read(), err.decode(errors="replace").strip()
    finally:
        os.unlink(out)


def profile(pid: int, work: Callable[[], object], entries: int = 5) -> str:
    """The functions where `pid` was found most often (own time) while work() ran."""
    if available() is None:
        return "(py-spy is not installed: no profile)"
    text, err = record(pid, work)
    return top(text, entries) or f"(py-spy recorded nothing: {err[-200:]})"


def top(collapsed: str, entries: int = 5) -> str:
    """From py-spy's raw (collapsed stacks) output: the leaf frames with their share of samples."""
    leaves: Counter[str] = Counter()
    waiting = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.split(";")[-1]
        if parked(leaf):
            waiting += int(count)  # a thread parked on a lock, a queue, a descriptor or an idle event loop
            continue
        leaves[_short(leaf)] += int(count)
    total = sum(leaves.values())
    if not total:
        return ""
    return "; ".join(f"`{frame}` {100 * n / total:.0f}%" for frame, n in leaves.most_common(entries)) + \
        f" (share of {total:,} busy samples, own time; {waiting:,} samples of threads waiting (threading, queue, selectors, select, poll, recv, sleep) left out)"


def parked(frame: str) -> bool:
    """Whether a leaf frame is a thread waiting, not working: in threading, queue or selectors, or
    at a line of its own source that waits (_WAIT_CALL: select, poll, a queue's get, a socket's
    read, a sleep)."""
    if _file_of(frame) in WAITING:
        return True
    path, _, line = frame.rpartition("(")[2].rstrip(")").rpartition(":")
    return line.isdigit() and bool(_WAIT_CALL.search(linecache.getline(path, int(line))))


def _file_of(frame: str) -> str:
    """The file name of a frame `func (path/file.py:12)`, without its folder."""
    inside = frame.rpartition("(")[2]
    return os.path.basename(inside.rpartition(":")[0])


def _short(frame: str) -> str:
    """`func (/long/path/site-packages/pkg/mod.py:12)` -> `func (pkg/mod.py:12)`."""
    for marker in ("site-packages/", REPO + "/"):
        if marker in frame:
            head, _, tail = frame.partition(marker)
            return head.rsplit("(", 1)[0] + "(" + tail
    return frame
