"""The scores of evaluate.score() as Markdown tables, and as Figures with the issue's goals."""

from __future__ import annotations

from bench.fileserver.evaluate import IDENTIFIERS, NEGATIVE_SLICES
from bench.report import Figure

GOAL = 0.95
GOAL_LINEAGE_FP = 0.01
EDIT_ORDER = (
    "exact",
    "renamed",
    "zipped",
    "gb18030",
    "kept-100",
    "kept-75",
    "kept-50",
    "kept-30",
    "kept-10",
    "paste-3",
    "paste-2",
    "paste-1",
    "docx->doc",
    "docx->pdf",
    "xlsx->xls",
    "xlsx->pdf",
    "pptx->ppt",
)
REPRODUCE = "python -m bench.fileserver"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(scores: dict, notes: list[str], seed: int, scale: float) -> str:
    files = scores["files"]
    lines = [
        f"Corpus: {sum(files.values())} files (seed {seed}, scale {scale}): "
        + ", ".join(f"{n} {group}" for group, n in files.items())
        + ". "
        "Built by bench/fileserver (docs/benchmarks.md, 'Detection on a file server'); ground truth in its manifest.json.",
        "",
    ]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    rows = []
    for kind in IDENTIFIERS:
        f, c = scores["identifiers"][kind]["files"], scores["identifiers"][kind]["identifiers"]
        rows.append(
            [
                kind,
                pct(f["precision"]),
                pct(f["recall"]),
                f"{f['tp']}/{f['fp']}/{f['fn']}",
                pct(c["precision"]),
                pct(c["recall"]),
                f"{c['tp']}/{c['fp']}/{c['fn']}",
            ]
        )
    for detector, s in scores["markings"].items():
        f = s["files"]
        rows.append([detector, pct(f["precision"]), pct(f["recall"]), f"{f['tp']}/{f['fp']}/{f['fn']}", "-", "-", "-"])
    lines += ["**Per detector** (goal: precision and recall ≥ 95%; tp/fp/fn counts)", ""]
    lines += _table(
        [
            "detector",
            "precision (files)",
            "recall (files)",
            "tp/fp/fn files",
            "precision (identifiers)",
            "recall (identifiers)",
            "tp/fp/fn identifiers",
        ],
        rows,
    )
    lines += [
        "",
        "**Identifier files by storage form** (all four identifier detectors; controls are ICCIDs, IMEIs, order "
        "numbers, corporate accounts, masked values and checksum failures, none of them an identifier)",
        "",
    ]
    lines += _table(
        ["storage form", "files", "identifiers held", "found", "recall", "over-counted"],
        [
            [f, str(x["files"]), str(x["held"]), str(x["found"]), pct(x["recall"]), str(x["over"])]
            for f, x in scores["forms"].items()
        ],
    )
    lineage = scores["lineage"]
    edits = sorted(lineage["by_edit"], key=lambda e: EDIT_ORDER.index(e) if e in EDIT_ORDER else len(EDIT_ORDER))
    lines += [
        "",
        f"**Lineage recall per edit level** (traced to the right source; at ≥ 50% kept: "
        f"{pct(lineage['recall_kept_half'])} of {lineage['kept_half_n']}, goal ≥ 95%; three paragraphs of the "
        f"firm's own text pasted, ≥ 10% of the source: {pct(lineage['recall_paste_own'])} of "
        f"{lineage['paste_own_n']}; the paste rows below count every paste, standard clauses included)",
        "",
    ]
    lines += _table(
        ["derived copy", "files", "traced", "wrong source", "recall"],
        [
            [e, str(x["n"]), str(x["traced"]), str(x["wrong_source"]), pct(x["recall"])]
            for e in edits
            for x in [lineage["by_edit"][e]]
        ],
    )
    lines += [
        "",
        "**False positives on negatives** (files that hold nothing of ours; goal: lineage ≤ 1% on same-genre "
        "documents, 0 on third-party files)",
        "",
    ]
    lines += _table(
        ["negatives", "files", "traced (lineage)", "marking said", "identifiers over-counted"],
        [
            [
                NEGATIVE_SLICES[g],
                str(x["n"]),
                f"{x['lineage_fp']} ({pct(x['lineage_fp_rate'])})",
                f"{x['marking_fp']} ({pct(x['marking_fp_rate'])})",
                f"{x['identifier_fp']} ({pct(x['identifier_fp_rate'])})",
            ]
            for g, x in scores["negatives"].items()
        ],
    )
    examples = [e for x in scores["negatives"].values() for e in x["traced_examples"][:3]]
    examples += [e for s in scores["markings"].values() for e in s["false_positives"][:3]]
    examples += [e for s in scores["identifiers"].values() for e in s["over_counted"][:3]]
    if examples:
        lines += ["", "Examples of false positives: " + "; ".join(f"`{e}`" for e in examples[:12]), ""]
    lines += ["", "**Scan speed per type** (inspect_file alone, one thread; type as the agent found it)", ""]
    lines += _table(
        ["type", "files", "MB", "MB/s", "files/s", "untyped", "parse errors"],
        [
            [
                t,
                str(x["files"]),
                f"{x['mb']:.2f}",
                f"{x['mb_per_s'] or 0:.2f}",
                f"{x['files_per_s'] or 0:.0f}",
                str(x["untyped"]),
                str(x["parse_errors"]),
            ]
            for t, x in sorted(scores["speed"].items(), key=lambda kv: -kv[1]["files"])
        ],
    )
    return "\n".join(lines) + "\n"


def figures(scores: dict) -> list[Figure]:
    """The issue's goals as summary figures (no baseline: ground truth is the yardstick here)."""
    out = []

    def add(name: str, value: float | None, goal: str, met: bool | None) -> None:
        out.append(
            Figure(
                name,
                None if value is None else round(100 * value, 1),
                "%",
                goal=goal,
                met=None if value is None else met,
                reproduce=REPRODUCE,
            )
        )

    def precision_recall(name: str, counts: dict) -> None:
        for what in ("precision", "recall"):
            value = counts[what]
            add(f"detection {name} {what}", value, ">= 95%", value is not None and value >= GOAL)

    for kind in IDENTIFIERS:
        precision_recall(kind, scores["identifiers"][kind]["identifiers"])
    for detector, s in scores["markings"].items():
        precision_recall(detector, s["files"])
    r = scores["lineage"]["recall_kept_half"]
    add("detection lineage recall at >= 50% kept", r, ">= 95%", r is not None and r >= GOAL)
    r = scores["lineage"]["recall_paste_own"]
    add("detection lineage recall, three own paragraphs pasted", r, ">= 95%", r is not None and r >= GOAL)
    peer = scores["negatives"]["peer"]["lineage_fp_rate"]
    add("detection lineage false positives, same-genre", peer, "<= 1%", peer is not None and peer <= GOAL_LINEAGE_FP)
    third = scores["negatives"]["thirdparty"]["lineage_fp_rate"]
    add("detection lineage false positives, third-party", third, "0", third is not None and third == 0)
    return out
