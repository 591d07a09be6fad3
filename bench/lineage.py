"""Partial-copy lineage (issue 4, items 6 and 7): recall per retained fraction, false positives,
index growth, on the generated corpus of tests/agent/content/lineage_corpus.py.

`measure()` builds the corpus in a temporary folder, indexes the classified documents with a real
FingerprintIndex, inspects every derivative and unrelated document with the real inspect_file and
looks it up with lookup_partial. `python -m bench.lineage [--quick] [--seed N]` prints the table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

GOAL_RECALL, GOAL_FP, GOAL_GROWTH = 0.95, 0.01, 0.16


def measure(quick: bool = False, seed: int = 4) -> dict:
    """The figures, by row name. quick: a corpus a fifth the size (checks the harness only)."""
    from agent import index
    from agent.content import winnow
    from tests.agent.content import lineage_corpus as corpus

    sizes = (40, 90, 90) if quick else (200, 450, 450)
    with tempfile.TemporaryDirectory(prefix="miwei-lineage-") as tmp:
        started = time.perf_counter()
        built = corpus.build(Path(tmp) / "corpus", seed, *sizes)
        (Path(tmp) / "state").mkdir()
        result = corpus.evaluate(built, Path(tmp) / "state")
        seconds = time.perf_counter() - started
        texts = [corpus.extract(str(p), p.name).text_of(*corpus.TEXT_PLACES) for p in built.classified]
        fingerprint_s = _seconds(lambda: [winnow.fingerprints(t) for t in texts])
    at_least_half = result.recall_at_least(0.5)
    rows: dict[str, str] = {
        "corpus": (
            f"{result.classified} classified (half Chinese, half English, 1-20 KB of text, docx or txt), "
            f"{sum(result.counts.values())} derivatives (txt, GB18030 txt, docx, pdf), "
            f"{result.unrelated} unrelated documents with the same boilerplate; seed {seed}"
        ),
    }
    for fraction in sorted(result.recall):
        mean = result.similarity.get(fraction)
        rows[f"recall, {fraction:.0%} kept"] = (
            f"{result.recall[fraction]:.1%} of {result.counts[fraction]}"
            + (f" (mean similarity {mean:.2f})" if mean is not None else "")
        )
    rows["recall, 50% kept or more"] = _goal(f"{at_least_half:.1%}", at_least_half >= GOAL_RECALL, f">= {GOAL_RECALL:.0%}")
    rows["traced to the wrong source"] = str(result.wrong_source)
    rows["false positives (unrelated)"] = _goal(
        f"{result.false_positives} of {result.unrelated} ({result.fp_rate:.2%})", result.fp_rate <= GOAL_FP, f"<= {GOAL_FP:.0%}"
    )
    rows["index growth"] = _goal(
        f"{result.growth:.2%} ({result.growth_bytes / 1024:.0f} KiB for {result.text_bytes / 1024:.0f} KiB of text)",
        result.growth <= GOAL_GROWTH,
        f"<= {GOAL_GROWTH:.0%}",
    )
    rows["parameters"] = (
        f"K = {winnow.GRAM_BYTES} bytes, W = {winnow.WINDOW_BYTES} bytes (guarantee: a shared run of "
        f"{winnow.WINDOW_BYTES + winnow.GRAM_BYTES + 3} bytes), {winnow.HASH_BITS}-bit hashes; match needs "
        f"{index.MIN_MATCHED} fingerprints and {index.MIN_SIMILARITY:.0%} of the source; boilerplate cap "
        f"max({index.DF_CAP_MIN}, {index.DF_CAP_SHARE:.0%} of documents)"
    )
    text_mb = result.text_bytes / 1024 / 1024
    rows["fingerprinting speed"] = f"{text_mb / fingerprint_s:.2f} MB/s of extracted text (one thread)"
    lookups = sum(result.counts.values()) + result.unrelated
    rows["lookup time"] = (
        f"{result.lookup_s / lookups * 1000:.2f} ms per document (lookup_partial only; "
        f"{result.fingerprints} fingerprints of {result.classified} documents indexed)"
    )
    rows["run time"] = f"{seconds:.0f} s (build, index, inspect and look up everything)"
    return rows


def _goal(value: str, met: bool, goal: str) -> str:
    return f"{value} (goal {goal}: {'met' if met else 'NOT MET'})"


def _seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def markdown(rows: dict[str, str]) -> str:
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value.replace('|', '/')} |" for name, value in rows.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lineage", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a corpus a fifth the size")
    parser.add_argument("--seed", type=int, default=4, help="the corpus generator's seed (default 4)")
    args = parser.parse_args(argv)
    sys.stdout.write(markdown(measure(args.quick, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
