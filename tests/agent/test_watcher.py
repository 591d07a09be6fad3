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
