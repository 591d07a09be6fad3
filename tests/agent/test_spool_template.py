"""A spool write's events encoded from a template (agent/spool_template.py) and inserted in one
statement (agent/spool.py FAST_BATCH): the same bodies, sizes, chain digests and stored rows as the
reference, which encodes and inserts each event on its own, for runs of events like a burst's and
runs that break the template in every way: another value of one field, an equal value of another
type (1 and True, 1 and 1.0), equal media that is another object, details in another order,
a time normal_ts rewrites, lone surrogates, values JSON refuses, events already spooled."""

from __future__ import annotations

import json
import math
import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import spool as spool_module
from agent import spool_template
from agent.spool import Spool, _details_text, _encoded, _encoded_reference, _sentinel_text, value_of
from agent.spool_template import encoded_run
from rules.events import Detection, Event, Match, Media, chain_digest
from tests.agent.test_spool_encoding import JSONISH, ODD_TEXT, events

MEDIA = Media("/media/usb", serial="X1", volume_id="ABCD-1234", size_bytes=2**34)


def _burst_event(i: int, **changes) -> Event:
    """An egress event of an opaque file as the pipeline makes them in a burst."""
    event = Event(
        type="egress.file", agent_id="7f2c", host="pc-1", user="zhang", path=f"/media/usb/报价-{i}.bin", size=4096 + i,
        sha256=f"{i:064x}", egress="removable", media=MEDIA, policy_version="v1", ts=f"2026-12-06T15:04:{i % 60:02d}.{i % 1000:03d}Z",
        details={"attribution": "caught", "writer_pid": 1234, "writer_exe": "/usr/bin/cp", "session_user": "zhang"},
    )  # fmt: skip
    return event.replaced(**changes) if changes else event


def _reference(events_: list[Event], seq: int, prev: str | None) -> list:
    out = []
    for event in events_:
        seq += 1
        encoded = _encoded_reference(event, seq, prev)
        out.append(encoded)
        prev = encoded[2]
    return out


def _run(events_: list[Event], seq: int, prev: str | None) -> list:
    return list(encoded_run(events_, seq, prev, _encoded, _sentinel_text, _details_text))


def _answer(encode, events_, seq, prev):
    try:
        return encode(events_, seq, prev)
    except Exception as exc:  # noqa: BLE001 - compared: both must refuse alike
        return type(exc)


# one change to a burst event that may or may not break its template
CHANGES = st.one_of(
    st.fixed_dictionaries({}),
    st.fixed_dictionaries({"path": st.one_of(st.none(), ODD_TEXT)}),
    st.fixed_dictionaries({"size": st.one_of(st.none(), st.integers(-(2**70), 2**70), st.just(5.0), st.just(True))}),
    st.fixed_dictionaries({"sha256": st.one_of(st.none(), ODD_TEXT, st.just(1))}),
    st.fixed_dictionaries({"id": st.one_of(ODD_TEXT, st.just(7), st.none())}),
    st.fixed_dictionaries(
        {
            "ts": st.sampled_from(
                [
                    "2026-12-06T15:04:05.1Z",
                    "2026-12-06T17:04:05.123+02:00",
                    "2026-12-06 15:04:05",
                    "x",
                    "2026-02-30T15:04:05.123Z",
                    "2026-12-06T15:04:05.123Z",
                    "2026-12-06T15:04:05.٣٣٣Z",
                ]
            )
        }
    ),  # fmt: skip
    st.fixed_dictionaries({"user": st.sampled_from(["zhang", "li", "\udcff"])}),
    st.fixed_dictionaries(
        {"host": st.sampled_from(["pc-1", '"\u0000mw-slot:id\u0000"', "\x00mw-slot:id\x00", "%s%%"])}
    ),
    st.fixed_dictionaries({"type_mismatch": st.sampled_from([None, True, 1, 1.0, False, 0])}),
    st.fixed_dictionaries({"severity": st.sampled_from([None, "low", "high", 1])}),
    st.fixed_dictionaries({"rule_ids": st.sampled_from([(), ("MW-1",), ("MW-1", "MW-2"), ["MW-1"], (1,), (True,)])}),
    st.fixed_dictionaries({"media": st.sampled_from([MEDIA, Media("/media/usb", serial="X1"), None])}),
    st.fixed_dictionaries({"match": st.sampled_from([None, Match("partial", 0.5)])}),
    st.fixed_dictionaries({"detections": st.sampled_from([(), (Detection("cn_mobile", 2, "138****5678"),)])}),
    st.fixed_dictionaries({"seq": st.sampled_from([None, 3, 2.5]), "prev_hash": st.sampled_from([None, "x", 1.0])}),
    st.fixed_dictionaries(
        {
            "details": st.one_of(
                st.sampled_from(
                    [
                        None,
                        {
                            "attribution": "caught",
                            "writer_pid": 1234,
                            "writer_exe": "/usr/bin/cp",
                            "session_user": "zhang",
                        },
                        {
                            "writer_pid": 1234,
                            "attribution": "caught",
                            "writer_exe": "/usr/bin/cp",
                            "session_user": "zhang",
                        },
                        {
                            "attribution": "caught",
                            "writer_pid": 1234.0,
                            "writer_exe": "/usr/bin/cp",
                            "session_user": "zhang",
                        },
                        {
                            "attribution": "caught",
                            "writer_pid": True,
                            "writer_exe": "/usr/bin/cp",
                            "session_user": "zhang",
                        },
                        {"a": 1, "b": True},
                        {"b": 1, "a": True},
                        {
                            "attribution": "close-write",
                            "process": {"pid": 1234, "name": "cp", "exe": "", "user": "zhang"},
                        },
                        {
                            "attribution": "close-write",
                            "process": {"pid": 1235, "name": "cp", "exe": "", "user": "zhang"},
                        },
                        {
                            "attribution": "close-write",
                            "process": {"pid": 1234.0, "name": "cp", "exe": "", "user": "zhang"},
                        },
                        {
                            "attribution": "close-write",
                            "process": {"pid": True, "name": "cp", "exe": "", "user": "zhang"},
                        },
                        {
                            "attribution": "close-write",
                            "process": {"name": "cp", "pid": 1234, "exe": "", "user": "zhang"},
                        },
                        {"attribution": "close-write", "process": {"a": 1, "b": True}},
                        {"attribution": "close-write", "process": {"b": 1, "a": True}},
                        {"attribution": "close-write", "process": {"b": True, "a": 1}},
                        {"attribution": "close-write", "process": {1: "x"}},
                        {"attribution": "close-write", "process": {"deeper": {"pid": 1}}},
                        {"attribution": "close-write", "process": {"pid": math.nan}},
                        {"attribution": "close-write", "process": {}},
                        {"attribution": "close-write", "process": "cp"},
                        {"a": True, "b": 1},
                        {"a": math.nan},
                        {"a": "\udcff"},
                        {1: "x"},
                        {True: "x"},
                    ]
                ),
                st.dictionaries(ODD_TEXT, JSONISH, max_size=3),
                st.dictionaries(
                    ODD_TEXT, st.one_of(JSONISH, st.dictionaries(ODD_TEXT, JSONISH, max_size=3)), max_size=3
                ),
            )
        }
    ),
    st.fixed_dictionaries({"agent_id": st.sampled_from(["7f2c", "8a1b", None, "\udcfe"])}),
)


@st.composite
def runs(draw):
    """A burst: each event the last one (or the first) with a new id, time, path, size and
    digest, and now and then another change, kept by the events after it."""
    count = draw(st.integers(1, 12))
    base = _burst_event(0)
    out = []
    for i in range(count):
        if draw(st.integers(0, 9)) == 0:
            base = draw(events())  # any event at all
        changes = draw(CHANGES)
        if draw(st.booleans()):
            base = base.replaced(**changes)  # kept by the events after it
        event = base.replaced(**changes)
        if event.type == "egress.file" and event.id == base.id and draw(st.booleans()):
            event = event.replaced(
                id=f"id-{i}", path=f"/media/usb/f{i}.bin", size=i, sha256=f"{i:064x}", ts=_burst_event(i).ts
            )
        out.append(event)
    return out


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs(), st.integers(0, 2**40), st.one_of(st.none(), st.just("cd" * 32)))
def test_a_run_from_templates_is_the_references_bodies_sizes_and_digests(run, seq, prev):
    assert _answer(_run, run, seq, prev) == _answer(_reference, run, seq, prev)


def test_a_burst_is_written_from_one_template(monkeypatch):
    """The burst's events after the first come from its template, not from the spool's encoder."""
    burst = [_burst_event(i) for i in range(50)]
    calls = []
    monkeypatch.setattr(spool_template, "template_of", _counted(spool_template.template_of, calls))
    fallbacks = []
    encoded = list(
        encoded_run(burst, 0, None, lambda *a: fallbacks.append(a) or _encoded(*a), _sentinel_text, _details_text)
    )
    assert encoded == _reference(burst, 0, None)
    assert len(calls) == 1 and not fallbacks
    body = json.loads(encoded[7][0])
    assert body["seq"] == 8 and body["prev_hash"] == encoded[6][2] and encoded[7][2] == chain_digest(body)


def test_a_run_too_mixed_stops_making_templates(monkeypatch):
    calls = []
    monkeypatch.setattr(spool_template, "template_of", _counted(spool_template.template_of, calls))
    mixed = [_burst_event(i, user=f"user-{i}") for i in range(40)]
    assert _run(mixed, 0, None) == _reference(mixed, 0, None)
    assert len(calls) == spool_template.MISSES_ALLOWED


def _counted(fn, calls):
    def counted(*args):
        calls.append(args)
        return fn(*args)

    return counted


def _rows(path: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT seq, id, body, chain_seq, gap_from, value FROM spool ORDER BY seq").fetchall()
        state = conn.execute("SELECT key, value FROM state ORDER BY key").fetchall()
    return [*rows, *state]


def _stored(tmp_path, name, fast, monkeypatch, writes):
    monkeypatch.setattr(spool_module, "FAST_BATCH", fast)
    store = Spool(str(tmp_path / f"{name}.db"))
    outcomes = []
    for write in writes:
        try:
            store.put(write)
            outcomes.append(None)
        except Exception as exc:  # noqa: BLE001 - compared
            outcomes.append(type(exc))
    head, size = store.chain_head(), store.size()
    store.close()
    return outcomes, head, size, _rows(str(tmp_path / f"{name}.db"))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(st.lists(runs(), min_size=1, max_size=4), st.data())
def test_the_spool_stores_what_the_reference_stores(tmp_path_factory, monkeypatch, writes, data):
    """Rows, chain head and size alike, also when an event is already spooled, twice in one
    write, or without an id (then the reference's loop places the write's events)."""
    for write in writes:
        if data.draw(st.booleans()):
            seen = [e for w in writes for e in w]
            write.append(data.draw(st.sampled_from(seen)))  # already spooled, or twice in this write
        if data.draw(st.integers(0, 9)) == 0:
            write.append(_burst_event(99, id=None))
    tmp_path = tmp_path_factory.mktemp("spools")
    fast = _stored(tmp_path, "fast", True, monkeypatch, writes)
    reference = _stored(tmp_path, "reference", False, monkeypatch, writes)
    assert fast == reference


def test_an_event_already_spooled_keeps_its_place_and_the_others_follow(tmp_path):
    store = Spool(str(tmp_path / "spool.db"))
    burst = [_burst_event(i) for i in range(6)]
    store.put(burst[:2])
    store.put(burst)  # the first two are spooled already: the other four get seqs 3..6
    bodies = [json.loads(e.body) for e in store.peek(100)]
    assert [(b["id"], b["seq"]) for b in bodies] == [(e.id, i) for i, e in enumerate(burst, 1)]
    for before, after in zip(bodies, bodies[1:], strict=False):
        assert after["prev_hash"] == chain_digest(before)
    assert store.chain_head() == (6, chain_digest(bodies[-1]))
    assert [value_of(e) for e in burst] == [r[5] for r in _rows(str(tmp_path / "spool.db"))[:6]]
    store.close()


def test_equal_values_of_another_type_are_written_as_their_own():
    """1 == True == 1.0, but json writes 1, true and 1: neither the template nor the last details'
    text may be taken for an event whose values are merely equal."""
    cases = [
        {"details": {"a": 1, "b": True}},
        {"details": {"a": True, "b": 1}},
        {"details": {"a": 1.0, "b": True}},
        {"type_mismatch": 1},
        {"type_mismatch": True},
        {"type_mismatch": 1.0},
        {"size": True},
        {"rule_ids": ("MW-1",)},
        {"rule_ids": ("MW-1",), "details": {1: "x"}},
        {"rule_ids": ("MW-1",), "details": {True: "x"}},
        {"details": {"process": {"a": 1, "b": True}}},
        {"details": {"process": {"b": 1, "a": True}}},
        {"details": {"process": {"a": True, "b": 1}}},
        {"details": {"process": {"a": 1.0, "b": True}}},
        {"details": {"process": {1: "x"}}},
        {"details": {"process": {True: "x"}}},
        {"details": {"process": {"deeper": {"a": 1, "b": True}}}},
        {"details": {"process": {"deeper": {"b": 1, "a": True}}}},
        {"details": {"process": {"pid": 0.0}}},
        {"details": {"process": {"pid": -0.0}}},
        {"details": {"a": 0.0}},
        {"details": {"a": -0.0}},
        {"details": {"a": [1, True]}},
        {"details": {"a": [True, 1]}},
    ]
    for first in cases:
        for second in cases:
            run = [_burst_event(0, **first), _burst_event(1, **second), _burst_event(2, **first)]
            assert _run(run, 5, None) == _reference(run, 5, None), (first, second)


def test_a_write_fails_where_the_references_loop_fails(tmp_path, monkeypatch):
    """The reference inserts each event after encoding it: an id SQLite cannot take (a lone
    surrogate) or a gap's seq it cannot hold fails there, before a later event JSON refuses."""
    refused = _burst_event(3, details={"a": math.nan})
    for first in (
        _burst_event(1, id="a\udcffb"),
        Event(type="agent.gap", id="g", ts=TS_GAP, details={"seq_from": 2**70}),
    ):
        writes = [[_burst_event(0), first, refused]]
        fast = _stored(tmp_path, f"fast-{first.id}", True, monkeypatch, writes)
        reference = _stored(tmp_path, f"reference-{first.id}", False, monkeypatch, writes)
        assert fast == reference
        assert fast[0][0] is not ValueError  # the insert's error, not the later encoding's


TS_GAP = "2026-12-06T15:04:05.123Z"


def test_details_holding_a_dict_changed_after_an_event_are_written_as_they_are_now():
    """The writer's process dict is compared with a copy of the last one, not with itself: a dict
    shared by two events and changed between their encodings is written as it is then."""
    process = {"pid": 1234, "name": "cp", "exe": "", "user": "zhang"}
    details = {"attribution": "close-write", "process": process}
    run = [_burst_event(i, details=details) for i in range(3)]
    encoded = encoded_run(run, 5, None, _encoded, _sentinel_text, _details_text)
    first = next(encoded)
    process["pid"] = 4321
    second = next(encoded)
    process["pid"] = True  # equal to 1, written as true
    process["pid"] = 1
    third = next(encoded)
    expected = []
    prev = None
    for i, pid in enumerate((1234, 4321, 1)):
        event = run[i].replaced(details={"attribution": "close-write", "process": {**process, "pid": pid}})
        expected.append(_encoded_reference(event, 6 + i, prev))
        prev = expected[-1][2]
    assert [first, second, third] == expected


def test_a_burst_named_by_the_kernel_reuses_its_details_text(monkeypatch):
    """Each event of a copy the kernel named carries the same process dict: its details' text is
    made once, not once an event (the shortcut is taken, and its answers are the reference's)."""
    made = []
    run = [
        _burst_event(
            i, details={"attribution": "close-write", "process": {"pid": 7, "name": "cp", "exe": "", "user": "zhang"}}
        )
        for i in range(20)
    ]
    encoded = list(encoded_run(run, 0, None, _encoded, _sentinel_text, lambda d: made.append(d) or _details_text(d)))
    assert encoded == _reference(run, 0, None)
    assert len(made) == 1
