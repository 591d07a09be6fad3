"""Alert lifecycle: repeats fold into one alert, suppression after closing, the append-only history,
status transitions, re-notification and the admin's delete."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from server import alerts as alerts_module
from server.notify.tables import notifications
from server.schema import alert_history, events
from tests.server.factories import alerts_of, make_egress, make_event, put_policy

SUNDAY = "2026-03-01T{}:00.000Z"  # 2026-03-01 is a Sunday in Asia/Shanghai too: off-hours all day


def _opened(hhmm: str, user: str = "zhang.wei", path: str = "/srv/rnd/drawings/a.dwg") -> dict:
    return make_event("file.opened", ts=SUNDAY.format(hhmm), user=user, path=path, level="core")


def _off_hours(client, reader) -> list[dict]:
    return alerts_of(client, reader, category="off-hours")


def _get(client, reader, alert_id: int) -> dict:
    response = client.get(f"/api/v1/alerts/{alert_id}", headers=reader)
    assert response.status_code == 200, response.text
    return response.json()


def _patch(client, reader, alert_id: int, status: str, comment: str = "") -> dict:
    response = client.patch(f"/api/v1/alerts/{alert_id}", json={"status": status, "comment": comment}, headers=reader)
    assert response.status_code == 200, response.text
    return response.json()


def test_off_hours_repeats_for_one_user_within_the_window_update_one_alert(client, reader, send, clock):
    first = [_opened("10:00", path=f"/srv/rnd/drawings/{i}.dwg") for i in range(3)]
    send(*first)
    clock.advance(60)
    later = _opened("10:40", path="/srv/rnd/drawings/later.dwg")
    send(later)

    (alert,) = _off_hours(client, reader)
    assert alert["count"] == 4
    assert sorted(alert["event_ids"]) == sorted(e["id"] for e in [*first, later])
    assert alert["created_at"] == "2026-03-02T09:00:00.000Z" and alert["last_seen"] == "2026-03-02T09:01:00.000Z"
    history = _get(client, reader, alert["id"])["history"]
    assert [(h["action"], h["actor"], h["comment"]) for h in history] == [("created", "system", ""), ("repeated", "system", "1 more match")]


def test_another_user_or_a_match_outside_the_window_raises_its_own_alert(client, reader, send):
    send(_opened("10:00"), _opened("10:05", user="li.na"), _opened("11:30"))  # 11:30 is 90 min after 10:00

    found = sorted((a["user"], a["count"], len(a["event_ids"])) for a in _off_hours(client, reader))
    assert found == [("li.na", 1, 1), ("zhang.wei", 1, 1), ("zhang.wei", 1, 1)]


def test_a_match_for_a_closed_alert_raises_a_new_one_without_suppress(client, reader, send):
    send(_opened("10:00"))
    (alert,) = _off_hours(client, reader)
    _patch(client, reader, alert["id"], "resolved", "checked with Zhang")
    send(_opened("10:10"))
    assert [a["status"] for a in _off_hours(client, reader)] == ["open", "resolved"]


SUPPRESSED = """\
- id: ACME-CAD-OPENED
  title: CAD drawing opened
  category: acme-cad
  severity: low
  when:
    type: file.opened
    extension: dwg
  group_by: [user]
  dedup_window: 10m
  suppress: 1h
"""


def test_suppress_keeps_a_closed_alert_closed_within_its_window(client, reader, send, clock):
    put_policy(client, reader, ("acme.yaml", SUPPRESSED))
    send(make_event("file.opened", path="/home/zhang/a.dwg", ts="2026-03-02T08:00:00.000Z"))
    (alert,) = alerts_of(client, reader, category="acme-cad")
    _patch(client, reader, alert["id"], "false_positive", "his own drawings")

    clock.advance(1800)
    result = send(make_event("file.opened", path="/home/zhang/b.dwg", ts="2026-03-02T08:30:00.000Z"))
    assert result["accepted"] == 1  # stored as an event all the same
    (still,) = alerts_of(client, reader, category="acme-cad")
    assert (still["status"], still["suppressed"], still["count"]) == ("false_positive", 1, 1)

    clock.advance(1801)  # the suppress window is over
    send(make_event("file.opened", path="/home/zhang/c.dwg", ts="2026-03-02T09:00:00.000Z"))
    assert [a["status"] for a in alerts_of(client, reader, category="acme-cad")] == ["open", "false_positive"]


NO_DEDUP = SUPPRESSED.replace("dedup_window: 10m\n  suppress: 1h\n", "dedup_window: off\n")


def test_dedup_window_off_raises_one_alert_per_match(client, reader, send):
    put_policy(client, reader, ("acme.yaml", NO_DEDUP))
    send(*[make_event("file.opened", path=f"/home/zhang/{i}.dwg") for i in range(3)])
    assert [a["count"] for a in alerts_of(client, reader, category="acme-cad")] == [1, 1, 1]


def test_evidence_is_capped_and_the_rest_counted(client, reader, send, monkeypatch):
    monkeypatch.setattr(alerts_module, "MAX_EVIDENCE", 3)
    send(*[_opened(f"10:0{i}", path=f"/srv/rnd/drawings/{i}.dwg") for i in range(2)])
    send(*[_opened(f"10:1{i}", path=f"/srv/rnd/drawings/1{i}.dwg") for i in range(3)])

    (alert,) = _off_hours(client, reader)
    assert (alert["count"], len(alert["event_ids"])) == (5, 3)


def test_the_highest_severity_of_the_repeats_stays(client, reader, send):
    send(make_egress("internal"))
    send(make_egress("internal"))  # same content to the same place: folded
    (alert,) = alerts_of(client, reader, category="classified-egress")
    assert (alert["count"], alert["severity"]) == (2, "low")


def test_transitions_are_recorded_with_actor_and_kind(client, reader, send, clock):
    send(make_egress("core"))
    alert_id = alerts_of(client, reader)[0]["id"]
    clock.advance(10)
    _patch(client, reader, alert_id, "acknowledged", "looking")
    clock.advance(10)
    _patch(client, reader, alert_id, "acknowledged", "asked his manager")  # same status + comment
    unchanged = _patch(client, reader, alert_id, "acknowledged")  # same status, no comment: nothing
    clock.advance(10)
    _patch(client, reader, alert_id, "resolved", "approved transfer")
    clock.advance(10)
    alert = _patch(client, reader, alert_id, "open", "approval was forged")

    steps = [(h["action"], h["from_status"], h["to_status"], h["actor"]) for h in alert["history"]]
    assert steps == [
        ("created", None, "open", "system"),
        ("status", "open", "acknowledged", "token:secops"),
        ("comment", "acknowledged", "acknowledged", "token:secops"),
        ("status", "acknowledged", "resolved", "token:secops"),
        ("reopened", "resolved", "open", "token:secops"),
    ]
    assert len(unchanged["history"]) == 3
    assert alert["status"] == "open"


def test_history_rows_are_only_ever_appended(client, reader, send, engine):
    send(make_egress("core"))
    alert_id = alerts_of(client, reader)[0]["id"]
    for status in ("acknowledged", "resolved", "open", "false_positive"):
        _patch(client, reader, alert_id, status, status)
    with engine.connect() as conn:
        ids = list(conn.execute(select(alert_history.c.id).where(alert_history.c.alert_id == alert_id).order_by(alert_history.c.id)).scalars())
    assert len(ids) == 5 and [h["comment"] for h in _get(client, reader, alert_id)["history"]][1:] == ["acknowledged", "resolved", "open", "false_positive"]


def test_a_reopened_alert_is_notified_again(client, reader, send, store, engine):
    from server.notify.channels import ChannelSpec
    from server.notify.channelstore import ChannelStore

    ChannelStore(engine, store.clock).create(ChannelSpec(url="json://127.0.0.1:9/hook", name="ops"), True, "token:secops")
    send(make_egress("core"))
    alert_id = alerts_of(client, reader)[0]["id"]
    with engine.begin() as conn:  # as the sender leaves it once delivered
        conn.execute(update(notifications).values(status="sent", attempts=1))
    _patch(client, reader, alert_id, "resolved", "done")
    with engine.connect() as conn:
        assert conn.execute(select(notifications.c.status)).scalars().all() == ["sent"]

    _patch(client, reader, alert_id, "open", "not done")

    with engine.connect() as conn:
        assert conn.execute(select(notifications.c.status, notifications.c.attempts)).all() == [("pending", 0)]


def test_an_admin_deletes_an_alert_and_its_events_stay(client, reader, send, engine):
    event = make_egress("core")
    send(event)
    alert_id = alerts_of(client, reader)[0]["id"]

    response = client.delete(f"/api/v1/alerts/{alert_id}", headers=reader)

    assert response.status_code == 200, response.text
    assert client.get(f"/api/v1/alerts/{alert_id}", headers=reader).status_code == 404
    assert client.delete(f"/api/v1/alerts/{alert_id}", headers=reader).status_code == 404
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events).where(events.c.id == event["id"])).scalar() == 1
    (entry,) = client.get("/api/v1/audit", params={"action": "alert.delete"}, headers=reader).json()["audit"]
    assert (entry["actor"], entry["target"], entry["details"]["events"]) == ("token:secops", f"alert:{alert_id}", 1)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer mwt_nope"}])
def test_delete_needs_an_api_token(client, send, headers):
    send(make_egress("core"))
    assert client.delete("/api/v1/alerts/1", headers=headers).status_code == 401


def test_agent_tokens_cannot_delete_alerts(client, send, agent):
    send(make_egress("core"))
    assert client.delete("/api/v1/alerts/1", headers=agent.headers).status_code == 403
