"""A group whose last burst's alert was closed reads its window once (server/correlation.py
Correlator.run): the hits in no alert are then the window's hits whose alert_id is empty. The
closed burst's own hits lie in that window; they stay with their alert and never join the new
burst unless the window that trips it holds them.
"""

from __future__ import annotations

from sqlalchemy import select

from server.schema import rule_hits
from tests.server.factories import alerts_of, at, make_egress


def _file(i: int, seconds: float) -> dict:
    return make_egress("core", ts=at(seconds), path=f"/media/zhang/KINGSTON/part-{i:03d}.dwg", size=50_000)


def test_a_closed_bursts_hits_near_a_new_burst_stay_with_their_alert(client, reader, send, engine):
    first = [_file(i, i * 10) for i in range(20)]  # 0..190 s: MW-BULK-EGRESS (20 files in 10 min)
    send(*first)
    (closed,) = alerts_of(client, reader, category="bulk-egress")
    client.patch(f"/api/v1/alerts/{closed['id']}", json={"status": "false_positive", "comment": "approved"}, headers=reader)

    # 700..890 s: no window of 10 min holds 20 files until the last, and that one holds only these;
    # the new burst starts at 700 s, so the closed burst's files at 100..190 s lie within its reach
    later = [_file(20 + i, 700 + i * 10) for i in range(20)]
    send(*later)

    newer, older = alerts_of(client, reader, category="bulk-egress")
    assert (older["id"], older["count"], older["status"]) == (closed["id"], 20, "false_positive")
    assert sorted(older["event_ids"]) == sorted(f["id"] for f in first)
    assert newer["count"] == 20 and sorted(newer["event_ids"]) == sorted(f["id"] for f in later)
    with engine.connect() as conn:
        owners = dict(conn.execute(select(rule_hits.c.event_id, rule_hits.c.alert_id).where(rule_hits.c.rule_id == "MW-BULK-EGRESS")).all())
    assert {owners[f["id"]] for f in first if f["id"] in owners} <= {closed["id"]}
    assert {owners[f["id"]] for f in later} == {newer["id"]}
