"""docs/reliability.md's tables, written from a test run.

Every test that tries a fault, a bad input or an access attempt carries
`@pytest.mark.reliability(area=..., fault=..., how=..., outcome=...)`. tests/conftest.py collects
each marked test's result in the run (passed, failed, skipped with its reason, or not run) and, with
MIWEI_RELIABILITY_DOC=1 (`make test` sets it), rewrites the part of docs/reliability.md between
the START and END markers. Everything outside them is written by hand and kept as it is.

Tests with the same area and fault make one row. Rows are ordered by their first test's node id
and tests within a row by node id, so two runs with the same results write the same tables (only
the line naming the run's time and commit changes).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

START = "<!-- reliability:generated:start -->"
END = "<!-- reliability:generated:end -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
AREAS = {  # area -> (section heading, first column)
    "fault": ("Faults: processes, disks, network", "Fault"),
    "input": ("Bad input to the collector", "Input"),
    "access": ("Access", "Attempt"),
}
FIELDS = ("area", "fault", "how", "outcome")
STATUSES = ("passed", "failed", "skipped", "not run")


@dataclass(frozen=True)
class Result:
    """One collected test case (a parametrized test gives one per case) and how it ended."""

    nodeid: str
    area: str
    fault: str
    how: str
    outcome: str
    status: str = "not run"  # one of STATUSES
    reason: str = ""  # why it was skipped or failed, one line

    @property
    def test(self) -> str:
        """The test function's id, without the parameters."""
        return self.nodeid.split("[", 1)[0]


@dataclass(frozen=True)
class Run:
    at: datetime
    commit: str  # short hash, "+ local changes" when the tree differs from it


def marker_fields(nodeid: str, kwargs: dict) -> dict[str, str]:
    """The marker's fields, checked: a test marked wrongly is a clear error, not a bad row."""
    problems = [f"{k} is missing or empty" for k in FIELDS if not isinstance(kwargs.get(k), str) or not kwargs[k].strip()]
    problems += [f"unknown field {k!r}" for k in sorted(set(kwargs) - set(FIELDS))]
    if not problems and kwargs["area"] not in AREAS:
        problems.append(f"area {kwargs['area']!r} is not one of {', '.join(AREAS)}")
    if problems:
        raise ValueError(f"{nodeid}: reliability marker: {'; '.join(problems)}")
    return {k: " ".join(kwargs[k].split()) for k in FIELDS}


def current_run(root: Path = DOC.parents[1]) -> Run:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " + local changes"
    return Run(datetime.now(UTC), commit)


def render(results: Iterable[Result], run: Run) -> str:
    """The generated part of the page (without the START/END lines)."""
    results = sorted(results, key=lambda r: r.nodeid)
    counts = {s: sum(1 for r in results if r.status == s) for s in STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines = [
        f"*Generated from the test run of {run.at:%Y-%m-%d %H:%M} UTC at commit {run.commit}:"
        f" {len(results)} marked test cases, {summary or 'none run'}. The last column says how each test ended"
        " in that run; the rest comes from the tests' `reliability` markers.*",
    ]
    for area, (heading, first) in AREAS.items():
        rows = _rows([r for r in results if r.area == area])
        lines += ["", f"## {heading}", ""]
        if not rows:
            lines.append("No marked tests in this run.")
            continue
        lines += [f"| {first} | How | Outcome | This run | Test |", "|---|---|---|---|---|"]
        for row in rows:
            head = row[0]
            tests = ", ".join(f"`{t}`" for t in dict.fromkeys(r.test for r in row))
            cells = (head.fault, head.how, head.outcome, _verdict(row), tests)
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def _rows(results: list[Result]) -> list[list[Result]]:
    rows: dict[str, list[Result]] = {}
    for r in results:  # sorted by node id: a row's first test decides its place and its texts
        rows.setdefault(r.fault, []).append(r)
    return list(rows.values())


def _verdict(row: list[Result]) -> str:
    """How the row's test cases ended: 'passed in this run', or what did not pass and why."""
    by_status = {s: [r for r in row if r.status == s] for s in STATUSES}
    if len(by_status["passed"]) == len(row):
        return "passed in this run"
    parts = []
    if by_status["failed"]:
        parts.append("**failed**: " + "; ".join(_named(r, row) for r in by_status["failed"]))
    if by_status["skipped"]:
        parts.append("skipped: " + "; ".join(_named(r, row) for r in by_status["skipped"]))
    if by_status["not run"]:
        parts.append("not run: " + ", ".join(f"`{r.nodeid.rsplit('::', 1)[-1]}`" for r in by_status["not run"]))
    if by_status["passed"]:
        parts.insert(0, f"{len(by_status['passed'])} of {len(row)} passed")
    return "; ".join(parts)


def _named(r: Result, row: list[Result]) -> str:
    """The reason, with the case's name when the row has several cases."""
    name = r.nodeid.rsplit("::", 1)[-1]
    reason = r.reason or "no reason given"
    return reason if len(row) == 1 else f"`{name}`: {reason}"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def splice(doc: str, generated: str) -> str:
    """The page with the text between START and END replaced; refuses a page without both, in order."""
    start, end = doc.find(START), doc.find(END)
    if start < 0 or end < 0 or end < start or doc.count(START) != 1 or doc.count(END) != 1:
        raise ValueError(f"the page must hold {START} and then {END}, once each")
    return doc[: start + len(START)] + "\n" + generated.strip("\n") + "\n" + doc[end:]


def write(results: Iterable[Result], run: Run, path: Path | None = None) -> bool:
    """Rewrite the page's generated part (of DOC by default); True when the file changed."""
    path = path or DOC
    before = path.read_text(encoding="utf-8")
    after = splice(before, render(results, run))
    if after == before:
        return False
    path.write_text(after, encoding="utf-8")
    return True


def skip_reason(longrepr: object) -> str:
    """The reason pytest keeps for a skip: ('file', line, 'Skipped: why') or text."""
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
    return re.sub(r"^Skipped: ", "", " ".join(str(text).split()))


def failure_reason(longrepr: object) -> str:
    """The last line of a failure that says something (the assertion or the exception)."""
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    text = crash if crash else str(longrepr or "")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "failed")
    return first[:200]
