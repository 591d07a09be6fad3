"""`python -m bench.fileserver [--scale S] [--seed N] [--keep DIR] [--json PATH]`: build the corpus,
run the agent's detectors and lineage over it, print the Markdown tables."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.fileserver import build, evaluate, report


def measure(scale: float = 1.0, seed: int = 15, keep: str | None = None) -> tuple[dict, list[str]]:
    """(scores, notes) of one corpus built in keep (or a temporary folder, removed after)."""
    with tempfile.TemporaryDirectory(prefix="miwei-fileserver-") as tmp:
        root = Path(keep) if keep else Path(tmp) / "corpus"
        corpus = build.build(root, seed=seed, scale=scale)
        return evaluate.score(evaluate.run(corpus)), corpus.notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fileserver", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="corpus size (1.0: about a thousand files)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--keep", help="build the corpus in this (new) folder and leave it there")
    parser.add_argument("--json", help="also write the scores as JSON here")
    args = parser.parse_args(argv)
    scores, notes = measure(args.scale, args.seed, args.keep)
    if args.json:
        Path(args.json).write_text(json.dumps(scores, ensure_ascii=False, indent=1), "utf-8")
    sys.stdout.write(report.markdown(scores, notes, args.seed, args.scale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
