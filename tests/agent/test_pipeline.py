"""The pipeline with real watchdog observers and real files: what becomes which event."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest

from agent.config import ClassifiedFolder
from agent.index import FingerprintIndex
from agent.pipeline import Pipeline
from agent.places import EgressPlace, EgressPlaces
from agent.policy import PolicyStore
from agent.spool import Spool
from agent.watcher import Watchers
from rules.events import Event
from rules.loader import default_pack_sources
from rules.policy import build_policy, default_policy
from rules.worktime import WorkTime

SITE_RULES = """\
- id: SITE-DRAWING-NAME
  title: A drawing file written to an egress place
  category: classified-egress
  severity: medium
  when:
    type: egress.file
    extension: [dwg, dxf]
"""


class Rig:
    def __init__(self, tmp_path):
        self.classified = tmp_path / "classified"
        self.usb = tmp_path / "usb"
        self.classified.mkdir()
        self.usb.mkdir()
        (self.classified / "impeller.dwg").write_bytes(b"impeller drawing " + os.urandom(4000))
        self.index = FingerprintIndex(str(tmp_path / "index.db"), (ClassifiedFolder(str(self.classified), "core", "Drawings"),))
        self.index.refresh()
        self.spool = Spool(str(tmp_path / "spool.db"))
        self.places = EgressPlaces()
        self.places.add(EgressPlace(str(self.usb), "folder"))
        self.rules = PolicyStore(str(tmp_path))
        self.rules.load()
        self.pipeline = Pipeline(
            self.index, self.spool, self.places, lambda t, **f: Event(type=t, **f), self.rules.stamp, stable_s=0.2
        )
        self.watchers = Watchers(self.pipeline.changes, self.pipeline.on_overflow)
        self.watchers.start()
        self.watchers.watch(str(self.classified))
        self.watchers.watch(str(self.usb))
        self.pipeline.start()

    def events(self, type_: str | None = None) -> list[dict]:
        items = [json.loads(e.body) for e in self.spool.peek(100_000, max_bytes=1 << 40)]
        return [e for e in items if type_ is None or e["type"] == type_]

    def wait_events(self, type_: str, n: int, timeout_s: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.events(type_)
            if len(found) >= n:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {n} {type_} events, got {len(self.events(type_))}")

    def close(self):
        self.watchers.stop()
        self.pipeline.stop()
        self.index.close()
        self.spool.close()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_classified_folder_changes_become_events_and_keep_the_index_current(rig):
    new = rig.classified / "housing.dwg"
    new.write_bytes(b"housing v1")
    [created] = rig.wait_events("file.created", 1)
    assert created["path"] == str(new) and created["level"] == "core"
    assert created["sha256"] == hashlib.sha256(b"housing v1").hexdigest()

    new.write_bytes(b"housing v2")
    [modified] = rig.wait_events("file.modified", 1)
    assert modified["sha256"] == hashlib.sha256(b"housing v2").hexdigest()
    assert rig.index.get(str(new)).sha256 == modified["sha256"]

    new.rename(rig.classified / "housing-final.dwg")
    [moved] = rig.wait_events("file.moved", 1)
    assert moved["dest_path"] == str(rig.classified / "housing-final.dwg")
    assert rig.index.get(str(rig.classified / "housing-final.dwg")) is not None

    (rig.classified / "housing-final.dwg").unlink()
    [deleted] = rig.wait_events("file.deleted", 1)
    assert deleted["sha256"] == hashlib.sha256(b"housing v2").hexdigest()
    assert rig.index.get(str(rig.classified / "housing-final.dwg")) is None


def test_folder_copied_in_at_once_is_reported_file_by_file(rig, tmp_path):
    src = tmp_path / "bulk"
    src.mkdir()
    for i in range(300):
        (src / f"{i}.txt").write_bytes(f"file {i}".encode())
    subprocess.run(["cp", "-r", str(src), str(rig.usb / "bulk")], check=True)
    events = rig.wait_events("egress.file", 300)
    assert sorted(e["path"] for e in events) == sorted(str(rig.usb / "bulk" / f"{i}.txt") for i in range(300))


def test_file_moved_out_of_classified_into_egress_is_still_traced(rig):
    source = rig.classified / "impeller.dwg"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    os.rename(source, rig.usb / "impeller.jpg")
    [event] = rig.wait_events("egress.file", 1)
    assert event["sha256"] == digest
    assert event["source_path"] == str(source) and event["level"] == "core"
    # inotify pairs a rename only within one watch: across two it is a delete and a create
    [gone] = rig.wait_events("file.deleted", 1)
    assert gone["path"] == str(source) and gone["sha256"] == digest


def test_file_written_in_pieces_is_reported_once_complete(rig):
    path = rig.usb / "slow.bin"
    with open(path, "wb") as f:
        for _ in range(5):
            f.write(b"x" * 1000)
            f.flush()
            time.sleep(0.1)  # shorter than stable_s: still being written
        time.sleep(0.05)
        f.write(b"end")
    [event] = rig.wait_events("egress.file", 1)
    time.sleep(0.5)
    assert len(rig.events("egress.file")) == 1
    assert event["size"] == 5003
    assert event["sha256"] == hashlib.sha256(b"x" * 5000 + b"end").hexdigest()


def test_copy_of_classified_content_is_matched_and_empty_files_are_not(rig):
    shutil.copyfile(rig.classified / "impeller.dwg", rig.usb / "copy.dwg")
    (rig.usb / "empty.txt").write_bytes(b"")
    events = {e["path"]: e for e in rig.wait_events("egress.file", 2)}
    assert events[str(rig.usb / "copy.dwg")]["level"] == "core"
    assert events[str(rig.usb / "empty.txt")]["level"] is None


def test_overflow_reports_itself_and_rescans(rig):
    rig.pipeline.on_overflow("inotify queue overflow")
    [overflow] = rig.wait_events("agent.overflow", 1)
    assert overflow["details"] == {"reasons": {"inotify queue overflow": 1}}


def test_egress_copy_of_a_core_file_is_stamped_by_the_rules_in_force(rig):
    shutil.copyfile(rig.classified / "impeller.dwg", rig.usb / "holiday.jpg")
    (rig.usb / "notes.txt").write_bytes(b"shopping list")
    events = {e["path"]: e for e in rig.wait_events("egress.file", 2)}
    copy, notes = events[str(rig.usb / "holiday.jpg")], events[str(rig.usb / "notes.txt")]
    version = default_policy().version
    assert (copy["rule_ids"], copy["severity"], copy["policy_version"]) == (["MW-EGRESS-CLASSIFIED"], "critical", version)
    assert (notes["rule_ids"], notes["severity"], notes["policy_version"]) == ([], None, version)


def test_every_spooled_event_carries_the_policy_version(rig):
    (rig.classified / "housing.dwg").write_bytes(b"housing v1")
    rig.wait_events("file.created", 1)
    rig.pipeline.on_overflow("test")
    rig.wait_events("agent.overflow", 1)
    assert {e["policy_version"] for e in rig.events()} == {default_policy().version}


def test_a_policy_swapped_in_at_run_time_stamps_the_next_events(rig):
    shutil.copyfile(rig.classified / "impeller.dwg", rig.usb / "first.dwg")
    [first] = rig.wait_events("egress.file", 1)
    policy = build_policy(default_pack_sources() + [("site.yaml", SITE_RULES)], WorkTime())
    assert rig.rules.offer(policy.to_payload()) is not None
    shutil.copyfile(rig.classified / "impeller.dwg", rig.usb / "second.dwg")
    second = next(e for e in rig.wait_events("egress.file", 2) if e["path"].endswith("second.dwg"))
    assert first["rule_ids"] == ["MW-EGRESS-CLASSIFIED"] and first["policy_version"] == default_policy().version
    assert second["rule_ids"] == ["MW-EGRESS-CLASSIFIED", "SITE-DRAWING-NAME"]
    assert second["severity"] == "critical"  # the highest of the rules it matched
    assert second["policy_version"] == policy.version
