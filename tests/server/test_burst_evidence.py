"""A growing burst's alert links its events up to server.alerts.MAX_EVIDENCE and counts the rest
(server.alerts.refresh_alerts, which counts the links it holds instead of reading them all)."""

from __future__ import annotations

from server import alerts as alerts_module
from tests.server.factories import alerts_of, at, make_egress


def _file(i: int) -> dict:
    return make_egress("core", ts=at(i * 5), path=f"/media/zhang/KINGSTON/part-{i:03d}.dwg", size=50_000)


def test_a_growing_burst_links_up_to_the_cap_and_counts_the_rest(client, reader, send, monkeypatch):
    monkeypatch.setattr(alerts_module, "MAX_EVIDENCE", 24)
    files = [_file(i) for i in range(40)]
    send(*files[:20])  # MW-BULK-EGRESS: 20 classified files in 10 minutes
    (alert,) = alerts_of(client, reader, category="bulk-egress")
    assert (alert["count"], len(alert["event_ids"])) == (20, 20)

    send(*files[20:23])  # the burst grows below the cap
    send(*files[23:30])  # and past it
    send(*files[30:])  # with the cap reached

    (alert,) = alerts_of(client, reader, category="bulk-egress")
    assert alert["count"] == 40
    assert sorted(alert["event_ids"]) == sorted(f["id"] for f in files[:24])  # the first ones, as they came
