"""The top of a cProfile of a path that missed its goal, one line for the report's notes.

cProfile slows Python code down unevenly, so this says where the time goes, not how much there is.
"""

from __future__ import annotations

import cProfile
import os
import pstats
from collections.abc import Callable

from bench.report import REPO


def top(work: Callable[[], object], entries: int = 5) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        work()
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt or 1.0
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:entries]  # by own time
    parts = []
    for (filename, line, function), (_primitive, calls, own_s, _cumulative, _callers) in rows:
        where = f" ({_short(filename)}:{line})" if line else ""
        parts.append(f"`{function}`{where} {100 * own_s / total:.0f}% own time, {calls:,} calls")
    return "; ".join(parts)


def _short(filename: str) -> str:
    """Paths relative to the repository or to site-packages, so the note stays readable."""
    marker = "site-packages" + os.sep
    if marker in filename:
        return filename.split(marker, 1)[1]
    return os.path.relpath(filename, REPO) if filename.startswith(REPO + os.sep) else os.path.basename(filename)
