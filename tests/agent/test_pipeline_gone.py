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


def _queued_copy(rig, path: str, wrote: bool = True) -> None:
    kinds = ["created", "modified", "closed"] if wrote else ["created", "closed"]
    for kind in kinds:
        rig.pipeline.changes.put(FsChange(kind, path))


def _settled(rig, seconds: float = 0.6) -> list[dict]:
    time.sleep(seconds)
    return rig.events("egress.file")


def test_a_write_queued_when_the_stick_went_is_reported_vanished_with_its_medium(rig):
    _stick(rig)
    rig.places.remove(str(rig.usb))  # unmounted: its files are not there any more
    _queued_copy(rig, str(rig.usb / "drawing.dwg"))
    [event] = rig.wait_events("egress.file", 1)
    assert event["path"] == str(rig.usb / "drawing.dwg")
    assert event["egress"] == "removable" and event["media"]["label"] == "KINGSTON"
    assert [(d["detector"], d["sample"]) for d in event["detections"]] == [
        ("vanished", "its medium was removed before it could be read")
    ]


def test_an_empty_file_queued_when_the_stick_went_is_not_reported(rig):
    """cp makes an empty file's create and close with no write: it held nothing to say."""
    _stick(rig)
    rig.places.remove(str(rig.usb))
    for i in range(20):
        _queued_copy(rig, str(rig.usb / f"empty-{i}"), wrote=False)
    _queued_copy(rig, str(rig.usb / "drawing.dwg"))
    [event] = rig.wait_events("egress.file", 1)
    assert event["path"] == str(rig.usb / "drawing.dwg")
    assert len(_settled(rig)) == 1


def test_a_file_moved_in_before_the_stick_went_is_reported_vanished(rig):
    _stick(rig)
    rig.places.remove(str(rig.usb))
    rig.pipeline.changes.put(FsChange("moved", str(rig.usb / ".drawing.tmp"), dest=str(rig.usb / "drawing.dwg")))
    [event] = rig.wait_events("egress.file", 1)
    assert event["path"] == str(rig.usb / "drawing.dwg")
    assert event["detections"][0]["detector"] == "vanished"


def test_a_file_written_to_a_folder_no_longer_watched_is_still_hashed(rig):
    """A folder place removed by policy keeps its files: one written there while it was watched
    is read and reported as any other, not said vanished."""
    path = rig.usb / "report.docx"
    path.write_bytes(b"quarterly report " * 100)
    rig.places.remove(str(rig.usb))
    _queued_copy(rig, str(path))
    [event] = rig.wait_events("egress.file", 1)
    assert event["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert event["egress"] == "folder" and not event.get("detections")


def test_a_place_removed_long_ago_takes_no_changes(rig, monkeypatch):
    monkeypatch.setattr(places_module, "GONE_KEEP_S", 0.0)
    _stick(rig)
    rig.places.remove(str(rig.usb))
    time.sleep(0.01)
    _queued_copy(rig, str(rig.usb / "drawing.dwg"))
    assert _settled(rig) == []


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
    assert places.find("/media/u/b") == outer
    assert places.find_gone("/media/u/b") is None  # its changes belong to the place there now
    assert places.find_gone("/media/u/sync/a") == inner


def test_find_gone_keeps_the_newest_places_only(monkeypatch):
    monkeypatch.setattr(places_module, "GONE_KEPT", 3)
    places = EgressPlaces()
    for i in range(5):
        places.add(EgressPlace(f"/media/s{i}", "removable"))
        places.remove(f"/media/s{i}")
    assert [places.find_gone(f"/media/s{i}/f") is not None for i in range(5)] == [False, False, True, True, True]
