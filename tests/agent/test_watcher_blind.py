"""What a watch cannot see is reported (on_blind), never only logged or skipped in silence.

Before: a folder that could not be watched was only logged; a subdirectory deeper than PATH_MAX
and a directory created past it were skipped by watchdog without a word; running out of inotify
watches on a running observer was a watchdog log record.
"""

from __future__ import annotations

import logging
import os
import queue
import time

import pytest

from agent.walk import PATH_MAX
from agent.watcher import TOO_DEEP, BlindSpot, Watchers, blind_spots
from tests.agent.test_walk import LEVEL, deep_tree, remove_tree


@pytest.fixture
def tree(tmp_path):
    yield tmp_path
    remove_tree(tmp_path)


@pytest.fixture
def watching():
    spots: list[BlindSpot] = []
    changes: queue.Queue = queue.Queue()
    watchers = Watchers(changes, lambda reason: None, spots.append)
    watchers.start()
    yield watchers, changes, spots
    watchers.stop()


def _topmost_too_deep(bottom: bytes) -> bytes:
    path = bottom.rpartition(b"/")[0]
    while len(path.rpartition(b"/")[0]) >= PATH_MAX:
        path = path.rpartition(b"/")[0]
    return path


def test_a_subtree_deeper_than_path_max_is_reported_when_the_watch_is_added(tree, watching):
    watchers, changes, spots = watching
    bottom = deep_tree(tree, 60)  # 6,000 bytes deep

    assert watchers.watch(str(tree))

    assert spots == [BlindSpot(os.fsdecode(_topmost_too_deep(bottom)), TOO_DEEP)]
    shallow = tree / "shallow.txt"
    shallow.write_text("still watched")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if changes.get(timeout=3).path == str(shallow):
            break
    else:
        pytest.fail("the rest of the tree is not watched")


def test_a_directory_created_past_path_max_is_reported_as_it_comes(tree, watching):
    watchers, _changes, spots = watching
    levels = (PATH_MAX - len(os.fsencode(tree)) - 20) // (len(LEVEL) + 1)
    bottom = deep_tree(tree, levels)
    assert watchers.watch(str(tree))
    assert spots == []

    fd = os.open(bottom.rpartition(b"/")[0], os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.mkdir(LEVEL, dir_fd=fd)
    finally:
        os.close(fd)

    created = bottom.rpartition(b"/")[0] + b"/" + LEVEL
    deadline = time.monotonic() + 3
    while not spots and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spots == [BlindSpot(os.fsdecode(created), TOO_DEEP)]


def test_a_folder_that_cannot_be_watched_at_all_is_reported_with_its_reason(tmp_path, watching):
    watchers, _changes, spots = watching
    assert not watchers.watch(str(tmp_path / "gone"))
    assert spots == [BlindSpot(str(tmp_path / "gone"), "No such file or directory")]


def test_watches_running_out_on_a_running_observer_are_reported(watching):
    _watchers, _changes, spots = watching
    # what watchdog's inotify emitter logs when inotify_add_watch fails with ENOSPC while running
    logging.getLogger("watchdog.observers.inotify").warning(
        "Unable to watch %r: %s", b"/media/usb/new\xff", OSError(28, "inotify watch limit reached")
    )
    assert spots == [BlindSpot(os.fsdecode(b"/media/usb/new\xff"), "inotify watch limit reached")]


def test_blind_spots_of_an_ordinary_tree_are_none(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.txt").write_text("x")
    assert blind_spots(str(tmp_path)) == []
