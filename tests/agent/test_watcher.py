"""Watching folders with real inotify watches: every change arrives, and arrives once."""

from __future__ import annotations

import queue
import time

import pytest

from agent.watcher import Watchers


def _changes_for(changes: queue.Queue, path: str, settle_s: float = 0.6) -> list[str]:
    time.sleep(settle_s)
    seen = []
    while True:
        try:
            change = changes.get_nowait()
        except queue.Empty:
            return seen
        if change.path == path:
            seen.append(change.kind)


@pytest.fixture
def nested(tmp_path):
    outer = tmp_path / "drawings"
    inner = outer / "formulas"
    inner.mkdir(parents=True)
    return str(outer), str(inner)


@pytest.mark.parametrize("order", ["outer first", "inner first"])
def test_a_folder_inside_a_watched_folder_sends_each_change_once(nested, order):
    outer, inner = nested
    changes: queue.Queue = queue.Queue()
    watchers = Watchers(changes, lambda reason: None)
    watchers.start()
    try:
        for folder in ([outer, inner] if order == "outer first" else [inner, outer]):
            assert watchers.watch(folder)
        path = f"{inner}/coating.txt"
        with open(path, "wb") as f:
            f.write(b"formula")
        assert _changes_for(changes, path).count("closed") == 1
        assert watchers.watched() == [outer]
    finally:
        watchers.stop()


def test_the_inner_folder_is_watched_on_its_own_again_when_the_outer_one_goes(nested):
    outer, inner = nested
    changes: queue.Queue = queue.Queue()
    watchers = Watchers(changes, lambda reason: None)
    watchers.start()
    try:
        watchers.watch(outer)
        watchers.watch(inner)
        watchers.unwatch(outer)
        assert watchers.watched() == [inner]
        path = f"{inner}/coating.txt"
        with open(path, "wb") as f:
            f.write(b"formula")
        assert _changes_for(changes, path).count("closed") == 1
        watchers.unwatch(inner)
        assert watchers.watched() == []
    finally:
        watchers.stop()


def test_the_pipelines_queue_is_bounded_and_a_full_one_is_an_overflow(tmp_path, monkeypatch):
    """The pipeline's changes queue (a SimpleQueue, for speed) still refuses more than QUEUE_MAX
    changes, and the watchers report that as lost events (the pipeline then rescans)."""
    import agent.pipeline
    from agent.pipeline import _Changes

    monkeypatch.setattr(agent.pipeline, "QUEUE_MAX", 3)
    changes = _Changes()
    lost: list[str] = []
    watchers = Watchers(changes, lost.append)
    watchers.start()
    try:
        watchers.watch(str(tmp_path))
        for i in range(5):
            (tmp_path / f"{i}.bin").write_bytes(b"x")
        deadline = time.monotonic() + 5
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watchers.stop()
    assert changes.qsize() == 3
    assert lost and set(lost) == {"agent queue full"}
