"""The pipeline with real watchdog observers and real files: what becomes which event."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import threading
import time

import pytest

from agent.config import ClassifiedFolder
from agent.index import FingerprintIndex
from agent.inotify import make_watchers
from agent.outbox import FLUSH_EVERY
from agent.pipeline import Pipeline
from agent.places import EgressPlace, EgressPlaces
from agent.policy import PolicyStore
from agent.spool import FileMark, Spool
from agent.watcher import FsChange
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
    def __init__(self, tmp_path, spool_class=Spool, watch=True):
        self.classified = tmp_path / "classified"
        self.usb = tmp_path / "usb"
        self.classified.mkdir()
        self.usb.mkdir()
        (self.classified / "impeller.dwg").write_bytes(b"impeller drawing " + os.urandom(4000))
        self.index = FingerprintIndex(str(tmp_path / "index.db"), (ClassifiedFolder(str(self.classified), "core", "Drawings"),))
        self.index.refresh()
        self.spool = spool_class(str(tmp_path / "spool.db"))
        self.places = EgressPlaces()
        self.places.add(EgressPlace(str(self.usb), "folder"))
        self.rules = PolicyStore(str(tmp_path))
        self.rules.load()
        self.pipeline = Pipeline(
            self.index, self.spool, self.places, lambda t, **f: Event(type=t, **f), self.rules.stamp, stable_s=0.2
        )
        # the agent's own reader on Linux (agent/inotify.py); MIWEI_TEST_WATCHER=watchdog runs them on watchdog
        backend = os.environ.get("MIWEI_TEST_WATCHER", "auto")
        self.watchers = make_watchers(self.pipeline.changes, self.pipeline.on_overflow, backend=backend)
        self.pipeline.watch_files_with(self.watchers)  # as the agent wires them (agent/app.py)
        self.watchers.start()
        if watch:  # else the test feeds pipeline.changes itself
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


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _settle(rig, seconds: float = 0.8) -> None:
    """Give a wrong event time to appear (stable_s is 0.2)."""
    time.sleep(seconds)


# --- classified folders -----------------------------------------------------------------------


def test_save_by_temp_file_and_rename_reindexes_the_document(rig):
    """LibreOffice, vim and CAD tools save by writing a temporary file and renaming it over the
    document: the index must follow, and the old version stays traceable."""
    doc = rig.classified / "pump.dwg"
    doc.write_bytes(b"pump, first version")
    rig.wait_events("file.created", 1)
    tmp = rig.classified / ".~pump.dwg.tmp"
    tmp.write_bytes(b"pump, second version")
    os.rename(tmp, doc)

    modified = [e for e in rig.wait_events("file.modified", 1) if e["path"] == str(doc)]
    assert [e["sha256"] for e in modified] == [_sha(b"pump, second version")]
    assert rig.index.get(str(doc)).sha256 == _sha(b"pump, second version")
    assert rig.index.get(str(tmp)) is None

    (rig.usb / "old.dwg").write_bytes(b"pump, first version")
    [event] = rig.wait_events("egress.file", 1)
    assert (event["source_path"], event["level"]) == (str(doc), "core")
    assert event["match"] == {"method": "exact", "similarity": 1.0}
    assert event["details"]["source_state"] == "previous-version"


def test_save_by_rename_of_an_indexed_temp_file_keeps_the_old_version_traceable(rig):
    doc = rig.classified / "impeller.dwg"
    old = doc.read_bytes()
    tmp = rig.classified / "impeller.dwg~"
    tmp.write_bytes(b"impeller, next revision")
    rig.wait_events("file.created", 1)  # the temporary file got indexed before the rename
    os.rename(tmp, doc)
    [moved] = rig.wait_events("file.moved", 1)
    assert (moved["dest_path"], moved["sha256"]) == (str(doc), _sha(b"impeller, next revision"))
    _settle(rig)
    assert rig.index.get(str(doc)).sha256 == _sha(b"impeller, next revision")
    assert rig.index.lookup_sha256(_sha(old)).state == "previous-version"


def test_deleted_classified_content_is_traced_with_its_source_state(rig):
    source = rig.classified / "impeller.dwg"
    data = source.read_bytes()
    source.unlink()
    rig.wait_events("file.deleted", 1)
    (rig.usb / "kept-a-copy.dwg").write_bytes(data)
    [event] = rig.wait_events("egress.file", 1)
    assert (event["source_path"], event["level"], event["register_entry"]) == (str(source), "core", "Drawings")
    assert event["match"] == {"method": "exact", "similarity": 1.0}
    assert event["details"]["source_state"] == "deleted"
    assert event["rule_ids"] == ["MW-EGRESS-CLASSIFIED"]


# --- egress places ----------------------------------------------------------------------------


def test_in_place_rewrite_keeping_size_and_mtime_is_reported_again(rig):
    path = rig.usb / "notes.txt"
    path.write_bytes(b"harmless notes")
    rig.wait_events("egress.file", 1)
    before = os.stat(path)
    with open(path, "r+b") as f:  # same size, same inode, mtime put back: only ctime tells
        f.write(b"SECRET formula")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    events = rig.wait_events("egress.file", 2)
    assert [e["sha256"] for e in events] == [_sha(b"harmless notes"), _sha(b"SECRET formula")]


@pytest.fixture
def quiet_rig(tmp_path):
    """A rig without watchers: the test says which changes the pipeline sees."""
    r = Rig(tmp_path, watch=False)
    yield r
    r.close()


def test_a_write_always_rehashes_but_a_scan_trusts_the_marks(quiet_rig):
    """On FAT an edit can leave size, mtime and ctime as they were: a seen write is hashed anyway."""
    rig = quiet_rig
    path = rig.usb / "edited-on-fat.txt"
    path.write_bytes(b"edited content")
    rig.spool.put([], [FileMark.of(str(path), os.stat(path), _sha(b"what was reported"))])

    rig.pipeline.scan(str(rig.usb))
    _settle(rig)
    assert rig.events("egress.file") == []

    rig.pipeline.changes.put(FsChange("closed", str(path)))
    [event] = rig.wait_events("egress.file", 1)
    assert event["sha256"] == _sha(b"edited content")
    assert rig.spool.reported(str(path)).sha256 == _sha(b"edited content")


def test_changes_queued_before_a_report_do_not_report_the_file_again(quiet_rig):
    """In a bulk copy the queue lags: a file can be reported (its size held still) before its
    own close event is taken off the queue. That event is older than the report: no repeat."""
    rig = quiet_rig
    path = rig.usb / "bulk-0001.txt"
    path.write_bytes(b"copied in bulk")
    written, closed = FsChange("modified", str(path)), FsChange("closed", str(path))  # received now
    rig.pipeline.changes.put(written)
    [event] = rig.wait_events("egress.file", 1)  # reported once its size held still
    rig.pipeline.changes.put(closed)
    _settle(rig)
    assert rig.events("egress.file") == [event]

    path.write_bytes(b"written again after the report")
    rig.pipeline.changes.put(FsChange("closed", str(path)))  # received after the report: reported
    first, second = rig.wait_events("egress.file", 2)
    assert second["sha256"] == _sha(b"written again after the report")


def test_renames_on_the_stick_are_not_reported_again(rig):
    (rig.usb / "report.pdf").write_bytes(b"a report")
    folder = rig.usb / "drawings"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.dwg").write_bytes(f"drawing {i}".encode())
    rig.wait_events("egress.file", 4)

    os.rename(rig.usb / "report.pdf", rig.usb / "report-final.pdf")
    os.rename(folder, rig.usb / "renamed")
    _settle(rig, 1.0)
    assert len(rig.events("egress.file")) == 4, "a rename is not a new copy"
    assert rig.spool.reported(str(rig.usb / "report-final.pdf")).sha256 == _sha(b"a report")
    assert rig.spool.reported(str(rig.usb / "renamed" / "1.dwg")) is not None

    with open(rig.usb / "renamed" / "1.dwg", "ab") as f:  # a change under the new name is reported
        f.write(b" and more")
    [*_, changed] = rig.wait_events("egress.file", 5)
    assert changed["path"] == str(rig.usb / "renamed" / "1.dwg")


# --- the spool --------------------------------------------------------------------------------


class _FlakySpool(Spool):
    """A real spool that fails to store events a few times (a full disk, a long lock)."""

    failures = 2

    def put(self, events, marks=()):
        events = list(events)
        if events and self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        super().put(events, marks)


class _PoisonSpool(Spool):
    """A real spool that can never store one particular event."""

    def put(self, events, marks=()):
        events = list(events)
        if any("poison" in (e.path or "") for e in events):
            raise ValueError("cannot store this one")
        super().put(events, marks)


def test_events_are_kept_until_the_spool_stores_them(tmp_path):
    rig = Rig(tmp_path, spool_class=_FlakySpool)
    try:
        shutil.copyfile(rig.classified / "impeller.dwg", rig.usb / "copy.dwg")
        [event] = rig.wait_events("egress.file", 1)
        assert event["level"] == "core"
        assert rig.spool.failures == 0
        assert rig.spool.reported(str(rig.usb / "copy.dwg")) is not None, "the mark is kept with its event"
        [error] = rig.wait_events("agent.error", 1)  # one for the failure kind, not one per attempt
        assert "OperationalError" in error["error"]
    finally:
        rig.close()


def test_an_event_that_cannot_be_stored_is_dropped_and_counted_not_the_rest(tmp_path):
    rig = Rig(tmp_path, spool_class=_PoisonSpool)
    try:
        (rig.usb / "poison.txt").write_bytes(b"x")
        (rig.usb / "fine.txt").write_bytes(b"y")
        [fine] = rig.wait_events("egress.file", 1, timeout_s=15)
        assert fine["path"] == str(rig.usb / "fine.txt")
        errors = rig.wait_events("agent.error", 2, timeout_s=15)
        assert {"dropped_events": 1} in [e["details"] for e in errors]
        _settle(rig)
        assert [e["path"] for e in rig.events("egress.file")] == [str(rig.usb / "fine.txt")]
    finally:
        rig.close()


class _SlowSpool(Spool):
    """Records which threads store events, and how many at once; the first put takes a while."""

    def __init__(self, path):
        super().__init__(path)
        self.callers: list[str] = []
        self.inside = 0
        self.most_inside = 0
        self.lock = threading.Lock()

    def put(self, events, marks=()):
        events = list(events)
        with self.lock:
            self.callers.append(threading.current_thread().name)
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            first = len(self.callers) == 1
        try:
            if first:
                time.sleep(1.0)
            super().put(events, marks)
        finally:
            with self.lock:
                self.inside -= 1


def test_stop_never_spools_beside_a_worker_that_is_still_busy(tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    for i in range(FLUSH_EVERY + 44):  # more than one spool transaction's worth
        (usb / f"{i}.txt").write_bytes(f"file {i}".encode())
    index = FingerprintIndex(str(tmp_path / "index.db"), ())
    spool = _SlowSpool(str(tmp_path / "spool.db"))
    places = EgressPlaces()
    places.add(EgressPlace(str(usb), "folder"))
    pipeline = Pipeline(index, spool, places, lambda t, **f: Event(type=t, **f), lambda e: e)
    pipeline.start()
    pipeline.scan(str(usb))
    deadline = time.monotonic() + 10
    while not spool.callers and time.monotonic() < deadline:  # the worker is in its first, slow write
        time.sleep(0.01)
    pipeline.stop(timeout_s=0.1)  # gives up waiting: must not write beside the worker
    pipeline._thread.join(5)
    assert set(spool.callers) == {"pipeline"} and spool.most_inside == 1
    assert spool.depth() == FLUSH_EVERY + 44
    index.close()
    spool.close()


def test_stop_spools_what_the_worker_still_held(tmp_path):
    index = FingerprintIndex(str(tmp_path / "index.db"), ())
    spool = _FlakySpool(str(tmp_path / "spool.db"))
    spool.failures = 1
    pipeline = Pipeline(index, spool, EgressPlaces(), lambda t, **f: Event(type=t, **f), lambda e: e)
    pipeline.start()
    pipeline.on_overflow("just before stop")
    deadline = time.monotonic() + 5
    while spool.failures and time.monotonic() < deadline:  # the first write failed: the worker waits to retry
        time.sleep(0.01)
    pipeline.stop()
    assert not pipeline._thread.is_alive()
    assert [json.loads(e.body)["type"] for e in spool.peek(10)] == ["agent.overflow", "agent.error"]
    index.close()
    spool.close()


def test_archive_is_traced_through_its_most_sensitive_member(rig, tmp_path):
    """An internal memo at the top of a zip must not hide a core drawing nested inside it."""
    import io
    import zipfile

    memo_folder = tmp_path / "memos"
    memo_folder.mkdir()
    (memo_folder / "memo.txt").write_bytes(b"internal memo " + os.urandom(200))
    rig.index.folders = rig.index.folders + (ClassifiedFolder(str(memo_folder), "internal", "Memos"),)
    rig.index.refresh()
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("rev3/impeller.dwg", (rig.classified / "impeller.dwg").read_bytes())
    with zipfile.ZipFile(rig.usb / "holiday.zip", "w") as z:
        z.writestr("memo.txt", (memo_folder / "memo.txt").read_bytes())
        z.writestr("drawings.zip", inner.getvalue())
    [event] = rig.wait_events("egress.file", 1)
    assert event["match"]["method"] == "archive"
    assert event["level"] == "core" and event["source_path"] == str(rig.classified / "impeller.dwg")
    assert event["details"]["archive_member"] == "drawings.zip!/rev3/impeller.dwg"
    assert event["details"]["classified_members"] == 2


def test_a_drawing_attached_to_an_email_saved_to_a_stick_is_traced(rig):
    """A message saved from the mail client with the drawing attached, inside a zip sent as a
    second attachment too: both levels are walked by the agent's worker as an archive's are."""
    import io
    import zipfile
    from email import policy
    from email.message import EmailMessage

    drawing = (rig.classified / "impeller.dwg").read_bytes()
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("rev3.dwg", drawing)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "zhang@example.cn", "buyer@other.example", "photos"
    message.set_content("holiday photos attached")
    message.add_attachment(packed.getvalue(), maintype="application", subtype="zip", filename="photos.zip")
    (rig.usb / "holiday.eml").write_bytes(message.as_bytes(policy=policy.SMTP))
    [event] = rig.wait_events("egress.file", 1)
    assert event["file_type"] == "eml" and event["match"]["method"] == "archive"
    assert event["level"] == "core" and event["source_path"] == str(rig.classified / "impeller.dwg")
    assert event["details"]["archive_member"] == "photos.zip!/rev3.dwg"


def test_a_drawing_written_out_as_base64_in_a_text_on_a_stick_is_traced(rig):
    """`base64 impeller.dwg > notes.txt` on the stick: the agent's worker finds the file written
    out in the text and the pipeline traces it as an archive's member (before: a text, no match)."""
    import base64

    drawing = (rig.classified / "impeller.dwg").read_bytes()
    (rig.usb / "notes.txt").write_bytes(b"meeting notes\n\n" + base64.encodebytes(drawing))
    [event] = rig.wait_events("egress.file", 1)
    assert event["file_type"] == "text" and event["match"]["method"] == "archive", event
    assert event["level"] == "core" and event["source_path"] == str(rig.classified / "impeller.dwg")
    assert event["details"]["archive_member"] == "(base64 1)"


SLOW_WRITER = """
import sys, time
with open(sys.argv[1], "wb") as f:
    for _ in range(20):
        f.write(b"x" * 4096)
        f.flush()
        time.sleep(0.1)
"""


def test_the_process_writing_an_egress_file_is_named_best_effort(rig):
    import subprocess
    import sys

    slow = rig.usb / "slow-copy.iso"
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(slow)])
    writer.wait(30)
    (rig.usb / "quick.txt").write_bytes(b"written long after: nobody was seen writing it")
    events = {e["path"]: e for e in rig.wait_events("egress.file", 2)}
    slow_event = events[str(slow)]
    assert slow_event["details"]["attribution"] == "open-file"
    assert slow_event["details"]["process"]["pid"] == writer.pid
    assert slow_event["details"]["process"]["name"].startswith("python")
    # written after the writer exited, by a process the agent does not look at (its own)
    # ...so it is known by its owner only
    assert events[str(rig.usb / "quick.txt")]["details"] == {"attribution": "not-seen", "user_from": "file-owner"}
    assert events[str(rig.usb / "quick.txt")]["user"] == pwd.getpwuid(os.getuid()).pw_name


def test_egress_places_are_reconciled_periodically(tmp_path):
    """A write the events never told about (here: no watcher at all) is found by the next walk."""
    rig = Rig(tmp_path, watch=False)
    rig.pipeline.reconcile_s = 0.3
    try:
        (rig.usb / "missed.txt").write_bytes(b"written while nobody watched")
        [event] = rig.wait_events("egress.file", 1)
        assert event["path"] == str(rig.usb / "missed.txt")
        _settle(rig, 1.0)  # walked again since: reported once, the marks say so
        assert len(rig.events("egress.file")) == 1
    finally:
        rig.close()


def test_an_idle_pipeline_wakes_rarely_and_a_change_still_at_once(rig, monkeypatch):
    """Idle: a step every IDLE_TICK_S, not every TICK_S (idle CPU, issue 21); a file written then
    is still reported without waiting for the idle tick."""
    from agent import pipeline as module

    steps = []
    real_step = rig.pipeline._step
    monkeypatch.setattr(rig.pipeline, "_step", lambda: (steps.append(time.monotonic()), real_step()))
    time.sleep(1.2)
    assert len(steps) <= 1.2 / module.IDLE_TICK_S + 2  # 24 steps at TICK_S
    written = time.monotonic()
    (rig.usb / "a.bin").write_bytes(b"\0" + os.urandom(1000))
    rig.wait_events("egress.file", 1, timeout_s=5)
    assert time.monotonic() - written < 0.2 + 0.35  # stable_s, plus the lane: never an idle tick


def test_an_edited_copy_of_a_drawing_saved_just_now_is_traced_by_its_bytes(rig):
    """Byte lineage in the running pipeline: a drawing saved into the classified folder is
    sketched as it is indexed, and the lanes look for its chunks from the next file on, so a copy
    with a byte put in front and one changed, written to the stick a moment later, is reported as
    an edited copy of it; a file of other random bytes beside it is traced to nothing."""
    drawing = rig.classified / "housing.dwg"
    data = os.urandom(200_000)
    drawing.write_bytes(data)
    rig.wait_events("file.created", 1)
    edited = bytearray(b"x" + data)
    edited[100_000] ^= 0xFF
    (rig.usb / "holiday.bin").write_bytes(bytes(edited))
    (rig.usb / "other.bin").write_bytes(os.urandom(200_000))
    events = {os.path.basename(e["path"]): e for e in rig.wait_events("egress.file", 2)}
    found = events["holiday.bin"]
    assert found["source_path"] == str(drawing) and found["level"] == "core"
    assert found["match"]["method"] == "partial" and found["match"]["similarity"] >= 0.9
    assert found["details"]["lineage"] == "bytes"
    assert "source_path" not in events["other.bin"] or events["other.bin"]["source_path"] is None


def test_an_edited_drawing_handed_over_from_a_users_mount_is_traced_by_its_bytes(rig, tmp_path):
    """Files of a phone or share mounted in the user's session come through submit_opened from
    another thread: their jobs carry the prefilter the pipeline read at its last step, also before
    any file went through the watched places (it was None until one had)."""
    data = os.urandom(200_000)
    (rig.classified / "pump.dwg").write_bytes(data)
    rig.wait_events("file.created", 1)
    phone = tmp_path / "phone"
    phone.mkdir()
    place = EgressPlace(str(phone), "phone")
    copy = phone / "edited.bin"
    copy.write_bytes(b"x" + data)
    time.sleep(0.5)  # a step or two: the pipeline has read the index's prefilter since the drawing was indexed
    fd = os.open(copy, os.O_RDONLY)
    assert rig.pipeline.submit_opened(str(copy), fd, os.fstat(fd), place)
    [event] = rig.wait_events("egress.file", 1)
    assert event["source_path"] == str(rig.classified / "pump.dwg") and event["details"]["lineage"] == "bytes"
