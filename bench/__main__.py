"""`python -m bench [NAME...] [--quick] [--out PATH]`: run the benchmarks, write BENCHMARKS.md.

With no names every section runs and the report goes to BENCHMARKS.md at the repository root.
With names, or with --quick, it goes to stdout unless --out says where: a partial or scaled-down
run must not overwrite the figures of a full one by accident.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import time
import traceback
from datetime import UTC, datetime

from bench import corpus
from bench.report import REPO, SectionResult, describe_machine, git_commit, load_average, merge, render

# name -> module; each module has TITLE and run(quick) -> list[Figure]. Cheap sections first.
SECTIONS: dict[str, str] = {
    "content": "bench.content",
    "ingest": "bench.ingest",
    "workers": "bench.fleetload",
    "console": "bench.console",
    "fleet": "bench.fleet",
    "policy": "bench.policy_push",
    "index": "bench.indexing",
    "idle": "bench.idle",
    "latency": "bench.latency",
    "throughput": "bench.throughput",
    "lineage": "bench.lineage",
    "detection": "bench.detection",
    "partitions": "bench.partitions",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"sections to run (default all): {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="a scaled-down run, to check that the harness works")
    parser.add_argument("--out", help="where to write the Markdown report ('-' for stdout)")
    parser.add_argument("--update", action="store_true",
                        help="re-run the named sections in BENCHMARKS.md (or --out) and keep the others as they were")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {', '.join(map(repr, unknown))}; choose from {', '.join(SECTIONS)}")
    names = list(dict.fromkeys(args.names)) or list(SECTIONS)
    if args.update and (not args.names or args.quick):
        parser.error("--update re-runs the sections it names in a full report: name them, without --quick")
    out = args.out or ("-" if (args.names and not args.update) or args.quick else os.path.join(REPO, "BENCHMARKS.md"))

    started = datetime.now(UTC)
    machine = describe_machine()
    results = []
    try:
        for name in names:
            results.append(run_section(name, args.quick))
    finally:
        corpus.cleanup()
    text = render(results, machine, git_commit(), started, args.quick, load_average())
    if args.update and out != "-" and os.path.exists(out):
        with open(out, encoding="utf-8") as f:
            text = merge(f.read(), text, names)
    if out == "-":
        sys.stdout.write(text)
    else:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {out}", file=sys.stderr)
    return 1 if any(r.notes.startswith("Failed") for r in results) else 0


def run_section(name: str, quick: bool) -> SectionResult:
    """One section; a failure is written into the report (with its reason) instead of ending the run."""
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    if name == "lineage":
        return _lineage(quick, started)
    module = importlib.import_module(SECTIONS[name])
    notes = getattr(module, "NOTES", "")
    try:
        if hasattr(module, "run_with_notes"):  # a section whose notes are measured tables
            figures, notes = module.run_with_notes(quick)
        else:
            figures = module.run(quick)
    except Exception as exc:  # noqa: BLE001 - the other sections' figures still deserve a report
        traceback.print_exc()
        return SectionResult(name, module.TITLE, notes=f"Failed: {type(exc).__name__}: {exc}",
                             seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    for f in figures:
        print(f"bench:   {f.name}: {f.value} {f.unit} (baseline {f.baseline} {f.baseline_unit})", file=sys.stderr)
    return SectionResult(name, module.TITLE, tuple(figures), notes=notes, seconds=seconds)


def _lineage(quick: bool, started: float) -> SectionResult:
    """Measured by bench/lineage.py (another part of the project) when it exists."""
    title = "Lineage (partial-match tracing)"
    try:
        module = importlib.import_module("bench.lineage")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.lineage":
            raise
        return SectionResult("lineage", title, notes="Not measured yet: bench/lineage.py does not exist in this checkout.")
    try:
        wants_quick = "quick" in inspect.signature(module.measure).parameters
        measured = module.measure(quick=quick) if wants_quick else module.measure()
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        return SectionResult("lineage", title, notes=f"Failed: {type(exc).__name__}: {exc}",
                             seconds=time.perf_counter() - started)
    rows = tuple((str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for k, v in measured.items())
    return SectionResult("lineage", title, notes="As bench/lineage.py measured it (`measure()`).", table=rows,
                         seconds=time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
