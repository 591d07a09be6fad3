"""The outbox between the pipeline and the spool: nothing leaves it unstored, one bad event
cannot block the rest, and a spool that stores nothing loses nothing."""

from __future__ import annotations

import json
import sqlite3

import pytest

from agent.outbox import Outbox
from agent.spool import FileMark, Spool
from rules.events import Event


class _Spool(Spool):
    """A real spool; `broken` makes every write fail like a full disk, `poison` refuses one path."""

    broken = False
    poison = "poison"

    def put(self, events, marks=()):
        events = list(events)
        if self.broken:
            raise sqlite3.OperationalError("database or disk is full")
        if any(self.poison in (e.path or "") for e in events):
            raise ValueError("cannot store this one")
        super().put(events, marks)


@pytest.fixture
def spool(tmp_path):
    s = _Spool(str(tmp_path / "spool.db"))
    yield s
    s.close()


def _outbox(spool) -> Outbox:
    return Outbox(spool, lambda e: e, lambda t, **f: Event(type=t, **f), attempts=3)


def _stored(spool) -> list[dict]:
    return [json.loads(e.body) for e in spool.peek(100)]


@pytest.mark.reliability(area="fault", fault="Spool cannot store an event", how="the spool's writes fail", outcome="retried, then dropped and counted; nothing else lost; a spool that stores nothing loses nothing")
def test_a_spool_that_stores_nothing_loses_nothing(spool):
    outbox = _outbox(spool)
    outbox.add(Event(type="egress.file", path="/m/a.txt"), FileMark("/m/a.txt", 1, 2, 3, 4, "ab" * 32))
    outbox.add(Event(type="egress.file", path="/m/b.txt"))
    spool.broken = True
    for _ in range(6):
        with pytest.raises(sqlite3.OperationalError):
            outbox.flush()
    assert (len(outbox), outbox.events_waiting()) == (2, 2)
    spool.broken = False
    outbox.flush()
    assert [e["path"] for e in _stored(spool)] == ["/m/a.txt", "/m/b.txt"]
    assert spool.reported("/m/a.txt") is not None and len(outbox) == 0


@pytest.mark.reliability(area="fault", fault="Spool cannot store an event", how="the spool's writes fail", outcome="retried, then dropped and counted; nothing else lost; a spool that stores nothing loses nothing")
def test_an_event_that_cannot_be_stored_is_dropped_after_the_attempts_and_counted(spool):
    outbox = _outbox(spool)
    for name in ("first", "poison", "last"):
        outbox.add(Event(type="egress.file", path=f"/m/{name}.txt"))
    for _ in range(2):
        with pytest.raises(ValueError):
            outbox.flush()
    assert _stored(spool) == []
    outbox.flush()  # the third attempt goes one by one
    stored = _stored(spool)
    assert [e["path"] for e in stored if e["type"] == "egress.file"] == ["/m/first.txt", "/m/last.txt"]
    [error] = [e for e in stored if e["type"] == "agent.error"]
    assert error["details"] == {"dropped_events": 1}
    assert len(outbox) == 0


def test_marks_not_spooled_yet_follow_a_rename(spool):
    outbox = _outbox(spool)
    outbox.add(Event(type="egress.file", path="/m/dir/a.txt"), FileMark("/m/dir/a.txt", 1, 2, 3, 4, "ab" * 32))
    outbox.add(None, FileMark("/m/dir2/b.txt", 1, 2, 3, 4, "cd" * 32))
    outbox.rename_marks("/m/dir", "/m/new")
    outbox.flush()
    assert spool.reported("/m/new/a.txt").sha256 == "ab" * 32
    assert spool.reported("/m/dir/a.txt") is None
    assert spool.reported("/m/dir2/b.txt") is not None


def test_marks_not_spooled_yet_follow_an_exchange_by_inode(spool):
    outbox = _outbox(spool)
    outbox.add(Event(type="egress.file", path="/m/a"), FileMark("/m/a", 1, 2, 11, 4, "aa" * 32))
    outbox.add(Event(type="egress.file", path="/m/b"), FileMark("/m/b", 5, 6, 22, 8, "bb" * 32))
    outbox.rename_marks("/m/a", "/m/b", (22, 11))  # the exchange's first move
    outbox.rename_marks("/m/b", "/m/a", (11, 22))  # and its second
    outbox.flush()
    assert spool.reported("/m/a").sha256 == "bb" * 32 and spool.reported("/m/b").sha256 == "aa" * 32
    assert len(_stored(spool)) == 2  # the events go as they were


def test_a_pending_mark_of_a_file_a_rename_replaced_is_dropped_and_its_event_kept(spool):
    outbox = _outbox(spool)
    outbox.add(Event(type="egress.file", path="/m/b"), FileMark("/m/b", 5, 6, 22, 8, "bb" * 32))
    outbox.rename_marks("/m/a", "/m/b", (None, 11))  # a (inode 11, never reported) renamed over b
    outbox.flush()
    assert spool.reported("/m/b") is None and len(_stored(spool)) == 1


def test_a_burst_shares_commits_and_a_lone_event_is_spooled_at_once(spool, monkeypatch):
    """While more work is pending, entries wait (at most GATHER_S or a chunk) to share one
    commit; with nothing else pending they are stored in the same step."""
    import agent.outbox

    box = _outbox(spool)
    box.add(Event(type="egress.file", path="/media/usb/lone"))
    box.flush_when_due(busy=False)
    assert len(box) == 0 and spool.depth() == 1
    box.add(Event(type="egress.file", path="/media/usb/burst-1"))
    box.flush_when_due(busy=True)
    assert len(box) == 1 and spool.depth() == 1  # young and few: waits for the next ones
    monkeypatch.setattr(agent.outbox, "GATHER_S", 0.0)
    box.flush_when_due(busy=True)
    assert len(box) == 0 and spool.depth() == 2  # waited long enough
    monkeypatch.setattr(agent.outbox, "GATHER_S", 60.0)
    for i in range(box.chunk):
        box.add(Event(type="egress.file", path=f"/media/usb/many-{i}"))
    box.flush_when_due(busy=True)
    assert len(box) == 0  # a whole chunk goes at once
