"""The idle agent's footprint: CPU and resident memory over 60 s with 100,000 indexed files,
beside a bare watchdog observer over the same tree measured the same way at the same time
(issue 5 item 8, issue 9 item 5).

The agent runs as a service would: its index built first (`miwei-agent index`), the shipped
heartbeat (30 s), a collector to report to, nothing happening on the disk. Both processes are
read from /proc/<pid>/stat (user + system time) and /proc/<pid>/status (VmRSS) once a second.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import corpus, pyspy
from bench.deploy import BenchDeployment
from bench.indexing import FULL_BYTES, FULL_FILES, QUICK_BYTES, QUICK_FILES
from bench.measure import CLOCK_TICKS, MB, cpu_seconds, median, rss_bytes
from bench.report import Figure, ratio, reproduce

TITLE = "Idle agent"
WINDOWS = 3
PROFILE_S = 20.0

_OBSERVER = """
import sys, threading
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
observer = Observer()
observer.schedule(FileSystemEventHandler(), sys.argv[1], recursive=True)
observer.start()
print("ready", flush=True)
threading.Event().wait()
"""


def run(quick: bool) -> list[Figure]:
    files, size = (QUICK_FILES, QUICK_BYTES) if quick else (FULL_FILES, FULL_BYTES)
    window_s, settle_s = (5 / WINDOWS, 1.0) if quick else (60 / WINDOWS, 5.0)
    tree = corpus.shared_classified_tree(files, size)
    root = Path(corpus.new_dir("idle"))
    usb = root / "usb"
    usb.mkdir()
    d = BenchDeployment(root / "deploy", [(Path(tree.root), "core", "Product drawings")], egress_folders=[usb], heartbeat_s=30)
    built = corpus.built_index(tree)
    if built:  # the index section built it in this run: the same files, the same register entry
        d.state_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, d.state_dir / "index.db")
    else:
        d.index()
    observer = None
    try:
        d.start_server()
        d.start_agent()
        observer = subprocess.Popen([sys.executable, "-c", _OBSERVER, tree.root], stdout=subprocess.PIPE, text=True)
        if observer.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the bare watchdog observer did not start ({observer.poll()})")
        time.sleep(settle_s)  # start-up work (the agent's first scan and heartbeat) is not idling
        agent_cpu, observer_cpu, agent_rss, observer_rss = _watch(d.agent.pid, observer.pid, window_s)
        profile = ""
        if median(agent_cpu) >= 0.5 and pyspy.available():
            profile_s = 2.0 if quick else PROFILE_S
            profile = f" Profile of the idle agent over another {profile_s:.0f} s (py-spy): " \
                      + pyspy.profile(d.agent.pid, lambda: time.sleep(profile_s)) + "."
    finally:
        if observer is not None:
            observer.kill()
            observer.wait()
        d.close()
    cpu, bare_cpu = median(agent_cpu), median(observer_cpu)
    rss, bare_rss = max(agent_rss) / MB, max(observer_rss) / MB
    setting = (f"{len(tree.paths):,} files in {len(tree.paths) // corpus.FILES_PER_FOLDER} watched folders; "
               f"{WINDOWS} windows of {window_s:.0f} s after {settle_s:.0f} s of settling")
    return [
        Figure(
            name="idle agent CPU", value=cpu, unit="% of one core", baseline=bare_cpu,
            baseline_unit="% (bare watchdog observer)", ratio=ratio(cpu, bare_cpu), goal="< 0.5%", met=cpu < 0.5,
            runs=WINDOWS, reproduce=reproduce("idle"),
            notes=f"{setting}; the median window (CPU time is counted in clock ticks of {1000 / CLOCK_TICKS:.0f} ms). Windows: agent {_list(agent_cpu)}, observer {_list(observer_cpu)} (%)." + profile,
        ),
        Figure(
            name="idle agent RSS", value=rss, unit="MB", baseline=bare_rss, baseline_unit="MB (bare watchdog observer)",
            ratio=ratio(rss, bare_rss), goal="< 80 MB", met=rss < 80, runs=WINDOWS, reproduce=reproduce("idle"),
            notes=f"{setting}; the largest VmRSS seen, sampled every second.",
        ),
    ]


def _watch(agent_pid: int, observer_pid: int, window_s: float) -> tuple[list[float], list[float], list[int], list[int]]:
    """CPU % of one core per window for both processes, and every RSS sample."""
    agent_cpu, observer_cpu, agent_rss, observer_rss = [], [], [], []
    for _ in range(WINDOWS):
        started = time.monotonic()
        a0, o0 = cpu_seconds(agent_pid), cpu_seconds(observer_pid)
        while (left := started + window_s - time.monotonic()) > 0:
            agent_rss.append(rss_bytes(agent_pid))
            observer_rss.append(rss_bytes(observer_pid))
            time.sleep(min(1.0, left))
        elapsed = time.monotonic() - started
        agent_cpu.append(100 * (cpu_seconds(agent_pid) - a0) / elapsed)
        observer_cpu.append(100 * (cpu_seconds(observer_pid) - o0) / elapsed)
    return agent_cpu, observer_cpu, agent_rss, observer_rss


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)
