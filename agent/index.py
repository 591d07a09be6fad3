"""The fingerprint index of classified folders: what classified content looks like.

One row per file: size, mtime, ctime, inode, sha256, level and register entry. Refreshing
compares (size, mtime, ctime, inode) with the file system and re-hashes only what changed, so a
restart costs a directory walk, not a re-read of every drawing.

Content that leaves the folders (deleted, moved out) or is replaced by an edit stays traceable:
its hash goes to the `history` table, kept for `history_keep_s` (a year), so a copy made before
the deletion or edit is still traced to where it came from.

Partial copies (lineage): the winnowing fingerprints (agent/content/winnow.py) of each classified
content's text are kept by sha256 in `documents` and `fingerprints`, hashes only, never text. A
document sharing enough of them with one classified content is traced to it (`lookup_partial`).
Classified content without text (a drawing, a model, an image) is sketched by its bytes instead:
its least content-defined chunk fingerprints (agent/content/chunks.py), one row of `sketches` each,
looked up in memory (`prefilter`); a file holding enough of them is traced to it (`lookup_bytes`),
also after bytes were put in front, appended, changed or cut off.
"""

from __future__ import annotations

import bisect
import errno
import os
import re
import sqlite3
import stat
import time
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import NamedTuple

from loguru import logger

from agent.config import ClassifiedFolder
from agent.content import chunks as byte_chunks
from agent.content import winnow
from agent.content.extract import READERS, may_have_text
from agent.content.filetype import HEAD_BYTES
from agent.content.inspect import file_fingerprints
from agent.db import StateDB, loaded_int, stored_int
from agent.hashing import FileDigest, Hasher
from agent.hashpool import HashPool, default_workers
from agent.paths import is_under, readable
from agent.walk import Unwalkable, lstat, walk
from rules.events import Match

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY,   -- raw file system bytes: names need not be UTF-8
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    level TEXT NOT NULL,
    entry TEXT NOT NULL,
    indexed_at REAL NOT NULL,
    ctime_ns INTEGER         -- NULL in rows an older agent wrote (filled in by the next refresh)
);
CREATE INDEX IF NOT EXISTS files_sha256 ON files (sha256);
CREATE TABLE IF NOT EXISTS history (  -- classified content no longer in the folders
    sha256 TEXT NOT NULL,
    path BLOB NOT NULL,
    level TEXT NOT NULL,
    entry TEXT NOT NULL,
    size INTEGER NOT NULL,
    removed_at REAL NOT NULL,
    state TEXT NOT NULL,     -- deleted (or moved out) | previous-version (the file was edited)
    PRIMARY KEY (sha256, path)
);
CREATE INDEX IF NOT EXISTS history_removed_at ON history (removed_at);
CREATE TABLE IF NOT EXISTS documents (  -- classified content whose text was fingerprinted
    id INTEGER PRIMARY KEY,
    sha256 TEXT UNIQUE NOT NULL,
    fingerprints INTEGER NOT NULL,  -- how many; 0 when the content has no text (a drawing)
    scheme INTEGER,                 -- the fingerprint scheme (LINEAGE_SCHEME); NULL: an older agent's
    anchors INTEGER                 -- how many of them are whole lines (winnow.is_anchor); NULL: none
);
CREATE TABLE IF NOT EXISTS fingerprints (  -- winnowing fingerprints of the documents' text
    hash INTEGER NOT NULL,
    doc INTEGER NOT NULL,
    PRIMARY KEY (hash, doc)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sketches (  -- classified content without text, sketched by its bytes
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: (count, max id) tells the set apart
    sha256 TEXT UNIQUE NOT NULL,
    chunks INTEGER NOT NULL,     -- fingerprints kept (agent/content/chunks.py KEEP at most; 0: none)
    hashes BLOB NOT NULL         -- them, sorted, 8 bytes each, little-endian
);
"""
MIGRATIONS = (
    "files.ctime_ns INTEGER",
    "documents.scheme INTEGER",
    "documents.anchors INTEGER",
)  # index.db of an older agent
COLUMNS = "path, size, mtime_ns, inode, sha256, level, entry, ctime_ns"
KNOWN_CHUNK = 400  # digests per known_sha256 query (two parameters each: under SQLite's old 999)
# True: known_sha256 first looks each digest's first 64 bits up in a sorted array of every digest
# files and history hold (8 bytes a row), read while the database is as it was when the array was
# read (no commit by another connection: PRAGMA data_version; no change by this thread's own:
# total_changes), and asks SQLite only of the digests found there; False: SQLite is asked of every
# digest (the reference; tests/agent/test_index_known.py compares the two). Once the database has
# changed, the array is read again at most every KNOWN_REBUILD_S; SQLite answers meanwhile.
FAST_KNOWN = True
KNOWN_REBUILD_S = 30.0
COMMIT_EVERY = 2000  # files hashed and written per batch of a refresh
# A refresh's batches are written into one transaction until it holds BULK_ROWS rows or has been
# open BULK_S: each commit writes every index page the transaction touched (the sha256 indexes are
# written in random order: a commit of 2,000 rows wrote about 16 MB to the WAL, 800 MB for a
# build of 100,000 files) and fsyncs it. Other writers (the pipeline) wait at most about BULK_S.
BULK_ROWS = 25_000
BULK_S = 1.0
WORK_CHUNK = 64  # files hashed between two progress calls
POOL_MIN_FILES = 500  # a refresh with fewer new or changed files hashes them itself: helpers take 50 ms to start
HISTORY_KEEP_S = 365 * 86400.0
DELETED, PREVIOUS_VERSION, CURRENT = "deleted", "previous-version", "current"
# Partial matches. A fingerprint found in more classified documents than the cap is boilerplate
# (the firm's header, marking lines, footers, templates, stock phrases) and is ignored; the cap is
# DF_CAP_SHARE of the documents, never below DF_CAP_MIN (edited versions of one document share
# most fingerprints, and history keeps them: a few dozen versions must not cap a document away).
DF_CAP_MIN = 10  # measured: 20 left a firm's own idiom (a few stock sentences) counting
DF_CAP_SHARE = 0.05
# Below the cap a fingerprint is weighed by its rarity in the register: 1 / the number of current
# documents holding it (IDF-like). A clause the firm's own contracts share (in 4 of them: 1/4
# each) is weak evidence that a competitor's contract holding it came from any one of them; a
# fingerprint only one document holds is full evidence. A source needs all three, set on the
# measured curve of docs/architecture.md ("Lineage"), two corpora, not by hand: the weighted share
# finds a copy of a long document from a few paragraphs, the weighted evidence asks a short one for
# proportionally more (a 1 KB quotation with 10 fingerprints must keep a third of them).
MIN_SIMILARITY = 0.12  # weighted share: matched weight / the source's counted fingerprints
MIN_EVIDENCE = 2.5  # matched weight (boilerplate never counts): at least 3 fingerprints, rare ones
MIN_MATCHED = 3  # fingerprints, whatever their weight, so that a phrase or two match nothing
# Lines weigh as lines: a paste of three one-sentence bullets of a 16-bullet deck holds 3 of its
# 16 lines (anchors, agent/content/winnow.py) but only 3 of its 40-odd fingerprints, as the grams
# of a bullet shorter than their guarantee are often none. So the weighted share is also taken
# over the source's lines alone, when MIN_ANCHORS_MATCHED of them are found whole, at MIN_LINE_SHARE.
MIN_ANCHORS_MATCHED = 2
MIN_LINE_SHARE = 0.10  # the goal's "a tenth of the source": two lines found whole are strong evidence
# A paste of a few paragraphs into another document is a small share of a long source (a spec of
# 200 fingerprints keeps 6-12% weighted when three of its paragraphs are pasted, its idiom shared
# with its siblings) but carries many rare fingerprints; a competitor's document sharing clauses
# carries a few shared ones, and a competitor's customer list holding some of our customers many
# among hundreds. So a source is also found on MIN_EVIDENCE_ALONE of weight with MIN_SHARE_ALONE of
# its own (seed 15 of both corpora: the highest negatives were 4.7 at 12% and 4.8 at 1.7%).
MIN_EVIDENCE_ALONE = 5.0
MIN_SHARE_ALONE = 0.04
# The fingerprint scheme of agent/content/winnow.py. 1: the shipped boilerplate's fingerprints
# taken out of what an older agent stored (NULL), which is all a document kept only in the history
# can get (its file is gone); 2: also the tables' sorted cells (content in the folders is
# fingerprinted again by the next refresh), with W = 180 bytes (a superset of what W = 360 chose);
# 3: W = 90 bytes (a superset of what W = 180 chose: what an older scheme stored is still found);
# 4: also the specific lines as wholes (line anchors, a superset of 3).
LINEAGE_SCHEME = 4
STRIPPED_SCHEME = 1
# Byte lineage (agent/content/chunks.py). A file is traced to classified content without text when
# it holds MIN_BYTES_MATCHED of the fingerprints of its sketch and MIN_BYTES_SHARE of them, chunks
# held by more current sketches than the boilerplate cap left out. The share is not weighed by
# rarity as a text's is: a drawing's revisions side by side in its folder share most chunks, and
# four of them weighed a copy of the last down to 0.24; weights only rank the candidates (the
# revision the copy holds the most of alone wins). Measured on real files of ten genres
# (docs/architecture.md, "Byte lineage").
MIN_BYTES_MATCHED = 4
MIN_BYTES_SHARE = 0.3
FEW_TEXT_FINGERPRINTS = 32  # content whose text gives fewer (a CAD file in OLE2 format: a few property words) is sketched too
PREFILTER_TTL_S = 5.0  # how long the lane's prefilter is trusted without asking whether sketches changed
PREFILTER_QUICK = 250_000  # fingerprints (some 2,000 large drawings): a larger prefilter is sorted again at most
PREFILTER_REBUILD_S = 60.0  # every this many seconds (10,000 drawings: 0.8 CPU s and some 150 MB while sorted)
QUERY_CHUNK = 500  # hashes per IN (...) query, below SQLite's variable limit
CAP_TTL_S = 60.0


@dataclass(frozen=True)
class IndexedFile:
    path: str
    size: int
    mtime_ns: int
    inode: int
    sha256: str
    level: str
    entry: str
    ctime_ns: int | None = None  # None only in rows an older agent wrote


@dataclass(frozen=True)
class SourceFile:
    """Classified content a hash traces back to: a file in the folders now, or one they held."""

    path: str
    level: str
    entry: str
    size: int
    state: str  # current | deleted (or moved out) | previous-version (edited since)

    def event_fields(self, match: Match = Match("exact", 1.0)) -> dict:
        """What an event about a copy of this content says of its source."""
        text, raw = readable(self.path)
        fields = dict(
            level=self.level,
            source_path=text,
            source_path_b64=raw,
            register_entry=self.entry or None,
            match=match,
        )
        if self.state != CURRENT:  # deleted or edited since: the alert says so
            fields["details"] = {"source_state": self.state}
        return fields


@dataclass(frozen=True)
class PartialCandidate:
    """A classified document sharing fingerprints with a text (before the thresholds)."""

    sha256: str
    matched: int  # its fingerprints found in the text (register boilerplate left out)
    counted: int  # its fingerprints that count (register boilerplate the text holds left out)
    current: bool  # content in the folders now (not only in the history)
    evidence: float = 0.0  # the matched fingerprints weighed by rarity: sum of 1 / current documents holding each
    anchors_matched: int = 0  # of matched: the source's lines found whole
    anchors_counted: int = 0  # of counted: the source's lines
    anchor_evidence: float = 0.0  # of evidence: the lines' weight

    @property
    def similarity(self) -> float:
        """The share of the source's fingerprints found (what an event reports)."""
        return self.matched / self.counted

    @property
    def weighted_share(self) -> float:
        """The weighed evidence over the source's counted fingerprints (what the threshold asks)."""
        return self.evidence / self.counted

    @property
    def line_share(self) -> float:
        """The weighed evidence of the source's lines found whole over its lines."""
        return self.anchor_evidence / self.anchors_counted if self.anchors_counted else 0.0

    @property
    def rank(self) -> tuple[float, bool, float]:
        """The best candidate has the most evidence, then is current, then the best share."""
        return (round(self.evidence, 6), self.current, self.weighted_share)


def is_match(
    c: PartialCandidate,
    min_evidence: float | None = None,
    min_share: float | None = None,
    min_alone: float | None = None,
) -> bool:
    """Whether a candidate is evidence enough. Its grams alone (the curve measured before lines
    were fingerprinted): MIN_MATCHED of them, and MIN_EVIDENCE of weight with MIN_SIMILARITY
    weighted share of its grams, or MIN_EVIDENCE_ALONE of weight with MIN_SHARE_ALONE. Or its
    lines: MIN_ANCHORS_MATCHED of them found whole with MIN_LINE_SHARE weighted share of its lines,
    and MIN_MATCHED fingerprints with MIN_EVIDENCE of weight in all. (Other values are for
    measuring the curve; min_alone=None: MIN_EVIDENCE_ALONE, 0: no second tier.)"""
    evidence = MIN_EVIDENCE if min_evidence is None else min_evidence
    share = MIN_SIMILARITY if min_share is None else min_share
    if (
        c.anchors_matched >= MIN_ANCHORS_MATCHED
        and c.matched >= MIN_MATCHED
        and c.evidence >= evidence
        and c.line_share >= (MIN_LINE_SHARE if min_share is None else min_share)
    ):
        return True
    grams = c.matched - c.anchors_matched
    grams_evidence = c.evidence - c.anchor_evidence
    grams_share = grams_evidence / max(1, c.counted - c.anchors_counted)
    if grams < MIN_MATCHED:
        return False
    if grams_evidence >= evidence and grams_share >= share:
        return True
    alone = MIN_EVIDENCE_ALONE if min_alone is None else min_alone
    return 0 < alone <= grams_evidence and grams_share >= MIN_SHARE_ALONE


@dataclass(frozen=True)
class RefreshStats:
    files: int  # regular files found in classified folders
    hashed: int  # of which re-hashed because new or changed
    removed: int  # rows dropped because the file is gone
    errors: int  # files that could not be read, and folders that could not be walked
    bytes_hashed: int
    # folders of the classified tree that could not be walked: their rows are kept, not dropped
    unwalkable: tuple[Unwalkable, ...] = ()


class _KnownDigests:
    """The first 64 bits of every digest that files and history held when read, sorted: a digest
    not among them is in neither table (a row equal to it would have the same first 16 hex
    digits); one among them is asked of SQLite (a row may share the start only)."""

    __slots__ = ("conn", "state", "read_at", "_values")

    def __init__(self, conn, state: tuple[int, int], read_at: float, rows) -> None:
        self.conn, self.state, self.read_at = conn, state, read_at
        starts = set()
        for (sha256,) in rows:
            start = _start_of(sha256)
            if start is not None:  # else not a digest: no digest asked is equal to it (may_hold)
                starts.add(start)
        self._values = array("Q", sorted(starts))

    def may_hold(self, sha256: str) -> bool:
        start = _start_of(sha256)
        if start is None:
            return True  # not a digest as the hasher writes it: SQLite says
        values = self._values
        i = bisect.bisect_left(values, start)
        return i < len(values) and values[i] == start


def _start_of(sha256) -> int | None:
    """The first 64 bits of a digest of 64 hex digits, or None for anything else."""
    if type(sha256) is not str or len(sha256) != 64 or not _HEX.fullmatch(sha256, 0, 16):
        return None
    return int(sha256[:16], 16)


_HEX = re.compile(r"[0-9a-fA-F]{16}")


class FingerprintIndex:
    def __init__(
        self,
        db_path: str,
        folders: tuple[ClassifiedFolder, ...],
        hasher: Hasher | None = None,
        history_keep_s: float = HISTORY_KEEP_S,
        fingerprint: Callable[[str], frozenset[int]] | None = file_fingerprints,
        hash_workers: int | None = None,
        sketch: Callable[[str], list[int]] | None = byte_chunks.sketch if byte_chunks.NATIVE else None,
    ):
        """`fingerprint(path)`: the winnowing fingerprints of a file's text (None: no lineage).
        `sketch(path)`: the chunk fingerprints kept of a file without text (byte lineage; none
        without `fingerprint` either, nor by default without the C extension: agent/content/chunks.py).
        `hash_workers`: helper processes hashing a large refresh (agent/hashpool.py); None: one
        per core, 1: none (hashed on the refreshing thread)."""
        # the most specific folder wins when classified folders nest
        self.folders = tuple(sorted(folders, key=lambda f: len(f.path), reverse=True))
        self.hasher = hasher or Hasher()
        self.hash_workers = default_workers() if hash_workers is None else hash_workers
        self.history_keep_s = history_keep_s
        self.fingerprint = fingerprint
        self.sketch = sketch if fingerprint is not None else None
        self._cap: tuple[int, float] | None = None  # the boilerplate cap, and when it was counted
        self._sketch_cap_at: tuple[int, float] | None = None  # the same over current sketches
        # the prefilter, its key, when the key was checked and when it was built; and whether this
        # index changed sketches since (asked at the next look-up, not PREFILTER_TTL_S later)
        self._prefilter: tuple[byte_chunks.Prefilter, tuple, float, float] | None = None
        self._sketches_changed = False
        self._known: _KnownDigests | None = None  # known_sha256's array, and the database it was read from
        self.db = StateDB(db_path, SCHEMA, MIGRATIONS)
        if fingerprint is not None:
            _strip_boilerplate(self.db)

    def close(self) -> None:
        self.db.close()

    def folder_for(self, path: str) -> ClassifiedFolder | None:
        return next((f for f in self.folders if is_under(path, f.path)), None)

    def lookup_sha256(self, sha256: str) -> SourceFile | None:
        """Where this content is classified: a current file, else the latest one it was removed from.

        One query (both tables, through their sha256 indexes): most egress files are found in
        neither, and each is looked up."""
        row = (
            self.db.conn()
            .execute(
                "SELECT path, level, entry, size, state FROM ("
                " SELECT path, level, entry, size, 'current' AS state, 0 AS source, indexed_at AS t FROM files WHERE sha256 = ?"
                " UNION ALL"
                " SELECT path, level, entry, size, state, 1, -removed_at FROM history WHERE sha256 = ?"
                ") ORDER BY source, t LIMIT 1",
                (sha256, sha256),
            )
            .fetchone()
        )
        return SourceFile(os.fsdecode(bytes(row[0])), *row[1:]) if row else None

    def known_sha256(self, sha256s: Collection[str]) -> set[str]:
        """Which of these digests lookup_sha256 finds a source for: those of a row in `files` or
        `history` (the two tables it reads, compared as it compares). One query for a batch of
        digests (the pipeline's results of a step), so the many egress files found in neither
        table cost no query each; lookup_sha256 still answers for the few found."""
        found: set[str] = set()
        wanted = list(dict.fromkeys(sha256s))
        conn = self.db.conn()
        known = self._known_digests(conn) if FAST_KNOWN else None
        if known is not None:
            wanted = [sha256 for sha256 in wanted if known.may_hold(sha256)]
        for i in range(0, len(wanted), KNOWN_CHUNK):
            chunk = wanted[i : i + KNOWN_CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(
                row[0]
                for row in conn.execute(
                    f"SELECT sha256 FROM files WHERE sha256 IN ({marks})"
                    f" UNION SELECT sha256 FROM history WHERE sha256 IN ({marks})",
                    chunk + chunk,
                )
            )
        return found

    def _known_digests(self, conn) -> _KnownDigests | None:
        """The array of known digests if it is that of the database as it is now (read again
        when it is not and KNOWN_REBUILD_S have passed since it was read), else None."""
        state = (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)  # before the read
        known = self._known
        if known is not None and known.conn is conn and known.state == state:
            return known
        now = time.monotonic()
        if known is not None and now - known.read_at < KNOWN_REBUILD_S:
            return None
        rows = conn.execute("SELECT sha256 FROM files UNION ALL SELECT sha256 FROM history")
        self._known = _KnownDigests(conn, state, now, rows)
        return self._known

    def lookup_partial(self, fingerprints: Collection[int]) -> tuple[SourceFile, float] | None:
        """The classified content whose text this text shares most of, with the share of the
        source's fingerprints found (rounded to 3 places), or None.

        Among the candidates (`partial_candidates`), a source needs `is_match`: MIN_EVIDENCE of
        rarity-weighted fingerprints and MIN_SIMILARITY weighted share of its own, or
        MIN_EVIDENCE_ALONE with MIN_SHARE_ALONE (a few paragraphs of a long document); the most
        evidence wins, then content in the folders now (a copy found as much in the current
        version as in an earlier one is reported against the current file), then the best share.
        """
        scored = [c for c in self.partial_candidates(fingerprints) if is_match(c)]
        for c in sorted(scored, key=lambda c: c.rank, reverse=True):
            source = self.lookup_sha256(c.sha256)
            if source is not None:  # else content forgotten since (garbage collected later)
                return source, round(c.similarity, 3)
        return None

    def partial_candidates(self, fingerprints: Collection[int]) -> list[PartialCandidate]:
        """Every classified document sharing at least one counted fingerprint with this text.

        Fingerprints held by more current documents than the cap are boilerplate of the register:
        they count neither for nor against a source (a source's boilerplate found here leaves its
        denominator). Only content in the folders now counts towards the cap: the edited versions
        of a document kept in the history share most of its fingerprints. The shipped boilerplate
        list's fingerprints were never stored (agent/content/winnow.py)."""
        if not fingerprints:
            return []
        conn = self.db.conn()
        matched, evidence, common, lines_found = _matches(conn, sorted(set(fingerprints)), self._boilerplate_cap())
        common_lines = [h for h in common if winnow.is_anchor(h)]
        found = []
        for doc, n in matched.items():
            sha256, total, lines, current = conn.execute(
                "SELECT sha256, fingerprints, coalesce(anchors, 0),"
                " EXISTS (SELECT 1 FROM files WHERE files.sha256 = documents.sha256) FROM documents WHERE id = ?",
                (doc,),
            ).fetchone()
            counted = max(1, total - _held(conn, doc, common)) if common else max(1, total)
            lines_counted = lines - _held(conn, doc, common_lines) if common_lines else lines
            found.append(
                PartialCandidate(
                    sha256,
                    n,
                    max(n, counted),
                    bool(current),
                    evidence[doc],
                    lines_found.matched[doc],
                    max(lines_found.matched[doc], lines_counted),
                    lines_found.weight.get(doc, 0.0),
                )
            )
        return found

    def lookup_bytes(self, hits: Collection[int]) -> tuple[SourceFile, float] | None:
        """The classified content without text whose sketch this file's chunks hold most of, with
        the share of the sketch found (rounded to 3 places), or None. `hits`: the file's chunk
        fingerprints found in the prefilter (the others are in no sketch). A source needs
        MIN_BYTES_MATCHED of its fingerprints and MIN_BYTES_SHARE of them; the most evidence
        (rarity-weighted) wins, then content in the folders now, then the best share."""
        scored = [
            c for c in self.byte_candidates(hits) if c.matched >= MIN_BYTES_MATCHED and c.similarity >= MIN_BYTES_SHARE
        ]
        for c in sorted(scored, key=lambda c: c.rank, reverse=True):
            source = self.lookup_sha256(c.sha256)
            if source is not None:
                return source, round(c.similarity, 3)
        return None

    def byte_candidates(self, hits: Collection[int]) -> list[PartialCandidate]:
        """Every sketch holding one of these fingerprints, as partial_candidates weighs a text's:
        a fingerprint in more current sketches than the cap counts neither for nor against one,
        the others weigh 1 / the current sketches holding it. The holders come from the prefilter,
        which of them are current from one query."""
        if not hits:
            return []
        prefilter = self.prefilter()
        holders = {h: prefilter.holders(h) for h in set(hits)}
        holders = {h: ids for h, ids in holders.items() if ids}
        conn = self.db.conn()
        current: set[int] = set()
        everyone = sorted({i for ids in holders.values() for i in ids})
        for chunk in _chunks(everyone, QUERY_CHUNK):
            current.update(
                i
                for (i,) in conn.execute(
                    f"SELECT id FROM sketches WHERE id IN ({_marks(chunk)}) AND sha256 IN (SELECT sha256 FROM files)", chunk
                )
            )
        cap = self._sketch_cap()
        matched: Counter[int] = Counter()
        weight: dict[int, float] = {}
        common: dict[int, int] = Counter()  # per sketch: its boilerplate fingerprints the file holds
        for ids in holders.values():
            in_use = sum(1 for i in ids if i in current)
            if in_use > cap:
                common.update(ids)
                continue
            w = 1.0 / max(1, in_use)
            for i in ids:
                matched[i] += 1
                weight[i] = weight.get(i, 0.0) + w
        found = []
        for sketch, n in matched.items():
            row = conn.execute("SELECT sha256, chunks FROM sketches WHERE id = ?", (sketch,)).fetchone()
            if row is None:
                continue  # forgotten since the prefilter was read
            sha256, total = row
            found.append(PartialCandidate(sha256, n, max(n, total - common[sketch], 1), sketch in current, weight[sketch]))
        return found

    def prefilter(self) -> byte_chunks.Prefilter:
        """Every fingerprint of every sketch, for the lane's chunker (agent/content/chunks.py):
        read again when sketches were added or removed, which is asked PREFILTER_TTL_S apart, or
        at once after this index changed them. A large one (over PREFILTER_QUICK fingerprints:
        its sort takes seconds of the pipeline's thread, and more memory while it runs) is read
        again at most every PREFILTER_REBUILD_S, so a CAD user saving drawings one after another
        does not sort it for each."""
        now = time.monotonic()
        cached = self._prefilter
        if cached is not None and not self._sketches_changed and now - cached[2] < PREFILTER_TTL_S:
            return cached[0]
        self._sketches_changed = False
        conn = self.db.conn()
        key = tuple(conn.execute("SELECT count(*), coalesce(max(id), 0) FROM sketches").fetchone())
        if cached is not None and (
            cached[1] == key or (len(cached[0]) > PREFILTER_QUICK and now - cached[3] < PREFILTER_REBUILD_S)
        ):
            self._prefilter = (cached[0], cached[1], now, cached[3])
            return cached[0]
        made = byte_chunks.Prefilter.of(conn.execute("SELECT id, hashes FROM sketches WHERE chunks > 0"))
        self._prefilter = (made, key, now, now)
        return made

    def has_sketch(self, sha256: str) -> bool:
        return self.db.conn().execute("SELECT 1 FROM sketches WHERE sha256 = ?", (sha256,)).fetchone() is not None

    def _sketch_cap(self) -> int:
        """The boilerplate cap over current sketches (as _boilerplate_cap over documents)."""
        now = time.monotonic()
        if self._sketch_cap_at is None or now - self._sketch_cap_at[1] > CAP_TTL_S:
            current = (
                self.db.conn()
                .execute("SELECT count(*) FROM sketches WHERE chunks > 0 AND sha256 IN (SELECT sha256 FROM files)")
                .fetchone()[0]
            )
            self._sketch_cap_at = (max(DF_CAP_MIN, int(DF_CAP_SHARE * current)), now)
        return self._sketch_cap_at[0]

    def _boilerplate_cap(self) -> int:
        """DF_CAP_SHARE of the current documents, at least DF_CAP_MIN; counted once a minute, not
        for every file of a bulk copy."""
        now = time.monotonic()
        if self._cap is None or now - self._cap[1] > CAP_TTL_S:
            current = (
                self.db.conn()
                .execute(
                    "SELECT count(*) FROM documents WHERE fingerprints > 0 AND sha256 IN (SELECT sha256 FROM files)"
                )
                .fetchone()[0]
            )
            self._cap = (max(DF_CAP_MIN, int(DF_CAP_SHARE * current)), now)
        return self._cap[0]

    def has_document(self, sha256: str) -> bool:
        """Whether this content's text was fingerprinted (or found to have none)."""
        return self.db.conn().execute("SELECT 1 FROM documents WHERE sha256 = ?", (sha256,)).fetchone() is not None

    def _fingerprints(self, path: str, sha256: str) -> frozenset[int] | None:
        """The fingerprints to store for this content, or None when they are stored already
        (or lineage is off)."""
        if self.fingerprint is None or self.has_document(sha256):
            return None
        return self.fingerprint(path)

    def _sketch_of(self, path: str, sha256: str) -> list[int] | None:
        """The sketch to store for content without text, or None when it is stored already (or
        byte lineage is off, or the file cannot be read now: the next refresh sketches it)."""
        if self.sketch is None or self.has_sketch(sha256):
            return None
        try:
            return self.sketch(path)
        except OSError as exc:
            logger.warning("cannot sketch classified file path={!r} error={!r}", path, exc.strerror or type(exc).__name__)
            return None

    def get(self, path: str) -> IndexedFile | None:
        row = self.db.conn().execute(f"SELECT {COLUMNS} FROM files WHERE path = ?", (os.fsencode(path),)).fetchone()
        return _row_to_file(row) if row else None

    def count(self) -> int:
        return self.db.conn().execute("SELECT count(*) FROM files").fetchone()[0]

    def count_under(self, folders: Iterable[str]) -> int:
        """Files the index holds under any of these folders, each counted once (nested folders are
        folded into the outer one). Two range reads on the path key per outer folder: cheap enough
        for every heartbeat, unlike a scan with substr()."""
        raws = sorted({os.fsencode(f).rstrip(b"/") or b"/" for f in folders})
        outer: list[bytes] = []
        for raw in raws:  # sorted: a folder's subfolders come after it
            if not any(is_under_raw(raw, o) or o == b"/" for o in outer[-1:]):
                outer.append(raw)
        conn = self.db.conn()
        total = 0
        for raw in outer:
            low = raw if raw == b"/" else raw + b"/"
            high = low[:-1] + b"0"  # b"0" follows b"/": every path below the folder sorts in [low, high)
            total += conn.execute(
                "SELECT (SELECT count(*) FROM files WHERE path >= ? AND path < ?) + (SELECT count(*) FROM files WHERE path = ?)",
                (low, high, raw),
            ).fetchone()[0]
        return total

    def history_count(self) -> int:
        return self.db.conn().execute("SELECT count(*) FROM history").fetchone()[0]

    def update_file(self, path: str, force: bool = False) -> tuple[IndexedFile | None, bool]:
        """Bring one file's row up to date: (row or None when gone/unclassified, whether it changed).

        `force` re-hashes even when size, times and inode look the same (a write was seen).
        Raises OSError when the file exists but cannot be read.
        """
        folder = self.folder_for(path)
        try:
            st = lstat(path)
        except FileNotFoundError:
            self.remove_tree(path)
            return None, True
        if folder is None or not _is_regular(st.st_mode):
            return None, False
        known = self.get(path)
        if known is not None and not force and _unchanged(known, st):
            relabelled = (known.level, known.entry) != (folder.level, folder.name)
            if not relabelled and known.ctime_ns == st.st_ctime_ns:
                return known, False
            entry = replace(known, level=folder.level, entry=folder.name, ctime_ns=st.st_ctime_ns)
            with self.db.transaction() as conn:
                _upsert(conn, entry)
            return entry, relabelled
        d = self.hasher.digest(path)
        entry = IndexedFile(path, d.size, d.mtime_ns, d.inode, d.sha256, folder.level, folder.name, d.ctime_ns)
        found = self._fingerprints(path, d.sha256)
        sketched = self._sketch_of(path, d.sha256) if found is not None and len(found) < FEW_TEXT_FINGERPRINTS else None
        with self.db.transaction() as conn:
            if known is not None and known.sha256 != entry.sha256:
                _remember(conn, [known], PREVIOUS_VERSION)
            _upsert(conn, entry)
            if found is not None:
                _store_document(conn, d.sha256, found)
            if sketched is not None:
                _store_sketch(conn, d.sha256, sketched)
        if sketched is not None:
            self._sketches_changed = True  # the lanes look for it from the next file on
        if known is None:
            return entry, True
        same = (known.size, known.mtime_ns, known.inode, known.sha256, known.level, known.entry)
        return entry, same != (entry.size, entry.mtime_ns, entry.inode, entry.sha256, entry.level, entry.entry)

    def remove_tree(self, path: str) -> list[IndexedFile]:
        """Forget a file, or every file under a removed folder; returns the rows forgotten.

        Their content stays traceable (history, as deleted).
        """
        raw = os.fsencode(path)
        where = "path = ? OR substr(path, 1, ?) = ?"
        args = (raw, len(raw) + 1, raw + b"/")
        with self.db.transaction() as conn:
            rows = [_row_to_file(r) for r in conn.execute(f"SELECT {COLUMNS} FROM files WHERE {where}", args)]
            conn.execute(f"DELETE FROM files WHERE {where}", args)
            _remember(conn, rows, DELETED)
        return rows

    def move(self, src: str, dest: str) -> list[IndexedFile]:
        """Carry the rows of a renamed file or folder to its new path without re-hashing.

        Returns the rows as they are now. A row the move replaced (a file saved by renaming a
        temporary file over it) stays traceable as a previous version.
        """
        src_raw, dest_raw = os.fsencode(src), os.fsencode(dest)
        moved = []
        with self.db.transaction() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM files WHERE path = ? OR substr(path, 1, ?) = ?",
                (src_raw, len(src_raw) + 1, src_raw + b"/"),
            ).fetchall()
            for row in rows:
                new_path = os.fsdecode(dest_raw + bytes(row[0])[len(src_raw) :])
                conn.execute("DELETE FROM files WHERE path = ?", (row[0],))
                old = _row_to_file(row)
                replaced = conn.execute(
                    f"SELECT {COLUMNS} FROM files WHERE path = ?", (os.fsencode(new_path),)
                ).fetchone()
                if replaced is not None and replaced[4] != old.sha256:
                    _remember(conn, [_row_to_file(replaced)], PREVIOUS_VERSION)
                folder = self.folder_for(new_path)
                if folder is not None:
                    ctime_ns = _ctime_after_rename(new_path, old) if bytes(row[0]) == src_raw else old.ctime_ns
                    entry = IndexedFile(
                        new_path, old.size, old.mtime_ns, old.inode, old.sha256, folder.level, folder.name, ctime_ns
                    )
                    _upsert(conn, entry)
                    moved.append(entry)
        return moved

    def purge_history(self, now: float | None = None) -> int:
        """Forget removed content older than history_keep_s, or no longer under a classified folder."""
        now = time.time() if now is None else now
        conn = self.db.conn()
        declassified = [
            (raw,)
            for (raw,) in conn.execute("SELECT DISTINCT path FROM history")
            if self.folder_for(os.fsdecode(bytes(raw))) is None
        ]
        with self.db.transaction() as tx:
            purged = tx.execute("DELETE FROM history WHERE removed_at < ?", (now - self.history_keep_s,)).rowcount
            tx.executemany("DELETE FROM history WHERE path = ?", declassified)
            if purged or declassified:  # else no document lost its last reference: no scan of them all
                _forget_documents(tx)
        if purged or declassified:
            self._sketches_changed = True  # committed: the next look-up reads what is left
        return purged + len(declassified)

    def refresh(self, progress: Callable[[int, int], None] | None = None) -> RefreshStats:
        """Walk every classified folder; hash new and changed files, drop rows of vanished ones.

        `progress(bytes_done, bytes_total)` is called as hashing proceeds.

        Where the time goes (docs/benchmarks.md, "Index build"): each directory's rows are read
        with one range query on the path key as the walk lists it and compared with the stats in
        memory, so an unchanged tree costs a stat per file and no write, and memory holds one
        directory's rows, not the table's (100,000 rows in a dict took 70 MB); rows of folders
        the walk did not list are found in one streamed pass. New and changed files are hashed
        (and their text fingerprinted, unless their first bytes show no text) and their rows
        written COMMIT_EVERY to a transaction, with executemany.
        """
        work = _Hashing(self, progress)
        try:
            return self._refresh(work)
        finally:
            work.close()  # the hashing helpers end with the refresh, also one that failed
            self._sketches_changed = True  # its sketches are committed: the next look-up reads them (not one before)

    def _refresh(self, work: _Hashing) -> RefreshStats:
        self.purge_history()
        started = self.hasher.bytes_read
        unwalkable: list[Unwalkable] = []
        conn = self.db.conn()
        walked: set[bytes] = set()  # directories listed: their rows are compared as each is walked
        relabel: list[tuple] = []
        missing: list[bytes] = []
        files = 0
        for folder in reversed(self.folders):  # most specific last (a nested folder's own walk is a repeat)
            for directory, listed in _walk_folders(folder.path, unwalkable):
                raw_dir = os.fsencode(directory)
                if raw_dir in walked:
                    continue
                walked.add(raw_dir)
                owner = self.folder_for(directory) or folder  # every file of a folder has its folder's owner
                here = dict(listed)
                files += len(here)
                # (path, size, mtime_ns, inode, ctime_ns, level, entry) of the rows directly in it:
                # what a stat is compared with, one directory at a time (never the whole table)
                changed = []
                for row in _rows_in(conn, raw_dir):
                    st = here.pop(row[0], None)
                    if st is None:
                        missing.append(row[0])
                    elif not (row[1:5] == (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) or _row_unchanged(row, st)):
                        changed.append((row[0], st, owner))
                    elif (row[5], row[6], loaded_int(row[4])) != (owner.level, owner.name, st.st_ctime_ns):
                        # config changed, or a ctime to fill in
                        relabel.append((owner.level, owner.name, stored_int(st.st_ctime_ns), row[0]))
                work.add(changed, had_row=True)
                work.add([(raw, st, owner) for raw, st in here.items()], had_row=False)  # new files
        missing += _outside(conn, walked)  # rows of folders not listed: removed, unwalkable or no longer classified
        errors = len(unwalkable)
        gone = self._rows(_seen_gone(missing, unwalkable))
        if gone or relabel:  # an unchanged tree writes nothing
            with work.writer.batch() as tx:
                tx.executemany("DELETE FROM files WHERE path = ?", [(os.fsencode(e.path),) for e in gone])
                _remember(tx, [e for e in gone if self.folder_for(e.path)], DELETED)
                if any(self.folder_for(e.path) is None for e in gone):  # a folder no longer classified: no history
                    _forget_documents(tx)  # so its documents and sketches go with its rows
                tx.executemany("UPDATE files SET level = ?, entry = ?, ctime_ns = ? WHERE path = ?", relabel)
        work.finish()
        self._fingerprint_missing()  # content indexed before lineage existed (or interrupted)
        self._sketch_missing()  # content without text: new, or indexed before byte lineage existed
        return RefreshStats(
            files=files,
            hashed=work.count - work.errors,
            removed=len(gone),
            errors=errors + work.errors,
            bytes_hashed=self.hasher.bytes_read - started,
            unwalkable=tuple(unwalkable),
        )

    def _hashed(
        self, todo: list, claimed: set[int], digests: Iterator | None = None, pause: Callable[[], None] | None = None
    ) -> Iterator[list]:
        """The todo list hashed (and fingerprinted), WORK_CHUNK files at a time. `digests`: the
        todo list's digests (or OSErrors) in order, from the helper processes of a large refresh
        (agent/hashpool.py); without them the files are hashed here, on this thread. `pause()` is
        called before a text is fingerprinted (which may take seconds: a transaction is not held)."""
        each = iter(digests if digests is not None else self._digest_each(todo))
        for chunk in _chunks(todo, WORK_CHUNK):
            yield self._hash_chunk(chunk, [next(each) for _ in chunk], claimed, pause)

    def _head_bytes(self) -> int:
        return HEAD_BYTES if self.fingerprint else 0

    def _digest_each(self, todo: list) -> Iterator[FileDigest | OSError]:
        for raw, _st, _folder in todo:
            look = byte_chunks.SketchLook(may_have_text) if self.sketch is not None and byte_chunks.NATIVE else None
            try:
                d = self.hasher.digest(os.fsdecode(raw), self._head_bytes(), look=look)
            except OSError as exc:
                yield exc
                continue
            yield replace(d, sketch=look.packed()) if look is not None else d

    def _pool(self) -> HashPool | None:
        """Helper processes for a refresh's hashing, where they are wanted: more than one core,
        and the stock Hasher (one a caller gave us is asked itself)."""
        if self.hash_workers <= 1 or type(self.hasher) is not Hasher:
            return None
        return HashPool(self.hash_workers, self.hasher, frozenset(READERS) if self.fingerprint else None)  # and sketches

    def _hash_chunk(
        self, chunk: list, digests: list, claimed: set[int], pause: Callable[[], None] | None = None
    ) -> list:
        """[(raw path, stat, (row, fingerprints or None, packed sketch or None) | OSError)] for a
        chunk of the todo list; a row is (raw path, size, mtime_ns, inode, sha256, level, entry,
        ctime_ns), the files table's columns as `_store` writes them (no IndexedFile per file, no
        path decoded and encoded again). A sketch is taken in the hash's read (hashpool.py)."""
        out = []
        for (raw, st, folder), d in zip(chunk, digests, strict=True):
            if isinstance(d, OSError):
                out.append((raw, st, d))
                continue
            row = (raw, d.size, stored_int(d.mtime_ns), stored_int(d.inode), d.sha256, folder.level, folder.name, stored_int(d.ctime_ns))
            hashes, sketch = None, None
            if self.fingerprint is None:
                pass
            elif not d.head or not may_have_text(d.head):  # an empty head (a helper's answer for a binary) has none
                # content whose first bytes show no text (a drawing, an image, a binary) is stored
                # without fingerprints, without opening it again (INSERT OR IGNORE: no query first, and a
                # repeat of the content costs nothing, so `claimed` holds only texts: 100,000 binaries took 5 MB)
                hashes = frozenset()
                sketch = d.sketch if self.sketch is not None else None
            elif (key := int(d.sha256[:16], 16)) not in claimed:  # each text once per refresh, by 64 bits of its digest
                claimed.add(key)
                if pause is not None:
                    pause()
                hashes = self._fingerprints(os.fsdecode(raw), d.sha256)
            out.append((raw, st, (row, hashes, sketch)))
        return out

    def _rows(self, paths: Iterable[bytes]) -> list[IndexedFile]:
        conn = self.db.conn()
        return [
            _row_to_file(row)
            for chunk in _chunks(list(paths), QUERY_CHUNK)
            for row in conn.execute(f"SELECT {COLUMNS} FROM files WHERE path IN ({_marks(chunk)})", chunk)
        ]

    def _store(
        self,
        entries: list[tuple],
        texts: dict[str, frozenset[int]],
        indexed: list[bytes],
        bulk: _Bulk,
        sketches: dict[str, bytes] | None = None,
    ) -> None:
        """Hashed files' rows and their new documents and sketches (packed), in one batch of the
        refresh's transaction; `indexed`: the paths among them that had a row (content replaced
        by an edit stays traceable)."""
        replaced = []
        if indexed:  # edits (a build has none: no dict of its batch)
            new = {e[0]: e[4] for e in entries}
            replaced = [old for old in self._rows(indexed) if new.get(os.fsencode(old.path), old.sha256) != old.sha256]
        now = time.time()
        with bulk.batch(len(entries)) as tx:
            _remember(tx, replaced, PREVIOUS_VERSION)
            tx.executemany(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, sha256, level, entry, indexed_at, ctime_ns)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*e[:7], now, e[7]) for e in entries],
            )
            tx.executemany(  # content without text (most of a drawing folder): one statement for all
                "INSERT OR IGNORE INTO documents (sha256, fingerprints) VALUES (?, 0)",
                [(sha256,) for sha256, hashes in texts.items() if not hashes],
            )
            for sha256, hashes in texts.items():
                if hashes:
                    _store_document(tx, sha256, hashes)
            if sketches:  # the prefilter is read again once the refresh has committed them (refresh)
                tx.executemany(
                    "INSERT OR IGNORE INTO sketches (sha256, chunks, hashes) VALUES (?, ?, ?)",
                    [(sha256, len(packed) // 8, packed) for sha256, packed in sketches.items()],
                )

    def _fingerprint_missing(self) -> None:
        """Fingerprint current content that has no documents row (an index.db of an older agent),
        or whose fingerprints an older scheme made (replaced)."""
        if self.fingerprint is None:
            return
        rows = (
            self.db.conn()
            .execute(
                f"SELECT {COLUMNS} FROM files WHERE sha256 NOT IN"
                " (SELECT sha256 FROM documents WHERE scheme = ? OR fingerprints = 0) GROUP BY sha256",
                (LINEAGE_SCHEME,),
            )
            .fetchall()
        )
        for batch in _chunks([_row_to_file(r) for r in rows], COMMIT_EVERY):
            texts = {e.sha256: self.fingerprint(e.path) for e in batch if self._still(e)}
            with self.db.transaction() as tx:
                for sha256, hashes in texts.items():
                    _store_document(tx, sha256, hashes)

    def _sketch_missing(self) -> None:
        """Sketch current content with little or no text (a documents row of fewer than
        FEW_TEXT_FINGERPRINTS) that has no sketch yet, COMMIT_EVERY contents a transaction: what
        the refresh's helpers did not sketch as they hashed (a head that may hold text, such as
        an Inventor or SolidWorks file in OLE2 format, whose text is a few properties), and what
        an older index holds. A file is read again for it: some 2 GB/s of chunking, apart from
        the read."""
        if self.sketch is None:
            return
        rows = (
            self.db.conn()
            .execute(
                f"SELECT {COLUMNS} FROM files WHERE sha256 IN (SELECT sha256 FROM documents WHERE fingerprints < ?)"
                " AND sha256 NOT IN (SELECT sha256 FROM sketches) GROUP BY sha256",
                (FEW_TEXT_FINGERPRINTS,),
            )
            .fetchall()
        )
        for batch in _chunks([_row_to_file(r) for r in rows], COMMIT_EVERY):
            made = {}
            for e in batch:
                try:
                    sketch = self.sketch(e.path)
                except OSError:
                    continue  # gone or unreadable since: the next refresh
                if self._still(e):  # unchanged while read: the sketch is of this content
                    made[e.sha256] = sketch
            with self.db.transaction() as tx:
                for sha256, sketch in made.items():
                    _store_sketch(tx, sha256, sketch)
            self._sketches_changed = True

    @staticmethod
    def _still(e: IndexedFile) -> bool:
        """The file is still the content its row says (its text belongs to that sha256)."""
        try:
            return _unchanged(e, lstat(e.path))
        except OSError:
            return False


def _store_document(conn, sha256: str, fingerprints: frozenset[int]) -> None:
    """One content's fingerprints (none for content without text: it is not examined again).

    Content an older scheme fingerprinted keeps its row: what that scheme stored (after
    `_strip_boilerplate`) is a part of what this one finds in the same text, so the new
    fingerprints are added to it, with no scan of the table for its old rows."""
    old = conn.execute(
        "SELECT id FROM documents WHERE sha256 = ? AND scheme IS NOT ?", (sha256, LINEAGE_SCHEME)
    ).fetchone()
    lines = sum(map(winnow.is_anchor, fingerprints))
    if old is not None:
        conn.execute(
            "UPDATE documents SET fingerprints = ?, scheme = ?, anchors = ? WHERE id = ?",
            (len(fingerprints), LINEAGE_SCHEME, lines, old[0]),
        )
        doc = old[0]
    else:
        cur = conn.execute(
            "INSERT OR IGNORE INTO documents (sha256, fingerprints, scheme, anchors) VALUES (?, ?, ?, ?)",
            (sha256, len(fingerprints), LINEAGE_SCHEME, lines),
        )
        if not cur.rowcount:
            return
        doc = cur.lastrowid
    conn.executemany(
        "INSERT OR IGNORE INTO fingerprints (hash, doc) VALUES (?, ?)", [(h, doc) for h in sorted(fingerprints)]
    )


def _store_sketch(conn, sha256: str, fingerprints: list[int]) -> None:
    """One content's sketch (none for a file of padding only: it is not read again)."""
    conn.execute(
        "INSERT OR IGNORE INTO sketches (sha256, chunks, hashes) VALUES (?, ?, ?)",
        (sha256, len(fingerprints), byte_chunks.packed(fingerprints)),
    )


def _strip_boilerplate(db: StateDB) -> None:
    """Take the shipped boilerplate's fingerprints out of documents an older agent fingerprinted
    (scheme NULL), so they count for nothing here either: one indexed DELETE per 500 boilerplate
    hashes, whatever the size of the index. Content in the folders is fingerprinted again by the
    next refresh (`_fingerprint_missing`); content kept only in the history keeps these."""
    conn = db.conn()
    if conn.execute("SELECT 1 FROM documents WHERE scheme IS NULL LIMIT 1").fetchone() is None:
        return
    removed: Counter[int] = Counter()
    with db.transaction() as tx:
        for chunk in _chunks(sorted(winnow.boilerplate_hashes()), QUERY_CHUNK):
            removed.update(
                doc
                for (doc,) in tx.execute(
                    f"DELETE FROM fingerprints WHERE hash IN ({_marks(chunk)})"
                    " AND doc IN (SELECT id FROM documents WHERE scheme IS NULL) RETURNING doc",
                    chunk,
                )
            )
        tx.executemany(
            "UPDATE documents SET fingerprints = fingerprints - ? WHERE id = ?", [(n, d) for d, n in removed.items()]
        )
        tx.execute("UPDATE documents SET scheme = ? WHERE scheme IS NULL", (STRIPPED_SCHEME,))
    logger.info("lineage fingerprints upgraded removed={} documents={}", sum(removed.values()), len(removed))


def _forget_documents(conn) -> None:
    """Drop the fingerprints of content neither in the folders nor in the history any more."""
    gone = [
        doc
        for (doc,) in conn.execute(
            "DELETE FROM documents WHERE sha256 NOT IN (SELECT sha256 FROM files)"
            " AND sha256 NOT IN (SELECT sha256 FROM history) RETURNING id"
        )
    ]
    for chunk in _chunks(gone, QUERY_CHUNK):
        conn.execute(f"DELETE FROM fingerprints WHERE doc IN ({','.join('?' * len(chunk))})", chunk)
    conn.execute(
        "DELETE FROM sketches WHERE sha256 NOT IN (SELECT sha256 FROM files) AND sha256 NOT IN (SELECT sha256 FROM history)"
    )


class _Lines(NamedTuple):
    """The part of the matches that are whole lines (winnow.is_anchor)."""

    matched: Counter[int]
    weight: dict[int, float]


def _matches(conn, hashes: list[int], cap: int) -> tuple[Counter[int], dict[int, float], list[int], _Lines]:
    """(fingerprints matched per document, their weight per document, boilerplate hashes, the
    lines' part of the first two), boilerplate left out of the first two. A matched fingerprint weighs 1 / the number of current
    documents holding it (1 when only versions kept in the history hold it): the edited versions
    of one document in the history do not make its own text look common.

    One query per hash reads at most cap + 1 of its rows (each with whether its content is
    current, through the files' sha256 index); a hash with more is counted again over current
    documents only, also up to the cap. So a lookup costs about the query's fingerprints times
    min(their document frequency, cap), however large the index and its boilerplate."""
    matched: Counter[int] = Counter()
    weight: dict[int, float] = {}
    common: list[int] = []
    lines = _Lines(Counter(), {})
    for h in _present(conn, hashes):
        rows = conn.execute(_HOLDERS + " LIMIT ?", (h, cap + 1)).fetchall()
        if len(rows) > cap:
            if _in_current(conn, h, cap + 1) > cap:
                common.append(h)
                continue
            rows = conn.execute(_HOLDERS, (h,)).fetchall()  # many versions in the history, few current
        w = 1.0 / max(1, sum(current for _, current in rows))
        for doc, _ in rows:
            matched[doc] += 1
            weight[doc] = weight.get(doc, 0.0) + w
            if winnow.is_anchor(h):
                lines.matched[doc] += 1
                lines.weight[doc] = lines.weight.get(doc, 0.0) + w
    return matched, weight, common, lines


def _present(conn, hashes: list[int]) -> list[int]:
    """The hashes some document holds, QUERY_CHUNK per query (each stops at its first row): most
    of an egress document's fingerprints are in no document, and a query each costs the most."""
    found = []
    for c in _chunks(hashes, QUERY_CHUNK):
        found += [
            h
            for (h,) in conn.execute(
                f"WITH q(h) AS (VALUES {','.join(['(?)'] * len(c))})"
                " SELECT h FROM q WHERE EXISTS (SELECT 1 FROM fingerprints WHERE hash = q.h)",
                c,
            )
        ]
    return found


_HOLDERS = (  # the documents holding a hash, each with whether its content is in the folders now
    "SELECT f.doc, EXISTS (SELECT 1 FROM files WHERE files.sha256 = d.sha256)"
    " FROM fingerprints f JOIN documents d ON d.id = f.doc WHERE f.hash = ?"
)


def _in_current(conn, hash_: int, limit: int) -> int:
    """In how many current documents (content in the folders now) the hash is, counted to limit."""
    return conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM fingerprints f JOIN documents d ON d.id = f.doc"
        " WHERE f.hash = ? AND d.sha256 IN (SELECT sha256 FROM files) LIMIT ?)",
        (hash_, limit),
    ).fetchone()[0]


def _held(conn, doc: int, hashes: list[int]) -> int:
    """How many of these hashes the document holds."""
    return sum(
        conn.execute(
            f"SELECT count(*) FROM fingerprints WHERE doc = ? AND hash IN ({_marks(c)})", (doc, *c)
        ).fetchone()[0]
        for c in _chunks(hashes, QUERY_CHUNK)
    )


def _marks(values: list) -> str:
    return ",".join("?" * len(values))


class _Stat(NamedTuple):
    """What a refresh compares of a file's stat. A whole os.stat_result is about three times the
    size: held for 100,000 files at once, it pushed the idle agent's resident memory over 80 MB."""

    st_size: int
    st_mtime_ns: int
    st_ino: int
    st_ctime_ns: int


def _walk_folders(root: str, unwalkable: list[Unwalkable]) -> Iterator[tuple[str, list[tuple[bytes, _Stat]]]]:
    """Every folder under root (symlinks are not followed) with its regular files: (raw path, stat).

    agent/walk.py walks by directory descriptor, so a tree deeper than PATH_MAX is indexed too,
    with the type from the directory listing and one lstat per file. A folder that cannot be
    walked is logged and added to `unwalkable`, with its reason."""
    seen = len(unwalkable)
    for folder in walk(root, unwalkable):
        yield (
            os.fsdecode(folder.path),
            [
                (f.path, _Stat(f.stat.st_size, f.stat.st_mtime_ns, f.stat.st_ino, f.stat.st_ctime_ns))
                for f in folder.files
            ],
        )
    for problem in unwalkable[seen:]:
        logger.warning("cannot walk folder path={!r} error={!r}", problem.display, problem.reason)


# a root or folder that is not there (any more) is gone, not unseen: its rows go, as its files did
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR})


class _Hashing:
    """A refresh's new and changed files, hashed (and fingerprinted) and stored as the walk finds
    them, COMMIT_EVERY at a time: a build holds one batch, not the whole tree's list. Progress is
    (bytes hashed, bytes found so far): the total grows while the walk goes on.

    With helper processes (a batch of POOL_MIN_FILES or more, more than one core), a full batch
    is handed to them and the walk goes on while they hash it; its rows are stored when the next
    batch is handed over, or at the end: two batches at most are held."""

    def __init__(self, index: FingerprintIndex, progress: Callable[[int, int], None] | None):
        self.index, self.progress = index, progress
        self.pending: list[tuple] = []
        self.had_row: set[bytes] = set()  # pending files that had a row (an edit: the old content is remembered)
        self.claimed: set[int] = set()  # text fingerprinted in this refresh (each once), by 64 bits of its SHA-256
        self.count = self.errors = self.done_bytes = self.total_bytes = 0
        self.pool: HashPool | None = None
        self.started = False  # whether a pool was asked for (once a refresh)
        self.in_flight: tuple[list, list[bytes], Iterator] | None = None  # a batch the helpers hash
        self.writer = _Bulk(index.db)

    def add(self, items: list[tuple], had_row: bool) -> None:
        if not items:
            return
        self.pending += items
        if had_row:
            self.had_row.update(raw for raw, _, _ in items)
        self.count += len(items)
        self.total_bytes += sum(st.st_size for _, st, _ in items)
        if self.progress:
            self.progress(self.done_bytes, self.total_bytes)
        if len(self.pending) >= COMMIT_EVERY:
            self._run()

    def finish(self) -> None:
        self._run()
        self._drain()
        self.writer.commit()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        self.writer.end()  # the batches written before a failure stay, as each was whole

    def _run(self) -> None:
        todo, self.pending = self.pending, []
        indexed = [raw for raw, _, _ in todo if raw in self.had_row]
        self.had_row.clear()
        if len(todo) >= POOL_MIN_FILES and not self.started:
            self.started = True
            self.pool = self.index._pool()
        if self.pool is None or not todo:
            self._store(todo, indexed, self.index._hashed(todo, self.claimed, pause=self.writer.commit))
            return
        digests = self.pool.digests([os.fsdecode(raw) for raw, _, _ in todo], self.index._head_bytes())
        self._drain()  # the batch before, hashed meanwhile
        self.in_flight = (todo, indexed, digests)

    def _drain(self) -> None:
        if self.in_flight is not None:
            todo, indexed, digests = self.in_flight
            self.in_flight = None
            self._store(todo, indexed, self.index._hashed(todo, self.claimed, digests, pause=self.writer.commit))

    def _store(self, todo: list, indexed: list[bytes], hashed: Iterator[list]) -> None:
        entries: list[tuple] = []
        texts: dict[str, frozenset[int]] = {}
        sketches: dict[str, bytes] = {}
        for done in hashed:
            for raw, st, result in done:
                self.done_bytes += st.st_size
                if isinstance(result, OSError):
                    self.errors += 1
                    logger.warning("cannot index file path={!r} error={!r}", os.fsdecode(raw), result.strerror)
                    continue
                row, hashes, sketch = result
                entries.append(row)
                if hashes is not None:
                    texts[row[4]] = hashes
                if sketch is not None:
                    sketches[row[4]] = sketch
            if self.progress:
                self.progress(self.done_bytes, self.total_bytes)
            self.writer.commit_if_due()  # not held open while the helpers hash on
        if entries or texts:
            self.index._store(entries, texts, indexed, self.writer, sketches)


class _Bulk:
    """One write transaction over several of a refresh's batches (BULK_ROWS, BULK_S), each batch
    in a savepoint: a batch that fails leaves nothing, the batches before it are committed.

    A crash loses at most the uncommitted batches (about BULK_S of work): their files have no row
    or their old one, so the next refresh hashes them again. Every commit is an fsync
    (synchronous=FULL, agent/db.py), so what was committed survives a power loss."""

    def __init__(self, db: StateDB) -> None:
        self.db = db
        self.open = False
        self.rows = 0
        self.since = 0.0

    @contextmanager
    def batch(self, rows: int = 0) -> Iterator:
        conn = self.db.conn()
        if not self.open:
            conn.execute("BEGIN IMMEDIATE")
            self.open, self.since = True, time.monotonic()
        conn.execute("SAVEPOINT batch")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
            raise
        conn.execute("RELEASE batch")
        self.rows += rows
        self.commit_if_due()

    def commit_if_due(self) -> None:
        if self.open and (self.rows >= BULK_ROWS or time.monotonic() - self.since >= BULK_S):
            self.commit()

    def commit(self) -> None:
        if self.open:
            self.open, self.rows = False, 0
            self.db.conn().execute("COMMIT")

    def end(self) -> None:
        """Commit what was written, after a failure too; roll back when even that fails."""
        try:
            self.commit()
        except sqlite3.Error:
            self.db.conn().execute("ROLLBACK")


def _rows_in(conn, raw_dir: bytes) -> list[tuple]:
    """The rows of the files directly in a directory: a range of the path key, deeper ones left out."""
    prefix = raw_dir if raw_dir.endswith(b"/") else raw_dir + b"/"
    return conn.execute(
        "SELECT path, size, mtime_ns, inode, ctime_ns, level, entry FROM files"
        " WHERE path > ? AND path < ? AND instr(substr(path, ?), x'2f') = 0",
        (prefix, prefix[:-1] + b"0", len(prefix) + 1),  # "0" follows "/": the end of the directory's range
    ).fetchall()


def _outside(conn, walked: set[bytes]) -> list[bytes]:
    """Indexed paths whose directory the walk did not list, streamed (not the whole table at once)."""
    return [path for (path,) in conn.execute("SELECT path FROM files") if os.path.dirname(path) not in walked]


def _seen_gone(missing: Iterable[bytes], unwalkable: list[Unwalkable]) -> list[bytes]:
    """The indexed paths not found, except those under a folder that could not be walked: the
    walk did not see them, which does not make them gone (dropping them would lose their trace)."""
    unseen = [p.path.rstrip(b"/") for p in unwalkable if p.errno not in _ABSENT]
    if not unseen:
        return list(missing)
    return [path for path in missing if not any(is_under_raw(path, folder) for folder in unseen)]


def is_under_raw(path: bytes, folder: bytes) -> bool:
    return path == folder or path.startswith(folder + b"/")


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _row_unchanged(row: tuple, st: _Stat) -> bool:
    """_unchanged on a raw (path, size, mtime_ns, inode, ctime_ns, ...) row, without building an IndexedFile."""
    same = (row[1], loaded_int(row[2]), loaded_int(row[3])) == (st.st_size, st.st_mtime_ns, st.st_ino)
    return same and loaded_int(row[4]) in (None, st.st_ctime_ns)


def _unchanged(known: IndexedFile, st: os.stat_result) -> bool:
    """Size, mtime, inode and ctime as indexed (a row of an older agent has no ctime to compare:
    the refresh fills it in)."""
    same = (known.size, known.mtime_ns, known.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)
    return same and known.ctime_ns in (None, st.st_ctime_ns)


def _ctime_after_rename(path: str, row: IndexedFile) -> int | None:
    """A rename changes the renamed file's ctime (ext4, tmpfs...): take the new one when the
    file is the one indexed, so a rename does not cost a re-read."""
    try:
        st = lstat(path)
    except OSError:
        return row.ctime_ns
    same = (st.st_size, st.st_mtime_ns, st.st_ino) == (row.size, row.mtime_ns, row.inode)
    return st.st_ctime_ns if same else row.ctime_ns


def _upsert(conn, e: IndexedFile) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, sha256, level, entry, indexed_at, ctime_ns)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            os.fsencode(e.path), e.size, stored_int(e.mtime_ns), stored_int(e.inode), e.sha256, e.level, e.entry, time.time(),
            stored_int(e.ctime_ns),
        ),  # fmt: skip
    )


def _remember(conn, rows: Iterable[IndexedFile], state: str) -> None:
    """Keep the content of rows leaving the index traceable (empty files never match: not kept)."""
    now = time.time()
    conn.executemany(
        "INSERT OR REPLACE INTO history (sha256, path, level, entry, size, removed_at, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(r.sha256, os.fsencode(r.path), r.level, r.entry, r.size, now, state) for r in rows if r.size > 0],
    )


def _row_to_file(row) -> IndexedFile:
    path, size, mtime_ns, inode, sha256, level, entry, ctime_ns = row[:8]
    return IndexedFile(os.fsdecode(bytes(path)), size, loaded_int(mtime_ns), loaded_int(inode), sha256, level, entry, loaded_int(ctime_ns))


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
