"""`miwei-agent scan`: classify files now, offline, and explain what the rules make of them.

Each file becomes the egress.file event the agent would report if it were written to an egress
place (hash, index lookup), and every rule in force is judged against it: the rules that match,
with their severity, and the rules that nearly match, with the one condition that failed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from agent.attribution import WriterTracker
from agent.classify import content_fields
from agent.config import AgentConfig
from agent.content.chunks import Chunker
from agent.hashing import Hasher
from agent.identity import UserTracker, hostname
from agent.index import CURRENT, FingerprintIndex
from agent.inspector import make_inspector, open_regular
from agent.lanes import Inspector
from agent.paths import readable
from agent.policy import ActiveRules
from agent.walk import Unwalkable, walk_files
from rules.engine import ConditionResult, Verdict, show_value
from rules.events import Event
from rules.explain import describe_event, plain


def scan_paths(config: AgentConfig, paths: list[str], rules: ActiveRules) -> Iterator[dict]:
    """One result per file: classified by the same code as the running agent (one descriptor,
    hashed, inspected in an unprivileged worker, looked up exact, in archives and partially)."""
    index = FingerprintIndex(config.index_path, config.classified)
    inspector = make_inspector(config.inspect_user, config.inspect_timeout_s)
    scanner = _Scanner(index, Hasher(), inspector, rules, hostname(), UserTracker().current())
    try:
        for path, problem in _files(paths):
            yield scanner.classify(path) if problem is None else _not_walked(path, problem)
    finally:
        inspector.close()
        index.close()


def format_result(result: dict) -> str:
    """A scan result as a person reads it: the summary, then one line per rule worth naming.
    Every line is made plain: a file name holding terminal escapes must not rewrite the screen."""
    lines = [result["explanation"]]
    for hit in result.get("matched", ()):
        lines.append(f"  matched      {hit['rule_id']} ({hit['severity']}): {hit['title']}")
    for near in result.get("near_misses", ()):
        lines.append(f"  nearly       {near['rule_id']}: {near['title']}")
        lines += [f"    failed:    {failed['explanation']}" for failed in near["failed"]]
    return "\n".join(plain(line) or "" for line in lines)


def _files(paths: list[str]) -> Iterator[tuple[str, Unwalkable | None]]:
    for path in paths:
        if os.path.isdir(path):
            problems: list[Unwalkable] = []
            found = sorted(os.fsdecode(f.path) for f in walk_files(path, problems))
            yield from ((p, None) for p in found)
            yield from ((os.fsdecode(p.path), p) for p in problems)
        else:
            yield path, None


def _not_walked(path: str, problem: Unwalkable) -> dict:
    text, raw = readable(path)
    return {"path": text, "path_b64": raw, "error": problem.reason, "explanation": f"{plain(text)}: cannot walk: {problem.reason}"}


class _Scanner:
    def __init__(
        self, index: FingerprintIndex, hasher: Hasher, inspector: Inspector, rules: ActiveRules, host: str, session_user: str
    ) -> None:
        self.index, self.hasher, self.inspector, self.rules = index, hasher, inspector, rules
        self.host, self.session_user = host, session_user
        self.writers = WriterTracker()  # not started: the owner of the file is its writer here

    def classify(self, path: str) -> dict:
        text, raw = readable(path)
        result: dict = {"path": text, "path_b64": raw}
        try:
            fd, st = open_regular(path)
            try:
                prefilter = self.index.prefilter()
                chunker = Chunker(prefilter.values) if prefilter else None  # byte lineage, as the lane does
                digest = self.hasher.digest_fd(fd, look=chunker.feed if chunker is not None else None)
                inspection = self.inspector.inspect(fd, os.path.basename(path))
            finally:
                os.close(fd)
        except OSError as exc:
            why = exc.strerror or str(exc)
            return {**result, "error": why, "explanation": f"{plain(text)}: cannot read: {why}"}
        hits = chunker.finish()[1] if chunker is not None else ()
        fields = dict(path=text, path_b64=raw, size=digest.size, sha256=digest.sha256, host=self.host)
        fields.update(content_fields(self.index, digest, inspection, chunk_hits=hits))
        user, how = self.writers.writer_of(path, st)
        fields["user"] = user or self.session_user
        fields["details"] = {**(fields.get("details") or {}), "session_user": self.session_user, **({"user_from": how} if user else {})}
        event = self.rules.stamp(Event(type="egress.file", **fields))
        verdicts = self.rules.engine.verdicts(event)
        result.update(
            size=event.size,
            sha256=event.sha256,
            user=event.user,
            level=event.level,
            source_path=event.source_path,
            register_entry=event.register_entry,
            source_state=(event.details or {}).get("source_state", CURRENT) if event.source_path else None,
            match={"method": event.match.method, "similarity": event.match.similarity} if event.match else None,
            file_type=event.file_type,
            type_mismatch=event.type_mismatch,
            detections=[{"detector": d.detector, "count": d.count, "sample": d.sample} for d in event.detections],
            details=event.details,
            severity=event.severity,
            rule_ids=list(event.rule_ids),
            policy_version=event.policy_version,
            matched=[_matched(v) for v in verdicts if v.matched],
            near_misses=[_near_miss(v) for v in verdicts if v.near_miss],
            explanation=_summary(event),
        )
        return result


def _summary(event: Event) -> str:
    """What the agent would report, in the words of the collector's explanations."""
    what = describe_event(event, "now")
    if event.rule_ids:
        return f"{what}; if written to an egress place it matches {', '.join(event.rule_ids)}, severity {event.severity}"
    if not event.source_path:
        what += f"; no classified content matched (sha256 {event.sha256[:16]}…)"
    return f"{what}; if written to an egress place it matches no rule"


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
