"""The agent's event chain (seq and prev_hash given in the spool) and its watch on its own files."""

from __future__ import annotations

import json
import threading

from agent.integrity import ConfigWatch
from agent.spool import Spool
from rules.events import Event, chain_digest


def _events(n: int, tag: str = "") -> list[Event]:
    return [Event(type="file.created", path=f"/srv/rnd/{tag}{i}.dwg", size=i) for i in range(n)]


def _bodies(spool: Spool) -> list[dict]:
    return [json.loads(e.body) for e in spool.peek(100_000)]


def test_each_event_gets_the_next_seq_and_the_digest_of_the_one_before(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    spool.put(_events(3))
    spool.put(_events(2, "b"))
    bodies = _bodies(spool)
    assert [b["seq"] for b in bodies] == [1, 2, 3, 4, 5]
    assert bodies[0]["prev_hash"] is None
    for before, after in zip(bodies, bodies[1:], strict=False):
        assert after["prev_hash"] == chain_digest(before)
    assert spool.chain_head() == (5, chain_digest(bodies[-1]))
    spool.close()


def test_seq_continues_after_a_restart_and_after_events_were_sent(tmp_path):
    path = str(tmp_path / "spool.db")
    spool = Spool(path)
    spool.put(_events(3))
    last = _bodies(spool)[-1]
    spool.ack(spool.peek(10))  # delivered: the chain head stays
    spool.close()

    spool = Spool(path)
    spool.put(_events(1, "after-restart"))
    [body] = _bodies(spool)
    assert (body["seq"], body["prev_hash"]) == (4, chain_digest(last))
    spool.close()


def test_an_event_spooled_twice_takes_one_place(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    [event] = _events(1)
    spool.put([event])
    spool.put([event, *_events(1, "next")])
    assert [b["seq"] for b in _bodies(spool)] == [1, 2]
    spool.close()


def test_threads_spooling_at_once_make_one_unbroken_chain(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    threads = [threading.Thread(target=lambda t=t: [spool.put(_events(2, f"t{t}-{i}-")) for i in range(20)]) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bodies = _bodies(spool)
    assert [b["seq"] for b in bodies] == list(range(1, 161))  # peek order is chain order
    assert all(after["prev_hash"] == chain_digest(before) for before, after in zip(bodies, bodies[1:], strict=False))
    spool.close()


def test_chain_status_says_from_where_nothing_was_delivered(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    assert spool.chain_status() == {"seq": 0, "unsent_from": None}
    spool.put(_events(5))
    spool.ack(spool.peek(2))
    assert spool.chain_status() == {"seq": 5, "unsent_from": 3}
    spool.ack(spool.peek(3))
    assert spool.chain_status() == {"seq": 5, "unsent_from": None}
    # a gap explained by an event not sent yet holds the collector's judgement at the gap
    spool.put([Event(type="agent.gap", details={"seq_from": 2, "seq_to": 2})])
    assert spool.chain_status() == {"seq": 6, "unsent_from": 2}
    spool.close()


def test_the_chain_survives_a_text_with_a_lone_surrogate(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    spool.put([Event(type="agent.error", error="bad name \udcb1"), *_events(1)])
    first, second = _bodies(spool)
    assert first["error"] == "bad name \\xb1"
    assert second["prev_hash"] == chain_digest(first)
    spool.close()


# --- the agent's own files -------------------------------------------------------------------------


def _watch(tmp_path, spool, config, rules_dir):
    def make_event(type_, **fields):
        return Event(type=type_, **fields)

    return ConfigWatch(spool, make_event, str(config), [str(rules_dir)], check_s=3600)


def _tampers(spool: Spool) -> list[dict]:
    return [b for b in _bodies(spool) if b["type"] == "agent.tamper"]


def test_config_and_rule_changes_are_reported_once_with_both_hashes(tmp_path):
    config, rules_dir = tmp_path / "config.yaml", tmp_path / "rules"
    rules_dir.mkdir()
    config.write_text("agent: {}\n")
    (rules_dir / "acme.yaml").write_text("- id: A\n")
    spool = Spool(str(tmp_path / "spool.db"))
    watch = _watch(tmp_path, spool, config, rules_dir)
    assert watch.check(running=False) == 0  # the first start learns the files

    config.write_text("agent: {heartbeat_s: 3600}\n")
    assert watch.check() == 1
    assert watch.check() == 0  # reported once
    [event] = _tampers(spool)
    assert event["details"]["kind"] == "config_changed" and event["details"]["file"] == "config"
    assert event["details"]["path"] == str(config)
    assert event["details"]["old_sha256"] != event["details"]["new_sha256"] == event["sha256"]
    assert event["details"]["while_running"] is True

    (rules_dir / "acme.yaml").unlink()
    (rules_dir / "extra.yml").write_text("- id: B\n")
    assert watch.check() == 2
    changes = {e["details"]["path"]: e["details"] for e in _tampers(spool)[1:]}
    assert changes[str(rules_dir / "acme.yaml")]["new_sha256"] is None
    assert changes[str(rules_dir / "extra.yml")]["old_sha256"] is None
    assert all(c["file"] == "rules" for c in changes.values())
    spool.close()


def test_a_change_made_while_the_agent_was_stopped_is_reported_at_start(tmp_path):
    config, rules_dir = tmp_path / "config.yaml", tmp_path / "rules"
    rules_dir.mkdir()
    config.write_text("agent: {}\n")
    path = str(tmp_path / "spool.db")
    spool = Spool(path)
    _watch(tmp_path, spool, config, rules_dir).check(running=False)
    spool.close()

    config.write_text("agent: {egress: {removable: false}}\n")  # edited while no agent ran
    spool = Spool(path)
    assert _watch(tmp_path, spool, config, rules_dir).check(running=False) == 1
    [event] = _tampers(spool)
    assert event["details"]["while_running"] is False
    assert "while the agent was not running" in event["error"]
    spool.close()


def test_unchanged_files_report_nothing_across_restarts(tmp_path):
    config, rules_dir = tmp_path / "config.yaml", tmp_path / "rules"
    rules_dir.mkdir()
    config.write_text("agent: {}\n")
    path = str(tmp_path / "spool.db")
    for _ in range(3):
        spool = Spool(path)
        watch = _watch(tmp_path, spool, config, rules_dir)
        assert watch.check(running=False) == 0
        config.touch()  # a new mtime, the same content
        assert watch.check() == 0
        spool.close()
    assert _tampers(Spool(path)) == []


def test_the_body_is_the_bytes_the_chain_hashes_with_the_agent_id_beside(tmp_path):
    """One encoding per event (issue 21 item 4): the spooled body is canonical_json of the event,
    the agent id appended, so its digest is taken from the very bytes that are sent; the values
    are the event's (1.0 travels as 1, the same JSON number). Before, the body was a second,
    unsorted encoding of the same dict."""
    from rules.events import CHAIN_EXCLUDED, Detection, Match, canonical_json

    spool = Spool(str(tmp_path / "spool.db"))
    events = [
        Event(type="egress.file", agent_id="7c1b6f0e-0000-4000-8000-000000000001", path="/media/u/图纸.dwg", size=3,
              match=Match("exact", 1.0), detections=(Detection("marking", 2, "机密★"),), details={"ratio": 0.5, "n": 2.0}),
        Event(type="file.created", path="/srv/rnd/a.dwg", size=1),  # no agent id yet
    ]
    spool.put(events)
    stored = spool.peek(10)
    bodies = [json.loads(e.body) for e in stored]
    for event, spooled, body in zip(events, stored, bodies, strict=True):
        kept = {k: v for k, v in body.items() if k not in CHAIN_EXCLUDED}
        raw = spooled.body.encode("utf-8")
        assert raw == canonical_json(kept) if event.agent_id is None else raw.startswith(canonical_json(kept)[:-1] + b",")
        assert body["agent_id"] == event.agent_id
        expected = event.to_dict()
        expected.update(seq=body["seq"], prev_hash=body["prev_hash"], ts=body["ts"])
        assert body == expected  # the same values (1 == 1.0)
    assert bodies[1]["prev_hash"] == chain_digest(bodies[0])
    assert spool.size() == sum(len(e.body.encode("utf-8")) for e in stored)
    spool.close()
