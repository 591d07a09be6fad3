"""A burst reported the fast way (pipeline.FAST_BURST: an opaque file's fields in one dict, its
writer looked up once) and the reference way gives the same events, in the same order, for
generated bursts: opaque files among a classified copy, a zip holding it, an edited copy of a classified
text, a text file, empty files, a file removed
or replaced by a FIFO or a link before it was read, a name that is not UTF-8, files written by a
process the kernel named, and renames within the place after they were reported."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import time
import zipfile
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import pipeline as module
from agent.attribution import WriterTracker
from agent.config import ClassifiedFolder
from agent.fanotify import Closer
from agent.index import FingerprintIndex
from agent.pipeline import Pipeline
from agent.places import EgressPlace, EgressPlaces
from agent.spool import Spool
from agent.watcher import FsChange
from rules.events import Event

KINDS = [
    "opaque",
    "opaque",
    "opaque",
    "classified",
    "text",
    "edited",
    "zip",
    "empty",
    "vanish",
    "fifo",
    "symlink",
    "non-utf8",
]
FILES = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(1, 40_000), st.booleans()), min_size=1, max_size=14)
CLASSIFIED = b"AC1032 pump drawing " + bytes(range(256)) * 40
TEXT = "Quarterly figures for the pump line, not for release outside the company. " * 40
REPORT = " ".join(
    f"Pump housing {i} is cast at {i * 37 % 1000} degrees and cooled for {i % 13} hours." for i in range(300)
)


def _zipped(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("drawings/pump.dwg", (2026, 1, 2, 3, 4, 6)), data)  # the same bytes in both runs
    return out.getvalue()


def _burst(root, specs, renames, fast: bool) -> list[dict]:
    """Write the files of `specs` into a fresh egress folder under root, report them as the
    pipeline thread does (changes drained, files handed to the lanes, results reported), then
    rename some and report again: the events spooled, in order, without id, time and chain."""
    module.FAST_BURST = fast
    root.mkdir(exist_ok=True)
    classified, usb = root / "classified", root / "usb"
    classified.mkdir()
    usb.mkdir()
    (classified / "pump.dwg").write_bytes(CLASSIFIED)
    (classified / "report.txt").write_text(REPORT)  # its edited copy is traced by shared text
    target = root / "elsewhere.txt"  # a link's target: a file of the test's own
    target.write_bytes(b"not copied")
    index = FingerprintIndex(str(root / "index.db"), (ClassifiedFolder(str(classified), "core", "Drawings"),))
    index.refresh()
    spool = Spool(str(root / "spool.db"))
    places = EgressPlaces()
    places.add(EgressPlace(str(usb), "folder"))
    closers: dict[str, Closer] = {}
    writes = SimpleNamespace(closer=closers.get, start=lambda: None, stop=lambda: None)
    writers = WriterTracker(find=lambda paths, roots: ({}, {}), writes=writes)
    pipeline = Pipeline(index, spool, places, lambda t, **f: Event(type=t, **f), lambda e: e, writers=writers)
    pipeline.lanes.start()
    try:
        paths, after = [], {}
        for i, (kind, size, kernel_named) in enumerate(specs):
            name = f"file-{i:03d}.bin".encode() if kind != "non-utf8" else b"file-\xff%03d.bin" % i
            path = os.fsdecode(os.path.join(os.fsencode(str(usb)), name))
            made = {"classified": CLASSIFIED, "text": TEXT.encode(), "empty": b"", "zip": _zipped(CLASSIFIED)}
            made["edited"] = ("Draft. " + REPORT[: len(REPORT) * 2 // 3]).encode()
            data = made[kind] if kind in made else random.Random(i).randbytes(size)
            with open(path, "wb") as f:
                f.write(data)
            os.utime(path, ns=(1_700_000_000_000_000_000 + i, 1_700_000_000_000_000_000 + i))  # the same in both runs
            if kernel_named:
                closers[path] = Closer(1000 + i, os.getuid(), "cp")
            paths.append(path)
            after[path] = kind
        _report(pipeline, paths, after, target)
        survivors = [p for p in paths if os.path.lexists(p) and after[p] not in ("fifo", "symlink")]
        moved = []
        for i, path in enumerate(survivors[: len(renames)]):
            dest = f"{path}.renamed"
            os.rename(path, dest)
            if renames[i]:  # renamed and rewritten: a new report
                with open(dest, "ab") as f:  # same bytes in both runs
                    f.write(b"more")
            moved.append(FsChange("moved", path, False, dest, time.monotonic()))
        pipeline._held.extend(moved)
        _report(pipeline, [], {}, target)
        events = []
        for spooled in spool.peek(100_000, max_bytes=1 << 40):
            event = json.loads(spooled.body)
            for key in ("id", "ts", "seq", "prev_hash"):
                event.pop(key)
            for key in ("path", "dest_path", "source_path"):  # the two runs' folders differ: their names within them
                if event.get(key):
                    event[key] = event[key].replace(str(root), "ROOT")
                if event.get(f"{key}_b64"):
                    raw = base64.b64decode(event[f"{key}_b64"]).replace(os.fsencode(str(root)), b"ROOT")
                    event[f"{key}_b64"] = base64.b64encode(raw).decode()
            events.append(event)
        return events
    finally:
        pipeline.lanes.stop()
        pipeline.inspector.close()
        index.close()
        spool.close()


def _report(pipeline: Pipeline, paths: list[str], after: dict[str, str], target) -> None:
    """A copy's changes for each path, handled; the odd files made odd before they are read;
    then every file handed, hashed and reported."""
    at = time.monotonic()
    for path in paths:
        pipeline._held.extend(FsChange(kind, path, False, None, at) for kind in ("created", "modified", "closed"))
    pipeline._handle_held()
    for path, kind in after.items():
        if kind == "vanish":
            os.unlink(path)
        elif kind == "fifo":
            os.unlink(path)
            os.mkfifo(path)
        elif kind == "symlink":
            os.unlink(path)
            os.symlink(str(target), path)
    deadline = time.monotonic() + 20
    while pipeline._egress or pipeline.lanes.in_flight or pipeline._results:
        assert time.monotonic() < deadline, "the burst was not reported"
        pipeline._check_egress()
        while pipeline.lanes.results.qsize() < len(pipeline.lanes.in_flight):  # one step takes them all
            assert time.monotonic() < deadline, "the lanes did not finish"
            time.sleep(0.005)
        pipeline._take_results()
    pipeline._outbox.flush()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=FILES, renames=st.lists(st.booleans(), max_size=4))
def test_a_burst_gives_the_same_events_the_fast_way_and_the_reference_way(tmp_path_factory, specs, renames):
    kept = module.FAST_BURST
    fast_built = []
    sourceless = Pipeline._sourceless_fields

    def counted(self, *args):
        fields = sourceless(self, *args)
        fast_built.append(fields is not None)
        return fields

    Pipeline._sourceless_fields = counted
    try:
        fast = _burst(tmp_path_factory.mktemp("fast"), specs, renames, True)
        reference = _burst(tmp_path_factory.mktemp("reference"), specs, renames, False)
    finally:
        module.FAST_BURST = kept
        Pipeline._sourceless_fields = sourceless
    assert fast == reference
    assert len(fast) >= sum(kind not in ("fifo", "symlink") for kind, _, _ in specs)  # the odd ones said too
    opaque = sum(kind in ("opaque", "non-utf8", "empty") for kind, _, _ in specs)
    if sum(kind not in ("vanish", "fifo", "symlink") for kind, _, _ in specs) > 1:  # one file is looked up alone
        assert sum(fast_built) >= opaque  # the fast way built them (and only the fast run asked it)


def test_a_burst_of_every_odd_kind_gives_the_same_events_both_ways(tmp_path):
    """One of each kind, kernel-named and not, renamed and rewritten: what the generated bursts
    may miss on a short run."""
    specs = [(kind, 3000 + 7 * i, i % 2 == 0) for i, kind in enumerate(KINDS)]
    kept = module.FAST_BURST
    try:
        fast = _burst(tmp_path / "fast", specs, [True, False, False], True)
        reference = _burst(tmp_path / "reference", specs, [True, False, False], False)
    finally:
        module.FAST_BURST = kept
    assert fast == reference
    kinds = {e["details"].get("attribution") for e in fast if e["type"] == "egress.file"}
    assert {"close-write", "not-seen"} <= kinds
    assert {(e.get("match") or {}).get("method") for e in fast} >= {"exact", "archive", "partial"}
    assert any(d["detector"] == "vanished" for e in fast for d in e["detections"])
    assert any(e.get("path_b64") for e in fast)
