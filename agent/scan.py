"""`miwei-agent scan`: classify files now, offline, against the local fingerprint index."""

from __future__ import annotations

import os
from collections.abc import Iterator

from agent.config import AgentConfig
from agent.hashing import Hasher
from agent.index import FingerprintIndex
from agent.paths import readable
from rules.levels import severity_for_level


def scan_paths(config: AgentConfig, paths: list[str]) -> Iterator[dict]:
    index = FingerprintIndex(config.index_path, config.classified)
    hasher = Hasher()
    try:
        for path in _files(paths):
            yield _classify(index, hasher, path)
    finally:
        index.close()


def _files(paths: list[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path):
            for root, _dirs, files in os.walk(path):
                yield from (os.path.join(root, name) for name in sorted(files))
        else:
            yield path


def _classify(index: FingerprintIndex, hasher: Hasher, path: str) -> dict:
    text, raw = readable(path)
    result: dict = {"path": text, "path_b64": raw}
    try:
        digest = hasher.digest(path)
    except OSError as exc:
        result.update(error=exc.strerror or str(exc), explanation=f"{text}: cannot read: {exc.strerror or exc}")
        return result
    result.update(size=digest.size, sha256=digest.sha256)
    source = index.lookup_sha256(digest.sha256) if digest.size else None
    if source is None:
        result.update(level=None, explanation=f"{text}: no classified content matched (sha256 {digest.sha256[:16]}…)")
        return result
    src_text, _ = readable(source.path)
    result.update(
        level=source.level,
        source_path=src_text,
        register_entry=source.entry or None,
        match={"method": "exact", "similarity": 1.0},
        severity=severity_for_level(source.level),
        explanation=(
            f"{text}: exact copy of classified file {src_text} "
            f"(level {source.level}{', register entry ' + source.entry if source.entry else ''}); "
            f"written to an egress place it raises classified-egress, severity {severity_for_level(source.level)}"
        ),
    )
    return result
