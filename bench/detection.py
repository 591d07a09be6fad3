"""Detection on a generated file server (issue 15): per detector precision and recall, lineage
recall per edit level, false positives on same-genre and third-party negatives, scan speed per
type. The corpus and its scoring live in bench/fileserver/."""

from __future__ import annotations

from bench.fileserver import report
from bench.fileserver.__main__ import measure
from bench.report import Figure

TITLE = "Detection on a file server (precision, recall, lineage, speed)"
SEED = 15


def run_with_notes(quick: bool) -> tuple[list[Figure], str]:
    scale = 0.2 if quick else 1.0
    scores, notes = measure(scale, SEED)
    return report.figures(scores), report.markdown(scores, notes, SEED, scale)


def run(quick: bool) -> list[Figure]:
    return run_with_notes(quick)[0]
