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


def _overwrite_middle(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 2 // 4096 * 4096)
        f.write(b"\xa5" * 4096 * 3)


def _damaged(tmp_path: Path, puts: int = 60, acked: int | None = 100) -> Path:
    """A spool whose events are all in spool.db (a clean close), then overwritten in the middle."""
    path = tmp_path / "spool.db"
    _killed_writer(path, puts, acked=acked)
    Spool(str(path)).close()
    _overwrite_middle(path)
    return path


def _gaps(spool: Spool) -> list[dict]:
    return [e for e in _chain(spool) if e["type"] == "agent.gap"]


class _PowerCut(BaseException):
    pass


@pytest.mark.parametrize("when", ["during the salvage", "before the swap", "during the swap"])
def test_a_crash_during_the_recovery_neither_restarts_the_chain_nor_loses_the_announcement(tmp_path, monkeypatch, when):
    """The review's finding: the damaged file used to be moved aside and a fresh spool created
    before the chain head and the announcement were written, so a crash in between restarted the
    chain at seq 1 with nothing announced. Now the damaged file stays in place until a whole new
    file replaces it."""
    import agent.spool as spool_module

    path = _damaged(tmp_path)
    damaged_bytes = path.read_bytes()

    def cut(*_args, **_kwargs):
        raise _PowerCut(when)

    if when == "during the salvage":
        monkeypatch.setattr(spool_module, "_copy_rows", cut)
    elif when == "before the swap":
        monkeypatch.setattr(spool_module, "_finish_recovering", lambda p, real=spool_module._finish_recovering: (
            real(p) if not os.path.exists(p + spool_module.RECOVERING_SUFFIX) else cut()))
    else:
        monkeypatch.setattr(spool_module.os, "link", cut)  # after the damaged file's log moved aside
    with pytest.raises(_PowerCut):
        Spool(str(path))
    monkeypatch.undo()
    if when != "during the swap":
        assert path.read_bytes() == damaged_bytes, "the damaged file was touched before the new one was whole"
    spool = Spool(str(path))  # the next start
    assert not Path(str(path) + spool_module.RECOVERING_SUFFIX).exists()
    head = spool.chain_head()[0]
    assert head >= 10 + RESERVE + 1, "the chain restarted below the reservation"
    spool.put([Event(type="agent.started")])
    [gap] = _gaps(spool)
    assert (gap["details"]["seq_from"], gap["details"]["seq_to"]) == (1, head)
    assert gap["details"]["reason"] == "spool damaged"
    salvaged = [e for e in _chain(spool) if e["type"] == "file.created"]
    assert salvaged and gap["details"]["salvaged"] == len(salvaged)
    assert all(101 <= e["seq"] <= 600 for e in salvaged)
    [aside] = [p for p in tmp_path.glob("spool.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    assert aside.read_bytes() == damaged_bytes  # kept as it was found
    assert spool.get_state("recovery_aside") is None
    spool.close()
    again = Spool(str(path))  # recovered once
    assert again.get_state(RECOVERY_GAP) is None and len(_gaps(again)) == 1
    again.close()


@pytest.mark.parametrize("how", ["deleted", "an older copy"])
def test_a_spool_behind_its_head_file_is_treated_as_damaged(tmp_path, how):
    """spool.db lost or replaced while spool.db.head survived: the chain continues above the
    reservation and unsent_from..reserved is announced, instead of seqs being given out again."""
    path = tmp_path / "spool.db"
    spool = Spool(str(path))
    spool.put([Event(type="file.created", path=f"/d/{i}") for i in range(3)])
    spool.close()
    old = tmp_path / "old"
    old.mkdir()
    for f in tmp_path.glob("spool.db*"):
        if f.is_file() and f.name != "spool.db" + HEAD_SUFFIX:
            (old / f.name).write_bytes(f.read_bytes())
    spool = Spool(str(path))
    spool.put([Event(type="file.created", path=f"/d/{i}") for i in range(3, 5)])
    spool.ack(spool.peek(5))
    spool.put([Event(type="file.created", path=f"/e/{i}") for i in range(RESERVE + 1)])  # a new reservation
    spool.close()
    head_file = json.loads((tmp_path / ("spool.db" + HEAD_SUFFIX)).read_text())
    assert head_file == {"reserved": 6 + RESERVE + RESERVE, "unsent_from": 6}
    for f in list(tmp_path.glob("spool.db")) + list(tmp_path.glob("spool.db-*")):
        f.unlink()
    if how == "an older copy":  # chain at 3, while the head file says 1..5 were delivered and 6.. given out
        for f in old.iterdir():
            (tmp_path / f.name).write_bytes(f.read_bytes())
    spool = Spool(str(path))
    head = spool.chain_head()[0]
    assert head == head_file["reserved"] + 1
    spool.put([Event(type="agent.started")])
    [gap] = _gaps(spool)
    assert (gap["details"]["seq_from"], gap["details"]["seq_to"]) == (6, head)
    spool.close()


def test_a_fresh_spool_without_a_head_file_is_not_damage(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    assert spool.get_state(RECOVERY_GAP) is None and spool.chain_head()[0] == 0
    spool.close()


def test_status_reads_a_torn_spool_read_only_and_the_agent_still_sees_the_tear(tmp_path):
    """The review's finding: `miwei-agent status` opened the spool read-write, and closing that
    connection checkpointed the torn log and deleted it: the agent then saw no tear."""
    from agent.app import _spool_status

    path = tmp_path / "spool.db"
    _killed_writer(path, 20)
    wal = Path(str(path) + "-wal")
    os.truncate(wal, wal.stat().st_size - 100)
    files = {f.name: f.read_bytes() for f in (path, wal)}
    status = _spool_status(str(path))
    assert status["spool_exists"] and status["spool_depth"] > 0 and "spool_error" not in status
    assert {f.name: f.read_bytes() for f in (path, wal)} == files  # nothing checkpointed, nothing cut
    spool = Spool(str(path))
    assert json.loads(spool.get_state(RECOVERY_GAP))["reason"] == "spool journal torn"
    spool.close()


def test_status_does_not_create_a_missing_spool(tmp_path):
    from agent.app import _spool_status

    path = tmp_path / "state" / "spool.db"
    assert _spool_status(str(path)) == {"spool_depth": 0, "dead_events": 0, "last_delivery": None, "spool_exists": False}
    assert not path.parent.exists()


def test_the_salvage_reads_the_damaged_file_read_only(tmp_path):
    """The damaged file's log stays beside it (moved aside with it), not checkpointed into it."""
    path = tmp_path / "spool.db"
    _killed_writer(path, 60)
    Spool(str(path)).close()  # the events in spool.db
    last_write = "import os, sqlite3, sys; sqlite3.connect(sys.argv[1], isolation_level=None).execute(\"INSERT INTO state VALUES ('x', 'y')\"); os._exit(0)"
    subprocess.run([sys.executable, "-c", last_write, str(path)], check=True)  # a commit left in the log
    assert Path(str(path) + "-wal").stat().st_size > 0
    _overwrite_middle(path)
    files = {name: (tmp_path / name).read_bytes() for name in ("spool.db", "spool.db-wal")}
    spool = Spool(str(path))
    [aside] = [p for p in tmp_path.glob("spool.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    assert aside.read_bytes() == files["spool.db"]
    assert Path(str(aside) + "-wal").read_bytes() == files["spool.db-wal"]
    assert spool.chain_head()[0] == 10 + RESERVE + 1
    spool.close()


def test_the_torn_tail_is_cut_after_the_recovery_so_a_later_kill_is_not_a_tear(tmp_path):
    """The review's finding: SQLite writes over a torn log from its last valid frame but never
    shortens the file, so every later unclean stop read as torn again (1,000 seqs announced)."""
    path = tmp_path / "spool.db"
    _killed_writer(path, 20)
    wal = Path(str(path) + "-wal")
    with open(wal, "ab") as f:
        f.write(b"\x01" * 2_000_000)  # a torn tail, longer than what is written after it
    _killed_writer(path, 1)  # recovers (the announcement is spooled with its first put), then killed
    spool = Spool(str(path))
    assert spool.get_state(RECOVERY_GAP) is None  # the second unclean stop is not a tear
    spool.put([Event(type="agent.started")])
    gaps = _gaps(spool)
    assert [g["details"]["reason"] for g in gaps] == ["spool journal torn"]
    assert spool.chain_head()[0] == gaps[0]["seq"] + 10 + 1
    spool.close()


@pytest.mark.parametrize("code, message", [(10, "disk I/O error"), (13, "database or disk is full"), (14, "unable to open database file")])
def test_a_failing_disk_is_not_damage_the_spool_stays_where_it_is(tmp_path, monkeypatch, code, message):
    """sqlite3.DatabaseError includes OperationalError: a full or failing disk must stop the agent
    (the service manager restarts it, the log says why), not move a healthy spool aside."""
    import sqlite3

    import agent.spool as spool_module

    path = tmp_path / "spool.db"
    _killed_writer(path, 5)
    before = sorted(p.name for p in tmp_path.iterdir())

    def failing(*_args, **_kwargs):
        exc = sqlite3.OperationalError(message)
        exc.sqlite_errorcode = code
        raise exc

    for target in ("_connect_ro", "StateDB"):
        monkeypatch.setattr(spool_module, target, failing)
        with pytest.raises(sqlite3.OperationalError, match=message):
            Spool(str(path))
        monkeypatch.undo()
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    spool = Spool(str(path))
    assert spool.chain_head()[0] == 50 and spool.get_state(RECOVERY_GAP) is None
    spool.close()


def test_damage_found_only_by_the_read_write_open_is_recovered(tmp_path, monkeypatch):
    import sqlite3

    import agent.spool as spool_module

    path = tmp_path / "spool.db"
    _killed_writer(path, 5)
    real, calls = spool_module.StateDB, []

    def corrupt_once(p, *args):
        calls.append(p)
        if len(calls) == 1:
            exc = sqlite3.DatabaseError("database disk image is malformed")
            exc.sqlite_errorcode = 267  # SQLITE_CORRUPT_VTAB: an extended code of SQLITE_CORRUPT
            raise exc
        return real(p, *args)

    monkeypatch.setattr(spool_module, "StateDB", corrupt_once)
    spool = Spool(str(path))
    assert json.loads(spool.get_state(RECOVERY_GAP))["reason"] == "spool damaged"
    assert len(_chain(spool)) == 50  # the file was whole: everything read back
    spool.close()


def test_a_mark_read_back_from_the_damaged_file_does_not_make_an_unfinished_recovery_whole(tmp_path, monkeypatch):
    """spool.db.recovering is whole only with the mark its last write adds: a mark salvaged from
    the damaged file (left by an earlier recovery) must not make the next start swap in a file
    without its chain head."""
    import agent.spool as spool_module

    path = tmp_path / "spool.db"
    _killed_writer(path, 60, acked=100)
    spool = Spool(str(path))
    spool.set_state(spool_module.RECOVERY_ASIDE, "spool.db.corrupt-earlier")
    spool.close()
    _overwrite_middle(path)

    def cut(*_args, **_kwargs):
        raise _PowerCut("after the salvage")

    monkeypatch.setattr(Spool, "_gap", cut)
    with pytest.raises(_PowerCut):
        Spool(str(path))
    monkeypatch.undo()
    spool = Spool(str(path))
    assert spool.chain_head()[0] == 10 + RESERVE + 1
    assert json.loads(spool.get_state(RECOVERY_GAP))["seq_from"] == 1
    assert not (tmp_path / "spool.db.corrupt-earlier").exists()
    spool.close()
