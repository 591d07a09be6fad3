"""The spool's bound: the least valuable events go first, never classified egress, and every drop
is announced by an agent.gap the collector can match against the chain."""

from __future__ import annotations

import json

import pytest

from agent.spool import VALUE_KEEP, VALUE_MATCHED, VALUE_ROUTINE, Spool, value_of
from rules.events import Event, Match

PAD = "x" * 900  # about 1 KB per event


def _routine(i: int) -> Event:
    return Event(type="egress.file", path=f"/usb/holiday-{i}.jpg", error=PAD)


def _classified(i: int) -> Event:
    return Event(type="egress.file", path=f"/usb/pump-{i}.dwg", level="core", match=Match("exact"), severity="critical", error=PAD)


def _matched(i: int) -> Event:
    return Event(type="file.modified", path=f"/rnd/{i}.dwg", level="core", rule_ids=("MW-OFF-HOURS-CORE",), severity="medium", error=PAD)


def _bodies(spool: Spool) -> list[dict]:
    return [json.loads(e.body) for e in spool.peek(1_000_000, max_bytes=1 << 40)]


def test_values():
    assert value_of(_routine(0)) == VALUE_ROUTINE
    assert value_of(Event(type="file.created", path="/rnd/a", level="core")) == VALUE_ROUTINE
    assert value_of(_matched(0)) == VALUE_MATCHED
    assert value_of(Event(type="file.deleted", path="/rnd/a", level="core")) == VALUE_MATCHED
    assert value_of(_classified(0)) == VALUE_KEEP
    assert value_of(Event(type="egress.file", path="/usb/a", level="internal", match=Match("partial", 0.4))) == VALUE_KEEP
    assert value_of(Event(type="egress.file", path="/usb/a", severity="high", rule_ids=("MW-EGRESS-MARKED",))) == VALUE_KEEP
    for type_ in ("agent.gap", "agent.tamper", "agent.started", "agent.stopped"):
        assert value_of(Event(type=type_)) == VALUE_KEEP


def test_under_the_bound_nothing_is_dropped(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"), max_bytes=1_000_000)
    spool.put([_routine(i) for i in range(200)])
    assert spool.depth() == 200 and spool.dropped == 0
    assert 200_000 < spool.size() < 300_000


@pytest.mark.reliability(area="fault", fault="Spool over its size bound", how="more events than `limits.spool_mb` holds", outcome="routine events dropped first, never classified ones; an `agent.gap` names the dropped seqs")
def test_routine_events_go_first_then_matched_never_classified(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"), max_bytes=100_000)
    for i in range(30):  # interleaved, as they happen
        spool.put([_classified(i), _routine(i), _matched(i)])
    spool.put([_routine(i) for i in range(30, 100)])
    kinds = [("classified" if e.get("level") and e["type"] == "egress.file" else e["type"]) for e in _bodies(spool)]
    assert kinds.count("classified") == 30  # all kept
    assert spool.size() <= 100_000
    gaps = [e for e in _bodies(spool) if e["type"] == "agent.gap"]
    assert gaps and all(g["details"]["reason"] == "spool full" for g in gaps)
    dropped = sum(g["details"]["dropped"] for g in gaps)
    assert dropped == spool.dropped > 0
    # the newest routine events are the ones kept; matched ones only went when routine ones ran out
    routine_left = [e["path"] for e in _bodies(spool) if e["type"] == "egress.file" and not e.get("level")]
    assert routine_left == sorted(routine_left, key=lambda p: int(p.split("-")[1].split(".")[0]))
    assert len(routine_left) < 100  # some routine events went
    if kinds.count("file.modified") < 30:  # a matched event went only once no routine one was left
        assert routine_left == []


@pytest.mark.reliability(area="fault", fault="Spool over its size bound", how="more events than `limits.spool_mb` holds", outcome="routine events dropped first, never classified ones; an `agent.gap` names the dropped seqs")
def test_a_gap_names_the_seqs_it_explains(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"), max_bytes=50_000)
    spool.put([_classified(0)])
    spool.put([_routine(i) for i in range(60)])
    bodies = _bodies(spool)
    gap = next(e for e in bodies if e["type"] == "agent.gap")
    kept_seqs = {e["seq"] for e in bodies}
    all_seqs = set(range(1, spool.chain_head()[0] + 1))
    missing = all_seqs - kept_seqs
    assert missing and min(missing) >= gap["details"]["seq_from"] and max(missing) <= gap["details"]["seq_to"]
    assert gap["details"]["types"] == {"egress.file": len(missing)}
    # the chain still links: every kept event's prev_hash is the digest of some event before it
    assert [e["seq"] for e in bodies] == sorted(e["seq"] for e in bodies)


def test_only_never_dropped_events_left_the_spool_grows_and_says_so(tmp_path, caplog):
    spool = Spool(str(tmp_path / "spool.db"), max_bytes=20_000)
    spool.put([_classified(i) for i in range(60)])
    assert spool.depth() == 60 and spool.dropped == 0  # nothing classified is ever dropped
    assert spool.size() > 20_000


def test_the_size_is_kept_across_acks_and_reopening(tmp_path):
    path = str(tmp_path / "spool.db")
    spool = Spool(path, max_bytes=1_000_000)
    spool.put([_routine(i) for i in range(100)])
    size = spool.size()
    spool.ack(spool.peek(40))
    after_ack = spool.size()
    assert 0 < after_ack < size
    spool.close()
    assert Spool(path).size() == after_ack  # counted afresh: the same


def test_events_of_an_older_agent_without_a_value_are_kept(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"), max_bytes=30_000)
    spool.put([_routine(i) for i in range(10)])
    with spool.db.transaction() as conn:
        conn.execute("UPDATE spool SET value = NULL")
    spool.put([_routine(i) for i in range(10, 60)])
    paths = [e["path"] for e in _bodies(spool) if e["type"] == "egress.file"]
    assert all(f"/usb/holiday-{i}.jpg" in paths for i in range(10))
