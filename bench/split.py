"""`python -m bench.split KIND [KIND...]`: where inspection's CPU goes for one kind of document,
in ms of CPU a MB of extracted text: extraction, the detectors, winnowing (the text's
fingerprints) and the whole inspection (inspect_file), each the minimum of three runs over the
same two generated documents `bench content` reads. The tool the notes in docs/benchmarks.md
quote per stage; it writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from bench import corpus

DOCUMENTS, TEXT_BYTES, RUNS = 2, 1 << 20, 3  # bench content's corpus: two documents of some 1 MB of text


def cpu_s(work: Callable[[], object], runs: int = RUNS) -> float:
    """The least process CPU time of `runs` calls."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def split(kind: str) -> str:
    from agent.content.detectors import detect
    from agent.content.extract import extract_file
    from agent.content.inspect import TEXT_PLACES, inspect_file, text_fingerprints

    paths = corpus.documents(os.path.join(corpus.new_dir("split"), kind), kind, DOCUMENTS, TEXT_BYTES)
    documents: list = []

    def extract() -> None:
        documents.clear()
        for path in paths:
            with open(path, "rb") as f:
                documents.append(extract_file(f, os.path.basename(path)))

    extracted = cpu_s(extract)
    mb = sum(len(d.text_of(*TEXT_PLACES).encode()) for d in documents) / 2**20
    detected = cpu_s(lambda: [list(detect(d)) for d in documents])
    winnowed = cpu_s(lambda: [text_fingerprints(d) for d in documents])
    inspected = cpu_s(lambda: [inspect_file(p) for p in paths])
    per_mb = [1000 * s / mb for s in (extracted, detected, winnowed, inspected)]
    return (f"{kind}: {mb:.2f} MB of text; ms a MB: extract {per_mb[0]:.1f} detect {per_mb[1]:.1f} "
            f"winnow {per_mb[2]:.1f} inspect {per_mb[3]:.1f} -> {mb / inspected:.1f} MB of text a CPU second")  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.split", description=__doc__.split("\n\n")[0])
    parser.add_argument("kinds", nargs="+", metavar="KIND", help=f"one of: {', '.join(sorted(corpus.DOCUMENT_MAKERS))}")
    args = parser.parse_args(argv)
    unknown = [k for k in args.kinds if k not in corpus.DOCUMENT_MAKERS]
    if unknown:
        parser.error(f"unknown kind {unknown[0]!r}; the kinds: {', '.join(sorted(corpus.DOCUMENT_MAKERS))}")
    try:
        for kind in args.kinds:
            print(split(kind), flush=True)
    finally:
        corpus.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
