"""An event's id and time as Event.made makes them (rules/events.py new_event_id, now_ms_iso,
FAST_STAMPS): the UUID of version 7 that reference_event_id builds from the same clock reading and
random bytes (ids made later sort later), and the text utc_now_iso() makes of the same clock
reading, whatever the order of the readings (the second's text is kept between calls)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import events
from rules.events import Event, new_event_id, now_ms_iso, reference_event_id

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LAST_NS = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - EPOCH).total_seconds()) * 10**9


@settings(max_examples=1000, deadline=None)
@given(st.binary(min_size=10, max_size=10), st.integers(0, LAST_NS))
def test_an_id_is_the_version_7_uuid_of_the_same_clock_and_random_bytes(random_bytes, ns):
    original, clock = events.os.urandom, events.time.time_ns
    events.os.urandom, events.time.time_ns = (lambda n: random_bytes[:n]), (lambda: ns)
    try:
        made = new_event_id()
    finally:
        events.os.urandom, events.time.time_ns = original, clock
    assert made == reference_event_id(ns // 1_000_000, random_bytes)
    parsed = uuid.UUID(made)
    assert str(parsed) == made and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert parsed.int >> 80 == ns // 1_000_000  # the milliseconds, in the first 48 bits


def test_the_reference_id_keeps_every_random_bit():
    """Two random inputs differing in any one of the 74 bits an id keeps give two ids."""
    base = bytes(10)
    ids = {reference_event_id(1, base)}
    for bit in range(76):  # the 19 hex digits used: 76 bits, of which 2 are the variant's place
        flipped = (int.from_bytes(base, "big") ^ (1 << (79 - bit))).to_bytes(10, "big")
        ids.add(reference_event_id(1, flipped))
    assert len(ids) == 1 + 74


def test_ids_made_later_sort_later():
    clock = iter(range(1_765_000_000_000_000_000, 1_765_000_000_000_000_000 + 2000 * 1_000_000, 1_000_000))
    original = events.time.time_ns
    events.time.time_ns = lambda: next(clock)
    try:
        ids = [new_event_id() for _ in range(2000)]
    finally:
        events.time.time_ns = original
    assert ids == sorted(ids) and len(set(ids)) == 2000


def _reference(ns: int) -> str:
    """What utc_now_iso writes for this clock reading: datetime.now floors it to microseconds."""
    moment = EPOCH + timedelta(microseconds=ns // 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, LAST_NS),
            st.integers(1_765_000_000 * 10**9, 1_765_000_003 * 10**9),  # readings a second or two apart
            st.sampled_from([0, 999_999_999, 10**9, 951_782_400 * 10**9 - 1, 951_782_400 * 10**9]),  # 2000-02-29
        ),
        min_size=1,
        max_size=12,
    )
)
def test_a_time_is_what_utc_now_iso_writes_for_the_same_reading(readings):
    original = events.time.time_ns
    try:
        for ns in readings:
            events.time.time_ns = lambda ns=ns: ns
            assert now_ms_iso() == _reference(ns), ns
    finally:
        events.time.time_ns = original


def test_a_burst_of_events_gets_distinct_version_7_ids_from_every_thread():
    ids: list[str] = []

    def make():
        ids.extend(Event.made(type="egress.file").id for _ in range(2000))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 8000
    assert all(uuid.UUID(i).version == 7 and str(uuid.UUID(i)) == i for i in ids)


def test_the_reference_switch_asks_reference_event_id_and_utc_now_iso(monkeypatch):
    monkeypatch.setattr(events, "FAST_STAMPS", False)
    monkeypatch.setattr(events.time, "time_ns", lambda: 1_765_000_000_123_456_789)
    monkeypatch.setattr(events, "reference_event_id", lambda ms, random_bytes: f"reference {ms} {len(random_bytes)}")
    monkeypatch.setattr(events, "utc_now_iso", lambda: "then")
    event = Event.made(type="agent.started")
    assert (event.id, event.ts) == ("reference 1765000000123 10", "then")


def test_an_event_built_whole_gets_a_version_7_id_too():
    assert uuid.UUID(Event(type="agent.started").id).version == 7
