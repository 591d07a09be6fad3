"""A torn or damaged spool: the agent starts, keeps what it can read, and announces the rest.

The files are made the way a killed agent leaves them: a child process spools and is ended with
os._exit, so SQLite never checkpoints and the events live in spool.db-wal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.spool import HEAD_SUFFIX, RECOVERY_GAP, RESERVE, Spool
from rules.events import Event

WRITER = """
import os, sys
from agent.spool import Spool
from rules.events import Event
spool = Spool(sys.argv[1])
for i in range(int(sys.argv[2])):
    spool.put([Event(type="file.created", path=f"/data/{i:05d}-" + "x" * 200) for _ in range(10)])
if len(sys.argv) > 3:
    spool.ack(spool.peek(int(sys.argv[3])))
os._exit(0)  # like a kill: nothing checkpointed, nothing closed
"""


def _killed_writer(path: Path, puts: int, acked: int | None = None) -> None:
    args = [sys.executable, "-c", WRITER, str(path), str(puts)] + ([str(acked)] if acked is not None else [])
    subprocess.run(args, check=True, cwd=Path(__file__).parents[2])


def _chain(spool: Spool) -> list[dict]:
    return [json.loads(e.body) for e in spool.peek(100_000, max_bytes=1 << 30)]


def test_the_chain_head_is_reserved_outside_the_database(tmp_path):
    path = tmp_path / "spool.db"
    spool = Spool(str(path))
    spool.put([Event(type="file.created", path=f"/d/{i}") for i in range(5)])
    head = json.loads((tmp_path / ("spool.db" + HEAD_SUFFIX)).read_text())
    assert head == {"reserved": 5 + RESERVE, "unsent_from": 1}
    spool.ack(spool.peek(5))
    spool.put([Event(type="file.created", path=f"/e/{i}") for i in range(RESERVE + 1)])  # passes the reservation
    head = json.loads((tmp_path / ("spool.db" + HEAD_SUFFIX)).read_text())
    assert head == {"reserved": 6 + RESERVE + RESERVE, "unsent_from": 6}
    spool.close()


def test_an_intact_spool_opens_without_recovery(tmp_path):
    path = tmp_path / "spool.db"
    _killed_writer(path, 20)
    assert os.path.getsize(str(path) + "-wal") > 0
    spool = Spool(str(path))
    assert spool.chain_head()[0] == 200 and spool.get_state(RECOVERY_GAP) is None
    assert not list(tmp_path.glob("spool.db.corrupt-*"))
    spool.close()


@pytest.mark.reliability(area="fault", fault="Spool journal torn or spool file damaged (unit)", how="a killed writer's `spool.db-wal` cut mid-frame; `spool.db` overwritten, cut short or with a garbage header", outcome="the spool opens; a torn log keeps the commits before the tear; a damaged file is moved aside and what can be read is kept; the chain continues above the reservation in `spool.db.head` and one `agent.gap` announces the range; announced once, also across a crash")
def test_a_torn_log_continues_the_chain_above_the_reservation_and_announces_the_loss(tmp_path):
    path = tmp_path / "spool.db"
    _killed_writer(path, 60)
    wal = Path(str(path) + "-wal")
    os.truncate(wal, wal.stat().st_size // 2 + 123)  # cut in the middle of a frame
    spool = Spool(str(path))
    kept = len(_chain(spool))  # the commits before the tear
    assert kept < 600, "the tear lost no commit: the test cut too little"
    head = spool.chain_head()[0]
    assert head == 10 + RESERVE + 1  # reserved at the first put (seq 10), plus one left unused
    assert spool.chain_status()["unsent_from"] == 1  # the oldest waiting event is still 1
    spool.put([Event(type="agent.started")])
    chain = _chain(spool)
    gap, started = chain[-2], chain[-1]
    assert gap["type"] == "agent.gap"
    assert gap["details"]["reason"] == "spool journal torn"
    assert (gap["details"]["seq_from"], gap["details"]["seq_to"]) == (kept + 1, head)
    assert gap["seq"] == head + 1 and gap["prev_hash"] is None
    assert started["seq"] == head + 2
    assert [e["seq"] for e in chain[:-2]] == list(range(1, kept + 1))  # what survived stays in order
    spool.close()
    again = Spool(str(path))  # announced once: a clean reopen does not announce again
    again.put([Event(type="agent.started")])
    assert [e["type"] for e in _chain(again)[-2:]] == ["agent.started", "agent.started"]
    again.close()


@pytest.mark.parametrize("damage", ["overwritten", "truncated", "not a database"])
@pytest.mark.reliability(area="fault", fault="Spool journal torn or spool file damaged (unit)", how="a killed writer's `spool.db-wal` cut mid-frame; `spool.db` overwritten, cut short or with a garbage header", outcome="the spool opens; a torn log keeps the commits before the tear; a damaged file is moved aside and what can be read is kept; the chain continues above the reservation in `spool.db.head` and one `agent.gap` announces the range; announced once, also across a crash")
def test_a_damaged_file_is_moved_aside_and_what_can_be_read_is_kept(tmp_path, damage):
    path = tmp_path / "spool.db"
    _killed_writer(path, 60, acked=100)
    Spool(str(path)).close()  # a clean close checkpoints: everything is in spool.db now
    size = path.stat().st_size
    with open(path, "r+b") as f:
        if damage == "overwritten":
            f.seek(size // 2 // 4096 * 4096)
            f.write(b"\xa5" * 4096 * 3)
        elif damage == "truncated":
            f.truncate(size // 2 + 100)
        else:
            f.write(b"garbage " * 16)
    spool = Spool(str(path))
    [aside] = [p for p in tmp_path.glob("spool.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    assert aside.name.startswith("spool.db.corrupt-") and not aside.name.endswith(("-wal", "-shm"))
    head = spool.chain_head()[0]
    assert head == 10 + RESERVE + 1  # above everything the reservation says may have been given out
    spool.put([Event(type="agent.started")])
    chain = _chain(spool)
    gap = chain[-2]
    assert gap["type"] == "agent.gap" and gap["details"]["reason"] == "spool damaged"
    assert (gap["details"]["seq_from"], gap["details"]["seq_to"]) == (1, head)  # the reservation's first unsent seq
    salvaged = chain[:-2]
    assert gap["details"]["salvaged"] == len(salvaged)
    assert all(101 <= e["seq"] <= 600 for e in salvaged)  # acked ones are gone; the rest read back where possible
    assert [e["seq"] for e in salvaged] == sorted(e["seq"] for e in salvaged)
    if damage != "not a database":
        assert salvaged, "nothing read back from a file damaged only in part"
    spool.close()


@pytest.mark.reliability(area="fault", fault="Spool journal torn or spool file damaged (unit)", how="a killed writer's `spool.db-wal` cut mid-frame; `spool.db` overwritten, cut short or with a garbage header", outcome="the spool opens; a torn log keeps the commits before the tear; a damaged file is moved aside and what can be read is kept; the chain continues above the reservation in `spool.db.head` and one `agent.gap` announces the range; announced once, also across a crash")
def test_a_recovery_announcement_survives_a_crash_before_it_is_spooled(tmp_path):
    path = tmp_path / "spool.db"
    _killed_writer(path, 10)
    with open(path, "r+b") as f:
        f.write(b"garbage " * 16)
    os.unlink(str(path) + "-wal")
    Spool(str(path)).close()  # recovered, then stopped before any event
    spool = Spool(str(path))
    assert spool.get_state(RECOVERY_GAP) is not None
    assert spool.chain_status()["unsent_from"] == 1  # heartbeats hold the collector's judgement back
    spool.put([Event(type="agent.started")])
    assert [e["type"] for e in _chain(spool)] == ["agent.gap", "agent.started"]
    assert spool.get_state(RECOVERY_GAP) is None
    spool.close()


def test_status_reads_a_damaged_spool_without_recovering_it(tmp_path):
    path = tmp_path / "spool.db"
    _killed_writer(path, 10)
    wal = Path(str(path) + "-wal")
    os.truncate(wal, wal.stat().st_size - 100)
    spool = Spool(str(path), recover=False)
    assert spool.get_state(RECOVERY_GAP) is None
    spool.close()


@pytest.mark.reliability(area="fault", fault="Spool cannot store an event", how="the spool's writes fail", outcome="retried, then dropped and counted; nothing else lost; a spool that stores nothing loses nothing")
def test_a_head_file_that_cannot_be_written_fails_the_put_and_the_outbox_drops_nothing(tmp_path, monkeypatch):
    """A full disk can fail the head file before the database: that is the spool failing, so the
    outbox keeps the events instead of dropping them one by one as unstorable."""
    import errno
    import sqlite3

    from agent.outbox import Outbox

    spool = Spool(str(tmp_path / "spool.db"))

    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "_reserve", full)
    with pytest.raises(sqlite3.OperationalError, match="head file: No space left on device"):
        spool.put([Event(type="file.created", path="/d/a")])
    assert spool.depth() == 0 and spool.chain_head()[0] == 0  # rolled back whole
    outbox = Outbox(spool, stamp=lambda e: e, make_event=lambda t, **f: Event(type=t, **f), attempts=2)
    for i in range(3):
        outbox.add(Event(type="file.created", path=f"/d/{i}"))
    for _ in range(4):
        with pytest.raises(sqlite3.OperationalError):
            outbox.flush()
    assert outbox.events_waiting() == 3  # nothing dropped
    monkeypatch.undo()
    outbox.flush()
    assert spool.depth() == 3 and spool.chain_head()[0] == 3
    spool.close()
