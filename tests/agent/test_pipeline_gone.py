"""Changes still queued when their egress place goes (a stick unmounted, a folder no longer
watched): what was written there before is said, never dropped (places.find_gone)."""

from __future__ import annotations

import hashlib
import time

import pytest

from agent import places as places_module
from agent.places import EgressPlace, EgressPlaces
from agent.watcher import FsChange
from rules.events import Media

from .test_pipeline import Rig


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path, watch=False)  # the test queues the changes itself
    yield r
    r.close()


def _stick(rig) -> EgressPlace:
    rig.places.remove(str(rig.usb))
    stick = EgressPlace(str(rig.usb), "removable", Media(str(rig.usb), label="KINGSTON"))
    rig.places.add(stick)
    return stick


def _copy(path: str, wrote: bool = True) -> list[FsChange]:
    """The changes a copy makes, received now (before the place goes)."""
    return [FsChange(kind, path) for kind in (["created", "modified", "closed"] if wrote else ["created", "closed"])]


def _queue(rig, changes: list[FsChange]) -> None:
    """Hand the pipeline changes received earlier (they waited behind a flood)."""
    for change in changes:
        rig.pipeline.changes.put(change)


def _settled(rig, seconds: float = 0.6) -> list[dict]:
    time.sleep(seconds)
    return rig.events("egress.file")


def test_a_write_queued_when_the_stick_went_is_reported_vanished_with_its_medium(rig):
    _stick(rig)
    queued = _copy(str(rig.usb / "drawing.dwg"))
    rig.places.remove(str(rig.usb))  # unmounted: its files are not there any more
    _queue(rig, queued)
    [event] = rig.wait_events("egress.file", 1)
    assert event["path"] == str(rig.usb / "drawing.dwg")
    assert event["egress"] == "removable" and event["media"]["label"] == "KINGSTON"
    assert [(d["detector"], d["sample"]) for d in event["detections"]] == [
        ("vanished", "its medium was removed before it could be read")
    ]


def test_an_empty_file_queued_when_the_stick_went_is_not_reported(rig):
    """cp makes an empty file's create and close with no write: it held nothing to say."""
    _stick(rig)
    queued = [c for i in range(20) for c in _copy(str(rig.usb / f"empty-{i}"), wrote=False)]
    queued += _copy(str(rig.usb / "drawing.dwg"))
    rig.places.remove(str(rig.usb))
    _queue(rig, queued)
    [event] = rig.wait_events("egress.file", 1)
    assert event["path"] == str(rig.usb / "drawing.dwg")
    assert len(_settled(rig)) == 1


def test_a_file_moved_in_before_the_stick_went_is_reported_vanished(rig):
    _stick(rig)
    queued = [FsChange("moved", str(rig.usb / ".drawing.tmp"), dest=str(rig.usb / "drawing.dwg"))]
    rig.places.remove(str(rig.usb))
    _queue(rig, queued)
    [event] = rig.wait_events("egress.file", 1)
    assert event["path"] == str(rig.usb / "drawing.dwg")
    assert event["detections"][0]["detector"] == "vanished"


def test_a_file_written_to_a_folder_no_longer_watched_is_still_hashed(rig):
    """A folder place removed by policy keeps its files: one written there while it was watched
    is read and reported as any other, not said vanished."""
    path = rig.usb / "report.docx"
    path.write_bytes(b"quarterly report " * 100)
    queued = _copy(str(path))
    rig.places.remove(str(rig.usb))
    _queue(rig, queued)
    [event] = rig.wait_events("egress.file", 1)
    assert event["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert event["egress"] == "folder" and not event.get("detections")


def test_a_place_removed_long_ago_takes_no_changes(rig, monkeypatch):
    monkeypatch.setattr(places_module, "GONE_KEEP_S", 0.0)
    _stick(rig)
    queued = _copy(str(rig.usb / "drawing.dwg"))
    rig.places.remove(str(rig.usb))
    time.sleep(0.01)
    _queue(rig, queued)
    assert _settled(rig) == []


def test_a_change_received_after_the_place_went_is_not_its(rig):
    """Only changes made while the place was there are its: one received after the removal, not
    drained from the kernel's queue, came from some other watch."""
    _stick(rig)
    rig.places.remove(str(rig.usb))
    _queue(rig, _copy(str(rig.usb / "drawing.dwg")))
    assert _settled(rig) == []


def test_a_drained_change_belongs_to_the_stick_it_was_made_on_not_to_one_mounted_there_since(rig):
    """Stick LEAK unmounted with the copy still queued, stick DECOY mounted at the same path with a
    harmless file of that name: the copy is said vanished with LEAK, and DECOY's file is not read
    in its place."""
    leak = _stick(rig)
    rig.places.remove(str(rig.usb))
    decoy = EgressPlace(str(rig.usb), "removable", Media(str(rig.usb), label="DECOY"))
    rig.places.add(decoy)
    (rig.usb / "drawing.dwg").write_bytes(b"holiday photo")
    _queue(rig, [FsChange(c.kind, c.path, drained=True) for c in _copy(str(rig.usb / "drawing.dwg"))])
    [event] = rig.wait_events("egress.file", 1)
    assert event["media"]["label"] == leak.media.label and event["detections"][0]["detector"] == "vanished"
    assert not event.get("sha256")
    assert len(_settled(rig)) == 1


def test_a_folder_made_on_the_stick_before_it_went_is_said(rig):
    _stick(rig)
    queued = [FsChange("created", str(rig.usb / "plans"), is_dir=True)]
    rig.places.remove(str(rig.usb))
    _queue(rig, queued)
    [event] = rig.wait_events("egress.file", 1)
    assert event["path"] == str(rig.usb / "plans") and event["detections"][0]["detector"] == "vanished"
    assert "folder" in event["detections"][0]["sample"]


def test_a_file_linked_in_whole_before_the_stick_went_is_said(rig):
    """linkat of an O_TMPFILE makes a create and no close: it may hold anything."""
    _stick(rig)
    queued = [FsChange("created", str(rig.usb / "drawing.dwg"))]
    rig.places.remove(str(rig.usb))
    _queue(rig, queued)
    [event] = rig.wait_events("egress.file", 1)
    assert event["path"] == str(rig.usb / "drawing.dwg")


def test_find_gone_gives_the_most_specific_recent_place_and_forgets_one_added_again(monkeypatch):
    places = EgressPlaces()
    outer, inner = EgressPlace("/media/u", "removable"), EgressPlace("/media/u/sync", "sync")
    places.add(outer)
    places.add(inner)
    assert places.find_gone("/media/u/sync/a") is None  # nothing removed yet
    places.remove("/media/u/sync")
    places.remove("/media/u")
    assert places.find_gone("/media/u/sync/a") == inner
    assert places.find_gone("/media/u/b") == outer
    assert places.find_gone("/media/other/b") is None
    places.add(outer)
    assert places.find("/media/u/b") == outer and places.is_current(outer)  # the same stick mounted again
    assert not places.is_current(inner)
    assert places.find_gone("/media/u/b", at=places.removed_at + 1) is None  # received after: not a gone place's
    assert places.find_gone("/media/u/b", at=places.removed_at + 1, drained=True) == outer


def test_find_gone_keeps_the_newest_places_only(monkeypatch):
    monkeypatch.setattr(places_module, "GONE_KEPT", 3)
    places = EgressPlaces()
    for i in range(5):
        places.add(EgressPlace(f"/media/s{i}", "removable"))
        places.remove(f"/media/s{i}")
    assert [places.find_gone(f"/media/s{i}/f") is not None for i in range(5)] == [False, False, True, True, True]
