"""Changes still in the kernel's queue when their folder is unwatched (a stick unmounted or a
place removed while the reader is behind a flood) are read, not dropped: they were made while
the folder was watched (InotifyWatchers._drained)."""

from __future__ import annotations

import os
import queue

from agent import inotify
from agent.inotify import InotifyWatchers


def _read_all(w: InotifyWatchers) -> None:
    while True:
        try:
            w.process(os.read(w.fd, 1 << 16))
        except BlockingIOError:
            return


def _changes(q: queue.SimpleQueue) -> list[tuple]:
    out = []
    while not q.empty():
        c = q.get_nowait()
        if c.kind == inotify.DRAIN_END:  # the end of the folder's drain: after every change drained
            assert q.empty(), "changes after the drain's end"
            continue
        assert c.drained, c  # each marked: it belongs to the place that went (places.find_gone)
        out.append((c.kind, os.path.basename(c.path), c.dest and os.path.basename(c.dest)))
    return out


def test_writes_queued_before_an_unwatch_are_read_after_it(tmp_path):
    root = tmp_path / "stick"
    (root / "sub").mkdir(parents=True)
    changes: queue.SimpleQueue = queue.SimpleQueue()
    w = InotifyWatchers(changes, lambda reason: None)  # no reader thread: the test reads
    try:
        assert w.watch(str(root))
        (root / "drawing.dwg").write_bytes(b"drawing")
        (root / "sub" / "deep.dwg").write_bytes(b"deep")
        (root / "tmp.part").write_bytes(b"part")
        os.rename(root / "tmp.part", root / "final.dwg")
        (root / "newdir").mkdir()
        w.unwatch(str(root))  # the reader is behind: all of the above is still queued
        (root / "after.dwg").write_bytes(b"not watched any more")
        _read_all(w)
        got = _changes(changes)
        assert ("closed", "drawing.dwg", None) in got
        assert ("closed", "deep.dwg", None) in got
        assert ("moved", "tmp.part", "final.dwg") in got
        assert ("created", "newdir", None) in got  # said as made (what went into it was not watched)
        assert not [c for c in got if c[1] == "after.dwg"]
        assert w._draining == {} and w._drained_from == {}  # each watch's IN_IGNORED ends its draining
        assert w._dirs == {}  # and the folder made there was not watched
    finally:
        w.stop()


def test_a_file_moved_in_from_outside_is_read_as_written(tmp_path):
    root, outside = tmp_path / "stick", tmp_path / "home"
    root.mkdir()
    outside.mkdir()
    (outside / "drawing.dwg").write_bytes(b"drawing")
    changes: queue.SimpleQueue = queue.SimpleQueue()
    w = InotifyWatchers(changes, lambda reason: None)
    try:
        assert w.watch(str(root))
        os.rename(outside / "drawing.dwg", root / "drawing.dwg")
        w.unwatch(str(root))
        _read_all(w)
        assert _changes(changes) == [("modified", "drawing.dwg", None), ("closed", "drawing.dwg", None)]
    finally:
        w.stop()


def test_draining_ends_after_drain_s_without_an_ignored(tmp_path, monkeypatch):
    """A watch whose IN_IGNORED never comes is not drained for ever: the next unwatch prunes it."""
    monkeypatch.setattr(inotify, "DRAIN_S", -1.0)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    w = InotifyWatchers(queue.SimpleQueue(), lambda reason: None)
    try:
        assert w.watch(str(a)) and w.watch(str(b))
        w.unwatch(str(a))
        assert len(w._draining) == 1
        w.unwatch(str(b))
        assert len(w._draining) == 1  # a's went, b's is the new one
    finally:
        w.stop()
