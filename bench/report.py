"""What a benchmark section returns (Figure), the machine it ran on, and the BENCHMARKS.md writer.

A figure is only worth something beside its baseline measured in the same run on the same
machine: a ratio travels between machines, an absolute number does not. So every Figure carries
its baseline, the ratio, the goal and the command that reproduces it alone.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | None  # None: not measured (notes say why)
    unit: str
    baseline: float | None = None
    baseline_unit: str = ""
    ratio: float | None = None  # value / baseline, or as `notes` defines it
    goal: str = ""
    met: bool | None = None  # None: the figure has no goal, or was not measured
    runs: int = 1
    reproduce: str = ""
    notes: str = ""


@dataclass(frozen=True)
class SectionResult:
    name: str
    title: str
    figures: tuple[Figure, ...] = ()
    notes: str = ""  # about the whole section: set-up, why something was skipped
    seconds: float = 0.0
    table: tuple[tuple[str, str], ...] = ()  # free-form key/value rows (a section measured elsewhere)


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    ram_gb: float
    kernel: str
    python: str
    tmp_dir: str
    tmp_fs: str
    load_before: str
    extra: dict = field(default_factory=dict)


def reproduce(name: str, quick: bool = False) -> str:
    return f"python -m bench {name}" + (" --quick" if quick else "")


def ratio(value: float | None, baseline: float | None) -> float | None:
    return value / baseline if value is not None and baseline else None


def describe_machine() -> Machine:
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        ram_gb=_ram_gb(),
        kernel=f"{platform.system()} {platform.release()}",
        python=f"{platform.python_implementation()} {platform.python_version()}",
        tmp_dir=tempfile.gettempdir(),
        tmp_fs=filesystem_of(tempfile.gettempdir()),
        load_before=load_average(),
    )


def load_average() -> str:
    """Other work on the machine skews every figure: the report says how busy it was."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def filesystem_of(path: str) -> str:
    """The type of the file system holding path (the longest mount point above it)."""
    real = os.path.realpath(path)
    best, fstype = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1].replace("\\040", " ")
                if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                    best, fstype = mount, parts[2]
    except OSError:
        pass
    return f"{fstype} (mounted at {best})" if best else fstype


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


# --- Markdown ---------------------------------------------------------------------------------


def number(value: float | None, digits: int = 3) -> str:
    """Three significant figures, without scientific notation for the sizes seen here."""
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    decimals = max(0, digits - 1 - int(f"{magnitude:e}".split("e")[1]))
    return f"{value:.{decimals}f}"


def _met(f: Figure) -> str:
    return {True: "met", False: "**missed**", None: "n/a"}[f.met]


def _with_unit(value: float | None, unit: str) -> str:
    return number(value) if value is None or not unit else f"{number(value)} {unit}"


def render(
    sections: list[SectionResult], machine: Machine, commit: str, started: datetime, quick: bool, load_after: str
) -> str:
    lines = [
        "# MiWei benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); see docs/benchmarks.md for how each figure is measured."
        + (" **Quick mode: scaled-down smoke run, not figures to quote.**" if quick else ""),
        "Every figure is a median of the runs shown, beside a baseline measured in the same run on the same machine.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| date | {started.strftime('%Y-%m-%d %H:%M UTC')} |",
        f"| commit | {commit} |",
        f"| CPU | {machine.cpu} |",
        f"| cores | {machine.cores} |",
        f"| RAM | {machine.ram_gb:.1f} GB |",
        f"| kernel | {machine.kernel} |",
        f"| Python | {machine.python} |",
        f"| temp dir | {machine.tmp_dir}: {machine.tmp_fs} |",
        f"| load average (1, 5, 15 min) before / after | {machine.load_before} / {load_after} |",
        "",
        "## Summary",
        "",
        "| figure | value | baseline (same run) | ratio | goal | | runs | reproduce |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in sections:
        for f in s.figures:
            lines.append(
                f"| {f.name} | {_with_unit(f.value, f.unit)} | {_with_unit(f.baseline, f.baseline_unit)} | "
                f"{number(f.ratio)} | {f.goal or '-'} | {_met(f)} | {f.runs} | `{f.reproduce}` |"
            )
        if not s.figures:
            state = "failed" if s.notes.startswith("Failed") else "see its section" if s.table else "not measured"
            lines.append(f"| {s.title} | {state} | | | | n/a | | `{reproduce(s.name)}` |")
    for s in sections:
        lines += ["", f"## {s.title}", "", f"Reproduce: `{reproduce(s.name)}` ({s.seconds:.0f} s in this run)", ""]
        lines += [f"Measured: {started.strftime('%Y-%m-%d %H:%M UTC')}, commit {commit[:12]}.", ""]
        if s.notes:
            lines += [s.notes, ""]
        for key, value in s.table:
            lines.append(f"- {key}: {value}")
        if s.table:
            lines.append("")
        for f in s.figures:
            lines.append(f"- **{f.name}**: {_with_unit(f.value, f.unit)}; baseline {_with_unit(f.baseline, f.baseline_unit)}; "
                         f"ratio {number(f.ratio)}; goal {f.goal or 'none'} ({_met(f)}); {f.runs} run(s)."
                         + (f" {f.notes}" if f.notes else ""))
    missed = [(s, f) for s in sections for f in s.figures if f.met is False]
    lines += ["", "## Goals missed, and why", ""]
    if missed:
        lines += [f"- {f.name}: {_with_unit(f.value, f.unit)} against the goal {f.goal}. {why_missed(f.name)}" for _, f in missed]
        lines += ["", "Each was profiled (the profile of this run is in its section above); docs/benchmarks.md gives the breakdown, "
                  "what was changed and what each change bought."]
    else:
        lines.append("None of the measured figures missed its goal.")
    return "\n".join(lines) + "\n"


# What the profiles showed for the figures that miss their goal on this kind of machine (2 cores,
# CPython): the lasting reason, and where docs/benchmarks.md has the breakdown. Keyed by the start
# of the figure's name; the numbers are in the run itself, never here.
WHY_MISSED = (
    ("detection", "", "Issue 15: what goes wrong is listed with examples in the section (identifiers missed per storage "
     "form, documents traced through shared boilerplate, legacy formats); docs/benchmarks.md, 'Detection on a file server'."),
    ("ingest", "p99", "Slow batches: growing incidents and their evidence read back, garbage collection landing on a batch, "
     "WAL checkpoints (docs/benchmarks.md, 'What makes a batch slow (p99)')."),
    ("workers SQLite", "events/s", "SQLite has one writer: each batch is judged (rules, chain, correlation, alerts) inside its write "
     "transaction, so the workers take turns and only decoding and HTTP run side by side: the collector used about "
     "one core with one worker or two (its cores in the section's notes; docs/architecture.md, 'Several ingest "
     "workers'). PostgreSQL has no such single writer."),
    ("workers PostgreSQL", "events/s", "On two cores the load generator and PostgreSQL take the second core the extra worker "
     "would use: the collector got about one core in every row (its cores in the section's notes)."),
    ("ingest", "", "The collector's own per-event work in Python (parse, validate, build the event and its stored body, the chain "
     "digest, the rules) costs several times the bare insert's per-row cost before any alert or correlation "
     "(docs/benchmarks.md, 'Ingest: where the time goes')."),
    ("inspection pdf-office", "per CPU second", "A PDF as office suites write it has a text object every 10 or so "
     "bytes of text (a run per script, font or kerning): the fast PDF reader (agent/content/pdf_fast.py) pays some 15 µs "
     "of Python a text object where PDFium pays about 1 µs a glyph, so such pages go to PDFium, whose text page (its "
     "per-character layout) is most of the time; below 5 MB/s this takes the layout in C "
     "(docs/benchmarks.md, 'Content inspection: where the time goes', round 9)."),
    ("inspection", "per CPU second", "Per MB of text: winnowing about 40 ms (C loops in agent/content/_winnow.c: "
     "the lines' anchors 16, choosing and hashing grams 12; 110-125 ms on the numpy path), the detectors 16-20 ms (a "
     "roster 36-38), extraction 6-9 ms for text, 44-46 docx, 78-80 xlsx, 81-87 pptx, some 115 for a PDF the fast reader "
     "reads and 264-282 through PDFium (its text-page call 190-220 of it); the rest is Python work per part "
     "(docs/benchmarks.md, 'Content inspection: where the time goes')."),
    ("index build", "", "At a few KB to a file, the per-file walk, stat, text check and row cost as much interpreter time "
     "as hashing does; helper processes hash on the other cores, but the refresh's own thread does the rest, and on a "
     "busy machine the helpers compete with everything else (docs/benchmarks.md, 'Index build: where the time goes')."),
    ("egress agent CPU per 1,000 files, flat", "", "Per file the agent's pipeline thread spends about 0.1 ms (lstat and "
     "open, the place, the writer, building, stamping and chaining the event, its share of a spool commit), its lane "
     "hashes and runs the name's detections, the reporter sends; its own inotify reader costs 5-10 µs. The shell "
     "pipeline stores, sends and checks nothing (docs/benchmarks.md, 'Egress burst: where the CPU goes')."),
    ("index re-index", "", "Every file must be stat'ed (an edit made while the agent was stopped shows nowhere else): the bare "
     "walk and lstat alone, loading the rows and the interpreter's start-up add up past 5% of a build that is itself fast "
     "(docs/benchmarks.md, 'Re-index: where the time goes')."),
    ("egress throughput", "", "The figure includes the copy itself, and `cp -r` alone takes several times the SHA-256 time here "
     "(measured in the same run, in the section); after the copy the collector's ingest rate bounds the tail "
     "(docs/benchmarks.md, 'Egress throughput: where the time goes')."),
)


def why_missed(name: str) -> str:
    for start, contains, why in WHY_MISSED:
        if name.startswith(start) and contains in name:
            return why
    return "Not explained yet: profile it (issue 9 item 7)."



MEASURED = re.compile(r"^Measured: (.+)$", re.M)
SECTION_REPRODUCE = re.compile(r"^Reproduce: `python -m bench (\w+)`", re.M)


def merge(old: str, new: str, rerun: list[str]) -> str:
    """The report `new` (of the sections in `rerun`) with every other section of the report `old`
    kept as it was, summary rows included, each saying when it was measured. What makes a partial
    update (`python -m bench NAME --update`) honest: no section's figures are presented as newer
    than they are. The machine table is the new run's; a kept section from a report without
    'Measured:' lines is stamped with that report's date and commit."""
    old_date = _machine_row(old, "date")
    old_commit = _machine_row(old, "commit")[:12]
    kept_rows = [row for row in _summary_rows(old) if _row_section(row) not in rerun]
    new_rows = _summary_rows(new)
    bodies = {name: body for name, body in _sections(old).items() if name not in rerun}
    for name, body in bodies.items():
        if not MEASURED.search(body):
            bodies[name] = body.replace("\n\n", f"\n\nMeasured: {old_date}, commit {old_commit}.\n\n", 1)
    fresh = _sections(new)
    head, _, _ = new.partition("\n## Summary\n")
    order = [n for n in list(_sections(old)) + list(fresh) if n in fresh or n in bodies]
    lines = [head.rstrip(), "", "Sections measured at different times: each section says when (`--update` re-ran "
             + ", ".join(rerun) + ").", "", "## Summary", "", *_summary_header(new)]
    for name in dict.fromkeys(order):  # each section's rows in the report's order of sections
        lines += [row for row in (new_rows if name in fresh else kept_rows) if _row_section(row) == name]
    for name in dict.fromkeys(order):
        lines += ["", (fresh.get(name) or bodies[name]).rstrip()]
    missed = [line for line in (_missed(old) if bodies else []) if _missed_section(line, old) in bodies] + _missed(new)
    lines += ["", "## Goals missed, and why", ""]
    lines += missed or ["None of the measured figures missed its goal."]
    return "\n".join(lines) + "\n"


def _machine_row(text: str, key: str) -> str:
    found = re.search(rf"^\| {key} \| (.+?) \|$", text, re.M)
    return found.group(1) if found else "unknown"


def _summary_header(text: str) -> list[str]:
    return [line for line in text.split("\n## Summary\n", 1)[1].splitlines() if line.startswith("|")][:2]


def _summary_rows(text: str) -> list[str]:
    summary = text.split("\n## Summary\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in summary.splitlines() if line.startswith("| ") and "`python -m bench" in line]


def _row_section(row: str) -> str:
    found = re.search(r"`python -m bench (\w+)", row)
    return found.group(1) if found else ""


def _sections(text: str) -> dict[str, str]:
    """name -> '## Title ...' body, for each measured section (not Machine, Summary or Goals)."""
    found = {}
    for chunk in re.split(r"\n(?=## )", text):
        name = SECTION_REPRODUCE.search(chunk)
        if chunk.startswith("## ") and name:
            found[name.group(1)] = chunk
    return found


def _missed(text: str) -> list[str]:
    part = text.split("\n## Goals missed, and why\n", 1)
    return [line for line in part[1].splitlines() if line.startswith("- ")] if len(part) == 2 else []


def _missed_section(line: str, text: str) -> str:
    """The section whose figure a 'Goals missed' line names (by the figure's name in the summary)."""
    name = line[2:].split(":", 1)[0]
    for row in _summary_rows(text):
        if row.startswith(f"| {name} |"):
            return _row_section(row)
    return ""
