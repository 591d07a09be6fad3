"""`miwei-agent scan`: classify files now, offline, and explain what the rules make of them.

Each file becomes the egress.file event the agent would report if it were written to an egress
place (hash, index lookup), and every rule in force is judged against it: the rules that match,
with their severity, and the rules that nearly match, with the one condition that failed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from agent.config import AgentConfig
from agent.content.inspect import inspect_file
from agent.hashing import Hasher
from agent.identity import UserTracker, hostname
from agent.index import CURRENT, FingerprintIndex
from agent.paths import readable
from agent.policy import ActiveRules
from rules.engine import ConditionResult, Verdict, show_value
from rules.events import Event


def scan_paths(config: AgentConfig, paths: list[str], rules: ActiveRules) -> Iterator[dict]:
    index = FingerprintIndex(config.index_path, config.classified)
    hasher = Hasher()
    host, user = hostname(), UserTracker().current()
    try:
        for path in _files(paths):
            yield _classify(index, hasher, rules, path, host, user)
    finally:
        index.close()


def format_result(result: dict) -> str:
    """A scan result as a person reads it: the summary, then one line per rule worth naming."""
    lines = [result["explanation"]]
    for hit in result.get("matched", ()):
        lines.append(f"  matched      {hit['rule_id']} ({hit['severity']}): {hit['title']}")
    for near in result.get("near_misses", ()):
        lines.append(f"  nearly       {near['rule_id']}: {near['title']}")
        lines += [f"    failed:    {failed['explanation']}" for failed in near["failed"]]
    return "\n".join(lines)


def _files(paths: list[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path):
            for root, _dirs, files in os.walk(path):
                yield from (os.path.join(root, name) for name in sorted(files))
        else:
            yield path


def _classify(index: FingerprintIndex, hasher: Hasher, rules: ActiveRules, path: str, host: str, user: str) -> dict:
    text, raw = readable(path)
    result: dict = {"path": text, "path_b64": raw}
    try:
        digest = hasher.digest(path)
    except OSError as exc:
        result.update(error=exc.strerror or str(exc), explanation=f"{text}: cannot read: {exc.strerror or exc}")
        return result
    fields = dict(path=text, path_b64=raw, size=digest.size, sha256=digest.sha256, host=host, user=user)
    source = index.lookup_sha256(digest.sha256) if digest.size else None
    if source is not None:
        fields.update(source.event_fields())
    fields.update(inspect_file(path).event_fields())
    event = rules.stamp(Event(type="egress.file", **fields))
    verdicts = rules.engine.verdicts(event)
    result.update(
        size=event.size,
        sha256=event.sha256,
        level=event.level,
        source_path=event.source_path,
        register_entry=event.register_entry,
        source_state=(event.details or {}).get("source_state", CURRENT) if event.source_path else None,
        match={"method": event.match.method, "similarity": event.match.similarity} if event.match else None,
        file_type=event.file_type,
        type_mismatch=event.type_mismatch,
        detections=[{"detector": d.detector, "count": d.count, "sample": d.sample} for d in event.detections],
        severity=event.severity,
        rule_ids=list(event.rule_ids),
        policy_version=event.policy_version,
        matched=[_matched(v) for v in verdicts if v.matched],
        near_misses=[_near_miss(v) for v in verdicts if v.near_miss],
        explanation=_summary(event),
    )
    return result


def _summary(event: Event) -> str:
    if event.source_path is None:
        what = f"{event.path}: no classified content matched (sha256 {event.sha256[:16]}…)"
    else:
        entry = f", register entry {event.register_entry}" if event.register_entry else ""
        state = (event.details or {}).get("source_state")
        since = {"deleted": ", since deleted or moved out", "previous-version": ", an earlier version"}.get(state, "")
        what = f"{event.path}: exact copy of classified file {event.source_path} (level {event.level}{entry}{since})"
    if event.detections:
        what += "; found " + ", ".join(f"{d.count} × {d.detector}" + (f" ({d.sample})" if d.sample else "") for d in event.detections)
    if event.rule_ids:
        rules = ", ".join(event.rule_ids)
        return f"{what}; written to an egress place it matches {rules}, severity {event.severity}"
    return f"{what}; written to an egress place it matches no rule"


def _matched(verdict: Verdict) -> dict:
    rule = verdict.rule
    return {"rule_id": rule.id, "title": rule.title, "category": rule.category, "severity": verdict.severity}


def _near_miss(verdict: Verdict) -> dict:
    rule = verdict.rule
    failed = [_failed(c, any(c.condition is u for u in rule.unless)) for c in verdict.failed]
    return {"rule_id": rule.id, "title": rule.title, "category": rule.category, "failed": failed}


def _failed(result: ConditionResult, is_unless: bool) -> dict:
    """A `when` condition that did not hold, or an `unless` condition that did."""
    field = result.condition.field
    return {
        "field": field,
        "value": result.value,
        "shown": show_value(field, result.value),
        "condition": result.condition.describe(),
        "unless": is_unless,
        "explanation": ("unless " if is_unless else "") + result.describe(),
    }
