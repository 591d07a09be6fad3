"""The pipeline worker: turns file system changes into events.

One thread drains the watchers' queue. Classified-folder changes keep the fingerprint index
current and become file.* events. Files in egress places are reported once they are complete
(a close-after-write, or size and mtime holding still for `stable_s`: close events alone are
not delivered for every file of a bulk copy): each is opened once here and its descriptor handed
to a lane (agent/lanes.py) that hashes it and has an unprivileged worker inspect it; the results
come back here to be looked up in the index (agent/classify.py) and reported. Fail closed: a
file written and gone, swapped or unreadable before it was read, and a folder that cannot be
walked or watched, are reported with the reason. Every event is stamped by the rules in force
(rule ids, severity, policy version) just before it is spooled.

Only this thread touches the outbox and the spool's marks: `stop()` waits for it, and it spools
what is left itself before it ends.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import os
import queue
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from loguru import logger

from agent.attribution import WriterTracker, owners_kept
from agent.classify import content_fields
from agent.content.chunks import Prefilter
from agent.content.inspect import Inspection
from agent.hashing import FileDigest, Hasher
from agent.index import FingerprintIndex, IndexedFile
from agent.inspector import InProcessInspector, open_regular
from agent.lanes import Done, Inspector, Job, Lanes
from agent.outbox import Outbox
from agent.paths import is_under, readable
from agent.places import EgressPlace, EgressPlaces
from agent.spool import FileMark, Spool, placed_by_inode
from agent.walk import FILE_FLAGS, PATH_MAX, Unwalkable, lstat, walk_files
from agent.watcher import DRAIN_END, BlindSpot, FsChange
from rules.events import Detection, Event

try:  # the re-check's lstats of many files in one call (agent/_restat.c)
    from agent import _restat
except ImportError:  # built without it: one os.lstat a file
    _restat = None

QUEUE_MAX = 200_000
REPORTED_KEEP_S = 900.0  # how long a report's time is kept to recognise changes it already covered
TICK_S = 0.05
IDLE_TICK_S = 0.5  # with nothing pending, a change still wakes the worker at once; only timers wait this long
STEP_RETRY_S = 1.0  # the pause after a failed step (a spool write that failed is tried again then)
STOP_FLUSH_ATTEMPTS = 3
MAX_BLIND_REPORTS = 100  # folders not seen into, reported per walk or step (the rest logged)
BLIND_RESCAN_S = 10.0  # how often a folder that cannot be watched is walked instead
MAX_UNWATCHED = 1000
STOP_DRAIN_S = 5.0  # how long a stop goes on reporting complete egress files
# A file reported from an egress place is stat'ed again for RECHECK_FOR_S after: writes through a
# shared mapping kept open after the close, or through a hard link from outside the place, send
# the place no inotify event, but they change the file's times. A change found so is a write seen
# (hashed and reported again); the reconcile (reconcile_s) finds the rest later. A file is looked
# at again after an eighth of its report's age (RECHECK_BACKOFF), at least RECHECK_S and at most
# RECHECK_MAX_GAP_S later: every second in its first 8 s, every 30 s from its fourth minute, some
# 150 looks in an hour instead of 3,600; a look every second for ten minutes cost a 10,000-file
# copy 15 CPU s and 2.5% of a core afterwards. MAX_RECHECKED files at most (the oldest reports
# dropped first). The files a step reported are due together and looked at together (one item of
# _recheck_due, one agent._restat call): a look cost 6.7 CPU µs a file when each was an item and an
# os.lstat of its own, more in the hour after a flat burst than the burst itself (docs/benchmarks.md).
RECHECK_S = 1.0
RECHECK_BACKOFF = 1 / 8
RECHECK_MAX_GAP_S = 30.0
RECHECK_FOR_S = 3600.0
MAX_RECHECKED = 10_000
_GONE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})  # a look's lstat: nothing there to look at any more
JOIN_S = 0.1  # files reported in one step within this long of its first report are due with it
FAST_LOOKS = True  # False: each file re-checked is lstat'ed here in Python (the reference; agent/_restat.c)
# Once its looks are more than RECHECK_S apart (a report 8 s old), a file re-checked is also watched
# on its own (Folders.watch_file: inotify on its inode) until its RECHECK_FOR_S end: a write
# through a hard link from outside the place then says itself at once, where the looks could miss a
# drawing left there less than the gap (up to RECHECK_MAX_GAP_S). A write through a mapping sends
# no event: the looks stay. A file pushed out of the newest MAX_RECHECKED keeps (or gets) its watch,
# and is looked at every RECHECK_MAX_GAP_S. At most FILE_WATCH_SHARE of the system's inotify watches
# (the folders need theirs) and MAX_FILE_WATCHES; a file that cannot be watched when it is pushed
# out, or whose watch is pushed out by newer ones, has its place walked every RECHECK_MAX_GAP_S until
# its end instead (the walk finds a file unlike its spool mark, as the reconcile does).
# A walk of a place took 3-30 CPU µs a file here (the walk, an lstat and the spool's mark of each):
# walks of a place of many files are spaced to take about 1% of a core at the dearest (a place of
# 100,000 files every 250 s)
FILE_WATCH_SHARE = 1 / 8
MAX_FILE_WATCHES = 40_000
WALK_GAP_PER_FILE_S = 0.0025
MAX_USER_WATCHES = "/proc/sys/fs/inotify/max_user_watches"
# While files are in the lanes or waiting for them (a burst), a step first lets this long's changes
# and results gather: a flat burst of 2,000 files took some 70 steps, not 120-210, so what a step
# costs whatever its size (the index's query of the step's digests, the lanes' wake-up, the
# threads' hand-overs of the GIL) is paid a third as often. A lone change, with nothing in flight,
# is handled at once; a burst's events wait at most this much longer. 0: a step as soon as a change
# comes (the reference; test_pipeline_gather)
BURST_GATHER_S = 0.02

# True: the index is asked once for all the results of a step which of their digests it holds
# (index.known_sha256), and only those are looked up; False: each result is looked up alone (the
# reference; test_pipeline_lookup compares the two)
FAST_LOOKUP = True

# True: an egress path short enough for one system call is lstat'ed and opened with os.stat and
# os.open themselves, not through agent.walk's any-length helpers (their encoding, closure and
# calls, and open_regular's second fstat: some 3 µs a file of a burst, three times); False: the
# helpers always (the reference; test_pipeline_stat compares the two)
FAST_STAT = True
_SHORT = PATH_MAX // 4  # characters: at most 4 bytes each once encoded, so under PATH_MAX bytes

# True: a hashed file whose digest the index does not hold and whose inspection traces it nowhere
# (an opaque file of a burst) is reported from one dict, its writer looked up once; False: every
# file through content_fields and two writer look-ups (the reference; test_pipeline_burst
# compares the events of both)
FAST_BURST = True

# True: a closed write lstat'ed by the step that handles its changes is opened by that step's
# hand-over on that lstat (the open's fstat must show the same inode), not lstat'ed a second time;
# anything else (an older lstat, an open that fails or finds another file) takes the reference's
# path, which lstats again; False: the hand-over always lstats (the reference; test_pipeline_restat
# compares the two)
FAST_RESTAT = True

# A file still changing (size or mtime) at every look, with no close, is put off by stable_s each
# time; after UNSETTLED_WAITS such waits it is hashed and reported as it is then (as read, even if
# it changed meanwhile), said as still being written (details.still_written); a report of the same
# content as the last is kept quiet. The wait before the next such report doubles while the file
# grows (a recording to a stick is read about twice over in all), up to MAX_UNSETTLED_WAIT_S, and is
# the first wait again for a file rewritten in place (a loop rewriting a byte of a drawing every 50
# ms, or of a harmless file for an hour before the drawing goes in, does not keep it unread). The
# waits are kept for MAX_UNSETTLED files, the newest.
UNSETTLED_WAITS = 20
# A reported file changed since its report (a re-check's change: a write through a hard link from
# outside, a mapping kept open) and kept changing is read the first time after PEEK_WAITS waits,
# each later time after twice the wait before, up to the first wait above: a drawing written into
# an uploaded file and kept changing for less than the first wait, then changed back, was never
# read. A file new to the place waits the first wait, as before (a copy in progress is no suspect)
PEEK_WAITS = 2
MAX_UNSETTLED_WAIT_S = 600.0
MAX_UNSETTLED = 10_000

_WRITES = frozenset({"created", "modified", "closed"})  # changes of one file that coalesce (see _handle_held)
_TOUCHED = frozenset({"touched", "touched-closed"})  # a change of a file watched on its own (_touched)

# Where a pending egress file came from. Only a scan or a rename may be skipped because the
# spool's marks say the file was reported: a write always re-hashes and reports.
WRITE, SCAN, RENAME = "write", "scan", "rename"
# A change a look or the file's own watch found (no write seen in the place): reported only when the
# content is not what was reported, since an xattr, a chmod or a new hard link change the ctime alone
# (a sync client tagging each file it uploads would otherwise have every file reported twice)
RECHECK = "recheck"
# Origins of a file written (a write seen in the place, or a change found by a look or its own
# watch): gone or replaced before it could be read, it is said so
_WRITTEN = (WRITE, RECHECK)


@dataclass
class _Pending:
    place: EgressPlace
    due_at: float
    size: int = -1
    mtime_ns: int = -1
    closed: bool = False
    origin: str = WRITE
    seen: os.stat_result | None = None  # the last stat of a write seen: what is known if it vanishes
    unseen_write: bool = False  # a write was seen that no stat caught (the file was gone first)
    wrote: bool = False  # data was written (a modify or a move in), not only created and closed
    seen_step: int = -1  # the step that took `seen` (FAST_RESTAT); -1: none
    unsettled_since: float = -1.0  # when a look first found it still changing (-1: not yet)
    forced: bool = False  # handed while still changing (UNSETTLED_WAITS): its report says so
    # a re-check's look found the data as reported (size, mtime, inode) and another name of the file
    # (a hard link, outside the place or in it): gone before it was read, it took nothing away
    linked_as_reported: bool = False


@dataclass
class _Reindex:
    due_at: float
    forced: bool  # a write was seen: re-hash even if size, times and inode look the same


class Pipeline:
    def __init__(
        self,
        index: FingerprintIndex,
        spool: Spool,
        places: EgressPlaces,
        make_event: Callable[..., Event],
        stamp: Callable[[Event], Event],
        stable_s: float = 0.5,
        hasher: Hasher | None = None,
        clock: Callable[[], float] = time.monotonic,
        make_inspector: Callable[[], Inspector] = InProcessInspector,
        writers: WriterTracker | None = None,
        reconcile_s: float = 900.0,
    ):
        self.index, self.spool, self.places = index, spool, places
        self._last_prefilter: Prefilter | None = None  # what _prefilter read last
        # true type and detections (markings, identifiers) of a file, from its one descriptor:
        # one inspector per lane and one for classified changes (the agent wires worker processes)
        self.inspector = make_inspector()  # classified files: their inspection and the index's fingerprints
        self.writers = writers or WriterTracker()  # which process wrote an egress file, best effort
        self.make_event = make_event
        self.stamp = stamp  # the rules in force (agent.policy.PolicyStore.stamp): swapped by reference
        self.stable_s = stable_s
        # every egress place is rescanned this often: whatever the events missed is reported then
        self.reconcile_s = reconcile_s
        self._reconciled_at = clock()
        self.hasher = hasher or index.hasher
        self.lanes = Lanes(self.hasher, make_inspector)
        self._results: deque[Done] = deque()  # from the lanes, not yet in the outbox
        self.clock = clock
        self.changes: queue.SimpleQueue[FsChange] = _Changes()
        self._held: deque[FsChange] = deque()  # drained from changes, not yet handled
        self._egress: dict[str, _Pending] = {}
        # egress path -> when (time.monotonic) it was last looked at to be reported: a change
        # received before then was already in what was hashed (a bulk copy's queued events)
        self._reported_at: dict[str, float] = {}
        # path -> (clock() until which it is looked at again, size, mtime_ns, ctime_ns, inode, when
        # reported, when due) of files reported; _recheck_due: (when due, a tie-breaker, paths), the
        # soonest first: the files due together (reported in one step, looked at in one pass) are one
        # item, so a burst's looks cost a heap operation a step's files, not one a file (a path whose
        # entry is no longer due then is passed over)
        self._recheck: dict[str, tuple[float, int, int, int, int, float, float]] = {}
        self._recheck_due: list[tuple[float, int, list[str]]] = []
        self._due_order = itertools.count()
        self._joining: tuple[int, float, float, list[str]] | None = None  # (step, when, due, paths) of its reports
        self._files = None  # the watchers' watch_file and unwatch_file (watch_files_with); None: looks only
        self._file_watched: set[str] = set()  # files re-checked that are watched on their own too
        # files pushed out of _recheck, watched on their own only (same entries), the oldest first
        self._watch_only: dict[str, tuple[float, int, int, int, int, float, float]] = {}
        self._max_file_watches = 0
        self._walk_soon: dict[str, tuple[float, float]] = {}  # place root -> (next walk, walked until then)
        self._walked: dict[str, int] = {}  # a root of _walk_soon -> the files its last walk found
        # path reported still changing -> (the wait before its next such report, its size then)
        self._unsettled_wait: dict[str, tuple[float, int]] = {}
        self._pruned_at = 0.0
        self._classified: dict[str, _Reindex] = {}  # path -> when to re-index it
        self._scans: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._overflows: dict[str, int] = {}  # reason -> how many times
        self._blind: list[BlindSpot] = []  # folders the watchers could not watch, to report
        self._unwatched: dict[str, float] = {}  # folder the watchers could not watch -> when to walk it next
        self._overflow_lock = threading.Lock()
        self._outbox = Outbox(spool, stamp, make_event)  # events and their marks, spooled together
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline", daemon=True)
        self._stepped_at = time.time()  # wall time the worker last finished a step (heartbeats carry it)
        self._steps = 0  # steps begun: an lstat of this step may serve its hand-over (FAST_RESTAT)

    # --- called from other threads -------------------------------------------------------

    def start(self) -> None:
        self.writers.start()
        self.lanes.start()
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the worker; it spools what it holds before it ends. Never flushes beside it."""
        self._stop.set()
        self.writers.stop()
        if self._thread.ident is None:  # never started: nobody else touches the outbox
            self._outbox.flush()
            self.inspector.close()
            return
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.error(
                "pipeline did not stop in time timeout_s={} events_not_spooled={}", timeout_s, self._outbox.events_waiting()
            )

    def watch_files_with(self, watchers) -> None:
        """Watch the files re-checked on their own through `watchers` (agent.watcher.Folders):
        see FILE_WATCH_SHARE; and keep each place whose folder they stop watching until the
        changes still on their way from it are handled (their DRAIN_END). Called before start."""
        self._files = watchers
        watchers.on_drain = self.places.hold
        self._max_file_watches = min(MAX_FILE_WATCHES, int(_max_user_watches() * FILE_WATCH_SHARE))

    def on_overflow(self, reason: str) -> None:
        """Events were lost (our queue or the kernel's): report it and rescan everything."""
        with self._overflow_lock:
            self._overflows[reason] = self._overflows.get(reason, 0) + 1

    def on_blind(self, spot: BlindSpot) -> None:
        """A folder the watchers cannot watch (called from their thread): reported by the worker."""
        with self._overflow_lock:
            self._blind.append(spot)

    def scan(self, root: str) -> None:
        """Look at every file under an egress root (new mount, start, after an overflow)."""
        self._scans.put(root)

    def submit_opened(self, path: str, fd: int, st: os.stat_result, place: EgressPlace) -> bool:
        """A file written to a place the agent cannot open itself (a user's FUSE mount, opened by
        its owner: agent/usermounts.py), handed to the lanes as a write; False when they take no
        more now (the caller keeps fd). Safe from another thread: the lanes' queues are."""
        pending = _Pending(place, self.clock(), closed=True, origin=WRITE, seen=st, wrote=True)
        return self.lanes.submit(Job(path, fd, st, (pending, None), prefilter=self._last_prefilter))

    def progress(self) -> dict:
        """What heartbeats say of the worker: when it last finished a step (wall time, UTC
        seconds) and how much waits for it, so the collector can tell a stalled pipeline from a
        quiet one while heartbeats go on."""
        stuck = self.lanes.stuck_since()  # a lane that stopped moving stalls the pipeline as surely
        return {
            "stepped_at": self._stepped_at if stuck is None else min(self._stepped_at, stuck),
            "queued": self.changes.qsize() + len(self._held) + len(self._egress) + len(self._classified) + len(self.lanes.in_flight),
        }

    # --- the worker thread --------------------------------------------------------------

    def _run(self) -> None:
        failing: set[str] = set()  # failure kinds already reported by an agent.error
        while not self._stop.is_set():
            try:
                self._step()
                self._stepped_at = time.time()
                if failing:
                    logger.info("pipeline recovered")
                    failing.clear()
            except Exception as exc:  # contain: one bad file or a full disk must not stop watching
                kind = type(exc).__name__
                logger.exception("pipeline step failed error={!r}", kind)
                if kind not in failing:  # one event per kind of failure, not one per second
                    failing.add(kind)
                    self._emit("agent.error", error=f"pipeline step failed ({kind}); see the agent log")
                self._stop.wait(STEP_RETRY_S)
        try:
            self._drain(time.monotonic() + STOP_DRAIN_S)
        except Exception:  # the spool: what is left is spooled below, or counted as lost
            logger.exception("reporting at stop failed")
        self.lanes.stop()
        self.inspector.close()
        self._last_flush()

    def _drain(self, deadline: float) -> None:
        """At stop, report the egress files already complete, for a while: what is left then is
        found again by the scan at the next start (it has no mark in the spool)."""
        while time.monotonic() < deadline:
            self._take_results()
            now = self.clock()
            if not any(p.due_at <= now for p in self._egress.values()) and not self.lanes.in_flight:
                return
            self._check_egress()
            time.sleep(TICK_S / 5)

    def _last_flush(self) -> None:
        for attempt in range(STOP_FLUSH_ATTEMPTS):
            try:
                self._outbox.flush()
                return
            except Exception as exc:
                logger.error("spooling at stop failed attempt={} error={!r}", attempt + 1, str(exc))
                time.sleep(0.2)
        logger.error("events lost at stop count={}", self._outbox.events_waiting())

    def _step(self) -> None:
        self._steps += 1
        if BURST_GATHER_S and (self.lanes.in_flight or self._egress):
            self._stop.wait(BURST_GATHER_S)
        try:
            self._held.append(self.changes.get(timeout=TICK_S if self._busy() else IDLE_TICK_S))
            for _ in range(1000):  # drain what is already queued before the slower checks
                self._held.append(self.changes.get_nowait())
        except queue.Empty:
            pass
        self._prefilter()  # each step: what another thread's submit_opened gives its jobs stays current
        self._handle_held()
        self._handle_overflows()
        self.inspector.close_if_idle()
        self._reconcile()
        self._recheck_reported()
        self._run_scans()
        self._check_classified()
        self._take_results()
        self._check_egress()
        # raises when the spool fails: the loop waits and comes back
        self._outbox.flush_when_due(busy=bool(self._egress or self.lanes.in_flight or self._held or self.changes.qsize()))

    def _busy(self) -> bool:
        """Something waits for a timer or a lane (checked every TICK_S), not only for a change."""
        waiting = self._held or self._egress or self._classified or self.lanes.in_flight or self._results or len(self._outbox)
        return bool(waiting or not self._scans.empty() or self._overflows or self._blind or self._unwatched)

    def _handle_held(self) -> None:
        """Handle the changes drained this step, in order. A file's run of writes (created,
        modified, closed one after another, as a copy makes them) is handled as one change: one
        lstat, one look for its writer, one look-up of its place, instead of one per change. A
        run that fails is lost like a single change was; the rest stay for the next step."""
        held = self._held
        while held:
            change = held.popleft()
            if change.kind not in _WRITES or change.is_dir:
                self._handle(change)
                continue
            run = [change]
            while held and held[0].path == change.path and held[0].kind in _WRITES and not held[0].is_dir:
                run.append(held.popleft())
            if len(run) == 1:
                self._handle(change)
            else:
                self._handle_writes(run)

    def _handle_writes(self, run: list[FsChange]) -> None:
        """Consecutive created/modified/closed changes of one file: what handling them one by one
        leaves (the pending file closed if any was a close, written if any a modify; its writer
        looked for if any came before a close), with one stat and one place look-up."""
        path = run[0].path
        if self.index.folder_for(path):
            self._reindex(path, forced=True)
            return
        place, gone = self._place_of(path, run[0].at, run[0].drained)
        if place is None:
            return
        reported_at = self._reported_at.get(path, -1.0)
        run = [c for c in run if c.at > reported_at]  # the others report writes already hashed
        if not run:
            return
        kinds = {c.kind for c in run}  # one pass, not three any()s: once for every file of a burst
        if gone:
            self._pend_gone(path, place, closed="closed" in kinds, wrote="modified" in kinds or "closed" not in kinds)
            return
        if kinds != {"closed"}:  # still being written: its writer may hold it open
            self.writers.seen(path, place.root)
        self._pend_egress(path, place, closed="closed" in kinds, wrote="modified" in kinds)

    def _handle(self, change: FsChange) -> None:
        if change.kind == DRAIN_END:  # what was made in that folder before it went is handled
            self.places.release(change.path)
            return
        if change.kind in _TOUCHED:
            self._touched(change)
            return
        if change.kind == "moved":
            self._handle_move(change)
            return
        if self.index.folder_for(change.path):
            if change.kind == "deleted":
                self._classified_deleted(change.path)
            elif change.is_dir:
                self._queue_classified_tree(change.path)
            else:
                self._reindex(change.path, forced=True)
            return
        place, gone = self._place_of(change.path, change.at, change.drained)
        if place is None:
            return
        if gone and change.kind != "deleted":
            if change.is_dir:
                if place.media is not None:  # (a folder place no longer watched keeps its folders)
                    self._report_gone_folder(change.path, place)
            elif change.at > self._reported_at.get(change.path, -1.0):  # else the report covered it
                self._pend_gone(change.path, place, closed=change.kind == "closed", wrote=change.kind != "closed")
            return
        if change.kind == "deleted":
            pending = self._egress.get(change.path)
            if pending is not None and not _still_there(change.path, pending.seen):
                del self._egress[change.path]
                if pending.origin in _WRITTEN:
                    self._report_vanished(change.path, pending, "removed before it could be read")
            # else the file removed is one before the file pending there, which stays pending: a
            # temporary file renamed over it (as zip does), or a file swapped in from outside the
            # place (renameat2's RENAME_EXCHANGE: the name moved in, then the old file moved out)
        elif change.is_dir:
            self.scan(change.path)
        elif change.at > self._reported_at.get(change.path, -1.0):
            if change.kind != "closed":  # still being written: its writer may hold it open
                self.writers.seen(change.path, place.root)
            self._pend_egress(change.path, place, closed=change.kind == "closed", wrote=change.kind == "modified")
        # else: the write it reports happened before the file was looked at and reported

    def _handle_move(self, change: FsChange) -> None:
        src, dest = change.path, change.dest or ""
        src_folder, dest_folder = self.index.folder_for(src), self.index.folder_for(dest)
        if src_folder and dest_folder:
            self._classified_moved(src, dest, change.is_dir)
            return
        if change.drained or change.at <= self.places.removed_at:
            dest_place, dest_gone = (None, False) if dest_folder else self._place_of(dest, change.at, change.drained)
            if dest_gone:  # moved on a medium that went since: said with it, never read from what is there now
                self._egress.pop(src, None)
                if change.is_dir:
                    if dest_place.media is not None:
                        self._report_gone_folder(dest, dest_place)
                else:
                    self._pend_gone(dest, dest_place, closed=True, wrote=True)
                return
        src_place = None if src_folder else self.places.find(src)
        dest_place = None if dest_folder else self.places.find(dest)
        if src_place and dest_place and src_place.root == dest_place.root:
            self._egress_renamed(src, dest, dest_place, change.is_dir)
            return
        if src_folder:  # moved out of the classified folder: note it; its content stays traceable
            self._classified.pop(src, None)
            gone = self.index.remove_tree(src)
            self._emit_file("file.moved", src, gone[0] if len(gone) == 1 else None, dest=dest, level=src_folder.level)
        elif src_place:
            self._egress.pop(src, None)
        if dest_folder:
            if change.is_dir:
                self._queue_classified_tree(dest)
            else:
                self._reindex(dest, forced=True)
        elif dest_place:
            if change.is_dir:
                self.scan(dest)
            else:
                self._pend_egress(dest, dest_place, closed=True, wrote=True)

    # --- classified folders ---------------------------------------------------------------

    def _reindex(self, path: str, forced: bool) -> None:
        known = self._classified.get(path)
        self._classified[path] = _Reindex(self.clock() + self.stable_s, forced or bool(known and known.forced))

    def _queue_classified_tree(self, folder: str, report: bool = True) -> None:
        problems: list[Unwalkable] = []
        for found in walk_files(folder, problems):
            self._reindex(os.fsdecode(found.path), forced=False)
        if report:
            self._report_unwalkable(problems)

    def _classified_moved(self, src: str, dest: str, is_dir: bool) -> None:
        """A rename within classified folders. Editors save by writing a temporary file and
        renaming it over the document: the index has no row for the temporary file, so the
        destination is always looked at again (re-hashed when it changed)."""
        carried = {p: self._classified.pop(p) for p in [p for p in self._classified if is_under(p, src)]}
        moved = self.index.move(src, dest)
        row = None if is_dir else moved[0] if moved else self._row_of(dest)
        self._emit_file("file.moved", src, row, dest=dest, level=self.index.folder_for(dest).level)
        if is_dir:
            self._queue_classified_tree(dest)
        else:
            self._reindex(dest, forced=False)
        for path, pending in carried.items():  # written but not yet indexed: still to be re-hashed
            self._reindex(dest + path[len(src) :], forced=pending.forced)

    def _row_of(self, path: str) -> IndexedFile | None:
        """The row of the file now at path (a folder's move carried it already), never the row of
        the file a rename replaced."""
        row = self.index.get(path)
        try:
            return row if row is not None and row.inode == lstat(path).st_ino else None
        except OSError:
            return None

    def _classified_deleted(self, path: str) -> None:
        self._classified.pop(path, None)
        gone = self.index.remove_tree(path)  # their content stays traceable (index history)
        folder = self.index.folder_for(path)
        if len(gone) <= 1:
            self._emit_file("file.deleted", path, gone[0] if gone else None, level=folder.level if folder else None)
        else:  # a folder: one event per file it held
            for row in gone:
                self._emit_file("file.deleted", row.path, row, level=row.level)

    def _check_classified(self) -> None:
        now = self.clock()
        for path in [p for p, pend in self._classified.items() if pend.due_at <= now]:
            pending = self._classified.pop(path)
            known = self.index.get(path)
            try:
                row, changed = self.index.update_file(path, force=pending.forced)
            except OSError as exc:
                self._emit_unreadable("file.modified", path, exc)
                continue
            if row is None or not changed:
                continue
            # a state-secret mark in a watched file is its own alert (MW-STATE-SECRET-MARK)
            self._emit_file("file.modified" if known else "file.created", path, row, level=row.level, inspection=self._inspect_path(path))

    # --- egress places --------------------------------------------------------------------

    def _pend_egress(self, path: str, place: EgressPlace, closed: bool = False, wrote: bool = False) -> None:
        """A write was seen: the file is hashed and reported once complete, marks or not.
        `wrote`: data was written (not only created or closed)."""
        pending = self._egress.get(path)
        now = self.clock()
        if pending is None:
            pending = self._egress[path] = _Pending(place, now if closed else now + self.stable_s, closed=closed, unsettled_since=now)
        else:
            pending.closed = pending.closed or closed
            # each write puts it off, but never past the wait of a file still being written (UNSETTLED_WAITS)
            pending.due_at = now if pending.closed else min(now + self.stable_s, self._settle_by(path, pending, now))
            pending.origin = WRITE
        pending.wrote = pending.wrote or wrote
        try:
            pending.seen = _lstat(path)
            pending.seen_step = self._steps
        except OSError:
            pending.unseen_write = True  # gone already: _check_egress reports it with what is known

    def _place_of(self, path: str, at: float, drained: bool) -> tuple[EgressPlace | None, bool]:
        """(the egress place a change of path belongs to, whether it went since): the place there
        now, unless the change was made before a place holding path went (it waited behind a
        flood, or was read from the kernel's queue after the unwatch) and that place is the more
        specific and not there again (the same stick mounted again is). A change after the last
        removal, every change of a burst, asks nothing more than find."""
        place = self.places.find(path)
        if drained or at <= self.places.removed_at:
            gone = self.places.find_gone(path, at, drained)
            if gone is not None and (place is None or len(gone.root) >= len(place.root)) and not self.places.is_current(gone):
                return gone, True
        return place, False

    def _pend_gone(self, path: str, place: EgressPlace, closed: bool, wrote: bool) -> None:
        """A write to a place that went before the pipeline got to it: pending at once, with no
        stat (the path now shows whatever is under the mount point, or another medium), so
        _hand_egress reports it vanished with what is known. `wrote`: data may have been written
        (a modify, or a create with no close after it: a file linked in whole, O_TMPFILE)."""
        pending = self._egress.get(path)
        if pending is None or pending.place is not place:
            pending = self._egress[path] = _Pending(place, self.clock())
        pending.closed = pending.closed or closed
        pending.wrote = pending.wrote or wrote
        pending.origin, pending.due_at, pending.seen, pending.unseen_write = WRITE, self.clock(), None, True

    def _report_gone_folder(self, path: str, place: EgressPlace) -> None:
        """A folder made on a medium that went before its own watch was set: what was written in
        it was never seen, so the folder itself is said."""
        pending = _Pending(place, self.clock(), closed=True, wrote=True, unseen_write=True)
        why = "a folder made on the medium before it was removed: what was written in it was not seen"
        self._report_blind(path, pending, Detection("vanished", 1, why), None)

    def _egress_renamed(self, src: str, dest: str, place: EgressPlace, is_dir: bool) -> None:
        """A rename within one egress place is not a new egress: the marks follow the files, so
        what was reported under the old name is not reported again under the new one. For a file,
        the marks and re-checks of both names go to the name that holds their inode now
        (spool.placed_by_inode): renameat2(RENAME_EXCHANGE) sends two moves, a to b and b to a,
        and moved one after the other they left a with b's mark and b with none."""
        held = None if is_dir else (_inode_at(src), _inode_at(dest))
        self._outbox.rename_marks(src, dest, held, folder=is_dir)
        now = self.clock()
        # a folder carries what is under it, a file only itself: what a name held before an exchange
        # made it the other kind (a file's pending path under it, a file's mark at a folder's name) stays
        inside = (lambda p: p != src and is_under(p, src)) if is_dir else (lambda p: p == src)
        carried = {p: self._egress.pop(p) for p in [p for p in self._egress if inside(p)]}
        for path, pending in carried.items():
            pending.place = place
            pending.origin = RENAME if pending.origin == SCAN else pending.origin
            self._egress[dest + path[len(src) :]] = pending
        if is_dir:
            self.scan(dest)
        elif dest not in self._egress:
            self._egress[dest] = _Pending(place, now, closed=True, origin=RENAME)
        self._carry_rechecks(src, dest, is_dir, now, held)
        self._look_again(src, place, now)
        self.spool.move_reported(src, dest, held, folder=is_dir)

    def _carry_rechecks(
        self, src: str, dest: str, is_dir: bool, now: float, held: tuple[int | None, int | None] | None = None
    ) -> None:
        """The re-checks of reported files follow a rename within their place, as their marks do
        (a folder's files are not reported again, nor is a file whose mark still matches): looked
        at under the new name at once, then as before, their own watches made again there. A file
        renamed is pending meanwhile, so the rename's own change to its ctime is not taken for a write.
        `held` (a file): the inodes the two names hold now; both names' re-checks go where their
        inodes are (spool.placed_by_inode)."""
        dropped: list[str] = []  # re-checked files the rename replaced
        if is_dir:
            moves = [(p, dest + p[len(src) :]) for p in (*self._recheck, *self._watch_only) if p != src and is_under(p, src)]
        elif held is not None:
            entries = {p: self._recheck.get(p) or self._watch_only.get(p) for p in (src, dest)}
            placed = placed_by_inode(src, dest, entries[src], entries[dest], *held, inode=lambda e: e[4])
            moves = [(origin, target) for target, entry in placed.items() for origin in (src, dest) if entries[origin] is entry]
            dropped = [p for p in (src, dest) if entries[p] is not None and all(origin != p for origin, _ in moves)]
        else:
            moves = [(src, dest)] if src in self._recheck or src in self._watch_only else []
        carried = [(self._recheck.get(origin) or self._watch_only[origin], target) for origin, target in moves]
        for path in dropped:
            self._forget(path)
        for origin, target in moves:
            self._forget(origin)
            self._forget(target)  # a file the rename replaced: its watch is on an inode gone from there
        targets = []
        for entry, target in carried:
            if len(self._recheck) >= MAX_RECHECKED:
                self._push_out(next(iter(self._recheck)))
            self._recheck[target] = (*entry[:6], now)
            targets.append(target)
        if targets:
            self._due_at(now, targets)

    def _look_again(self, src: str, place: EgressPlace, now: float) -> None:
        """The old name of a rename holds something again at once: renameat2(RENAME_EXCHANGE)
        swapped two files, or a file and a folder (its two moves each carry the other's pending
        write away), or something was made there. Its marks move to the new name, so a file
        there is looked at as one not reported yet, and a folder is walked. The file is looked at
        once stable_s has passed, as a write would be: an exchange's other move, which brings the
        file's own mark, may come in a later step, and a look before it found no mark there and
        reported the file again."""
        if src in self._egress:
            return
        try:
            st = os.lstat(src)
        except OSError:
            return  # gone, as after any plain rename
        if stat.S_ISDIR(st.st_mode):
            self.scan(src)
        else:
            self._egress[src] = _Pending(place, now + self.stable_s, closed=True, origin=RENAME)

    def _watch_reported(self, path: str, st: os.stat_result) -> None:
        """Look at a file just reported again for a while: see _recheck_reported."""
        recheck = self._recheck
        self._forget(path)  # watched again once this report is old enough (it may be another inode)
        if len(recheck) >= MAX_RECHECKED:
            self._push_out(next(iter(recheck)))  # its entry in _recheck_due is passed over when due
        now = self.clock()
        joining = self._joining
        if joining is not None and joining[0] == self._steps and now - joining[1] < JOIN_S:
            due = joining[2]  # due with the step's first report: looked at that much sooner, never later
            joining[3].append(path)
        else:
            due = now + RECHECK_S
            self._joining = (self._steps, now, due, [path])
            self._due_at(due, self._joining[3])
        recheck[path] = (now + RECHECK_FOR_S, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, now, due)
        if len(self._recheck_due) > 4 * MAX_RECHECKED + len(self._watch_only):  # items passed over pile up
            self._regroup_due()

    def _due_at(self, due: float, paths: list[str]) -> None:
        heapq.heappush(self._recheck_due, (due, next(self._due_order), paths))

    def _regroup_due(self) -> None:
        """_recheck_due made again from the entries: one item for the files due at one time."""
        due_together: dict[float, list[str]] = {}
        for path, entry in (*self._recheck.items(), *self._watch_only.items()):
            due_together.setdefault(entry[6], []).append(path)
        self._recheck_due = [(due, next(self._due_order), paths) for due, paths in due_together.items()]
        heapq.heapify(self._recheck_due)
        self._joining = None

    def _recheck_reported(self) -> None:
        """lstat the files reported in the last RECHECK_FOR_S that are due (RECHECK_BACKOFF; every
        step asks, and a step with none due looks at the soonest only): one whose size, times or
        inode changed without an event (a write through a mapping kept open after the close, or
        through a hard link from outside the place) is pending as a write seen, so it is hashed
        and reported again, once it stays the same. The files due together are looked at
        together, and stay together: due again after the gap of the newest report among them."""
        now = self.clock()
        while self._watch_only and next(iter(self._watch_only.values()))[0] < now:
            self._forget(next(iter(self._watch_only)))
        due_list = self._recheck_due
        if not due_list or due_list[0][0] > now:
            return
        popped = []
        while due_list and due_list[0][0] <= now:
            popped.append(heapq.heappop(due_list))
        if self._joining is not None and any(self._joining[3] is paths for _, _, paths in popped):
            self._joining = None
        try:
            looked = [self._look_at(due, paths, now) for due, _, paths in popped]
            for kept in looked:  # due again after the loop, so none is looked at twice in a pass
                if kept:
                    self._due_again(kept, now)
        except BaseException:
            # a pass that fails must not take its files' looks with it: the items go back (a file
            # already due again at another time is passed over in them), and the next step looks
            for item in popped:
                heapq.heappush(due_list, item)
            raise

    def _look_at(self, due: float, paths: list[str], now: float) -> list[tuple[str, tuple]]:
        """Look at the files due at `due` (those of paths whose entry says so); the ones still
        re-checked after the look, with their entries. The lstats are one call of agent._restat
        where it is built (FAST_LOOKS), which names the files it found changed or could not lstat:
        those are looked at again here, as every file is without it (the reference)."""
        recheck, watch_only, egress, in_flight = self._recheck, self._watch_only, self._egress, self.lanes.in_flight
        kept: list[tuple[str, tuple]] = []
        looked, entries = [], []
        for path in dict.fromkeys(paths):  # a path twice in a step's files (reported twice) is looked at once
            entry = recheck.get(path) or watch_only.get(path)
            if entry is None or entry[6] != due:
                continue  # dropped, or reported again since (its own entry is due then)
            if entry[0] < now:
                self._forget(path)
                continue
            if path in egress or path in in_flight:
                kept.append((path, entry))  # a write was seen: it is looked at already
                continue
            looked.append(path)
            entries.append(entry)
        again = range(len(looked)) if not FAST_LOOKS or _restat is None else _restat.changed(looked, entries)
        if not again:
            kept.extend(zip(looked, entries, strict=True))
        elif len(again) < len(looked):
            skip = set(again)
            kept.extend(item for i, item in enumerate(zip(looked, entries, strict=True)) if i not in skip)
        for i in again:
            path, entry = looked[i], entries[i]
            try:
                st = _lstat(path)  # (a path past PATH_MAX too: os.lstat's ENAMETOOLONG dropped its looks)
            except OSError as exc:
                if exc.errno in _GONE:
                    self._forget(path)  # gone: its removal is an event of its own
                else:  # (refused, an I/O error): looked at again at its next time, not dropped
                    kept.append((path, entry))
                continue
            if not self._changed_since_report(path, entry, st):
                kept.append((path, entry))
        return kept

    def _due_again(self, kept: list[tuple[str, tuple]], now: float) -> None:
        """The files looked at together due again: a file pushed out of the newest (_watch_only)
        every RECHECK_MAX_GAP_S, the others together, after the gap of the newest report among
        them (its age times RECHECK_BACKOFF, between RECHECK_S and RECHECK_MAX_GAP_S)."""
        recheck, watch_only, watched = self._recheck, self._watch_only, self._file_watched
        rechecked = kept  # none pushed out of the newest while fewer than MAX_RECHECKED were reported
        if watch_only:
            rechecked = []
            for path, entry in kept:
                if path in watch_only:  # pushed out of the newest: looked at every RECHECK_MAX_GAP_S
                    watch_only[path] = (*entry[:6], now + RECHECK_MAX_GAP_S)
                    self._due_at(now + RECHECK_MAX_GAP_S, [path])
                else:
                    rechecked.append((path, entry))
        if not rechecked:
            return
        newest = max(entry[5] for _, entry in rechecked)
        gap = min(RECHECK_MAX_GAP_S, max(RECHECK_S, (now - newest) * RECHECK_BACKOFF))
        due, paths = now + gap, []
        for path, entry in rechecked:
            if gap > RECHECK_S and path not in watched and self._watch_file(path, entry) is False:
                continue  # changed before its watch was on: pending as a write seen
            recheck[path] = (*entry[:6], due)
            paths.append(path)
        if paths:
            self._due_at(due, paths)

    def _recheck_found(self, path: str, st: os.stat_result, mark: FileMark) -> None:
        """A walk found a file as its spool mark says (the walk at start, after a restart: re-checks
        live in memory only): one reported less than RECHECK_FOR_S ago (the mark's time; a mark of an
        older agent has none, so the file's last change, its ctime) is re-checked (and watched) for
        what is left of that time, the looks spaced as for a report of that age; the first is at once."""
        if path in self._recheck or path in self._watch_only:
            return
        age = time.time() - (mark.reported_at if mark.reported_at is not None else st.st_ctime_ns / 1e9)
        if not 0 <= age < RECHECK_FOR_S:
            return
        if len(self._recheck) >= MAX_RECHECKED:
            self._push_out(next(iter(self._recheck)))
        now = self.clock()
        reported = now - age
        self._recheck[path] = (reported + RECHECK_FOR_S, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, reported, now)
        self._due_at(now, [path])

    def _changed_since_report(self, path: str, entry: tuple, st: os.stat_result, closed: bool = False) -> bool:
        """Whether the file re-checked at path changed since its report (size, times or inode): if
        so it is re-checked no more, and pending as a write seen, without its close unless
        `closed` (hashed once it has stayed the same for stable_s, so a file a program keeps
        writing through a mapping is not hashed every second)."""
        if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == entry[1:5]:
            return False
        self._forget(path)
        place = self.places.find(path)
        if place is not None and stat.S_ISREG(st.st_mode):
            seen = path in self._egress  # a write seen in the place already: reported whatever it holds
            self._pend_egress(path, place, closed=closed, wrote=True)
            if not seen:
                pending = self._egress[path]
                pending.origin = RECHECK
                data_as_reported = (st.st_size, st.st_mtime_ns, st.st_ino) == (entry[1], entry[2], entry[4])
                pending.linked_as_reported = data_as_reported and st.st_nlink > 1
                if pending.linked_as_reported:  # read at once: a write through the other name then is
                    pending.due_at = self.clock()  # read with it (this look took the file's own watch away)
        return True

    def _watch_file(self, path: str, entry: tuple) -> bool | None:
        """Watch a file re-checked on its own (FILE_WATCH_SHARE), where it can be: True watched
        (or watched already), None not (no watchers, out of watches, gone or replaced), False when
        it changed since its report (the lstat taken once the watch is on it says so: pending).
        The oldest watch kept after its looks ended makes way for it."""
        if path in self._file_watched:
            return True
        if self._files is None or self._max_file_watches <= 0:
            return None
        if path in self._egress or path in self.lanes.in_flight:
            return None  # being looked at (a write or a rename seen): its report says what it is now
        if len(self._file_watched) >= self._max_file_watches:
            if not self._watch_only:
                return None
            oldest = next(iter(self._watch_only))
            self._walk_place_soon(oldest, self._watch_only[oldest][0])
            self._forget(oldest)
        st = self._files.watch_file(path)
        if st is None:
            return None
        self._file_watched.add(path)
        return not self._changed_since_report(path, entry, st)

    def _push_out(self, path: str) -> None:
        """The oldest file re-checked makes way for a newer report: its own watch (see
        FILE_WATCH_SHARE) and a look every RECHECK_MAX_GAP_S (a write through a mapping sends the
        watch nothing), or else walks of its place until its end."""
        entry = self._recheck.pop(path)
        watched = self._watch_file(path, entry)
        if watched:
            due = max(entry[6], self.clock() + RECHECK_MAX_GAP_S)
            self._watch_only[path] = (*entry[:6], due)
            self._due_at(due, [path])
        elif watched is None:
            self._walk_place_soon(path, entry[0])

    def _walk_place_soon(self, path: str, until: float) -> None:
        """Walk the place of path every RECHECK_MAX_GAP_S until `until` (a file there is no longer
        looked at nor watched before its end)."""
        place = self.places.find(path)
        if place is None:
            return
        next_at, last = self._walk_soon.get(place.root, (self.clock() + RECHECK_MAX_GAP_S, 0.0))
        self._walk_soon[place.root] = (next_at, max(last, until))

    def _walk_places_due(self) -> None:
        now = self.clock()
        for root, (next_at, until) in list(self._walk_soon.items()):
            if next_at > now:
                continue
            if self.places.find(root) is not None:
                self.scan(root)
            gap = max(RECHECK_MAX_GAP_S, self._walked.get(root, 0) * WALK_GAP_PER_FILE_S)
            if now + gap > until or self.places.find(root) is None:
                del self._walk_soon[root]
                self._walked.pop(root, None)
            else:
                self._walk_soon[root] = (now + gap, until)

    def _touched(self, change: FsChange) -> None:
        """A file watched on its own was written (by any name: a hard link from outside the
        place), linked, closed after a write or had its times set: looked at now, as the re-check
        would (a close after a write makes it due at once)."""
        path = change.path
        if self._files is not None:
            self._files.touch_taken(path)  # before the look: a change after it is said again
        entry = self._recheck.get(path) or self._watch_only.get(path)
        if entry is None:
            self._unwatch_file(path)
            return
        if path in self._egress or path in self.lanes.in_flight:
            return  # a write was seen: it is looked at already
        try:
            st = _lstat(path)
        except OSError as exc:
            if exc.errno in _GONE:
                self._forget(path)
            return  # else its next look tries again
        if st.st_ino != entry[4]:  # another file there now: the place's own changes say it
            self._forget(path)
            return
        self._changed_since_report(path, entry, st, closed=change.kind == "touched-closed")

    def _forget(self, path: str) -> None:
        """Re-check the file at path no more (nor watch it on its own)."""
        self._recheck.pop(path, None)
        self._watch_only.pop(path, None)
        if path in self._file_watched:
            self._unwatch_file(path)

    def _unwatch_file(self, path: str) -> None:
        self._file_watched.discard(path)
        if self._files is not None:
            self._files.unwatch_file(path)

    def _rescan_unwatched(self) -> None:
        """A folder that cannot be watched (past PATH_MAX, out of inotify watches) is walked by
        descriptor every BLIND_RESCAN_S: what is written there is found by the walk instead."""
        now = self.clock()
        for folder, due in list(self._unwatched.items()):
            if due > now:
                continue
            self._unwatched[folder] = now + BLIND_RESCAN_S
            if self.index.folder_for(folder):
                self._queue_classified_tree(folder, report=False)
            elif self.places.find(folder) is not None:
                self._scans.put(folder)
            else:  # no longer watched at all (unmounted, or the place removed)
                del self._unwatched[folder]

    def _reconcile(self) -> None:
        """Events are not trusted alone: now and then every egress place is walked, and a file the
        spool's marks do not show as reported (as it is now) is reported."""
        self._rescan_unwatched()
        self._walk_places_due()
        if self.reconcile_s <= 0 or self.clock() - self._reconciled_at < self.reconcile_s:
            return
        self._reconciled_at = self.clock()
        for place in self.places.all():
            self.scan(place.root)

    def _run_scans(self) -> None:
        while True:
            try:
                root = self._scans.get_nowait()
            except queue.Empty:
                return
            count = walked = 0
            problems: list[Unwalkable] = []
            for found in walk_files(root, problems):  # by descriptor: any depth, no link followed
                path = os.fsdecode(found.path)
                place = self.places.find(path)
                walked += 1
                if place is not None and path not in self._egress:
                    self._egress[path] = _Pending(place, self.clock(), origin=SCAN)
                    count += 1
            if root in self._walk_soon:  # only a place walked for want of a watch spaces its walks by it
                self._walked[root] = walked
            self._report_unwalkable(problems)
            logger.debug("scanned egress root={!r} files={}", root, count)

    def _check_egress(self) -> None:
        """Hand complete egress files to the lanes: each is opened once here (no symlink, no
        blocking, a regular file with the inode its stat saw) and that descriptor is hashed and
        inspected. A file that is gone or was swapped before it could be read is reported with
        what is known, never dropped. The lanes are woken once, when the step has handed them
        its files (lanes._Jobs)."""
        try:
            self._hand_egress()
        finally:
            self.lanes.wake()

    def _hand_egress(self) -> None:
        now = self.clock()
        self._forget_old_reports()
        for path in [p for p, pend in self._egress.items() if pend.due_at <= now and p not in self.lanes.in_flight]:
            pending = self._egress[path]
            if pending.place.media is not None and not self.places.is_current(pending.place):
                del self._egress[path]  # unmounted, or another medium at its mount point: not read from there
                if pending.origin in _WRITTEN:
                    self._report_vanished(path, pending, "its medium was removed before it could be read")
                continue
            looked_at = time.monotonic()  # the clock of FsChange.at
            if FAST_RESTAT and self._seen_this_step(path, pending):
                handed = self._submit_seen(path, pending, looked_at)
                if handed is False:
                    break  # the lanes are full: the rest waits for the next step
                if handed:
                    continue
            try:
                st = _lstat(path)
            except FileNotFoundError:
                del self._egress[path]
                if pending.origin in _WRITTEN:
                    self._report_vanished(path, pending, "removed before it could be read")
                continue
            except OSError as exc:
                del self._egress[path]
                self._emit_unreadable("egress.file", path, exc, pending.place)
                continue
            if not stat.S_ISREG(st.st_mode):
                del self._egress[path]
                if pending.origin in _WRITTEN and pending.seen is not None and stat.S_ISREG(pending.seen.st_mode):
                    self._report_swapped(path, pending, st)  # a file written here was replaced before it was read
                continue  # a FIFO, link or device made as such carries no data away
            if (st.st_size, st.st_mtime_ns) != (pending.size, pending.mtime_ns) and not pending.closed:
                if not self._unsettled_too_long(path, pending, now, st.st_size):
                    pending.size, pending.mtime_ns = st.st_size, st.st_mtime_ns  # still being written
                    pending.seen = st
                    pending.due_at = now + self.stable_s
                    continue
            self._reported_at[path] = looked_at
            mark = None
            if pending.origin in (SCAN, RENAME, RECHECK) or pending.forced:
                if len(self._outbox):  # a report's mark still waiting for its commit is a mark too
                    self._outbox.flush()  # (raises when the spool fails: the step is tried again)
                mark = self.spool.reported(path)
            if mark is not None and mark.matches(st):
                del self._egress[path]
                if pending.origin == SCAN:
                    self._recheck_found(path, st, mark)
                continue
            if not self._submit(path, st, pending, mark if pending.origin in (RENAME, RECHECK) or pending.forced else None):
                break  # the lanes are full: the rest waits for the next step

    def _unsettled_too_long(self, path: str, pending: _Pending, now: float, size: int) -> bool:
        """Whether a file still changing has been put off long enough (UNSETTLED_WAITS) to be
        hashed as it is: if so, the next such wait for its path is set (see UNSETTLED_WAITS)."""
        if pending.forced:
            return True  # its time came before, when the lanes were full
        if now < self._settle_by(path, pending, now):
            return False
        pending.forced = True
        first = UNSETTLED_WAITS * self.stable_s
        wait, last_size = self._unsettled_wait.pop(path, (self._first_wait(pending), -1))
        if len(self._unsettled_wait) >= MAX_UNSETTLED:
            del self._unsettled_wait[next(iter(self._unsettled_wait))]
        grown = 0 <= last_size < size  # since its last such report: a recording, read over again if not spaced
        self._unsettled_wait[path] = (min(2 * wait, MAX_UNSETTLED_WAIT_S if grown else first), size)
        return True

    def _first_wait(self, pending: _Pending) -> float:
        """The wait before a file still changing is first hashed as it is (PEEK_WAITS for a reported
        file changed since, UNSETTLED_WAITS for any other)."""
        return (PEEK_WAITS if pending.origin == RECHECK else UNSETTLED_WAITS) * self.stable_s

    def _settle_by(self, path: str, pending: _Pending, now: float) -> float:
        """When a pending file still changing is hashed as it is: its path's wait (UNSETTLED_WAITS,
        PEEK_WAITS) after the first write seen (or the first look that found it changing)."""
        if pending.unsettled_since < 0:
            pending.unsettled_since = now
        return pending.unsettled_since + self._unsettled_wait.get(path, (self._first_wait(pending), -1))[0]

    def _seen_this_step(self, path: str, pending: _Pending) -> bool:
        """A closed write whose lstat this step took (a regular file), in a place still there:
        what the reference's second lstat would find, short of a change that the open shows."""
        return (
            pending.seen_step == self._steps
            and pending.closed
            and pending.origin == WRITE  # a re-check's change is compared with its report's mark (_submit)
            and stat.S_ISREG(pending.seen.st_mode)  # never an open of what the lstat found to be something else
            and self.places.find(path) is not None
        )

    def _submit_seen(self, path: str, pending: _Pending, looked_at: float) -> bool | None:
        """Open a file _seen_this_step and hand it to a lane, as the reference does after its
        lstat: True handed, False the lanes are full (the rest of the step waits), None when the
        open fails or finds another inode than the lstat's (nothing done: the reference's path
        lstats again and says why, as it always did)."""
        try:
            fd, fst = _open_regular(path)
        except OSError:
            return None
        seen = pending.seen
        if (fst.st_dev, fst.st_ino) != (seen.st_dev, seen.st_ino):
            os.close(fd)
            return None
        self._reported_at[path] = looked_at
        if not self.lanes.submit(Job(path, fd, fst, (pending, None), prefilter=self._prefilter()), wake=False):
            os.close(fd)
            return False
        del self._egress[path]
        return True

    def _submit(self, path: str, st: os.stat_result, pending: _Pending, renamed: FileMark | None) -> bool:
        """Open the file and hand it to a lane; False when the lanes take no more now."""
        try:
            fd, fst = _open_regular(path)
        except FileNotFoundError:
            del self._egress[path]
            if pending.origin in _WRITTEN:
                self._report_vanished(path, pending, "removed before it could be read")
            return True
        except OSError as exc:
            del self._egress[path]
            if exc.errno in (errno.EINVAL, errno.ELOOP):  # swapped for a FIFO, device or link between stat and open
                self._report_swapped(path, pending, None)
            else:
                self._emit_unreadable("egress.file", path, exc, pending.place, FileMark.of(path, st))
            return True
        if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):  # replaced between stat and open
            os.close(fd)
            pending.due_at = self.clock()
            return True
        if not self.lanes.submit(Job(path, fd, fst, (pending, renamed), prefilter=self._prefilter()), wake=False):
            os.close(fd)
            return False
        del self._egress[path]
        return True

    def _take_results(self) -> None:
        """Report what the lanes hashed and inspected, spooling the outbox every `chunk` events so
        the reporter sends the first events of a bulk copy while the rest are hashed. A result
        whose report failed (the spool) is kept for the next step."""
        self._results.extend(self.lanes.done())
        known = self._known_sources() if FAST_LOOKUP else None
        while self._results:
            self._report_done(self._results[0], known)
            self._results.popleft()
            if len(self._outbox) >= self._outbox.chunk:
                self._outbox.flush()

    def _forget_old_reports(self) -> None:
        now = time.monotonic()
        if len(self._reported_at) < 10_000 or now - self._pruned_at < 60:
            return
        self._pruned_at = now
        oldest = now - REPORTED_KEEP_S  # a change queued for longer than this is reported again
        self._reported_at = {p: t for p, t in self._reported_at.items() if t >= oldest}

    def _known_sources(self) -> set[str] | None:
        """The digests of the results waiting that the index holds (one query for all of them,
        index.known_sha256): the rest, most files of a burst, are looked up no further. This
        thread alone adds to the index, so what it says holds while these results are reported."""
        if len(self._results) < 2:
            return None  # one file: its own look-up is the one query
        digests = [d.digest.sha256 for d in self._results if not isinstance(d.digest, OSError) and d.digest.size > 0]
        return self.index.known_sha256(digests)

    def _report_done(self, done: Done, known: set[str] | None = None) -> None:
        """Report a hashed file; the same content as its report's mark (handed with a rename, a
        re-check's change or a file still changing) means no new report, only the mark kept.
        `known`: _known_sources of a batch holding it (None: looked up alone)."""
        job, digest = done.job, done.digest
        pending, renamed = job.context
        path, st, place = job.path, job.st, pending.place
        if isinstance(digest, OSError):
            self._emit_unreadable("egress.file", path, digest, place, FileMark.of(path, st))
            return
        if (digest.size, digest.mtime_ns) != (st.st_size, st.st_mtime_ns) and not pending.forced:
            self._pend_egress(path, place, wrote=True)  # changed while we read it (one still changing is said as read)
            return
        mark = FileMark.of(path, st, digest.sha256)
        self._watch_reported(path, st)
        if renamed is not None and (renamed.sha256, renamed.size) == (digest.sha256, digest.size):
            self._outbox.add(None, mark)  # its ctime or mtime changed, not its content
            return
        fast = FAST_BURST and not done.chunk_hits
        fields = self._sourceless_fields(path, st, digest, done.inspection, known, place) if fast else None
        if fields is None:
            text, raw = readable(path)
            fields = dict(path=text, path_b64=raw, size=digest.size, sha256=digest.sha256, media=place.media, egress=place.kind)
            inspection = done.inspection or _NOT_INSPECTED
            fields.update(content_fields(self.index, digest, inspection, known, done.chunk_hits))
            fields["details"] = {**(fields.get("details") or {}), **self.writers.details(path, st, _owners_kept(place))}
            self._add_writer(fields, path, st, place)
        if pending.forced:  # hashed while still changing (UNSETTLED_WAITS): what it held then
            fields["details"] = {**(fields.get("details") or {}), "still_written": True}
        elif self._unsettled_wait:
            self._unsettled_wait.pop(path, None)  # it held still: a next write waits from the start
        self._outbox.add(self.make_event("egress.file", **fields), mark)

    def _prefilter(self) -> Prefilter:
        """The index's prefilter of sketches for the lanes (agent/content/chunks.py); the one last
        read is what another thread's submit_opened gives its job (it never reads the index)."""
        self._last_prefilter = self.index.prefilter()
        return self._last_prefilter

    def _sourceless_fields(
        self,
        path: str,
        st: os.stat_result,
        digest: FileDigest,
        inspection: Inspection | None,
        known: set[str] | None,
        place: EgressPlace,
    ) -> dict | None:
        """The fields _report_done gives a file that `known` already says no classified file has
        the bytes of, and whose inspection traces it nowhere (no archive members, no fingerprints:
        every opaque file of a burst): built in one dict, the writer looked up once
        (WriterTracker.attribution), no lineage asked. None for any other file: the reference
        builds its fields (test_pipeline_burst compares the two)."""
        if inspection is None or inspection.members or inspection.fingerprints:
            return None
        if digest.size > 0 and (known is None or digest.sha256 in known):
            return None
        text, raw = readable(path)
        details, user, how = self.writers.attribution(path, st, _owners_kept(place))
        fields = {
            "path": text,
            "path_b64": raw,
            "size": digest.size,
            "sha256": digest.sha256,
            "media": place.media,
            "egress": place.kind,
            "file_type": inspection.file_type,
            "type_mismatch": inspection.type_mismatch,
            "detections": inspection.detections,
            "details": details,
        }
        if user:
            fields["user"] = user
            details["user_from"] = how
        return fields

    def _add_writer(self, fields: dict, path: str, st: os.stat_result | None, place: EgressPlace) -> None:
        """The event's user is the file's writer where known (the kernel's word, a process caught
        writing, else the owner of the descriptor read); the login session's guess goes beside it."""
        user, how = self.writers.writer_of(path, st, _owners_kept(place))
        if user:
            fields["user"] = user
            fields["details"] = {**(fields.get("details") or {}), "user_from": how}

    def _report_vanished(self, path: str, pending: _Pending, why: str) -> None:
        """A file written to an egress place that was gone before it could be read: what is known
        of it (size and times of the last write seen, the place, the writer) and why. One that was
        empty at every write seen held nothing (zip and editors create and remove such files)."""
        empty = pending.seen.st_size == 0 and not pending.unseen_write if pending.seen is not None else not pending.wrote
        if empty:  # created and removed with nothing written (zip's probe of its output, editors' locks)
            logger.debug("empty file removed before it was read path={!r}", readable(path)[0])
            return
        if pending.origin == RECHECK and pending.linked_as_reported:
            # a new hard link made its ctime change, and the name here went before the look read it:
            # its data is the data reported, and lives on under the other name
            logger.debug("reported file linked and removed before it was read path={!r}", readable(path)[0])
            return
        self._report_blind(path, pending, Detection("vanished", 1, why), pending.seen)

    def _report_swapped(self, path: str, pending: _Pending, now: os.stat_result | None) -> None:
        """The file written here was replaced by something that is not a file before it was read."""
        kind = "something that is not a file"
        if now is not None:
            kind = "a FIFO" if stat.S_ISFIFO(now.st_mode) else "a symbolic link" if stat.S_ISLNK(now.st_mode) else "a special file"
        self._report_blind(path, pending, Detection("vanished", 1, f"replaced by {kind} before it could be read"), pending.seen)

    def _report_blind(self, path: str, pending: _Pending, why: Detection, seen: os.stat_result | None) -> None:
        text, raw = readable(path)
        fields: dict = dict(path=text, path_b64=raw, media=pending.place.media, egress=pending.place.kind, detections=(why,))
        details = dict(self.writers.details(path, seen, _owners_kept(pending.place)))
        if seen is not None and stat.S_ISREG(seen.st_mode):
            if not pending.unseen_write:  # else writes came after that stat: its size and time are stale
                fields["size"] = seen.st_size
                details["mtime"] = _iso(seen.st_mtime_ns)
            details["owner_uid"] = seen.st_uid
        fields["details"] = details
        self._add_writer(fields, path, seen, pending.place)
        logger.warning("egress file not inspected path={!r} why={!r}", text, why.sample)
        self._outbox.add(self.make_event("egress.file", **fields))

    def _inspect_path(self, path: str) -> Inspection:
        """Inspect a classified file just indexed, from one descriptor, in the pipeline's worker."""
        try:
            fd, _st = open_regular(path)
        except OSError as exc:
            return Inspection(None, None, (Detection("unreadable", 1, exc.strerror or type(exc).__name__),))
        try:
            return self.inspector.inspect(fd, os.path.basename(path))
        finally:
            os.close(fd)

    # --- events ---------------------------------------------------------------------------

    def _emit_file(
        self, type_: str, path: str, row: IndexedFile | None, dest: str | None = None, level=None, inspection=None
    ) -> None:
        text, raw = readable(path)
        fields = dict(path=text, path_b64=raw, level=level)
        if inspection is not None:
            fields.update(inspection.event_fields())
        if dest is not None:
            fields["dest_path"], fields["dest_path_b64"] = readable(dest)
        if row is not None:
            fields.update(size=row.size, sha256=row.sha256, register_entry=row.entry or None)
        self._outbox.add(self.make_event(type_, **fields))

    def _emit_unreadable(
        self, type_: str, path: str, exc: OSError, place: EgressPlace | None = None, mark: FileMark | None = None
    ) -> None:
        text, raw = readable(path)
        why = exc.strerror or type(exc).__name__  # str(exc) would repeat the raw path
        logger.warning("cannot read file path={!r} error={!r}", text, why)
        extra = dict(media=place.media, egress=place.kind) if place else {}
        if mark is not None:
            extra["size"] = mark.size
        event = self.make_event(type_, path=text, path_b64=raw, error=f"cannot read: {why}", **extra)
        self._outbox.add(event, mark)

    def _emit(self, type_: str, **fields) -> None:
        self._outbox.add(self.make_event(type_, **fields))

    def report_blind(self, path: str, reason: str, how: str) -> None:
        """A folder the agent cannot walk or watch: an agent.error naming it (MW-AGENT-BLIND).
        Pipeline thread only."""
        self._emit("agent.error", **blind_fields(path, reason, how))

    def _report_unwalkable(self, problems: list[Unwalkable]) -> None:
        for problem in problems[:MAX_BLIND_REPORTS]:
            self.report_blind(os.fsdecode(problem.path), problem.reason, "walk")
        if len(problems) > MAX_BLIND_REPORTS:
            logger.warning("more folders not walked count={}", len(problems) - MAX_BLIND_REPORTS)

    def _handle_overflows(self) -> None:
        with self._overflow_lock:
            reasons, self._overflows = self._overflows, {}
            blind, self._blind = self._blind, []
        for spot in blind[:MAX_BLIND_REPORTS]:
            self.report_blind(spot.path, spot.reason, "watch")
        for spot in blind:  # not watched: walked (by descriptor) every BLIND_RESCAN_S instead
            if len(self._unwatched) < MAX_UNWATCHED:
                self._unwatched.setdefault(spot.path, self.clock())
        if not reasons:
            return
        logger.warning("file events lost reasons={!r} rescanning", reasons)
        self._emit("agent.overflow", details={"reasons": reasons})
        for place in self.places.all():
            self.scan(place.root)
        for folder in self.index.folders:
            self._queue_classified_tree(folder.path)


class _Changes(queue.SimpleQueue):
    """The watchers' changes for the pipeline, at most QUEUE_MAX (put_nowait raises queue.Full
    beyond: an overflow, rescanned). A SimpleQueue: a put and a get cost 0.6 µs against 3.5 µs
    for a queue.Queue's, three times per file of a burst."""

    def put_nowait(self, item: FsChange) -> None:
        if self.qsize() >= QUEUE_MAX:
            raise queue.Full
        self.put(item)


def _max_user_watches() -> int:
    """The inotify watches one user may hold (each file watched on its own takes one)."""
    try:
        with open(MAX_USER_WATCHES, encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def _owners_kept(place: EgressPlace) -> bool:
    """Whether the place's files show who made each (attribution.owners_kept)."""
    return owners_kept(place.media.fstype if place.media is not None else None, place.kind)


def _lstat(path: str) -> os.stat_result:
    """walk.lstat(path): the same answer and the same errors (a name too long for one call, which
    no file seen can have, is left to it)."""
    if FAST_STAT and len(path) < _SHORT:
        try:
            return os.stat(path, follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
    return lstat(path)


def _open_regular(path: str) -> tuple[int, os.stat_result]:
    """inspector.open_regular(path): a descriptor of the regular file there, no link followed, no
    blocking, and its fstat (OSError EINVAL for anything not a regular file), with one fstat."""
    if not (FAST_STAT and len(path) < _SHORT):
        return open_regular(path)
    try:
        fd = os.open(path, FILE_FLAGS)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        return open_regular(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _inode_at(path: str) -> int | None:
    """The inode a name holds now, None when nothing is there (a rename's two names, looked at
    after it: see Pipeline._egress_renamed)."""
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None


def _still_there(path: str, seen: os.stat_result | None) -> bool:
    """The file last seen at path is there now: its delete event is older than what was seen
    (a temporary file renamed over it after the delete, as zip does)."""
    if seen is None:
        return False
    try:
        now = lstat(path)
    except OSError:
        return False
    same = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")  # an inode number alone is reused at once
    return all(getattr(now, a) == getattr(seen, a) for a in same)


def blind_fields(path: str, reason: str, how: str) -> dict:
    """The agent.error fields of a folder the agent cannot `how` ("walk", "watch")."""
    text, raw = readable(path)
    logger.warning("folder not seen into path={!r} how={} reason={!r}", text, how, reason)
    why = f"cannot {how}: {reason}"
    return dict(path=text, path_b64=raw, error=why, detections=(Detection("unwalkable", 1, why),))


# a result without an inspection: the file changed while it was hashed (it is reported again)
_NOT_INSPECTED = Inspection(None, None, (Detection("inspection_failed", 1, "not inspected"),))


def _iso(ns: int) -> str:
    """A file's time as ISO 8601; one no date can hold (past 9999, as a FUSE file system may give)
    as its nanoseconds since 1970, rather than a step failed on it."""
    try:
        return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return f"{ns} ns since 1970"
