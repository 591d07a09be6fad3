"""An employee against round 14's changes (D6): a re-check's change reported only when its content
is not what was reported (pipeline.RECHECK), a file that never holds still hashed as read
(UNSETTLED_WAITS, details.still_written), a removal that keeps a pending file still there.

The tool is again a hard link from outside the place (tests/agent/test_round13_attacks.py): a write
through it reaches the agent only through the reported file's own watch or a look, so the file is
pending as a RECHECK, not as a write seen in the place. What the agent does not withstand yet is a
strict xfail whose reason states the hole."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from agent import inotify as inotify_module
from agent import pipeline as pipeline_module

from .test_round13_attacks import (
    _capture_reported,
    _exchange,
    _report_watched,
    _reported,
    _secret,
    _wait,
    _watched,
    thinned_rig,
)

pytestmark = pytest.mark.skipif(not inotify_module.available(), reason="the agent's own inotify reader is Linux only")


@pytest.fixture
def rig(tmp_path, monkeypatch):
    yield from thinned_rig(tmp_path, monkeypatch)


def _kept_changing(fd: int, data: bytes, seconds: float) -> None:
    """Rewrite the last byte of `data` through fd every 50 ms (its content stays `data`), the file
    never closed: it never holds still for stable_s."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        os.pwrite(fd, data[-1:], len(data) - 1)
        time.sleep(0.05)


def _said_since(rig, path, first: int, timeout_s: float) -> list[dict]:
    """The egress.file events of path after the first `first`, waited for up to timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        said = _reported(rig, path)[first:]
        if said:
            return said
        time.sleep(0.05)
    return []


def _drawing_kept_changing_through_a_link(rig, tmp_path) -> tuple[bytes, object, int]:
    """A harmless report.bin reported and watched, a hard link to it outside the place; the drawing
    written through the link (found: a RECHECK pending) and kept changing for 2 s. Returns (the
    drawing, the path, the link's descriptor, still open: the caller closes it)."""
    secret, path, backdoor = _report_watched(rig, tmp_path)
    fd = os.open(backdoor, os.O_WRONLY)
    try:
        os.pwrite(fd, secret, 0)
        _wait(lambda: _pending_origin(rig, path) == pipeline_module.RECHECK, 2, "the write through the link was never found")
        _kept_changing(fd, secret, 2.0)
    except BaseException:
        os.close(fd)
        raise
    return secret, path, fd


def _pending_origin(rig, path) -> str | None:
    pending = rig.pipeline._egress.get(str(path))
    return pending.origin if pending is not None else None


# --- a change found, then the file gone before it was read ---------------------------------------------


def test_a_drawing_kept_changing_through_the_places_name_then_removed_is_said_vanished(rig):
    """The reference for the next test: the same, written through the place's own name (a WRITE
    pending): its removal before the read is said (detections: vanished)."""
    secret = _secret(rig)
    path = rig.usb / "report.bin"
    path.write_bytes(b"\0" + os.urandom(len(secret) - 1))
    _wait(lambda: _reported(rig, path), 5, "the harmless file was not reported")
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, secret, 0)
        _kept_changing(fd, secret, 2.0)  # under UNSETTLED_WAITS * stable_s (4 s here): never read
        os.unlink(path)
    finally:
        os.close(fd)
    said = _said_since(rig, path, 1, 3.0)
    assert said and any(d.get("detector") == "vanished" for e in said for d in e.get("detections") or ()), said


def test_a_drawing_put_into_a_reported_file_after_harmless_changes_is_read_at_the_next_peek(rig, tmp_path):
    """The attacker waits out the first read: harmless changes (the report's own bytes rewritten)
    until it is read and found the same (quiet), then the drawing, and the harmless content back
    before the first wait would have passed again. The reads' waits double from PEEK_WAITS up to
    the first wait, so the next read holds the drawing: a look at the file (RECHECK_S after the
    read) finds it changing, and twice the peek later it is read. With the first wait after the
    peek, the next read came after the drawing had gone."""
    secret, path, backdoor = _report_watched(rig, tmp_path)
    harmless = path.read_bytes()
    peek = pipeline_module.PEEK_WAITS * rig.pipeline.stable_s
    holds = pipeline_module.RECHECK_S + 2 * peek + 1.0  # the drawing's time in the file
    assert holds < pipeline_module.RECHECK_S + pipeline_module.UNSETTLED_WAITS * rig.pipeline.stable_s  # the premise
    fd = os.open(backdoor, os.O_WRONLY)
    try:
        deadline = time.monotonic() + 5.0
        while str(path) not in rig.pipeline._unsettled_wait and time.monotonic() < deadline:
            _kept_changing(fd, harmless, 0.05)  # until read once, as it kept changing: the report's content
        assert str(path) in rig.pipeline._unsettled_wait, "the harmless changes were never read"
        assert not _said_since(rig, path, 1, 0), "the harmless changes were said"
        os.pwrite(fd, secret, 0)
        _kept_changing(fd, secret, holds)
        os.pwrite(fd, harmless, 0)
    finally:
        os.close(fd)
    said = _said_since(rig, path, 1, 3.0)
    assert [e.get("sha256") for e in said][:1] == [hashlib.sha256(secret).hexdigest()], "the drawing was never read"


# was a hole (D6), fixed by the lead (pipeline._WRITTEN): a re-check's change still pending was
# dropped without a word when the file or its medium went before it was read
def test_a_drawing_written_through_a_link_kept_changing_then_removed_is_said(rig, tmp_path):
    """ln ~/.cache/x ~/Dropbox/report.bin (a harmless file, reported and watched); then through
    ~/.cache/x: the drawing, its last byte rewritten every 50 ms for 2 s (the upload); rm
    ~/Dropbox/report.bin. The drawing stays in ~/.cache/x."""
    secret, path, fd = _drawing_kept_changing_through_a_link(rig, tmp_path)
    try:
        assert path.read_bytes() == secret  # the place held the drawing for those 2 s
        os.unlink(path)
    finally:
        os.close(fd)
    said = _said_since(rig, path, 1, 3.0)
    assert said, "the drawing found changed in the place, then removed, was never said (nor said vanished)"


# --- swaps within the place ------------------------------------------------------------------------


def test_two_reported_files_swapped_within_the_place_are_not_reported_again(rig):
    """exch ~/Dropbox/a.bin ~/Dropbox/b.bin (util-linux), both reported: nothing left the machine.
    Before, the exchange's two moves carried the marks one after the other (a's to b, then back to
    a), and both files were reported again as new egress (D6)."""
    a, b = rig.usb / "a.bin", rig.usb / "b.bin"
    a.write_bytes(os.urandom(3000))
    b.write_bytes(os.urandom(3000))
    _wait(lambda: _reported(rig, a) and _reported(rig, b), 5, "the two files were not reported")
    _watched(rig, a)
    _watched(rig, b)
    _exchange(a, b)
    time.sleep(3.0)
    again = _reported(rig, a)[1:] + _reported(rig, b)[1:]
    assert not again, f"{len(again)} egress.file events again for a swap within the place: {[e['path'] for e in again]}"


@pytest.mark.parametrize("file_first", [True, False])
def test_a_reported_file_and_folder_swapped_within_the_place_are_not_reported_again(rig, file_first):
    """exch ~/Dropbox/a.bin ~/Dropbox/d, d holding a reported file (the review of round 14's
    exchange fix): a folder's move carried the file's mark that the file's move had put at the
    folder's old name, and a file's move carried the folder's scan pending under its old name, so
    the file, or the folder's file under a path that is now a file, was reported again."""
    f, d = rig.usb / "a.bin", rig.usb / "d"
    d.mkdir()
    inside = d / "x.bin"
    f.write_bytes(os.urandom(3000))
    inside.write_bytes(os.urandom(3000))
    _wait(lambda: _reported(rig, f) and _reported(rig, inside), 5, "the two files were not reported")
    time.sleep(0.5)
    before = len(rig.events("egress.file"))
    _exchange(f, d) if file_first else _exchange(d, f)
    time.sleep(3.0)
    again = rig.events("egress.file")[before:]
    assert not again, f"reported again after a swap within the place: {[e['path'] for e in again]}"
    assert rig.spool.reported(str(d)).inode == os.lstat(d).st_ino  # the file, now at d, keeps its mark
    assert rig.spool.reported(str(f / "x.bin")) is not None and rig.spool.reported(str(f)) is None


# --- a drawing kept changing for less than the first wait ----------------------------------------------


# was a hole (D6), fixed (pipeline.PEEK_WAITS): a file kept changing was read only after
# UNSETTLED_WAITS * stable_s (10 s by default, 4 s here) and a re-check's change is quiet when its
# content is the report's (pipeline.RECHECK): the drawing written into a reported ~/Dropbox file
# through a hard link from outside, its last byte rewritten every 50 ms for 3 s (the upload), then
# the harmless content written back and closed, was never said. A reported file changed since is
# now first read after PEEK_WAITS waits (1 s by default, 0.4 s here)
def test_a_drawing_kept_changing_under_the_first_wait_then_reverted_is_said(rig, tmp_path):
    secret, path, backdoor = _report_watched(rig, tmp_path)
    harmless = path.read_bytes()
    first_wait = pipeline_module.UNSETTLED_WAITS * rig.pipeline.stable_s
    fd = os.open(backdoor, os.O_WRONLY)
    try:
        os.pwrite(fd, secret, 0)
        _wait(
            lambda: _pending_origin(rig, path) == pipeline_module.RECHECK,
            2,
            "the write through the link was never found",
        )
        _kept_changing(fd, secret, 0.75 * first_wait)
        assert path.read_bytes() == secret  # the place held the drawing all along
        os.pwrite(fd, harmless, 0)
    finally:
        os.close(fd)
    said = _said_since(rig, path, 1, 3.0)
    assert said, f"the drawing held in the place for {0.75 * first_wait:.0f} s was never said"


# was a hole (D6), fixed by the lead (pipeline._WRITTEN): a re-check's change still pending was
# dropped without a word when the file or its medium went before it was read
def test_a_drawing_written_through_a_link_kept_changing_then_the_stick_pulled_is_said(rig, tmp_path):
    from .test_pipeline_gone import _stick

    _stick(rig)
    secret, path, fd = _drawing_kept_changing_through_a_link(rig, tmp_path)
    try:
        assert path.read_bytes() == secret  # the stick held the drawing for those 2 s
        rig.places.remove(str(rig.usb))  # pulled
    finally:
        os.close(fd)
    said = _said_since(rig, path, 1, 3.0)
    assert said, "the drawing found changed on the stick, then the stick pulled, was never said"


# --- a wait trained by growth ------------------------------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="hole (D6): the wait before a file still changing is hashed as it is doubles for its path "
    "while it grows (_unsettled_too_long: up to MAX_UNSETTLED_WAIT_S, 600 s), whatever else changes in "
    "it: a harmless 'recording' kept growing trains the wait (here 1, 1, 2, 4 s, then 8 s; by default 10 s "
    "doubling to 600 s after some 10 minutes), then the drawing written over its start while it keeps "
    "growing sits there unread for 5 times the first wait and is written over again before the next "
    "read: no report ever holds it",
)
def test_a_drawing_written_into_a_growing_file_is_read_within_the_first_wait(rig, monkeypatch):
    monkeypatch.setattr(pipeline_module, "UNSETTLED_WAITS", 5)  # a first wait of 1 s here
    first_wait = pipeline_module.UNSETTLED_WAITS * rig.pipeline.stable_s
    secret, harmless, path = _capture_reported(rig)
    fd = os.open(path, os.O_WRONLY)

    def grow(seconds: float, until=lambda: False) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            os.pwrite(fd, b"\1" * 512, os.fstat(fd).st_size)  # the recording goes on
            time.sleep(0.05)

    try:
        still = lambda: [e for e in _reported(rig, path) if (e.get("details") or {}).get("still_written")]  # noqa: E731
        grow(30 * first_wait, lambda: len(still()) >= 4)  # read after 1, 1, 2 and 4 s of growth: the next wait is 8 s
        if len(still()) < 4:
            pytest.fail(f"the growing file was read as still written {len(still())} times, not 4")
        before = len(_reported(rig, path))
        os.pwrite(fd, secret, 0)
        grow(5 * first_wait)
        assert path.read_bytes()[: len(secret)] == secret  # the place held the drawing all along
        read_meanwhile = len(_reported(rig, path)) - before
        os.pwrite(fd, harmless, 0)
        grow(0.5)
    finally:
        os.close(fd)
    assert read_meanwhile, (
        f"the drawing sat in a growing file for {5 * first_wait:.0f} s (5 first waits) and was never read"
    )
