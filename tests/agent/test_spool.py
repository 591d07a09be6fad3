"""The spool keeps events until acknowledged, across restarts, and never drops refused ones."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from agent.spool import FileMark, Spool, placed_by_inode
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
    stored = Event.from_dict(json.loads(spool.peek(1)[0].body))
    assert stored.seq == 4 and dataclasses.replace(stored, seq=None, prev_hash=None) == events[3]
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
    mark = FileMark("/media/usb/a.dwg", 10, 123, 7, 456, "ab" * 32)
    spool.put(_events(1), [mark])
    assert spool.reported("/media/usb/a.dwg") == mark
    spool.forget_reported("/media/usb")
    assert spool.reported("/media/usb/a.dwg") is None
    spool.close()


@pytest.mark.reliability(area="fault", fault="Agent killed right after spooling", how="a child process `put`s events and is killed with `SIGKILL` at once", outcome="every event `put` returned for is in the spool after reopening")
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


def test_an_event_with_a_lone_surrogate_is_stored_with_it_written_out(tmp_path):
    """A name that is not UTF-8 which got into an event raw must not make the event unstorable."""
    spool = Spool(str(tmp_path / "spool.db"))
    raw_path = os.fsdecode(b"/media/\xb1\xa8/report.pdf")  # surrogate escapes, as Python names it
    event = Event(type="media.mounted", path=raw_path, details={"device": "/dev/\udcff", "note": "fine"})
    spool.put([event])
    [stored] = [json.loads(e.body) for e in spool.peek(10)]
    assert stored["id"] == event.id
    assert stored["path"] == "/media/\\xb1\\xa8/report.pdf"
    assert stored["details"] == {"device": "/dev/\\xff", "note": "fine"}
    spool.close()


def test_a_mark_does_not_match_an_edit_that_kept_size_and_mtime(tmp_path):
    """Restoring mtime after an in-place edit (or FAT's 2 s mtime) changes ctime."""
    path = tmp_path / "report.pdf"
    path.write_bytes(b"version one")
    before = os.stat(path)
    mark = FileMark.of(str(path), before, "ab" * 32)
    assert mark.matches(os.stat(path))
    time.sleep(0.01)
    with open(path, "r+b") as f:
        f.write(b"VERSION ONE")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert not mark.matches(after)


def test_a_spool_of_an_older_agent_is_migrated_and_its_marks_still_hold(tmp_path):
    path = tmp_path / "spool.db"
    with sqlite3.connect(path) as conn:  # the schema before ctime and sha256 were kept
        conn.execute("CREATE TABLE reported (path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL)")
        conn.execute("INSERT INTO reported VALUES (?, 10, 123, 7)", (b"/media/usb/a.dwg",))
    conn.close()
    spool = Spool(str(path))
    old = spool.reported("/media/usb/a.dwg")
    assert old == FileMark("/media/usb/a.dwg", 10, 123, 7, None, None)
    st = SimpleNamespace(st_size=10, st_mtime_ns=123, st_ino=7, st_ctime_ns=999)  # any ctime
    assert old.matches(st), "a mark written before ctime was kept must not report the file again"
    assert old.reported_at is None  # an older agent kept no time: the pipeline dates it by the file's ctime
    before = time.time()
    spool.put([], [FileMark("/media/usb/b.dwg", 1, 2, 3, 4, "cd" * 32)])
    assert spool.reported("/media/usb/b.dwg").ctime_ns == 4
    assert before <= spool.reported("/media/usb/b.dwg").reported_at <= time.time()
    spool.close()


def test_the_two_moves_of_an_exchange_leave_each_file_its_own_mark(tmp_path):
    """renameat2(RENAME_EXCHANGE) of a and b sends a move a -> b, then b -> a; with the inodes the
    names hold after it, each move puts each mark where its inode is (D6)."""
    spool = Spool(str(tmp_path / "spool.db"))
    a, b = FileMark("/m/usb/a.bin", 1, 2, 11, 4, "aa" * 32), FileMark("/m/usb/b.bin", 5, 6, 22, 8, "bb" * 32)
    spool.put([], [a, b])
    held = (22, 11)  # after the exchange a.bin holds b's inode, b.bin a's
    for src, dest in (("/m/usb/a.bin", "/m/usb/b.bin"), ("/m/usb/b.bin", "/m/usb/a.bin")):
        spool.move_reported(src, dest, held if src.endswith("a.bin") else held[::-1])
        assert spool.reported("/m/usb/a.bin").sha256 == "bb" * 32 and spool.reported("/m/usb/a.bin").inode == 22
        assert spool.reported("/m/usb/b.bin").sha256 == "aa" * 32 and spool.reported("/m/usb/b.bin").inode == 11
    spool.close()


def test_a_plain_rename_over_a_reported_file_drops_the_replaced_mark(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    spool.put([], [FileMark("/m/a", 1, 2, 11, 4, "aa" * 32), FileMark("/m/b", 5, 6, 22, 8, "bb" * 32)])
    assert spool.move_reported("/m/a", "/m/b", (None, 11)) == 1
    assert spool.reported("/m/a") is None and spool.reported("/m/b").sha256 == "aa" * 32
    # the file replaced again before the names were looked at: its mark still moves, as a plain rename's
    spool.put([], [FileMark("/m/c", 1, 2, 33, 4, "cc" * 32)])
    assert spool.move_reported("/m/c", "/m/d", (None, 44)) == 1 and spool.reported("/m/d").sha256 == "cc" * 32
    assert spool.move_reported("/m/nothing", "/m/e", (None, 55)) == 0
    spool.close()


@pytest.mark.parametrize(
    ("at_src", "at_dest", "held", "expected"),
    [
        (("A", 1), ("B", 2), (2, 1), {"src": "B", "dest": "A"}),  # an exchange: either move
        (("B", 2), ("A", 1), (2, 1), {"src": "B", "dest": "A"}),  # the second move, marks already right
        (("A", 1), ("B", 2), (None, 1), {"dest": "A"}),  # a plain rename over a reported file
        (("A", 1), None, (None, 9), {"dest": "A"}),  # the file replaced since: as a plain rename
        (("A", 1), ("B", 9), (None, 9), {"dest": "B"}),  # ... unless dest's mark names what is there
        (None, ("B", 2), (None, 1), {}),  # dest's file replaced by one never reported
        (("A", 1), ("B", 1), (1, 1), {"src": "A", "dest": "B"}),  # hard links: nothing moves
        (("A", 1), None, (1, None), {"src": "A"}),  # src holds its inode again (the move came late)
    ],
)
def test_placed_by_inode(at_src, at_dest, held, expected):
    placed = placed_by_inode("src", "dest", at_src, at_dest, *held, inode=lambda m: m[1])
    assert {k: v[0] for k, v in placed.items()} == expected


def test_marks_follow_a_renamed_file_or_folder(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    marks = [FileMark(p, 1, 2, 3, 4, "ab" * 32) for p in ("/m/usb/a.pdf", "/m/usb/dir/b.pdf", "/m/usb/dir2/c.pdf")]
    spool.put([], marks)
    assert spool.move_reported("/m/usb/a.pdf", "/m/usb/z.pdf") == 1
    assert spool.move_reported("/m/usb/dir", "/m/usb/new") == 1
    assert spool.reported("/m/usb/a.pdf") is None and spool.reported("/m/usb/z.pdf").sha256 == "ab" * 32
    assert spool.reported("/m/usb/new/b.pdf") is not None and spool.reported("/m/usb/dir/b.pdf") is None
    assert spool.reported("/m/usb/dir2/c.pdf") is not None, "a sibling with the same prefix is not under the folder"
    assert spool.reported("/m/usb/new/b.pdf").reported_at == spool.reported("/m/usb/dir2/c.pdf").reported_at  # kept
    spool.close()


def test_an_ack_writes_the_delivery_state_in_the_same_commit(tmp_path):
    """The reporter's `last_delivery` goes with the ack: one fsync'd commit per delivered batch,
    not two (issue 21 item 4)."""
    spool = Spool(str(tmp_path / "spool.db"))
    spool.put([Event(type="file.created", path=f"/srv/rnd/{i}.dwg") for i in range(3)])
    commits = []
    spool.db.conn().set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    spool.ack(spool.peek(2), state={"last_delivery": '{"at": 1}'})
    spool.db.conn().set_trace_callback(None)
    assert commits == ["COMMIT"]
    assert spool.depth() == 1 and spool.get_state("last_delivery") == '{"at": 1}'
    spool.close()
