"""The inotify reader leaves out a file's create read just before its first modify
(inotify.FAST_CREATES): the pipeline must make the same of what is left as of every change.
Generated streams of records over a few names, cut into reads at random, go through the reader
both ways and each read's changes through a pipeline step: the files pending, their writers
asked for, the events and the classified files to re-index are the same."""

from __future__ import annotations

import os
import queue

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import inotify
from agent.attribution import WriterTracker
from agent.config import ClassifiedFolder
from agent.index import FingerprintIndex
from agent.inotify import HEADER, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_MODIFY, InotifyWatchers
from agent.pipeline import Pipeline
from agent.places import EgressPlace, EgressPlaces
from agent.spool import Spool
from rules.events import Event

NAMES = [b"a.bin", b"b.bin", b"gone.bin", b"c.bin"]  # gone.bin is never on disk (its lstat fails)
MASKS = [IN_CREATE, IN_MODIFY, IN_CLOSE_WRITE, IN_DELETE]
RECORDS = st.lists(st.tuples(st.integers(0, 1), st.sampled_from(NAMES), st.sampled_from(MASKS)), max_size=30)


def _record(wd: int, mask: int, name: bytes) -> bytes:
    padded = name + b"\0" * (16 - len(name))
    return HEADER.pack(wd, mask, 0, len(padded)) + padded


def _through(root, records, cuts: set[int], fast: bool) -> tuple:
    """What a pipeline holds after each read's changes were handled in its own step."""
    inotify.FAST_CREATES = fast
    usb, classified = root / "usb", root / "classified"
    changes: queue.SimpleQueue = queue.SimpleQueue()
    watchers = InotifyWatchers(changes, lambda reason: None)
    index = FingerprintIndex(str(root / f"index-{fast}.db"), (ClassifiedFolder(str(classified), "core", "D"),))
    spool = Spool(str(root / f"spool-{fast}.db"))
    places = EgressPlaces()
    places.add(EgressPlace(str(usb), "folder"))
    asked: list[tuple[str, str]] = []
    writers = WriterTracker(find=lambda paths, roots: ({}, {}))
    writers.seen = lambda path, place_root: asked.append((path, place_root))
    pipeline = Pipeline(
        index, spool, places, lambda t, **f: Event(type=t, **f), lambda e: e, writers=writers, clock=lambda: 50.0
    )
    put = 0
    try:
        assert watchers.watch(str(usb)) and watchers.watch(str(classified))
        wds = [watchers._watches[str(folder)] for folder in (usb, classified)]
        read = b""
        for i, (folder, name, mask) in enumerate(records):
            read += _record(wds[folder], mask, name)
            if i in cuts or i == len(records) - 1:
                watchers.process(read)
                read = b""
                while True:
                    try:
                        pipeline._held.append(changes.get_nowait())
                        put += 1
                    except queue.Empty:
                        break
                pipeline._handle_held()
        pending = {
            path: (p.due_at, p.closed, p.origin, p.wrote, p.unseen_write, p.seen is not None)
            for path, p in pipeline._egress.items()
        }
        events = [(e.type, e.path, e.detections) for e, _ in pipeline._outbox._entries if e is not None]
        classified_due = {path: r.forced for path, r in pipeline._classified.items()}
        return (pending, asked, events, classified_due), put
    finally:
        watchers.stop()
        pipeline.inspector.close()
        index.close()
        spool.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=RECORDS, cuts=st.sets(st.integers(0, 29), max_size=6))
def test_the_pipeline_makes_the_same_of_a_stream_without_the_creates_a_modify_follows(tmp_path_factory, records, cuts):
    root = tmp_path_factory.mktemp("creates")
    for folder in ("usb", "classified"):
        (root / folder).mkdir()
        for name in (b"a.bin", b"b.bin", b"c.bin"):
            (root / folder / os.fsdecode(name)).write_bytes(name * 10)
    kept = inotify.FAST_CREATES
    try:
        fast, fewer = _through(root, records, cuts, True)
        reference, every = _through(root, records, cuts, False)
    finally:
        inotify.FAST_CREATES = kept
    assert fast == reference
    assert fewer <= every


def test_a_copy_read_in_one_piece_puts_two_changes_not_three(tmp_path):
    """The burst's case: create, modify, close of each file in one read."""
    for folder in ("usb", "classified"):
        (tmp_path / folder).mkdir()
    records = [(0, name, mask) for name in (b"a.bin", b"b.bin") for mask in (IN_CREATE, IN_MODIFY, IN_CLOSE_WRITE)]
    kept = inotify.FAST_CREATES
    try:
        fast, fewer = _through(tmp_path, records, set(), True)
        reference, every = _through(tmp_path, records, set(), False)
    finally:
        inotify.FAST_CREATES = kept
    assert fast == reference
    assert (fewer, every) == (4, 6)
    assert len(fast[0]) == 2 and all(closed and wrote for _, closed, _, wrote, _, _ in fast[0].values())
