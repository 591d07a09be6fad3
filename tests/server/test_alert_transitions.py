"""The triage state machine (server/alerts.py TRANSITIONS, docs/architecture.md "Alert lifecycle"):
a resolved or false-positive alert goes back into the queue only by an explicit reopen (status
open); PATCH /api/v1/alerts/{id} answers 409 with a message for anything else, writes no history
row and no audit row, and leaves the alert as it was. Bulk actions skip such alerts."""

from __future__ import annotations

from itertools import product

import pytest
from sqlalchemy import func, select, update

from server import triage
from server.schema import alert_history, alerts, audit_log
from tests.server.factories import alerts_of, make_egress

STATUSES = ("open", "acknowledged", "resolved", "false_positive")
# what a mature alert queue refuses without an explicit reopen, written out here rather than read
# from the code under test
REFUSED = {("resolved", "acknowledged"), ("false_positive", "acknowledged")}


def _one_alert(client, reader, send) -> int:
    send(make_egress("core"))
    return alerts_of(client, reader)[0]["id"]


def _set(engine, alert_id: int, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(alerts).where(alerts.c.id == alert_id).values(status=status))


def _counts(engine, alert_id: int) -> tuple[int, int]:
    with engine.connect() as conn:
        history = conn.execute(select(func.count()).select_from(alert_history).where(alert_history.c.alert_id == alert_id)).scalar()
        audited = conn.execute(select(func.count()).select_from(audit_log)).scalar()
    return history, audited


@pytest.mark.parametrize("closed", ["resolved", "false_positive"])
def test_a_closed_alert_is_not_acknowledged_without_reopening(client, reader, send, engine, closed):
    alert_id = _one_alert(client, reader, send)
    assert client.patch(f"/api/v1/alerts/{alert_id}", json={"status": closed, "comment": "done"}, headers=reader).status_code == 200
    before = client.get(f"/api/v1/alerts/{alert_id}", headers=reader).json()
    counts = _counts(engine, alert_id)

    answer = client.patch(f"/api/v1/alerts/{alert_id}", json={"status": "acknowledged", "comment": "on it"}, headers=reader)

    assert answer.status_code == 409, answer.text
    assert answer.json() == {"detail": f"the alert is {closed}: reopen it (status open) before setting it to acknowledged"}
    assert client.get(f"/api/v1/alerts/{alert_id}", headers=reader).json() == before  # status, closed_at, history
    assert _counts(engine, alert_id) == counts  # no history row, no audit row


def test_reopen_then_acknowledge_is_two_recorded_steps(client, reader, send, store):
    alert_id = _one_alert(client, reader, send)
    for status, comment in (("resolved", "done"), ("open", "approval was forged"), ("acknowledged", "calling him")):
        answer = client.patch(f"/api/v1/alerts/{alert_id}", json={"status": status, "comment": comment}, headers=reader)
        assert answer.status_code == 200, answer.text
    steps = [(h["action"], h["from_status"], h["to_status"], h["comment"]) for h in answer.json()["history"][1:]]
    assert steps == [
        ("status", "open", "resolved", "done"),
        ("reopened", "resolved", "open", "approval was forged"),
        ("status", "open", "acknowledged", "calling him"),
    ]
    audited = [e["action"] for e in reversed(store.list_audit(actor="token:secops").items) if e["action"].startswith("alert.")]
    assert audited == ["alert.status", "alert.reopened", "alert.status"]


def test_every_pair_of_statuses_is_allowed_or_refused_as_the_state_machine_says(client, reader, send, engine):
    alert_id = _one_alert(client, reader, send)
    for current, wanted in product(STATUSES, STATUSES):
        _set(engine, alert_id, current)
        answer = client.patch(f"/api/v1/alerts/{alert_id}", json={"status": wanted, "comment": "why"}, headers=reader)
        expected = 409 if (current, wanted) in REFUSED else 200
        assert answer.status_code == expected, (current, wanted, answer.text)
        assert answer.json().get("status", current) == (current if expected == 409 else wanted)


def test_a_bulk_acknowledge_skips_closed_alerts_and_counts_only_the_open_ones(client, reader, send, engine, store):
    send(make_egress("core"), make_egress("internal", user="li.si"), make_egress("core", user="wang.wu"))
    first, second, third = sorted(a["id"] for a in alerts_of(client, reader))
    _set(engine, second, "resolved")
    _set(engine, third, "false_positive")

    done = triage.set_status(engine, [first, second, third], "acknowledged", "weekly review", "console:boss", store.clock())

    assert done.changed == 1
    assert [store.get_alert(i)["status"] for i in (first, second, third)] == ["acknowledged", "resolved", "false_positive"]
