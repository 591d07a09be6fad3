"""The spool keeps events until acknowledged, across restarts, and never drops refused ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from agent.spool import FileMark, Spool
from rules.events import Event, Match


def _events(n: int) -> list[Event]:
    return [Event(type="egress.file", path=f"/media/usb/{i}.dwg", size=i, level="core", match=Match("exact")) for i in range(n)]


def test_events_survive_reopen_in_order_until_acked(tmp_path):
    path = str(tmp_path / "spool.db")
    events = _events(5)
    spool = Spool(path)
    spool.put(events)
    spool.close()
    spool = Spool(path)
    batch = spool.peek(3)
    assert [json.loads(e.body)["id"] for e in batch] == [e.id for e in events[:3]]
    spool.ack(batch)
    assert [e.id for e in spool.peek(10)] == [e.id for e in events[3:]]
    assert Event.from_dict(json.loads(spool.peek(1)[0].body)) == events[3]
    spool.close()


def test_same_event_spooled_twice_is_kept_once(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    [event] = _events(1)
    spool.put([event])
    spool.put([event])
    assert spool.depth() == 1
    spool.close()


def test_refused_events_move_to_dead_table(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    spool.put(_events(2))
    batch = spool.peek(1)
    spool.quarantine(batch, "422 unknown event type")
    assert (spool.depth(), spool.dead_count()) == (1, 1)
    spool.close()


def test_reported_marks_commit_with_events_and_are_forgotten_on_unmount(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    spool.put(_events(1), [FileMark("/media/usb/a.dwg", 10, 123, 7)])
    assert spool.is_reported("/media/usb/a.dwg", 10, 123, 7)
    assert not spool.is_reported("/media/usb/a.dwg", 11, 123, 7)
    spool.forget_reported("/media/usb")
    assert not spool.is_reported("/media/usb/a.dwg", 10, 123, 7)
    spool.close()


def test_put_survives_kill_9_right_after_it_returns(tmp_path):
    """The writer is killed as soon as put() returns: the events must be there."""
    path = str(tmp_path / "spool.db")
    code = (
        f"import os, sys; sys.path.insert(0, {os.getcwd()!r})\n"
        "from agent.spool import Spool\nfrom rules.events import Event\n"
        f"s = Spool({path!r})\ns.put([Event(type='agent.started') for _ in range(50)])\n"
        "os.kill(os.getpid(), 9)\n"
    )
    done = subprocess.run([sys.executable, "-c", code])
    assert done.returncode == -9
    spool = Spool(path)
    assert spool.depth() == 50
    spool.close()
