"""A batch's watchlist values are asked of the database at once (WatchlistLookup.prefetch): the
answers must be those of one query per value, case-insensitive, with the device allow-list still
consulted for allowed-devices."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event as sa_event

from rules.engine import EventEngine
from server.devices import ALLOWED_DEVICES
from server.models import EventIn
from server.watchlists import Member, WatchlistLookup
from tests.server.factories import make_egress, make_event


def _count_selects(engine) -> list[str]:
    seen: list[str] = []
    sa_event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]) if "watchlist_members" in a[2] else None)
    return seen


def test_prefetched_answers_equal_one_query_per_value(store, clock):
    store.watchlists.replace("departing", [Member("Zhang.San"), Member("li.si")], "test")
    store.watchlists.replace(ALLOWED_DEVICES, [Member("60A44C3FAE22F0B1")], "test")
    store.devices.allow("0951:1666:*", "it", "", clock() + timedelta(days=1), "test")
    asked = [("departing", "zhang.san"), ("departing", "LI.SI"), ("departing", "wang.wu"),
             (ALLOWED_DEVICES, "0951:1666:abc"), (ALLOWED_DEVICES, "0781:5581:60a44c3fae22f0b1"), (ALLOWED_DEVICES, "0781:5581:other")]
    with store.engine.connect() as conn:
        one_by_one = [WatchlistLookup(conn, clock())(name, value) for name, value in asked]
        lookup = WatchlistLookup(conn, clock())
        lookup.prefetch({"departing": {"zhang.san", "LI.SI", "wang.wu"}, ALLOWED_DEVICES: {"0951:1666:abc", "0781:5581:60a44c3fae22f0b1"}})
        selects = _count_selects(store.engine)
        batched = [lookup(name, value) for name, value in asked]
    assert one_by_one == [True, True, False, True, True, False]
    assert batched == one_by_one
    assert len(selects) == 2  # only the value not prefetched went to the database: its identity, then its serial


def test_an_engine_names_the_values_its_rules_can_look_up(store):
    policy = store.policies.active()
    egress = EventIn(**make_egress(user="Zhang.San")).to_event("agent-1")[0]
    mounted = EventIn(**make_event("media.mounted", media={"mountpoint": "/media/u/S", "serial": "ABC", "vendor_id": "0951", "product_id": "1666"},
                                   egress="removable")).to_event("agent-1")[0]
    created = EventIn(**make_event("file.created", user="li.si")).to_event("agent-1")[0]
    wanted = EventEngine(policy.ruleset, policy.worktime).watchlist_values([egress, mounted, created])
    assert wanted["departing"] == {"Zhang.San"}  # MW-EGRESS-CLASSIFIED and MW-EGRESS-MARKED (watchlist: departing)
    assert wanted[ALLOWED_DEVICES] == {"0951:1666:abc"}  # MW-UNKNOWN-DEVICE's in_watchlist test
