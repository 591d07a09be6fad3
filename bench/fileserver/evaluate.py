"""Run the real agent code over the corpus and score it against the manifest.

`run(corpus)` indexes our firm's classified folder with a FingerprintIndex, inspects every file
with inspect_file and traces each one outside the register as the pipeline does (its SHA-256, its
archive members as the pipeline traces them (agent.classify.archive_source: hash, bytes, text),
then lookup_partial). `score(outcomes)` is plain arithmetic over those
outcomes, kept apart so that a test can plant a result and check the count.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from agent.classify import archive_source
from agent.config import ClassifiedFolder
from agent.content.inspect import inspect_file
from agent.index import FingerprintIndex
from bench.fileserver.build import Corpus, Label

IDENTIFIERS = ("cn_resident_id", "cn_mobile", "bank_card", "cn_uscc")
MARKINGS = {"trade_secret_marking": "trade", "state_secret_marking": "state"}
NEGATIVE_SLICES = {
    "peer": "other firms' documents (same genres)",
    "own_public": "our unclassified documents",
    "pii": "identifier files",
    "thirdparty": "third-party files",
}


@dataclass(frozen=True)
class Outcome:
    label: Label
    detections: dict[str, int] = field(default_factory=dict)  # detector id -> count
    traced: str | None = None  # the classified file it was traced to (relative path), None: not traced
    how: str = ""  # sha256 | member | partial
    seconds: float = 0.0  # inspect_file alone
    size: int = 0
    file_type: str | None = None


def run(corpus: Corpus) -> list[Outcome]:
    root = corpus.root
    classified = root / "server" / "ours" / "classified"
    with tempfile.TemporaryDirectory(prefix="miwei-detect-") as state:
        index = FingerprintIndex(
            os.path.join(state, "index.db"), (ClassifiedFolder(str(classified), "core", "Our register"),)
        )
        index.refresh()
        try:
            return [_outcome(root, label, index) for label in corpus.labels]
        finally:
            index.close()


def _outcome(root: Path, label: Label, index: FingerprintIndex) -> Outcome:
    path = root / label.path
    started = time.perf_counter()
    found = inspect_file(str(path))
    seconds = time.perf_counter() - started
    detections = {d.detector: d.count for d in found.detections}
    traced, how = None, ""
    if label.group != "classified":
        hit = index.lookup_sha256(hashlib.sha256(path.read_bytes()).hexdigest())
        source, how = (hit.path, "sha256") if hit is not None else (None, "")
        if source is None and found.members:  # as the pipeline: each member's hash, bytes, then text
            fields = archive_source(index, found.members)
            if fields:
                source, how = fields["source_path"], "member" if fields["match"].method == "archive" else "member-partial"
        if source is None:
            partial = index.lookup_partial(found.fingerprints)
            source, how = (partial[0].path, "partial") if partial else (None, "")
        traced = os.path.relpath(source, root) if source else None
    return Outcome(label, detections, traced, how if traced else "", seconds, path.stat().st_size, found.file_type)


# --- scoring ------------------------------------------------------------------------------------


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _prf(tp: int, fp: int, fn: int) -> dict:
    return dict(tp=tp, fp=fp, fn=fn, precision=_ratio(tp, tp + fp), recall=_ratio(tp, tp + fn))


def _identifier_scores(outcomes: list[Outcome], kind: str) -> dict:
    files = Counter()
    counts = Counter()
    examples = []
    for o in outcomes:
        truth, said = o.label.ids.get(kind, 0), o.detections.get(kind, 0)
        files["tp" if truth and said else "fp" if said else "fn" if truth else "tn"] += 1
        counts["tp"] += min(truth, said)
        counts["fp"] += max(0, said - truth)
        counts["fn"] += max(0, truth - said)
        if said > truth and len(examples) < 5:
            examples.append(f"{o.label.path} ({said} said, {truth} held)")
    return dict(
        files=_prf(files["tp"], files["fp"], files["fn"]),
        identifiers=_prf(counts["tp"], counts["fp"], counts["fn"]),
        over_counted=examples,
    )


def _marking_scores(outcomes: list[Outcome], detector: str, truth_value: str) -> dict:
    c = Counter()
    examples = []
    for o in outcomes:
        truth, said = o.label.marking == truth_value, o.detections.get(detector, 0) > 0
        c["tp" if truth and said else "fp" if said else "fn" if truth else "tn"] += 1
        if said and not truth and len(examples) < 5:
            examples.append(f"{o.label.path} ({o.label.genre})")
    return dict(files=_prf(c["tp"], c["fp"], c["fn"]), false_positives=examples)


PASTE_GOAL_KEPT = 0.10


def _lineage(outcomes: list[Outcome]) -> dict:
    by_edit: dict[str, Counter] = defaultdict(Counter)
    kept_half = Counter()
    pastes = Counter()  # the goal's pastes: three paragraphs of the firm's own text, >= 10% of the source
    for o in outcomes:
        if o.label.group != "derived":
            continue
        c = by_edit[o.label.edit]
        c["n"] += 1
        c["traced"] += o.traced == o.label.source
        c["wrong"] += o.traced is not None and o.traced != o.label.source
        if o.label.kept is not None and o.label.kept >= 0.5 and not o.label.edit.startswith("paste"):
            kept_half["n"] += 1
            kept_half["traced"] += o.traced == o.label.source
        if o.label.edit == "paste-3" and o.label.own_blocks == 3 and (o.label.kept or 0) >= PASTE_GOAL_KEPT:
            pastes["n"] += 1
            pastes["traced"] += o.traced == o.label.source
    edits = {
        e: dict(n=c["n"], traced=c["traced"], wrong_source=c["wrong"], recall=_ratio(c["traced"], c["n"]))
        for e, c in sorted(by_edit.items())
    }
    return dict(
        by_edit=edits,
        recall_kept_half=_ratio(kept_half["traced"], kept_half["n"]),
        kept_half_n=kept_half["n"],
        recall_paste_own=_ratio(pastes["traced"], pastes["n"]),
        paste_own_n=pastes["n"],
    )


def _negatives(outcomes: list[Outcome]) -> dict:
    """Per slice of files that hold no classified content: how many were traced, falsely marked,
    or said to hold identifiers they do not."""
    out = {}
    for group in NEGATIVE_SLICES:
        files = [o for o in outcomes if o.label.group == group]
        lineage = [o for o in files if o.traced is not None]
        marking = [
            o for o in files if any(o.detections.get(d, 0) and o.label.marking != v for d, v in MARKINGS.items())
        ]
        ids = [o for o in files if any(o.detections.get(k, 0) > o.label.ids.get(k, 0) for k in IDENTIFIERS)]
        out[group] = dict(
            n=len(files),
            lineage_fp=len(lineage),
            lineage_fp_rate=_ratio(len(lineage), len(files)),
            marking_fp=len(marking),
            marking_fp_rate=_ratio(len(marking), len(files)),
            identifier_fp=len(ids),
            identifier_fp_rate=_ratio(len(ids), len(files)),
            traced_examples=[f"{o.label.path} -> {o.traced} ({o.how})" for o in lineage[:5]],
        )
    return out


def _speed(outcomes: list[Outcome]) -> dict:
    by_type: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_type[o.file_type or "untyped ." + (Path(o.label.path).suffix.lower().lstrip(".") or "(none)")].append(o)
    out = {}
    for ext, items in sorted(by_type.items()):
        seconds = sum(o.seconds for o in items)
        size_mb = sum(o.size for o in items) / 1e6
        out[ext] = dict(
            files=len(items),
            mb=size_mb,
            seconds=seconds,
            mb_per_s=_ratio(size_mb, seconds),
            files_per_s=_ratio(len(items), seconds),
            untyped=sum(o.file_type is None for o in items),
            parse_errors=sum("parse_error" in o.detections for o in items),
        )
    return out


def _forms(outcomes: list[Outcome]) -> dict:
    """Identifier files by storage form: identifiers held, found (up to what is held), over-counted."""
    out: dict[str, Counter] = defaultdict(Counter)
    for o in outcomes:
        if o.label.group != "pii":
            continue
        c = out[o.label.form]
        c["files"] += 1
        for kind in IDENTIFIERS:
            held, said = o.label.ids.get(kind, 0), o.detections.get(kind, 0)
            c["held"] += held
            c["found"] += min(held, said)
            c["over"] += max(0, said - held)
    return {form: dict(c, recall=_ratio(c["found"], c["held"])) for form, c in out.items()}


def score(outcomes: list[Outcome]) -> dict:
    return dict(
        files=dict(Counter(o.label.group for o in outcomes)),
        identifiers={k: _identifier_scores(outcomes, k) for k in IDENTIFIERS},
        markings={d: _marking_scores(outcomes, d, v) for d, v in MARKINGS.items()},
        lineage=_lineage(outcomes),
        negatives=_negatives(outcomes),
        forms=_forms(outcomes),
        speed=_speed(outcomes),
    )
