"""The agent's own inotify reader (agent/inotify.py): nothing a copy writes is missed, lost
events are never silent, and odd names and odd files are reported as they are."""

from __future__ import annotations

import base64
import os
import queue
import shutil
import sys
import threading
import time

import pytest

from agent import inotify
from agent.inotify import HEADER, IN_Q_OVERFLOW, InotifyWatchers
from tests.agent.test_pipeline import Rig

pytestmark = pytest.mark.skipif(not inotify.available(), reason="inotify is Linux only")


@pytest.fixture
def rig(tmp_path, monkeypatch):
    monkeypatch.delenv("MIWEI_TEST_WATCHER", raising=False)
    r = Rig(tmp_path)
    assert isinstance(r.watchers, InotifyWatchers)
    yield r
    r.close()


def _drain(changes: queue.Queue, settle_s: float = 0.4) -> list:
    time.sleep(settle_s)
    out = []
    while True:
        try:
            out.append(changes.get_nowait())
        except queue.Empty:
            return out


def _paths(changes: list) -> set[bytes]:
    return {os.fsencode(c.dest or c.path) for c in changes}


def test_a_burst_into_nested_folders_made_during_the_copy_reports_every_file_once(rig):
    """`inotifywait -r` misses files written into a folder before its watch exists; here the
    folder is watched before it is listed, and what the listing finds is reported."""
    written: list[str] = []

    def copy() -> None:
        for top in range(3):
            for sub in range(2):
                folder = rig.usb / f"batch{top}" / f"part{sub}" / "deep"
                folder.mkdir(parents=True)
                for i in range(8):
                    if i == 3:
                        time.sleep(0.4)  # the rest after the pipeline's scan of the new folder
                    path = folder / f"f{i}.bin"
                    path.write_bytes(f"{top}/{sub}/{i}".encode() * 50)
                    written.append(str(path))

    thread = threading.Thread(target=copy)
    thread.start()
    thread.join()
    events = rig.wait_events("egress.file", len(written), timeout_s=30)
    time.sleep(1.0)  # nothing more comes
    paths = [e["path"] for e in rig.events("egress.file")]
    assert sorted(paths) == sorted(written)  # each once
    assert all(e.get("sha256") for e in events)


def test_a_queue_overflow_watches_again_what_appeared_and_then_says_so():
    """The kernel dropped events (IN_Q_OVERFLOW): a folder made meanwhile is watched before
    on_overflow is called, so the pipeline's rescan and later writes there are seen."""
    import tempfile

    root = tempfile.mkdtemp()
    changes: queue.Queue = queue.Queue()
    lost: list[str] = []
    order: list[str] = []
    w = InotifyWatchers(changes, lambda reason: (lost.append(reason), order.append(f"overflow {len(w._dirs)}")))
    try:
        assert w.watch(root)
        os.makedirs(f"{root}/made/meanwhile")
        os.rmdir(f"{root}/made/meanwhile")
        os.makedirs(f"{root}/made/kept")
        with open(f"{root}/made/kept/early.bin", "wb") as f:
            f.write(b"x")
        while True:  # the kernel's events are lost (the reader never saw them)
            try:
                os.read(w.fd, 1 << 16)
            except BlockingIOError:
                break
        w.process(HEADER.pack(-1, IN_Q_OVERFLOW, 0, 0))
        assert lost == ["inotify queue overflow"]
        assert order == ["overflow 3"]  # root, made, made/kept: watched before the pipeline hears of it
        with open(f"{root}/made/kept/late.bin", "wb") as f:
            f.write(b"y")
        w.process(os.read(w.fd, 1 << 16))
        late = [c.kind for c in _drain(changes, 0) if c.path == f"{root}/made/kept/late.bin"]
        assert "closed" in late
    finally:
        w.stop()
        shutil.rmtree(root)


def test_an_overflow_drops_the_watches_of_folders_moved_away_meanwhile(tmp_path):
    root, away = tmp_path / "watched", tmp_path / "away"
    (root / "sub").mkdir(parents=True)
    away.mkdir()
    changes: queue.Queue = queue.Queue()
    w = InotifyWatchers(changes, lambda reason: None)
    try:
        assert w.watch(str(root))
        os.rename(root / "sub", away / "sub")
        while True:
            try:
                os.read(w.fd, 1 << 16)
            except BlockingIOError:
                break
        w.process(HEADER.pack(-1, IN_Q_OVERFLOW, 0, 0))
        assert sorted(w._dirs.values()) == [os.fsencode(root)]
        (away / "sub" / "outside.bin").write_bytes(b"not ours")
        try:
            w.process(os.read(w.fd, 1 << 16))
        except BlockingIOError:
            pass
        assert not [c for c in _drain(changes, 0) if "outside" in c.path]
    finally:
        w.stop()


def test_hostile_names_are_reported_byte_for_byte(rig):
    folder = os.fsencode(rig.usb) + b"/new\nfolder\xff"
    name = folder + b"/line\nbreak \xfe\xff.bin"
    os.mkdir(folder)
    with open(name, "wb") as f:
        f.write(b"payload")
    plain = os.fsencode(rig.usb) + b"/\xe6\x96\x87\xe4\xbb\xb6\x80.bin"  # a GBK-ish tail: not UTF-8
    with open(plain, "wb") as f:
        f.write(b"more")
    events = rig.wait_events("egress.file", 2)
    raw = sorted(base64.b64decode(e["path_b64"]) if e.get("path_b64") else e["path"].encode() for e in events)
    assert raw == sorted([name, plain])


def test_symlinks_and_fifos_carry_nothing_and_links_are_not_followed(rig, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.symlink(target, rig.usb / "to-folder")
    os.symlink(rig.classified / "impeller.dwg", rig.usb / "to-file.dwg")
    os.mkfifo(rig.usb / "pipe")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    os.symlink(target, incoming / "link")
    os.rename(incoming, rig.usb / "incoming")  # a folder moved in: listed, its link not followed
    (rig.usb / "real.bin").write_bytes(b"data")
    [event] = rig.wait_events("egress.file", 1)
    assert event["path"] == str(rig.usb / "real.bin")
    time.sleep(0.3)
    (target / "behind-the-link.bin").write_bytes(b"not on the stick")
    time.sleep(1.0)
    assert [e["path"] for e in rig.events("egress.file")] == [str(rig.usb / "real.bin")]
    assert not rig.events("agent.error")
    assert os.fsencode(target) not in rig.watchers._dirs.values()


def test_a_watched_folder_removed_and_recreated_is_watched_again(rig):
    (rig.usb / "first.bin").write_bytes(b"one")
    rig.wait_events("egress.file", 1)
    shutil.rmtree(rig.usb)
    time.sleep(0.3)
    rig.usb.mkdir()
    (rig.usb / "early.bin").write_bytes(b"before the watch was back")  # found by the scan of the folder
    time.sleep(inotify.REWATCH_S + 0.5)
    (rig.usb / "late.bin").write_bytes(b"after")
    events = rig.wait_events("egress.file", 3)
    assert sorted(e["path"] for e in events) == sorted(str(rig.usb / n) for n in ("first.bin", "early.bin", "late.bin"))


def test_a_folder_renamed_inside_the_place_keeps_its_watches_under_the_new_name(rig):
    (rig.usb / "a" / "b").mkdir(parents=True)
    time.sleep(0.3)
    os.rename(rig.usb / "a", rig.usb / "renamed")
    time.sleep(0.3)
    (rig.usb / "renamed" / "b" / "f.bin").write_bytes(b"data")
    [event] = rig.wait_events("egress.file", 1)
    assert event["path"] == str(rig.usb / "renamed" / "b" / "f.bin")


def test_a_folder_moved_out_is_no_longer_watched(rig, tmp_path):
    (rig.usb / "out" / "deeper").mkdir(parents=True)
    time.sleep(0.3)
    shutil.move(rig.usb / "out", tmp_path / "gone")
    time.sleep(0.3)
    (tmp_path / "gone" / "deeper" / "f.bin").write_bytes(b"not on the stick")
    (rig.usb / "here.bin").write_bytes(b"on the stick")
    [event] = rig.wait_events("egress.file", 1)
    time.sleep(0.5)
    assert [e["path"] for e in rig.events("egress.file")] == [event["path"]] == [str(rig.usb / "here.bin")]


@pytest.mark.skipif(sys.platform != "linux", reason="Linux")
def test_the_agent_uses_its_own_reader_on_linux_and_watchdog_when_asked():
    from agent.watcher import Watchers

    q: queue.Queue = queue.Queue()
    own = inotify.make_watchers(q, lambda r: None)
    fallback = inotify.make_watchers(q, lambda r: None, backend="watchdog")
    assert isinstance(own, InotifyWatchers) and isinstance(fallback, Watchers)
    own.stop()


def test_a_rename_read_in_two_halves_late_is_still_a_rename(tmp_path):
    """On a busy machine the reader may take the move's first half and not get back to the fd
    until the pairing wait is over: the second half is read before the first counts as a move out."""
    root = tmp_path / "watched"
    (root / "a").mkdir(parents=True)
    changes: queue.Queue = queue.Queue()
    w = InotifyWatchers(changes, lambda reason: None)
    try:
        assert w.watch(str(root))
        os.rename(root / "a", root / "b")
        w.process(os.read(w.fd, HEADER.size + 16))  # one record: IN_MOVED_FROM "a" (name padded to 16)
        time.sleep(inotify.MOVE_WAIT_S * 3)
        w._expire_moves()
        got = [(c.kind, c.path, c.dest) for c in _drain(changes, 0)]
        assert got == [("moved", str(root / "a"), str(root / "b"))]
    finally:
        w.stop()


def _unwatched_with_a_change_queued(tmp_path, changes) -> tuple[InotifyWatchers, list[str], str]:
    """A reader (not started) watching a folder with a nested one, a file written in each, then
    the folder unwatched before the reader read anything: what it holds is the kernel's drain."""
    held: list[str] = []
    watchers = InotifyWatchers(changes, lambda reason: None)
    watchers.on_drain = held.append
    root = tmp_path / "stick"
    (root / "inner").mkdir(parents=True)
    assert watchers.watch(str(root))
    (root / "a.bin").write_bytes(b"a")
    (root / "inner" / "b.bin").write_bytes(b"b")
    watchers.unwatch(str(root))
    return watchers, held, str(root)


def _read_all(watchers: InotifyWatchers) -> None:
    while True:
        try:
            watchers.process(os.read(watchers.fd, inotify.READ_BYTES))
        except BlockingIOError:
            return


def test_an_unwatched_folders_drain_ends_with_a_drain_end_after_its_last_change(tmp_path):
    """The pipeline keeps a removed place until its DRAIN_END (places.hold): it must come after
    every change drained from the kernel for that folder, and the hold be taken once, at the unwatch."""
    changes: queue.Queue = queue.Queue()
    watchers, held, root = _unwatched_with_a_change_queued(tmp_path, changes)
    try:
        assert held == [root]
        assert changes.empty()  # the drain has not been read yet: no end either
        _read_all(watchers)
        got = [(c.kind, c.path, c.drained) for c in _drain(changes, 0)]
        assert got[-1] == (inotify.DRAIN_END, root, False)
        drained = {os.path.basename(p) for kind, p, was in got[:-1] if was and kind == "closed"}
        assert drained == {"a.bin", "b.bin"}
        assert [k for k, _, _ in got].count(inotify.DRAIN_END) == 1  # one end for the folder's two watches
    finally:
        watchers.stop()


def test_a_folder_unwatched_with_nothing_left_to_drain_ends_at_once_and_a_full_queue_puts_the_end_later(tmp_path):
    changes: queue.Queue = queue.Queue(maxsize=1)
    held: list[str] = []
    watchers = InotifyWatchers(changes, lambda reason: None)
    watchers.on_drain = held.append
    try:
        first, second = tmp_path / "first", tmp_path / "second"
        first.mkdir(), second.mkdir()
        assert watchers.watch(str(first)) and watchers.watch(str(second))
        _read_all(watchers)
        watchers._unschedule(str(first))  # its watch already gone from the maps (as when the kernel dropped it)
        _read_all(watchers)
        assert [(c.kind, c.path) for c in _drain(changes, 0)] == [(inotify.DRAIN_END, str(first))]
        changes.put(object())  # the queue full
        watchers.unwatch(str(second))
        _read_all(watchers)
        assert changes.qsize() == 1 and held == [str(first), str(second)]
        changes.get_nowait()
        watchers._later_drain_work()  # the reader's next round
        assert [(c.kind, c.path) for c in _drain(changes, 0)] == [(inotify.DRAIN_END, str(second))]
    finally:
        watchers.stop()
