"""The print watcher on a spool folder where the test does what cupsd does: a request file
written, renamed to dJJJJJ-001, removed; a control file renamed into place. A real inotify, a
real spool and index, inspection in process."""

from __future__ import annotations

import json
import os
import time

import pytest

from agent.config import ClassifiedFolder
from agent.index import FingerprintIndex
from agent.inspector import InProcessInspector
from agent.printing import PrintWatcher, printer_name
from agent.spool import Spool
from rules.events import Event
from tests.agent.ipp_messages import control_file

DRAWING = b"%PDF-1.4\n" + os.urandom(5000)
MARKED = "商业秘密 严禁外传\n泵叶轮设计说明\n".encode()


class Rig:
    def __init__(self, tmp_path, attrs_wait_s: float = 30.0):
        self.cups = tmp_path / "cups"
        self.cups.mkdir()
        classified = tmp_path / "classified"
        classified.mkdir()
        (classified / "impeller.pdf").write_bytes(DRAWING)
        self.index = FingerprintIndex(
            str(tmp_path / "index.db"), (ClassifiedFolder(str(classified), "core", "Drawings"),)
        )
        self.index.refresh()
        self.spool = Spool(str(tmp_path / "spool.db"))
        self.watcher = PrintWatcher(
            str(self.cups),
            self.index,
            self.spool,
            lambda t, **f: Event(type=t, **f),
            InProcessInspector,
            attrs_wait_s=attrs_wait_s,
        )

    def start(self):
        self.watcher.start()
        deadline = time.monotonic() + 5
        while self.watcher._threads[0].is_alive() and time.monotonic() < deadline and not _watching(self.watcher):
            time.sleep(0.02)

    def submit(self, job: int, data: bytes, request: str = "0000000a") -> str:
        """cupsd receiving a document: a request file, then renamed into the job's data file."""
        req = self.cups / request
        req.write_bytes(data)
        time.sleep(0.1)  # cupsd reads the request before it makes the job
        dest = self.cups / f"d{job:05d}-001"
        os.rename(req, dest)
        return str(dest)

    def save_job(self, job: int, body: bytes) -> None:
        tmp = self.cups / f"c{job:05d}.N"
        tmp.write_bytes(body)
        os.rename(tmp, self.cups / f"c{job:05d}")

    def events(self, n: int, timeout_s: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [json.loads(e.body) for e in self.spool.peek(1000)]
            if len(found) >= n:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{n} events expected, got {found}")

    def close(self):
        self.watcher.stop(5)
        self.index.close()
        self.spool.close()


def _watching(watcher: PrintWatcher) -> bool:
    return watcher._watching.is_set()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    r.start()
    yield r
    r.close()


def test_document_removed_at_once_is_read_from_the_descriptor_held_since_the_request(rig):
    path = rig.submit(3, DRAWING)
    os.unlink(path)  # the job ended (PreserveJobFiles No) before anyone could open it by name
    rig.save_job(3, control_file("zhang", "impeller.pdf", "Office-HP", "application/pdf", pages=2))
    [event] = rig.events(1)
    assert event["egress"] == "printer"
    assert event["sha256"] and event["level"] == "core" and event["match"]["method"] == "exact"
    assert event["user"] == "zhang"
    details = event["details"]
    assert details["printer"] == details["app"] == "Office-HP"
    assert (details["job_id"], details["title"], details["format"], details["pages"]) == (
        3,
        "impeller.pdf",
        "application/pdf",
        2,
    )
    assert not [d for d in event["detections"] if d["detector"] in ("vanished", "unreadable")]


def test_marked_document_carries_its_marking(rig):
    rig.submit(4, MARKED)
    rig.save_job(4, control_file("li", "notes", "pdf", "text/plain"))
    [event] = rig.events(1)
    assert [d["detector"] for d in event["detections"]] == ["trade_secret_marking"]
    assert "pages" not in event["details"]  # not known before it is printed: not made up


def test_unreadable_document_is_reported_as_a_blind_spot(rig):
    os.mkfifo(rig.cups / "d00005-001")  # not a regular file: nothing to read
    rig.save_job(5, control_file("wang", "x", "pdf", "text/plain"))
    [event] = rig.events(1)
    assert event["egress"] == "printer" and event["sha256"] is None
    assert [d["detector"] for d in event["detections"]] == ["unreadable"]
    assert event["details"]["job_id"] == 5


def test_broken_control_file_is_said_and_the_document_still_inspected(rig):
    rig.submit(6, DRAWING)
    rig.save_job(6, b"\x02\x00\x00\x05\x00\x00\x00\x04\x02\x42\xff\xff")
    [event] = rig.events(1)
    assert event["level"] == "core"
    assert (
        "runs past the end" in event["details"]["attributes_error"]
        or "truncated" in event["details"]["attributes_error"]
    )


def test_document_without_attributes_is_reported_after_its_data_is_gone(tmp_path):
    r = Rig(tmp_path)
    r.start()
    try:
        started = time.monotonic()
        os.unlink(r.submit(7, DRAWING))  # a job purged before cupsd saved it: no control file ever
        [event] = r.events(1, timeout_s=15)
        assert 4.0 <= time.monotonic() - started < 12.0  # GONE_WAIT_S, not the 30 s attributes wait
        assert event["level"] == "core" and event["details"]["job_id"] == 7
    finally:
        r.close()


def test_documents_spooled_before_start_are_reported_once(tmp_path):
    r = Rig(tmp_path)
    (r.cups / "d00008-001").write_bytes(MARKED)
    r.save_job(8, control_file("zhao", "old", "pdf", "text/plain"))
    r.start()
    r.events(1)
    r.watcher.stop(5)
    again = PrintWatcher(str(r.cups), r.index, r.spool, lambda t, **f: Event(type=t, **f), InProcessInspector)
    again.start()
    time.sleep(1.0)
    again.stop(5)
    assert len(r.events(1)) == 1  # the spool's mark says it was reported as it is
    r.index.close()
    r.spool.close()


@pytest.mark.parametrize(
    "uri, name",
    [
        ("ipp://pc/printers/Office-HP", "Office-HP"),
        ("ipp://pc/classes/floor2/", "floor2"),
        ("socket://10.0.0.5", "socket://10.0.0.5"),
    ],
)
def test_printer_name(uri, name):
    assert printer_name(uri) == name
