"""Triage over the API and its notifications (issue 19 item 2): GET /api/v1/alerts takes the console
list's filters; POST /api/v1/alerts/{id}/assign gives an alert to an analyst, audited, in the
history, and mailed to the analyst's own address through the e-mail channel's real SMTP server,
one message for a bulk assignment."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from server import triage
from server.app import create_app
from server.notify import outbox
from server.notify.assignment import recipient_url
from server.notify.channels import ChannelSpec
from server.schema import alert_history, alerts, users
from tests.server.notify_rig import smtp_server

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "Sm7p-pa55word-4711"
BASE = {
    "rule_id": "MW-EGRESS-CLASSIFIED", "category": "classified-egress", "severity": "critical", "title": "Classified content leaving",
    "status": "open", "count": 1, "explanation": "", "agent_id": "a1", "host": "pc-0042", "user": "zhang.wei",
}  # fmt: skip


def put(engine, *rows: dict) -> list[int]:
    with engine.begin() as conn:
        return [
            conn.execute(
                insert(alerts)
                .values(**{**BASE, "created_at": T0 + timedelta(minutes=i), "updated_at": T0, **row})
                .returning(alerts.c.id)
            ).scalar_one()
            for i, row in enumerate(rows)
        ]


def analyst(store, name: str = "li.na", email_address: str | None = "li.na@example.com", role: str = "analyst") -> None:
    store.create_user(name, role, "argon2-hash-not-used-here")
    if email_address:
        with store.engine.begin() as conn:
            conn.execute(users.update().where(users.c.name == name).values(email=email_address))


def ids_of(answer) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [a["id"] for a in answer.json()["alerts"]]


def test_api_takes_the_lists_filters_and_keeps_every_status_by_default(client, reader, engine):
    ids = put(
        engine,
        {"user": "li.si", "top_level": "core", "register_item": "Product drawings", "device_label": "KINGSTON"},
        {"status": "resolved", "user": "li.si"},
        {"host": "pc-0007", "assignee": "li.na", "top_level": "important"},
        {"created_at": T0 + timedelta(days=2)},
    )
    get = lambda **params: ids_of(client.get("/api/v1/alerts", params=params, headers=reader))  # noqa: E731
    assert get() == ids[::-1]  # the API keeps its default: every status
    assert get(status="active") == [ids[3], ids[2], ids[0]]
    assert get(user="li.si") == [ids[1], ids[0]]
    assert get(user="li.si", status="open") == [ids[0]]
    assert get(host="pc-0007") == [ids[2]] == get(assignee="li.na") == get(level="important")
    assert get(register_item="Product drawings") == [ids[0]] == get(device="KINGSTON") == get(level="core")
    assert get(since="2026-03-03T00:00:00Z") == [ids[3]]
    assert get(until="2026-03-02T09:02:00Z") == [ids[1], ids[0]]  # until is exclusive
    assert get(until="2026-03-02T17:02:00+08:00") == [ids[1], ids[0]]
    for bad in ({"level": "secret"}, {"status": "gone"}, {"user": "x" * 256}):
        assert client.get("/api/v1/alerts", params=bad, headers=reader).status_code == 422
    assert client.get("/api/v1/alerts", params={"user": "li.si"}).status_code == 401


def test_assign_over_the_api_is_audited_and_in_the_history(client, reader, store, engine):
    analyst(store)
    (alert_id,) = put(engine, {})
    answer = client.post(f"/api/v1/alerts/{alert_id}/assign", json={"assignee": "li.na"}, headers=reader)
    assert answer.status_code == 200 and answer.json()["assignee"] == "li.na"
    assert answer.json()["history"][-1] | {"at": None} == {
        "at": None, "actor": "token:secops", "action": "assigned", "from_status": "open", "to_status": "open", "status": "open", "comment": "li.na",
    }  # fmt: skip
    assert [e["details"] for e in store.list_audit(action="alert.assigned").items] == [
        {"assignee": "li.na", "before": None}
    ]
    # the same assignee again changes nothing; null unassigns
    client.post(f"/api/v1/alerts/{alert_id}/assign", json={"assignee": "li.na"}, headers=reader)
    assert (
        client.post(f"/api/v1/alerts/{alert_id}/assign", json={"assignee": None}, headers=reader).json()["assignee"]
        is None
    )
    with engine.connect() as conn:
        assert conn.execute(
            select(alert_history.c.comment).where(alert_history.c.action == "assigned")
        ).scalars().all() == ["li.na", ""]
    assert (
        client.post(f"/api/v1/alerts/{alert_id}/assign", json={"assignee": "nobody"}, headers=reader).status_code == 422
    )
    assert client.post("/api/v1/alerts/999/assign", json={"assignee": "li.na"}, headers=reader).status_code == 404
    assert (
        client.post(f"/api/v1/alerts/{alert_id}/assign", json={"assignee": "li.na", "x": 1}, headers=reader).status_code
        == 422
    )
    assert client.post(f"/api/v1/alerts/{alert_id}/assign", json={"assignee": "li.na"}).status_code == 401


def test_only_analysts_and_admins_can_be_assigned(store, engine, clock):
    analyst(store, "boss", None, role="admin")
    (alert_id,) = put(engine, {})
    assert triage.assign(engine, [alert_id], "boss", "console:boss", clock()).changed == 1
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.name == "boss").values(role="auditor"))
    with pytest.raises(triage.UnknownAssignee):
        triage.assign(engine, [alert_id], "boss", "console:boss", clock())


@pytest.fixture
def mail_client(config, store):
    made = []

    def build(url: str) -> TestClient:
        app = create_app(
            dataclasses.replace(
                config, notify=(ChannelSpec(url=url, severities=("critical",)),), notify_allow_private=True
            ),
            store,
        )
        app.state.notify_poll_s = 3600.0
        made.append(TestClient(app))
        made[-1].__enter__()
        return made[-1]

    yield build
    for c in made:
        c.__exit__(None, None, None)


def test_a_bulk_assignment_mails_the_assignee_once_at_their_own_address(mail_client, store, engine, clock):
    analyst(store)
    analyst(store, "wang.fang", None)  # no address: assigned, not mailed
    with smtp_server(PASSWORD) as (port, envelopes):
        client = mail_client(
            f"mailto://secops:{PASSWORD}@127.0.0.1:{port}?mode=insecure&from=miwei@example.com&to=team@example.com"
        )
        ids = put(engine, {"severity": "low"}, {"title": "x\r\nBcc: evil@example.com"}, {})
        done = triage.assign(engine, ids, "li.na", "console:boss", clock())
        assert done == triage.Outcome(changed=3, notified=3)
        assert triage.assign(engine, put(engine, {}), "wang.fang", "console:boss", clock()).notified == 0
        rows = outbox.outbox_rows(engine, kind="assign")
        assert len(rows) == 3 and {r["channel_id"] for r in rows} == {"assign:config:0"}
        assert client.app.state.notifier.run_once() == {
            "sent": 1
        }  # a low alert too: no severity routing for assignments
    (envelope,) = envelopes
    assert envelope.rcpt_tos == ["li.na@example.com"]  # not the channel's team@example.com
    mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert "assigned to you: 3" in str(mail["Subject"]) and mail["Bcc"] is None
    body = mail.get_content()
    assert "3 条告警已分配给 li．na" in body and all(
        f"#{i} " in body for i in ids
    )  # a dotted name is defanged like any
    assert "\nBcc" not in body and "x Bcc: evil@example．com" in body
    statuses = sorted(r["status"] for r in outbox.outbox_rows(engine, kind="assign"))
    assert statuses == ["digested", "digested", "sent"]


def test_reassigning_sends_again_and_an_unassigned_alert_is_not_mailed(mail_client, store, engine, clock):
    analyst(store)
    with smtp_server(PASSWORD) as (port, envelopes):
        client = mail_client(
            f"mailto://secops:{PASSWORD}@127.0.0.1:{port}?mode=insecure&from=miwei@example.com&to=team@example.com"
        )
        (alert_id,) = put(engine, {})
        triage.assign(engine, [alert_id], "li.na", "console:boss", clock())
        assert client.app.state.notifier.run_once() == {"sent": 1}
        triage.assign(engine, [alert_id], None, "console:boss", clock())
        triage.assign(engine, [alert_id], "li.na", "console:boss", clock())  # the row goes back to pending
        assert client.app.state.notifier.run_once() == {"sent": 1}
        triage.assign(engine, [alert_id], None, "console:boss", clock())
        with engine.begin() as conn:  # pending again, then unassigned before the sender came
            conn.execute(outbox.notifications.update().values(status="pending", slot_at=None, next_attempt_at=clock()))
        assert client.app.state.notifier.run_once() == {}
    assert [e.rcpt_tos for e in envelopes] == [["li.na@example.com"], ["li.na@example.com"]]
    assert [r["last_error"] for r in outbox.outbox_rows(engine, kind="assign")] == ["no longer assigned"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mailtos://u:p@smtp.example.com:465?to=team@example.com&from=m@example.com",
            "mailtos://u:p@smtp.example.com:465?from=m%40example.com&to=li.na%40example.com",
        ),
        (
            "mailto://u:p@smtp.example.com/a@example.com/b@example.com?cc=c@example.com&bcc=d@example.com",
            "mailto://u:p@smtp.example.com?to=li.na%40example.com",
        ),
    ],
)
def test_the_channels_recipients_are_replaced_by_the_assignee(url, expected):
    assert recipient_url(url, "li.na@example.com") == expected
    with pytest.raises(ValueError):
        recipient_url(url, "li.na@example.com&to=evil@example.com")
