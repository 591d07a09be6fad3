"""`python -m bench.split`: the per-stage CPU of inspection that docs/benchmarks.md quotes."""

from __future__ import annotations

import re
import subprocess
import sys

from bench import corpus, split
from bench.report import REPO


def test_a_kind_is_split_into_its_stages(monkeypatch):
    monkeypatch.setattr(split, "TEXT_BYTES", 64 << 10)
    monkeypatch.setattr(split, "RUNS", 1)
    try:
        line = split.split("csv")
    finally:
        corpus.cleanup()
    found = re.fullmatch(
        r"csv: ([\d.]+) MB of text; ms a MB: extract ([\d.]+) detect ([\d.]+) winnow ([\d.]+) inspect ([\d.]+) "
        r"-> ([\d.]+) MB of text a CPU second",
        line,
    )
    assert found, line
    assert 0.05 <= float(found[1]) <= 0.2  # two documents of some 64 KB of text each
    assert float(found[5]) > 0


def test_an_unknown_kind_is_refused_with_the_kinds():
    done = subprocess.run([sys.executable, "-m", "bench.split", "docs"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown kind 'docs'" in done.stderr and "docx-word" in done.stderr
