"""The generator of docs/reliability.md's tables, with made-up results."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest

from tests import reliability
from tests.reliability import END, START, Result, Run

RUN = Run(datetime(2026, 11, 27, 2, 30, 59, tzinfo=UTC), "abc1234")


def _results() -> list[Result]:
    killed = dict(area="fault", fault="Collector killed", how="`SIGKILL` mid-stream", outcome="each seq once")
    return [
        Result("tests/e2e/test_b.py::test_killed_again", **killed, status="passed"),
        Result("tests/e2e/test_a.py::test_killed", **killed, status="passed"),
        Result("tests/e2e/test_a.py::test_disk[tmpfs]", area="fault", fault="Disk full", how="a | tmpfs", outcome="o", status="skipped", reason="mounting needs root"),
        Result("tests/e2e/test_a.py::test_disk[ext4]", area="fault", fault="Disk full", how="a | tmpfs", outcome="o", status="passed"),
        Result("tests/server/test_x.py::test_nan", area="input", fault="NaN", how="raw JSON", outcome="400", status="failed", reason="assert 500 == 400"),
        Result("tests/server/test_x.py::test_late", area="input", fault="Late", how="h", outcome="o"),
    ]


def test_rows_group_tests_by_fault_in_a_stable_order_with_this_runs_outcome():
    text = reliability.render(_results(), RUN)
    assert reliability.render(list(reversed(_results())), RUN) == text  # the order results arrive in does not matter
    assert text.splitlines()[0] == (
        "*Generated from the test run of 2026-11-27 02:30 UTC at commit abc1234: 6 marked test cases, 3 passed,"
        " 1 failed, 1 skipped, 1 not run. The last column says how each test ended in that run; the rest comes"
        " from the tests' `reliability` markers.*"
    )
    faults = text.split("## Faults: processes, disks, network")[1].split("## Bad input")[0]
    rows = [line for line in faults.splitlines() if line.startswith("| ") and not line.startswith("| Fault")]
    assert rows == [
        "| Disk full | a \\| tmpfs | o | 1 of 2 passed; skipped: `test_disk[tmpfs]`: mounting needs root | `tests/e2e/test_a.py::test_disk` |",
        "| Collector killed | `SIGKILL` mid-stream | each seq once | passed in this run | `tests/e2e/test_a.py::test_killed`, `tests/e2e/test_b.py::test_killed_again` |",
    ]
    assert "| NaN | raw JSON | 400 | **failed**: assert 500 == 400 | `tests/server/test_x.py::test_nan` |" in text
    assert "| Late | h | o | not run: `test_late` | `tests/server/test_x.py::test_late` |" in text
    assert text.split("## Access")[1].strip() == "No marked tests in this run."


def test_only_the_text_between_the_markers_is_replaced(tmp_path):
    page = tmp_path / "reliability.md"
    before, after = "# Reliability\n\nBy hand.\n\n", "\n\n### The bad-token flood, measured\n\nBy hand too.\n"
    page.write_text(before + START + "\nold tables\n" + END + after, encoding="utf-8")
    assert reliability.write(_results(), RUN, page)
    text = page.read_text(encoding="utf-8")
    assert text.startswith(before + START + "\n*Generated from the test run of 2026-11-27 02:30 UTC")
    assert text.endswith("\n" + END + after)
    assert "old tables" not in text
    assert not reliability.write(_results(), RUN, page)  # the same results: nothing to change


@pytest.mark.parametrize(
    "page", ["no markers", f"{END}\n{START}", f"{START}\n{START}\n{END}", f"{START} only"],
    ids=["no markers", "end before start", "start twice", "start only"],
)
def test_a_page_without_its_markers_is_refused(page):
    with pytest.raises(ValueError, match="must hold"):
        reliability.splice(page, "tables")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"area": "fault", "fault": "f", "how": "h"}, "outcome is missing or empty"),
        ({"area": "disk", "fault": "f", "how": "h", "outcome": "o"}, "area 'disk' is not one of fault, input, access"),
        ({"area": "fault", "fault": " ", "how": "h", "outcome": "o", "colour": "red"}, "fault is missing or empty; unknown field 'colour'"),
    ],
)
def test_a_wrongly_marked_test_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=f"tests/t.py::test_x: reliability marker: {message}"):
        reliability.marker_fields("tests/t.py::test_x", kwargs)


def test_skip_and_failure_reasons_are_one_line():
    assert reliability.skip_reason(("tests/a.py", 3, "Skipped: mounting\n  needs root")) == "mounting needs root"
    assert reliability.failure_reason("AssertionError: 2 seqs missing\nmore") == "AssertionError: 2 seqs missing"


SUITE = '''
import pytest

@pytest.mark.reliability(area="fault", fault="Works", how="h", outcome="o")
@pytest.mark.xdist_group("system")
def test_works():
    pass

@pytest.mark.reliability(area="input", fault="Breaks", how="h", outcome="o")
def test_breaks():
    assert 1 == 2

@pytest.mark.reliability(area="access", fault="Skips", how="h", outcome="o")
def test_skips():
    pytest.skip("needs root")

@pytest.mark.reliability(area="access", fault="Last", how="h", outcome="o")
def test_last():
    pass
'''


def _run_marked_suite(tmp_path, *args: str, extra: str = "") -> tuple[subprocess.CompletedProcess, str, list[str]]:
    """A pytest run of SUITE with tests/conftest.py's hooks, writing to a page of its own: the run,
    the page after it, and which processes wrote the page (an xdist worker's name, or 'main')."""
    (tmp_path / "test_marked.py").write_text(SUITE + extra, encoding="utf-8")
    page, writers = tmp_path / "reliability.md", tmp_path / "writers"
    page.write_text(f"# R\n\n{START}\n{END}\n", encoding="utf-8")
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import os
        from pathlib import Path
        from tests import reliability
        from tests.conftest import *  # noqa: F403
        reliability.DOC = Path({str(page)!r})
        _write = reliability.write
        def _logged(*args, **kwargs):
            with open({str(writers)!r}, "a") as log:
                log.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")
            return _write(*args, **kwargs)
        reliability.write = _logged
    """), encoding="utf-8")
    env = {"MIWEI_RELIABILITY_DOC": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(reliability.DOC.parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "markers=reliability: r", *args, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    return done, page.read_text(encoding="utf-8"), writers.read_text().split() if writers.exists() else []


def test_the_hook_writes_the_page_from_a_real_run(tmp_path):
    """A pytest run of marked tests (two pass, one fails, one skips) rewrites the page it is given."""
    done, text, writers = _run_marked_suite(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr  # one test fails
    assert writers == ["main"]
    assert "4 marked test cases, 2 passed, 1 failed, 1 skipped" in text
    assert "| Works | h | o | passed in this run | `test_marked.py::test_works` |" in text
    assert "| Breaks | h | o | **failed**: assert 1 == 2 | `test_marked.py::test_breaks` |" in text
    assert "| Skips | h | o | skipped: needs root | `test_marked.py::test_skips` |" in text


needs_xdist = pytest.mark.skipif(
    importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed (the [dev] extra)"
)


@needs_xdist
def test_a_parallel_run_writes_the_page_once_from_the_controller(tmp_path):
    """Under xdist the controller collects nothing and the workers must not write: the results come
    to the controller on the reports, and it alone writes the page, with xdist's group suffix
    (test_works@system) kept out of the node ids."""
    done, text, writers = _run_marked_suite(tmp_path, "-n", "2", "--dist", "loadgroup")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "bringing up nodes" in done.stdout, done.stdout  # it did run under xdist
    assert writers == ["main"]
    assert "4 marked test cases, 2 passed, 1 failed, 1 skipped" in text
    assert "| Works | h | o | passed in this run | `test_marked.py::test_works` |" in text
    assert "| Breaks | h | o | **failed**: assert 1 == 2 | `test_marked.py::test_breaks` |" in text
    assert "| Skips | h | o | skipped: needs root | `test_marked.py::test_skips` |" in text
    assert "@" not in text


@needs_xdist
def test_a_parallel_run_stopped_early_shows_the_rest_as_not_run(tmp_path):
    """The tests a worker collected but never ran (-x after the failure) come back with its
    collection and show as 'not run', as they do without xdist."""
    done, text, writers = _run_marked_suite(tmp_path, "-n", "1", "--dist", "loadgroup", "-x")
    assert done.returncode == 2 and "stopping after 1 failures" in done.stdout, done.stdout + done.stderr
    assert writers == ["main"]
    assert "4 marked test cases, 1 passed, 1 failed, 2 not run" in text
    assert "| Skips | h | o | not run: `test_skips` | `test_marked.py::test_skips` |" in text


@needs_xdist
def test_a_test_whose_worker_dies_is_failed_not_missing(tmp_path):
    """A worker killed under a test (os._exit here) sends no report of its own: xdist reports the
    crash without the test's properties, and the page still shows that test as failed."""
    crash = "\n@pytest.mark.reliability(area=\"fault\", fault=\"Dies\", how=\"h\", outcome=\"o\")\n" \
        "@pytest.mark.xdist_group(\"system\")\ndef test_dies():\n    import os\n    os._exit(3)\n"
    # no replacement worker: under loadgroup xdist would run the rest of the group, this test first, again
    done, text, writers = _run_marked_suite(tmp_path, "-n", "2", "--dist", "loadgroup", "--max-worker-restart", "0", extra=crash)
    assert "crashed while running" in done.stdout, done.stdout + done.stderr
    assert writers == ["main"]
    assert "5 marked test cases" in text
    assert "| Dies | h | o | **failed**: worker 'gw" in text and "crashed while running" in text
