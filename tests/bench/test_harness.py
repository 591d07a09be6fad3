"""The benchmark harness's own parts: statistics, generated files, the report, the CLI's errors and
the raw inotify reader. No timing is asserted anywhere: the figures depend on the machine."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import corpus
from bench.baselines import BareInsert, bare_executemany, event_rows, read_files, sha256_files
from bench.measure import cpu_seconds, percentile, rss_bytes
from bench.report import REPO, Figure, SectionResult, describe_machine, number, render

KB, MB = 1024, 1024 * 1024


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([5.0], 99, 5.0),
        ([3.0, 1.0, 2.0], 50, 2.0),
        (list(range(1, 101)), 99, 99),
        (list(range(1, 201)), 99, 198),
        (list(range(1, 201)), 100, 200),
    ],
)
def test_percentile_is_an_observed_value_by_nearest_rank(values, p, expected):
    assert percentile(values, p) == expected


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_spread_keeps_bounds_and_total():
    sizes = corpus.spread(1000, 4 * KB, 4 * MB, 200 * MB, random.Random(1))
    assert len(sizes) == 1000
    assert min(sizes) == 4 * KB and max(sizes) == 4 * MB
    assert 0.97 * 200 * MB <= sum(sizes) <= 200 * MB


def test_spread_refuses_a_total_that_cannot_be_reached():
    with pytest.raises(ValueError, match="cannot make 10 files"):
        corpus.spread(10, 4 * KB, 8 * KB, 1 * MB, random.Random(1))


def test_random_tree_files_have_their_sizes_and_differ(tmp_path):
    tree = corpus.random_tree(str(tmp_path / "t"), [10, 5000, 70_000, 5000], seed=1)
    assert [os.path.getsize(p) for p in tree.paths] == [10, 5000, 70_000, 5000]
    contents = {open(p, "rb").read() for p in tree.paths}
    assert len(contents) == 4
    assert tree.total_bytes == 80_010


def test_generated_identifiers_are_valid_as_the_detectors_validate_them():
    """Checksum, region code in force in the year of birth, and date: about 40% failed before."""
    from stdnum import luhn
    from stdnum.cn import ric

    rng = random.Random(5)
    for _ in range(500):
        assert ric.is_valid(corpus.resident_id(rng))
        assert luhn.is_valid(corpus.bank_card(rng))


@pytest.mark.parametrize("kind", sorted(corpus.DOCUMENT_MAKERS))
def test_documents_are_read_as_their_type_with_markings_and_identifiers(tmp_path, kind):
    from agent.content.inspect import inspect_file

    [path] = corpus.documents(str(tmp_path), kind, 1, 32 * KB)
    found = inspect_file(path)
    detectors = {d.detector for d in found.detections}
    # a CSV is text to inspection; the Word and PowerPoint rows are docx and pptx, the office-shaped PDF a pdf
    assert found.file_type == {"csv": "text", "docx-word": "docx", "pptx-powerpoint": "pptx", "pdf-office": "pdf"}.get(kind, kind)
    assert "parse_error" not in detectors and "inspection_truncated" not in detectors
    assert "trade_secret_marking" in detectors
    if kind == "zip":
        assert len(zipfile.ZipFile(path).namelist()) == 4


def test_baselines_read_and_hash_the_files(tmp_path):
    tree = corpus.random_tree(str(tmp_path / "t"), [100_000, 3000], seed=2)
    assert read_files(tree.paths) > 0
    assert sha256_files(tree.paths) > 0
    with pytest.raises(subprocess.CalledProcessError):
        sha256_files([str(tmp_path / "missing")])


def test_bare_executemany_fills_the_servers_events_table(tmp_path):
    import sqlite3

    events = [{"id": f"00000000-0000-0000-0000-{i:012d}", "type": "file.created", "ts": "2026-03-02T08:59:00.000Z",
               "path": f"/srv/{i}"} for i in range(7)]
    url = f"sqlite:///{tmp_path / 'bare.db'}"
    done = bare_executemany(url, event_rows(events, "agent-1", sqlite=True), batch_size=3)
    assert isinstance(done, BareInsert) and done.rows == 7 and len(done.batch_seconds) == 3
    with sqlite3.connect(tmp_path / "bare.db") as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT agent_id) FROM events").fetchone() == (7, 1)
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"events_type_seq", "events_agent_seq"} <= indexes


def test_process_cpu_and_memory_come_from_proc():
    assert cpu_seconds(os.getpid()) > 0
    assert rss_bytes(os.getpid()) > 1 * MB


def test_raw_inotify_reader_reports_closed_files_and_new_folders(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "bench.rawinotify", str(tmp_path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert b"Watches established" in proc.stderr.readline()
        (tmp_path / "a.txt").write_bytes(b"x")
        (tmp_path / "sub").mkdir()
        time.sleep(0.2)  # the reader adds its watch on the new folder
        (tmp_path / "sub" / "b.txt").write_bytes(b"y")
        lines = [proc.stdout.readline().strip() for _ in range(2)]
    finally:
        proc.kill()
        proc.wait()
    assert lines == [os.fsencode(tmp_path / "a.txt"), os.fsencode(tmp_path / "sub" / "b.txt")]


def test_raw_inotify_reader_refuses_a_missing_folder(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench.rawinotify", str(tmp_path / "nope")], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "usage" in done.stderr


def test_report_lists_figures_goals_and_misses():
    figures = (
        Figure("ingest SQLite", 2100.0, "events/s", 41000.0, "rows/s", 0.0512, "ratio >= 0.5", False, 3, "python -m bench ingest"),
        Figure("detection latency p50", 43.7, "ms", 0.18, "ms", 243.0, "< 300 ms", True, 1, "python -m bench latency"),
    )
    text = render([SectionResult("ingest", "Collector ingest", figures, notes="set-up words"),
                   SectionResult("lineage", "Lineage", notes="Not measured yet"),
                   SectionResult("other", "Other", table=(("recall", "98%"),)),
                   SectionResult("broken", "Broken", notes="Failed: RuntimeError: no server")],
                  describe_machine(), "abc123", datetime(2026, 11, 26, tzinfo=UTC), False, "0.1 0.1 0.1")
    assert "| ingest SQLite | 2,100 events/s | 41,000 rows/s | 0.0512 | ratio >= 0.5 | **missed** | 3 | `python -m bench ingest` |" in text
    assert "| detection latency p50 | 43.7 ms | 0.180 ms | 243 | < 300 ms | met | 1 |" in text
    assert "- ingest SQLite: 2,100 events/s against the goal ratio >= 0.5" in text
    assert "| Lineage | not measured |" in text
    assert "| Other | see its section |" in text and "- recall: 98%" in text
    assert "| Broken | failed |" in text and "Failed: RuntimeError: no server" in text
    assert "abc123" in text and "set-up words" in text and "| cores |" in text


@pytest.mark.parametrize(("value", "text"), [(None, "n/a"), (0, "0"), (0.001234, "0.00123"), (12.345, "12.3"),
                                             (999.4, "999"), (123456.7, "123,457")])
def test_numbers_have_three_significant_figures(value, text):
    assert number(value) == text


def test_unknown_section_is_refused_with_the_choices():
    done = subprocess.run([sys.executable, "-m", "bench", "nonsense"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown section 'nonsense'" in done.stderr and "latency" in done.stderr


def test_pyspy_top_counts_busy_leaf_frames_and_leaves_out_waiting_threads():
    from bench.pyspy import top

    source = (Path(REPO) / "agent" / "fanotify.py").read_text().splitlines()
    select_line = 1 + next(i for i, line in enumerate(source) if "select.select(" in line)
    assert "os.read(" in source[select_line + 1]  # the line after the wait reads what it waited for
    source = (Path(REPO) / "agent" / "pipeline.py").read_text().splitlines()
    get_line = 1 + next(i for i, line in enumerate(source) if "self.changes.get(timeout=" in line)
    collapsed = "\n".join([
        "MainThread (1);run (/usr/lib/python3.11/threading.py:1002);wait (/usr/lib/python3.11/threading.py:331) 20",
        "reporter (2);run (threading.py:1002);Condition.wait (threading.py:331) 10",
        f"MainThread (1);ingest ({REPO}/server/store.py:160);do_execute (/v/site-packages/sqlalchemy/engine/default.py:9) 30",
        f"MainThread (1);ingest ({REPO}/server/store.py:161) 10",
        f"fanotify (3);read_loop ({REPO}/agent/fanotify.py:{select_line}) 7",  # blocked in select(): not busy
        f"fanotify (3);read_loop ({REPO}/agent/fanotify.py:{select_line + 2}) 5",  # its read: busy
        f"pipeline (4);Pipeline._step ({REPO}/agent/pipeline.py:{get_line}) 9",  # a queue's get with a timeout
        "not a stack line",
    ])
    assert top(collapsed) == (
        f"`do_execute (sqlalchemy/engine/default.py:9)` 67%; `ingest (server/store.py:161)` 22%; `read_loop "
        f"(agent/fanotify.py:{select_line + 2})` 11% (share of 45 busy samples, own time; 46 samples of threads "
        "waiting (threading, queue, selectors, select, poll, recv, sleep) left out)"
    )
    assert top("") == ""
