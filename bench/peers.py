"""Peers measured in the same run: AIDE over the same classified tree (SHA-256 only, the way
MiWei's index hashes), for the build and the re-check of an unchanged tree, and one command's wall
time, CPU time and peak memory (issue 21 item 5).

Each command runs as a child whose own rusage is read with os.wait4, so its CPU seconds belong to
that run alone (RUSAGE_CHILDREN would sum every child), and whose VmHWM is sampled for its peak.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.measure import median


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float  # user + system, its reaped children's included (wait4)
    peak_mb: float  # resident
    children_mb: float = 0.0  # the largest sum of its live children's own memory (USS) seen


def _cpu_seconds(proc: subprocess.Popen) -> float:
    usage = getattr(proc, "rusage", None)
    if usage is None:
        raise RuntimeError("the child's rusage was not kept")
    return usage.ru_utime + usage.ru_stime


class _PeakWatch:
    """The child's VmHWM (its own memory's high-water mark, reset by exec), read every 20 ms until it
    ends. ru_maxrss cannot serve: a forked child starts from the parent's mark, and the benchmark
    process is larger than what it measures."""

    def __init__(self, pid: int):
        self.pid, self.peak_kb, self.children_bytes = pid, 0, 0
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        rounds = 0
        while True:
            rounds += 1
            if rounds % 5 == 0:  # every 100 ms: helper processes (the index's hashing helpers)
                self.children_bytes = max(self.children_bytes, _children_uss(self.pid))
            try:
                with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                            break
                    else:
                        return  # a zombie: no memory left to read
            except (FileNotFoundError, ProcessLookupError, ValueError):
                return
            time.sleep(0.02)

    def peak_mb(self) -> float:
        self._thread.join(timeout=5)
        return self.peak_kb / 1024


def _children_uss(pid: int) -> int:
    """Bytes of memory a process's live children hold on their own (USS: what their ending frees)."""
    import psutil

    total = 0
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return 0
    for child in children:
        try:
            total += child.memory_full_info().uss
        except psutil.Error:
            continue
    return total


class _Popen(subprocess.Popen):
    """Popen that reaps with os.wait4 and keeps the child's own rusage."""

    def _try_wait(self, wait_flags):  # noqa: ANN001 - CPython's private hook (3.8+)
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        if pid:
            self.rusage = usage
        return pid, status


def measured_run(argv: list[str], timeout_s: float = 3600.0, ok_codes: tuple[int, ...] = (0,), **kwargs) -> tuple[Run, str]:
    """Run argv to its end: (its own wall, CPU and peak memory, its stdout); raises on a failure."""
    started = time.perf_counter()
    proc = _Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    peak = _PeakWatch(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    wall = time.perf_counter() - started
    if proc.returncode not in ok_codes:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({proc.returncode}): {err.strip()[-400:]}")
    return Run(wall, _cpu_seconds(proc), peak.peak_mb(), peak.children_bytes / (1 << 20)), out


def aide_missing() -> str | None:
    return None if shutil.which("aide") else "AIDE is not installed (apt-get install aide): no peer figures"


def aide(root: str, workdir: Path, runs: int) -> tuple[list[Run], list[Run]]:
    """AIDE's database built over `root` (SHA-256 only) `runs` times, then checked `runs` times."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "aide.conf"
    db, new = workdir / "aide.db", workdir / "aide.db.new"
    conf.write_text(
        f"database_in=file:{db}\ndatabase_out=file:{new}\ngzip_dbout=no\nreport_url=stdout\n"
        f"log_level=warning\nreport_level=summary\n{root} sha256\n",
        encoding="utf-8",
    )
    builds, checks = [], []
    for _ in range(runs):
        new.unlink(missing_ok=True)
        builds.append(measured_run(["aide", "--init", "-c", str(conf)])[0])
    os.replace(new, db)
    for _ in range(runs):
        checks.append(measured_run(["aide", "--check", "-c", str(conf)])[0])  # 0: nothing changed
    return builds, checks


def typical(runs: list[Run]) -> Run:
    return Run(
        median([r.wall_s for r in runs]),
        median([r.cpu_s for r in runs]),
        max(r.peak_mb for r in runs),
        max(r.children_mb for r in runs),
    )


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its reaped children and its live descendants (the agent's
    inspection workers are alive while it runs, so /proc/<pid>/stat alone would miss them)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in (root, *root.children(recursive=True)):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def openssl_pipeline_missing() -> str | None:
    missing = [tool for tool in ("inotifywait", "openssl", "xargs") if not shutil.which(tool)]
    return f"{', '.join(missing)} missing (apt-get install inotify-tools openssl)" if missing else None


class HashPipeline:
    """`inotifywait -m -e close_write,moved_to DIR | xargs -n 64 openssl dgst -sha256`: the batched shell
    pipeline an administrator might write instead of an agent, on a flat folder (`inotifywait -r`
    misses files written into folders made during a copy)."""

    BATCH = 64

    def __init__(self, folder: str, out: Path):
        self.out = out
        script = (f"inotifywait -m -q -e close_write,moved_to --format '%w%f' {_quoted(folder)} "
                  f"| xargs -d '\\n' -n {self.BATCH} openssl dgst -sha256 > {_quoted(str(out))}")  # fmt: skip
        self.proc = _Popen(["sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)  # fmt: skip
        time.sleep(0.5)  # inotifywait has set its watch (it prints nothing with -q)

    def hashed(self) -> int:
        try:
            with open(self.out, encoding="utf-8", errors="replace") as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    def finish(self) -> float:
        """Stop inotifywait (xargs hashes what it holds, then all exit); the pipeline's CPU seconds."""
        import signal

        import psutil

        for child in _children(self.proc.pid):
            try:
                if child.name() == "inotifywait":
                    child.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:  # an openssl or xargs child that ended after the listing
                continue
        self.proc.communicate(timeout=60)
        usage = self.proc.rusage
        return usage.ru_utime + usage.ru_stime


def _children(pid: int):
    import psutil

    return psutil.Process(pid).children(recursive=True)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
