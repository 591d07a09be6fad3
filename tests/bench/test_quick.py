"""`python -m bench --quick` works end to end: real processes, real files, a report with every
figure. What the figures are is not asserted (no timing in tests); that they exist is."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bench import corpus
from bench.report import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHEAP = {
    "content": ["inspection text", "inspection csv", "inspection docx", "inspection xlsx", "inspection pptx",
                "inspection pdf", "PDF readers: PDFium beside pypdf", "inspection zip", "inspection docx-word",
                "inspection pptx-powerpoint"],
    "index": ["index build", "index re-index, nothing changed", "index build vs AIDE"],
    "latency": ["detection latency p50", "detection latency p99"],
    "throughput": ["egress throughput (time to store all / SHA-256 time)", "egress agent CPU per 1,000 files",
                   "egress agent CPU per 1,000 files, flat burst"],
}


def test_quick_run_of_the_cheap_sections_writes_every_figure(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", *CHEAP, "--quick", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    assert "Quick mode" in text
    for section, names in CHEAP.items():
        assert f"Reproduce: `python -m bench {section}`" in text
        for name in names:
            row = re.search(rf"^\| {re.escape(name)} \| ([0-9.,]+) ", text, re.M)
            assert row, f"no measured value for {name!r} in:\n{text}"
    assert "Failed" not in text


def test_quick_ingest_on_sqlite_posts_and_inserts_every_batch():
    from bench import ingest

    figures = ingest._backend("SQLite", None, batches=2, runs=1)
    assert [f.name for f in figures] == ["ingest SQLite", "ingest SQLite p99 batch latency", "ingest SQLite CPU per event"]
    rate, p99, cpu = figures
    assert all(f.value and f.value > 0 and f.baseline and f.baseline > 0 for f in (rate, p99))
    assert cpu.value and cpu.value > 0 and cpu.unit == "µs"  # the collector's user + system CPU over the POSTs
    assert all(f.met is not None for f in figures)


def test_the_stored_figure_fills_a_collector_database_and_posts_into_copies_of_it(tmp_path):
    import sqlite3
    import uuid

    from bench import ingest

    ingest._fill(f"sqlite:///{tmp_path / 'filled.db'}", 3_000, chunk=1_000)
    with sqlite3.connect(tmp_path / "filled.db") as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY ts")]
    assert len(ids) == 3_000 and all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids)  # made at each event's time, as agents make them
    figure = ingest._stored_figure(3_000, batches=2, runs=1, fresh_rate=1.0)
    assert figure.name == "ingest SQLite, 3,000 events stored" and figure.value > 0 and figure.ratio == figure.value
    assert figure.met is True and "3,000 events of the 30 days before" in figure.notes


def test_quick_idle_measures_both_processes():
    from bench import idle

    try:
        figures = idle.run(quick=True)
    finally:
        corpus.cleanup()
    assert [f.name for f in figures] == ["idle agent CPU", "idle agent RSS"]
    cpu, rss = figures
    assert cpu.value is not None and cpu.baseline is not None
    assert rss.value > 1 and rss.baseline > 1  # MB: both processes were alive and read
