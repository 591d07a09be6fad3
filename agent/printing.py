"""Print jobs as egress: each document a user prints through CUPS is hashed and inspected.

cupsd receives a document into a request file in its spool (/var/spool/cups/NNNNNNNN), renames
it to dJJJJJ-DDD when the job is made, and removes it when the job ends (PreserveJobFiles No)
or a day later (the default): a job printed to a fast queue is gone in under 0.1 s. So the
watch thread opens the request file the moment it is created (inotify), follows it through the
rename by the move's cookie, and holds that one descriptor: the data is read from it even after
cupsd has removed the file (nothing re-opens by path). cupsd keeps the document as submitted,
not what its filters make of it, so a PDF printed is the PDF's bytes (an exact hash match).

The job's attributes (user, title, printer, format, pages) come from its control file cJJJJJ,
an IPP message cupsd writes within `DirtyCleanInterval` (30 s by default; about 1 s after a job
ends when cupsd is idle) and rewrites as the job moves on; it is opened and parsed when it
appears (agent/ipp.py). A document is reported when its job's attributes are known, or
GONE_WAIT_S after its data file was removed, or after ATTRS_WAIT_S: then with what is known (a
job cancelled and purged before cupsd saved it has no attributes left anywhere). The user is the one cupsd recorded
(job-originating-user-name): the local account of a job sent over the local socket.

A second thread hashes and inspects the documents (an unprivileged worker, as for any egress
file), so a large job never delays the opening of the next. Fail closed: a document removed
before it could be opened, or unreadable, is reported with a `vanished` or `unreadable`
detection, which the shipped uninspectable-egress rules alert on.
"""

from __future__ import annotations

import ctypes
import errno
import os
import queue
import re
import select
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from agent.classify import content_fields
from agent.content.inspect import Inspection
from agent.hashing import Hasher
from agent.index import FingerprintIndex
from agent.inspector import open_regular
from agent.ipp import MAX_MESSAGE_BYTES, Attributes, IppError, first, parse_attributes
from agent.lanes import Inspector
from agent.paths import readable
from agent.spool import FileMark, Spool
from rules.events import Detection, Event

ATTRS_WAIT_S = 45.0  # cupsd writes a job's control file within DirtyCleanInterval (30 s by default)
# a document whose data file is removed waits this long more: cupsd writes an ended job's control
# file within about a second when idle (1.0 s measured), and never for a job purged first
GONE_WAIT_S = 5.0
TICK_S = 1.0  # the time-based steps (GONE_WAIT_S, ATTRS_WAIT_S) need no finer: 0.2 s woke an idle agent 5 times a second
REWATCH_S = 30.0  # a spool folder that is absent (CUPS not installed yet) is looked for this often
MAX_HELD = 256  # documents held open at once; past it a new one is reported unread
REQUEST_KEEP_S = 600.0  # a request file not renamed into a job by then is let go (a failed request)
EVENT_BUF_BYTES = 64 * 1024

DATA_FILE = re.compile(r"d(\d{5,})-(\d{3,})")
CONTROL_FILE = re.compile(r"c(\d{5,})")
REQUEST_FILE = re.compile(r"[0-9a-f]{8}")

# inotify(7)
IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x8, 0x40, 0x80, 0x100, 0x200
IN_Q_OVERFLOW, IN_IGNORED, IN_NONBLOCK, IN_CLOEXEC = 0x4000, 0x8000, 0o4000, 0o2000000
WATCH_MASK = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_EVENT = struct.Struct("iIII")


@dataclass
class _Document:
    """One document of a print job, held open from the moment it was seen."""

    job_id: int
    number: int
    path: str
    seen_at: float  # time.monotonic()
    fd: int | None = None
    st: os.stat_result | None = None
    why_unread: Detection | None = None  # why fd is None
    gone_at: float | None = None  # time.monotonic() cupsd removed the data file


@dataclass
class _Job:
    attrs: Attributes = field(default_factory=dict)
    control_seen_at: float = -1.0  # time.monotonic() its control file was last read
    purged: bool = False
    attrs_error: str | None = None


class PrintWatcher:
    """Watches one CUPS spool folder; `start()` and `stop(timeout_s)` like the other watchers."""

    def __init__(
        self,
        spool_dir: str,
        index: FingerprintIndex,
        spool: Spool,
        make_event: Callable[..., Event],
        make_inspector: Callable[[], Inspector],
        hasher: Hasher | None = None,
        attrs_wait_s: float = ATTRS_WAIT_S,
    ) -> None:
        """`make_event(type, **fields)`: a stamped event (agent.app.AgentApp.stamped_event)."""
        self.spool_dir = spool_dir
        self.index, self.spool, self.make_event = index, spool, make_event
        self.hasher = hasher or Hasher()
        self.attrs_wait_s = attrs_wait_s
        self._make_inspector = make_inspector
        self._inspector: Inspector | None = None
        self._requests: dict[str, tuple[int, float]] = {}  # request file name -> (fd, when opened)
        self._moving: dict[int, int] = {}  # a rename's cookie -> the request file's fd
        self._docs: list[_Document] = []  # seen, waiting for their job's attributes
        self._jobs: dict[int, _Job] = {}
        self._ready: queue.Queue[tuple[_Document, _Job] | None] = queue.Queue()
        self._stop = threading.Event()
        self._watching = threading.Event()  # the spool folder is watched (tests wait for it)
        self._threads = [
            threading.Thread(target=self._watch, name="print-watch", daemon=True),
            threading.Thread(target=self._report, name="print-report", daemon=True),
        ]
        self.reported = 0  # documents reported (tests and status read it)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._ready.put(None)
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(timeout_s)
        for fd, _ in self._requests.values():
            os.close(fd)
        self._requests.clear()

    # --- the watch thread: open at once, hold, wait for the job's attributes ----------------

    def _watch(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        while not self._stop.is_set():
            inotify = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if inotify < 0:
                logger.error("printing not watched: inotify_init1 failed errno={}", ctypes.get_errno())
                return
            try:
                if libc.inotify_add_watch(inotify, os.fsencode(self.spool_dir), WATCH_MASK) < 0:
                    why = os.strerror(ctypes.get_errno())
                    logger.info("print spool not watched path={!r} why={!r} retry_s={}", self.spool_dir, why, REWATCH_S)
                    self._stop.wait(REWATCH_S)
                    continue
                logger.info("watching print spool path={!r}", self.spool_dir)
                self._watching.set()
                self._scan()  # documents already spooled (printed while the agent was not running)
                self._loop(inotify)
            finally:
                os.close(inotify)

    def _loop(self, inotify: int) -> None:
        while not self._stop.is_set():
            readable_now, _, _ = select.select([inotify], [], [], TICK_S)
            if readable_now:
                try:
                    buf = os.read(inotify, EVENT_BUF_BYTES)
                except BlockingIOError:
                    buf = b""
                for mask, cookie, name in _events(buf):
                    if mask & IN_IGNORED:  # the folder is gone (CUPS removed): watch again when it is back
                        return
                    if mask & IN_Q_OVERFLOW:
                        logger.warning("print spool events lost; rescanning path={!r}", self.spool_dir)
                        self._scan()
                        continue
                    try:
                        self._on_event(mask, cookie, name)
                    except Exception:  # contain: one odd job must not stop the watch
                        logger.exception("print spool event failed name={!r}", name)
            self._pass_ready()

    def _on_event(self, mask: int, cookie: int, name: str) -> None:
        if REQUEST_FILE.fullmatch(name):
            if mask & IN_CREATE:
                self._hold_request(name)
            elif mask & IN_MOVED_FROM and name in self._requests:
                self._moving[cookie] = self._requests.pop(name)[0]
            elif mask & IN_DELETE and name in self._requests:
                os.close(self._requests.pop(name)[0])
        elif m := DATA_FILE.fullmatch(name):
            if mask & IN_DELETE:
                for doc in self._docs:
                    if doc.path == os.path.join(self.spool_dir, name):
                        doc.gone_at = time.monotonic()
            elif mask & (IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE):
                self._add_document(
                    int(m[1]), int(m[2]), name, self._moving.pop(cookie, None) if mask & IN_MOVED_TO else None
                )
        elif m := CONTROL_FILE.fullmatch(name):
            job = self._jobs.setdefault(int(m[1]), _Job())
            if mask & (IN_MOVED_TO | IN_CLOSE_WRITE):
                self._read_control(name, job)
            elif mask & IN_DELETE:
                job.purged = True

    def _hold_request(self, name: str) -> None:
        if len(self._requests) >= MAX_HELD:
            return  # the data file is opened when it appears instead
        try:
            fd, _ = open_regular(os.path.join(self.spool_dir, name))
        except OSError:
            return
        self._requests[name] = (fd, time.monotonic())

    def _add_document(self, job_id: int, number: int, name: str, fd: int | None) -> None:
        path = os.path.join(self.spool_dir, name)
        if any(d.path == path for d in self._docs):
            if fd is not None:
                os.close(fd)
            return
        doc = _Document(job_id, number, path, time.monotonic())
        from_request = fd is not None  # held since cupsd created its request file
        self._jobs.setdefault(job_id, _Job())
        try:
            if fd is None:
                if len(self._docs) >= MAX_HELD:
                    raise OSError(errno.EMFILE, f"over {MAX_HELD} print documents waiting")
                fd, _ = open_regular(path)
            doc.fd, doc.st = fd, os.fstat(fd)
        except FileNotFoundError:
            doc.why_unread = Detection("vanished", 1, "print job data removed before it could be read")
        except OSError as exc:
            if fd is not None:
                os.close(fd)
            doc.why_unread = Detection("unreadable", 1, f"print job data: {exc.strerror or type(exc).__name__}")
        logger.debug(
            "print document seen job={} document={} held={} from_request={}",
            job_id,
            number,
            doc.fd is not None,
            from_request,
        )
        self._docs.append(doc)

    def _read_control(self, name: str, job: _Job) -> None:
        """Parse the control file from one descriptor, at once (a purge removes it). Seen even
        when it cannot be read: waiting longer would not make it readable, the error is reported."""
        job.control_seen_at = time.monotonic()
        try:
            fd, _ = open_regular(os.path.join(self.spool_dir, name))
        except OSError as exc:
            job.attrs_error = f"cannot open {name}: {exc.strerror or type(exc).__name__}"
            return
        try:
            data = os.pread(fd, MAX_MESSAGE_BYTES + 1, 0)
            job.attrs, job.attrs_error = parse_attributes(data), None
        except (OSError, IppError) as exc:
            job.attrs_error = f"{name}: {exc}"
            logger.warning("print job attributes unreadable file={!r} error={!r}", name, str(exc))
        finally:
            os.close(fd)

    def _pass_ready(self) -> None:
        """Hand documents whose job's attributes are known (or will not be) to the report thread."""
        now = time.monotonic()
        waiting = []
        for doc in self._docs:
            job = self._jobs[doc.job_id]
            gone = doc.gone_at is not None and now - doc.gone_at >= GONE_WAIT_S
            if job.control_seen_at >= doc.seen_at or job.purged or gone or now - doc.seen_at >= self.attrs_wait_s:
                self._ready.put((doc, job))
            else:
                waiting.append(doc)
        self._docs = waiting
        live = {d.job_id for d in self._docs}
        self._jobs = {j: job for j, job in self._jobs.items() if j in live or job.control_seen_at >= now - 5.0}
        for name, (fd, opened_at) in list(self._requests.items()):
            if now - opened_at > REQUEST_KEEP_S:
                os.close(fd)
                del self._requests[name]

    def _scan(self) -> None:
        """Documents in the spool now that were not reported as they are (by the spool's marks)."""
        try:
            names = sorted(os.listdir(self.spool_dir))
        except OSError as exc:
            logger.warning("print spool not listed path={!r} error={!r}", self.spool_dir, exc.strerror)
            return
        for name in names:
            if m := DATA_FILE.fullmatch(name):
                mark = self.spool.reported(os.path.join(self.spool_dir, name))
                try:
                    st = os.lstat(os.path.join(self.spool_dir, name))
                except OSError:
                    continue
                if mark is None or not mark.matches(st):
                    self._add_document(int(m[1]), int(m[2]), name, None)
        for job_id in {d.job_id for d in self._docs}:
            self._read_control(f"c{job_id:05d}", self._jobs[job_id])

    # --- the report thread: hash, inspect, report ---------------------------------------------

    def _report(self) -> None:
        while True:
            item = self._ready.get()
            if item is None:
                break
            doc, job = item
            try:
                self._report_document(doc, job)
            except Exception:  # contain: the next job is reported all the same
                logger.exception("print document not reported job={}", doc.job_id)
            finally:
                if doc.fd is not None:
                    os.close(doc.fd)
        if self._inspector is not None:
            self._inspector.close()

    def _report_document(self, doc: _Document, job: _Job) -> None:
        facts = job_facts(doc, job.attrs)
        text, raw = readable(doc.path)
        fields: dict = dict(path=text, path_b64=raw, egress="printer")
        user = facts.pop("user", None)
        if user:
            fields["user"] = user
            facts["user_from"] = "cups"  # job-originating-user-name, as cupsd recorded it
        if job.attrs_error:
            facts["attributes_error"] = job.attrs_error
        mark = None
        if doc.fd is None:
            fields["detections"] = (doc.why_unread,)
        else:
            digest = self.hasher.digest_fd(doc.fd)
            inspection = self._inspect(
                doc.fd, str(facts.get("document") or facts.get("title") or os.path.basename(doc.path))
            )
            fields.update(size=digest.size, sha256=digest.sha256)
            fields.update(content_fields(self.index, digest, inspection))
            mark = FileMark.of(doc.path, doc.st, digest.sha256)
        fields["details"] = {**(fields.get("details") or {}), **facts}
        event = self.make_event("egress.file", **fields)
        self.spool.put([event], [mark] if mark else [])
        self.reported += 1
        logger.info(
            "print job reported job={} document={} printer={!r} rules={}",
            doc.job_id,
            doc.number,
            facts.get("printer"),
            event.rule_ids,
        )

    def _inspect(self, fd: int, name: str) -> Inspection:
        if self._inspector is None:
            self._inspector = self._make_inspector()
        return self._inspector.inspect(fd, name)


def job_facts(doc: _Document, attrs: Attributes) -> dict:
    """The event's details of a printed document: what cupsd recorded of its job."""
    printer_uri = first(attrs, "job-printer-uri", "printer-uri")
    printer = printer_name(printer_uri) if isinstance(printer_uri, str) else None
    pages = first(attrs, "job-impressions-completed", "job-impressions", "job-media-sheets-completed")
    facts = {
        "printer": printer,
        "app": printer,  # the rule field `app`: which printer
        "job_id": doc.job_id,
        "document_number": doc.number,
        "user": first(attrs, "job-originating-user-name"),
        "title": first(attrs, "job-name"),
        "document": first(attrs, "document-name-supplied"),
        "format": first(attrs, "document-format", "document-format-detected", "document-format-supplied"),
        "pages": pages if isinstance(pages, int) and not isinstance(pages, bool) and pages > 0 else None,
        "copies": first(attrs, "copies"),
        "origin_host": first(attrs, "job-originating-host-name"),
    }
    return {k: v for k, v in facts.items() if isinstance(v, (int, str)) and v != ""}


def printer_name(uri: str) -> str:
    """The queue's name in a printer URI: ipp://host/printers/NAME (or /classes/NAME)."""
    for marker in ("/printers/", "/classes/"):
        if marker in uri:
            return uri.rsplit(marker, 1)[1].split("?", 1)[0].strip("/") or uri
    return uri


def _events(buf: bytes):
    """(mask, cookie, name) of each inotify event in one read."""
    pos = 0
    while pos + _EVENT.size <= len(buf):
        _wd, mask, cookie, length = _EVENT.unpack_from(buf, pos)
        name = buf[pos + _EVENT.size : pos + _EVENT.size + length].split(b"\0", 1)[0]
        pos += _EVENT.size + length
        yield mask, cookie, os.fsdecode(name)
