"""`python -m bench.rules_eval`: CPU microseconds per event of rule evaluation and of Event.to_dict.

Not a BENCHMARKS.md section (no baseline tool to compare with): the figures behind issue 21's
rule index. Two mixes: the collector's (bench/ingest.py `_event`: 80% classified-file events,
20% egress to a USB stick, a third given an app, a writer and a detection as an agent adds them)
and an agent's flat burst (egress.file into a sync folder). Each figure is the best of a few runs
of process CPU time, so other processes on the machine matter less than to wall clock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bench.ingest import _event
from rules.engine import EventEngine
from rules.events import Detection, Event
from rules.loader import default_pack_sources, load_rule_sources

EVENTS = 20_000
RUNS = 3


def collector_mix() -> list[Event]:
    rng = random.Random(7)
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    events = [Event.from_dict(_event(rng, start + timedelta(seconds=i * 37))) for i in range(EVENTS)]
    added = {"details": {"app": "WeChat", "user_from": "open-file", "process": {"pid": 7, "argv": ["cp", "-r", "x"]}}}
    return [
        e.replaced(**added, detections=(Detection("cn_mobile", 2, "138****"),)) if i % 3 == 0 else e
        for i, e in enumerate(events)
    ]


def agent_burst() -> list[Event]:
    return [
        Event(type="egress.file", egress="sync", path=f"/home/u/sync/f{i}.bin", size=50_000, sha256="ab" * 32, user="u",
              details={"app": "Baidu Netdisk", "user_from": "open-file"})
        for i in range(EVENTS)
    ]  # fmt: skip


def cpu_us_per_event(fn: Callable[[Event], object], events: list[Event]) -> float:
    runs = []
    for _ in range(RUNS):
        started = time.process_time()
        for event in events:
            fn(event)
        runs.append((time.process_time() - started) / len(events) * 1e6)
    return min(runs)


def main() -> None:
    ruleset = load_rule_sources(default_pack_sources())
    indexed, plain = EventEngine(ruleset), EventEngine(ruleset, indexed=False)
    for name, events in (("collector mix", collector_mix()), ("agent burst", agent_burst())):
        figures = {
            "matches (index)": cpu_us_per_event(indexed.matches, events),
            "matches (plain loop)": cpu_us_per_event(plain.matches, events),
            "stamp": cpu_us_per_event(lambda e: indexed.stamp(e, "v1"), events),
            "to_dict": cpu_us_per_event(Event.to_dict, events),
        }
        print(f"{name}: " + "; ".join(f"{k} {v:.1f} us" for k, v in figures.items()))


if __name__ == "__main__":
    main()
