"""How a file is classified: one function, asked by the pipeline and by `miwei-agent scan`.

Given a file's digest and its inspection, the event fields that say what it is: the classified
file it is a copy of (same bytes), holds (an archive member) or derives from (shared text), its
true type and what its content carries. The pipeline adds where it was written; `scan` shows the
same fields with the rules' verdicts, so what an operator sees is what the agent would report.
"""

from __future__ import annotations

from collections.abc import Collection

from agent.content.archive import Member
from agent.content.inspect import Inspection
from agent.hashing import FileDigest
from agent.index import FingerprintIndex
from rules.events import Match
from rules.levels import LEVELS


def content_fields(
    index: FingerprintIndex,
    digest: FileDigest,
    inspection: Inspection,
    known: Collection[str] | None = None,
    chunk_hits: Collection[int] = (),
) -> dict:
    """Lineage (exact, archive, partial) and the inspection's fields of one file's content.
    `known`: what index.known_sha256 said of a batch holding this digest, asked just before by
    the thread that alone adds to the index (the pipeline's): a digest not in it has no source,
    and is not looked up again. `chunk_hits`: the file's chunk fingerprints found in the index's
    prefilter (byte lineage, agent/content/chunks.py)."""
    fields: dict = {}
    found = digest.size > 0 and (known is None or digest.sha256 in known)
    source = index.lookup_sha256(digest.sha256) if found else None
    if source is not None:
        fields.update(source.event_fields())
    elif inspection.members:
        fields.update(archive_source(index, inspection.members))
    if inspection.fingerprints and source is None and fields.get("level") != LEVELS[0]:  # an edited or partial copy
        by_text = partial_source(index, inspection.fingerprints)
        # the document's own text, more sensitive than a member found (a core memo embedding a
        # harmless internal picture is the memo's leak, not the picture's)
        if by_text and ("match" not in fields or _more_sensitive(by_text["level"], fields["level"])):
            fields = by_text
    if chunk_hits and fields.get("level") != LEVELS[0]:  # nothing outranks a core source already found
        # an edited copy of a file without text, also inside or behind something less secret
        by_bytes = byte_source(index, chunk_hits)
        if by_bytes and ("match" not in fields or _more_sensitive(by_bytes["level"], fields["level"])):
            fields.update(by_bytes)  # a core drawing tarred with, or put behind, an internal memo is the drawing's leak
    fields.update(inspection.event_fields())
    return fields


def archive_source(index: FingerprintIndex, members: tuple[Member, ...]) -> dict:
    """An archive traced to classified content through its members: a member of a classified
    file's bytes, one holding most of a classified drawing's (its sketch, byte lineage: an edited
    drawing zipped), or one sharing enough text with a classified document (its fingerprints: an
    edited document zipped or attached to a message). The most sensitive source speaks for the event (core before
    internal: the alert's severity follows it), a whole copy before an edited one (the file an
    object embedded in a document holds, before the object's bytes that hold it), then the
    outermost member; empty members never match."""
    found = []  # (level's rank, depth, edited, member, source, match, traced by its bytes)
    for m in members:
        if m.size <= 0:
            continue
        source = index.lookup_sha256(m.sha256)
        if source is not None:
            found.append((LEVELS.index(source.level), m.depth, False, m, source, Match("archive", 1.0), False))
        elif m.sketch and (edited := index.lookup_bytes(m.sketch)) is not None:
            source, share = edited
            found.append((LEVELS.index(source.level), m.depth, True, m, source, Match("partial", share), True))
        elif m.fingerprints and (edited := index.lookup_partial(m.fingerprints)) is not None:
            source, share = edited  # an edited document zipped, or attached to a message: by its text
            found.append((LEVELS.index(source.level), m.depth, True, m, source, Match("partial", share), False))
    if not found:
        return {}
    _, _, _, member, source, match, by_bytes = min(found, key=lambda f: (f[0], f[2], f[1]))
    fields = source.event_fields(match)
    fields["details"] = {
        **(fields.get("details") or {}),
        "archive_member": member.name,
        "classified_members": len(found),
        **({"lineage": "bytes"} if by_bytes else {}),
    }
    return fields


def _more_sensitive(level: str, than: str) -> bool:
    return LEVELS.index(level) < LEVELS.index(than)


def byte_source(index: FingerprintIndex, chunk_hits: Collection[int]) -> dict:
    """A file traced to the classified content without text whose bytes it mostly holds (byte
    lineage): `match.similarity` is the share of the source's sketch found in it, and the details
    say the match was of bytes, not of text."""
    found = index.lookup_bytes(chunk_hits)
    if found is None:
        return {}
    source, similarity = found
    fields = source.event_fields(Match("partial", similarity))
    fields["details"] = {**(fields.get("details") or {}), "lineage": "bytes"}
    return fields


def partial_source(index: FingerprintIndex, fingerprints: frozenset[int]) -> dict:
    """A document traced to the classified content it shares enough text with (lineage):
    `match.similarity` is the share of the source's fingerprints found in it."""
    found = index.lookup_partial(fingerprints)
    if found is None:
        return {}
    source, similarity = found
    return source.event_fields(Match("partial", similarity))
