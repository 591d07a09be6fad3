"""The pipeline asks the index once per step which of its results' digests it holds
(index.known_sha256) and looks up only those (pipeline.FAST_LOOKUP); each result looked up alone
is the reference. Both must report the same lineage: a copy of a classified file, of an earlier
version or of a deleted one (the history), and nothing for the rest."""

from __future__ import annotations

import hashlib
import json
import os
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from agent import index as index_module
from agent import pipeline as module
from agent.config import ClassifiedFolder
from agent.index import FingerprintIndex
from agent.pipeline import Pipeline
from agent.places import EgressPlace, EgressPlaces
from agent.spool import Spool
from rules.events import Event

DIGESTS = [hashlib.sha256(bytes([i])).hexdigest() for i in range(12)]
ROWS = st.lists(
    st.tuples(st.sampled_from(["files", "history"]), st.sampled_from(DIGESTS), st.integers(0, 5)), max_size=25
)
ASKED = st.lists(st.sampled_from(DIGESTS + ["", "0" * 64, DIGESTS[0].upper()]), max_size=40)


def _filled(path: str, rows) -> FingerprintIndex:
    index = FingerprintIndex(path, (), fingerprint=None)
    with index.db.transaction() as conn:
        conn.execute("DELETE FROM files")
        conn.execute("DELETE FROM history")
        for table, sha256, n in rows:
            name = f"/c/{n}-{sha256[:6]}".encode()
            if table == "files":
                conn.execute(
                    "INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, sha256, level, entry, indexed_at, ctime_ns)"
                    " VALUES (?, 1, 1, 1, ?, 'core', '', ?, 1)",
                    (name, sha256, float(n)),
                )
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO history (sha256, path, level, entry, size, removed_at, state)"
                    " VALUES (?, ?, 'core', '', 1, ?, 'deleted')",
                    (sha256, name, float(n)),
                )
    return index


@settings(max_examples=150, deadline=None)
@given(rows=ROWS, asked=ASKED, chunk=st.integers(1, 5))
def test_known_sha256_holds_what_lookup_sha256_finds(tmp_path_factory, rows, asked, chunk):
    index = _filled(str(tmp_path_factory.mktemp("ix") / "index.db"), rows)
    index_module.KNOWN_CHUNK, kept = chunk, index_module.KNOWN_CHUNK  # several queries, as a large step makes
    try:
        assert index.known_sha256(asked) == {s for s in asked if index.lookup_sha256(s) is not None}
    finally:
        index_module.KNOWN_CHUNK = kept
        index.close()


def _rig(root, classified: str, usb: str):
    index = FingerprintIndex(str(root / "index.db"), (ClassifiedFolder(classified, "core", "Drawings"),))
    spool = Spool(str(root / "spool.db"))
    places = EgressPlaces()
    places.add(EgressPlace(usb, "folder"))
    return index, spool, Pipeline(index, spool, places, lambda t, **f: Event(type=t, **f), lambda e: e)


def _report(pipeline: Pipeline, paths: list[str]) -> None:
    """What the pipeline thread does for these closed writes, until every one is reported."""
    pipeline.lanes.start()
    try:
        for path in paths:
            pipeline._pend_egress(path, pipeline.places.find(path), closed=True, wrote=True)
        pipeline._check_egress()  # every file to the lanes (fewer than their slots)
        deadline = time.monotonic() + 20
        while pipeline.lanes.results.qsize() < len(pipeline.lanes.in_flight):  # all hashed: one step takes them all
            assert time.monotonic() < deadline, "the lanes did not finish"
            time.sleep(0.01)
        pipeline._take_results()
        assert not pipeline._egress and not pipeline.lanes.in_flight and not pipeline._results
        pipeline._outbox.flush()
    finally:
        pipeline.lanes.stop()


def _events(spool: Spool) -> dict[str, dict]:
    out = {}
    for spooled in spool.peek(100_000, max_bytes=1 << 40):
        event = json.loads(spooled.body)
        for key in ("id", "ts", "seq", "prev_hash"):
            event.pop(key)
        out[event["path"]] = event
    return out


def test_a_burst_reports_the_same_lineage_with_the_batched_lookup_and_without(tmp_path, monkeypatch):
    classified, usb = tmp_path / "classified", tmp_path / "usb"
    classified.mkdir()
    usb.mkdir()
    versions = {
        name: [os.urandom(3000 + 97 * i) for i in range(2)] for i, name in enumerate(["a.dwg", "b.dwg", "c.dwg"])
    }
    for name, (first, _) in versions.items():
        (classified / name).write_bytes(first)
    (tmp_path / "setup").mkdir()
    index = FingerprintIndex(
        str(tmp_path / "setup" / "index.db"), (ClassifiedFolder(str(classified), "core", "Drawings"),)
    )
    index.refresh()
    (classified / "a.dwg").write_bytes(versions["a.dwg"][1])  # a's first version: the history's now
    index.update_file(str(classified / "a.dwg"), force=True)
    index.remove_tree(str(classified / "c.dwg"))  # c deleted: in the history
    (classified / "c.dwg").unlink()
    index.close()
    copies = {
        "current-b.bin": versions["b.dwg"][0],
        "current-a.bin": versions["a.dwg"][1],
        "earlier-a.bin": versions["a.dwg"][0],
        "deleted-c.bin": versions["c.dwg"][0],
        "empty.bin": b"",
        **{f"other-{i}.bin": os.urandom(500 + i) for i in range(12)},
    }
    for name, data in copies.items():
        (usb / name).write_bytes(data)
    paths = [str(usb / name) for name in copies]
    reported = {}
    for fast in (True, False):
        monkeypatch.setattr(module, "FAST_LOOKUP", fast)
        (tmp_path / str(fast)).mkdir()
        for suffix in ("", "-wal", "-shm"):  # the same index for both, as the setup left it
            if (tmp_path / "setup" / f"index.db{suffix}").exists():
                (tmp_path / str(fast) / f"index.db{suffix}").write_bytes(
                    (tmp_path / "setup" / f"index.db{suffix}").read_bytes()
                )
        index, spool, pipeline = _rig(tmp_path / str(fast), str(classified), str(usb))
        looked_up: list[str] = []
        index.lookup_sha256 = lambda sha256, seen=looked_up, lookup=index.lookup_sha256: (
            seen.append(sha256) or lookup(sha256)
        )
        try:
            _report(pipeline, paths)
            reported[fast] = _events(spool)
            # the batched way looks up only the four copies the index holds; the reference every file with content
            assert len(looked_up) == (4 if fast else len(copies) - 1)
        finally:
            pipeline.inspector.close()
            index.close()
            spool.close()
    assert reported[True] == reported[False]
    assert len(reported[True]) == len(copies)
    found = {os.path.basename(p): (e.get("match") or {}).get("method") for p, e in reported[True].items()}
    assert {k for k, v in found.items() if v} == {"current-b.bin", "current-a.bin", "earlier-a.bin", "deleted-c.bin"}
    assert reported[True][str(usb / "earlier-a.bin")]["details"]["source_state"] == "previous-version"
    assert reported[True][str(usb / "deleted-c.bin")]["details"]["source_state"] == "deleted"
