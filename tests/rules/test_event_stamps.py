"""An event's id and time as Event.made makes them (rules/events.py new_event_id, now_ms_iso,
FAST_STAMPS): the text str(uuid.uuid4()) makes of the same 16 random bytes, and the text
utc_now_iso() makes of the same clock reading, whatever the order of the readings (the second's
text is kept between calls)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import events
from rules.events import Event, new_event_id, now_ms_iso

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LAST_NS = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - EPOCH).total_seconds()) * 10**9


@settings(max_examples=1000, deadline=None)
@given(st.binary(min_size=16, max_size=16))
def test_an_id_is_the_uuid4_of_the_same_random_bytes(random_bytes):
    original = events.os.urandom
    events.os.urandom = lambda n: random_bytes[:n]
    try:
        made = new_event_id()
    finally:
        events.os.urandom = original
    assert made == str(uuid.UUID(bytes=random_bytes, version=4))


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


def test_a_burst_of_events_gets_distinct_version_4_ids_from_every_thread():
    ids: list[str] = []

    def make():
        ids.extend(Event.made(type="egress.file").id for _ in range(2000))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 8000
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


def test_the_reference_switch_asks_uuid4_and_utc_now_iso(monkeypatch):
    monkeypatch.setattr(events, "FAST_STAMPS", False)
    monkeypatch.setattr(events.uuid, "uuid4", lambda: uuid.UUID(int=7))
    monkeypatch.setattr(events, "utc_now_iso", lambda: "then")
    event = Event.made(type="agent.started")
    assert (event.id, event.ts) == (str(uuid.UUID(int=7)), "then")
