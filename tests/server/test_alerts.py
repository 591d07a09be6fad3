"""Alerts: classified egress raises one alert, severity by level; reading one; changing its status."""

from __future__ import annotations

import pytest

from tests.server.factories import make_egress, make_event

SEVERITY_BY_LEVEL = [("core", "critical"), ("important", "high"), ("general", "medium"), ("internal", "low")]


def _alerts(client, reader, **params) -> list[dict]:
    response = client.get("/api/v1/alerts", params=params, headers=reader)
    assert response.status_code == 200, response.text
    return response.json()["alerts"]


@pytest.mark.parametrize("level,severity", SEVERITY_BY_LEVEL)
def test_classified_egress_raises_one_alert_with_severity_by_level(client, reader, agent, send, clock, level, severity):
    event = make_egress(level)
    send(event)

    (alert,) = _alerts(client, reader)
    assert alert["category"] == "classified-egress"
    assert alert["rule_id"] == "MW-EGRESS-CLASSIFIED"
    assert alert["severity"] == severity
    assert alert["status"] == "open"
    assert alert["count"] == 1
    assert alert["event_ids"] == [event["id"]]
    assert (alert["agent_id"], alert["host"], alert["user"]) == (agent.agent_id, "pc-0042", "zhang.wei")
    assert alert["created_at"] == alert["updated_at"] == "2026-03-02T09:00:00.000Z"
    assert alert["title"] == "Classified content written to an egress place"  # the rule's title


def test_explanation_names_source_destination_and_device(client, reader, send):
    send(make_egress("core"))

    (alert,) = _alerts(client, reader)
    explanation = alert["explanation"]
    for words in (
        "/srv/rnd/drawings/pump-impeller.dwg",  # the classified source
        "/media/zhang/KINGSTON/pump-impeller.dwg",  # where it went
        "Kingston DataTraveler 3.0",  # the device: vendor and model
        "mounted at /media/zhang/KINGSTON",
        "60A44C3FAE22F0B1",  # serial
        "label 'KINGSTON'",
        "zhang.wei",
        "pc-0042",
        "Product drawings",  # register entry
        "level core: core trade secret",
        "核心商密《Product drawings》",  # the level and the register item, in the officer's language
    ):
        assert words in explanation, words


def test_explanation_names_the_device_node_when_vendor_and_model_are_unknown(client, reader, send):
    send(make_egress("important", media={"mountpoint": "/media/usb0", "device": "/dev/sdc1"}))

    (alert,) = _alerts(client, reader)
    assert "/dev/sdc1" in alert["explanation"]
    assert "/media/usb0" in alert["explanation"]


@pytest.mark.parametrize(
    "method,words", [("archive", "inside an archive"), ("partial", "an edited copy"), ("exact", "an exact copy")]
)
def test_explanation_says_how_the_content_matched(client, reader, send, method, words):
    send(make_egress("general", match={"method": method, "similarity": 0.8}))
    assert words in _alerts(client, reader)[0]["explanation"]


NOT_ALERTING = {
    "unclassified egress": make_egress(None),
    "unclassified egress without level key": {k: v for k, v in make_egress(None).items() if k != "level"},
    "classified file created": make_event("file.created", level="core"),
    "classified file opened": make_event("file.opened", level="core"),
    "media unmounted": make_event("media.unmounted", media={"mountpoint": "/media/usb0"}),
    "agent error": make_event("agent.error", error="cannot read /srv/rnd/x.dwg"),
}


@pytest.mark.parametrize("event", NOT_ALERTING.values(), ids=NOT_ALERTING.keys())
def test_events_no_rule_alerts_on_raise_no_alert(client, reader, store, send, event):
    assert send(event) == {"accepted": 1, "duplicates": 0}
    assert _alerts(client, reader) == []


def test_classified_egress_events_to_one_stick_are_one_incident_of_their_highest_severity(client, reader, send):
    """Issue 19: one alert per file was the old behaviour; the files of one session are one incident."""
    events = [
        make_egress(level, path=f"/media/zhang/KINGSTON/{i}.dwg", sha256=f"{i}" * 64)
        for i, (level, _) in enumerate(SEVERITY_BY_LEVEL)
    ] + [make_egress(None, path="/media/zhang/KINGSTON/x.txt")]
    send(*events)

    (alert,) = _alerts(client, reader)
    assert sorted(alert["event_ids"]) == sorted(e["id"] for e in events[:4])
    assert (alert["kind"], alert["file_count"], alert["severity"]) == ("incident", 4, "critical")


def test_alert_detail_includes_the_full_event(client, reader, agent, send):
    event = make_egress(
        "core",
        detections=[{"detector": "trade_secret_marking", "count": 2, "sample": "商业秘密"}],
        rule_ids=["MW-EGRESS-CLASSIFIED"],
        firmware="1.02",  # a field this server does not know: kept
    )
    send(event)
    (listed,) = _alerts(client, reader, category="classified-egress")  # the marking raises marked-egress too

    response = client.get(f"/api/v1/alerts/{listed['id']}", headers=reader)

    assert response.status_code == 200, response.text
    alert = response.json()
    assert {k: v for k, v in alert.items() if k not in ("events", "history")} == listed
    (stored,) = alert["events"]
    assert stored == {**stored, **event, "agent_id": agent.agent_id}
    assert [(h["action"], h["actor"], h["to_status"]) for h in alert["history"]] == [("created", "system", "open")]


@pytest.mark.parametrize("alert_id", [2, 999_999, 0, -1, 2**63 - 1, 2**63, 10**30])
def test_unknown_alert_is_404(client, reader, send, alert_id):
    send(make_egress("core"))
    assert [a["id"] for a in _alerts(client, reader)] == [1]

    assert client.get(f"/api/v1/alerts/{alert_id}", headers=reader).status_code == 404
    response = client.patch(f"/api/v1/alerts/{alert_id}", json={"status": "resolved"}, headers=reader)
    assert response.status_code == 404
    assert response.json()["detail"] == "no such alert"


@pytest.mark.parametrize("status", ["acknowledged", "resolved", "false_positive", "open"])
def test_patch_sets_the_status_and_records_who_and_why(client, reader, send, clock, status):
    send(make_egress("core"))
    alert_id = _alerts(client, reader)[0]["id"]
    clock.advance(90)

    response = client.patch(
        f"/api/v1/alerts/{alert_id}",
        json={"status": status, "comment": "called 张伟: <b>approved</b> transfer"},
        headers=reader,
    )

    assert response.status_code == 200, response.text
    alert = response.json()
    assert alert["status"] == status
    assert alert["created_at"] == "2026-03-02T09:00:00.000Z"
    assert alert["updated_at"] == "2026-03-02T09:01:30.000Z"
    assert alert["history"][1:] == [
        {
            "at": "2026-03-02T09:01:30.000Z",
            "actor": "token:secops",
            "action": "comment" if status == "open" else "status",  # open -> open with a comment: a comment
            "from_status": "open",
            "to_status": status,
            "status": status,
            "comment": "called 张伟: <b>approved</b> transfer",
        }
    ]
    assert client.get(f"/api/v1/alerts/{alert_id}", headers=reader).json() == alert


def test_history_keeps_every_change_in_order(client, reader, send, clock):
    send(make_egress("core"))
    alert_id = _alerts(client, reader)[0]["id"]
    steps = [
        ("acknowledged", "looking into it"),
        ("false_positive", "approved transfer"),
        ("open", "approval was forged"),
        ("resolved", ""),
    ]
    for status, comment in steps:
        clock.advance(60)
        assert (
            client.patch(
                f"/api/v1/alerts/{alert_id}", json={"status": status, "comment": comment}, headers=reader
            ).status_code
            == 200
        )

    alert = client.get(f"/api/v1/alerts/{alert_id}", headers=reader).json()
    assert alert["status"] == "resolved"
    changes = alert["history"][1:]  # after "created"
    assert [(h["status"], h["comment"]) for h in changes] == steps
    assert [h["action"] for h in changes] == ["status", "status", "reopened", "status"]
    assert [h["at"] for h in changes] == [f"2026-03-02T09:0{m}:00.000Z" for m in range(1, 5)]


def test_patch_without_comment_records_an_empty_one(client, reader, send):
    send(make_egress("core"))
    alert_id = _alerts(client, reader)[0]["id"]
    alert = client.patch(f"/api/v1/alerts/{alert_id}", json={"status": "acknowledged"}, headers=reader).json()
    assert alert["history"][-1]["comment"] == ""


def test_patch_changes_only_that_alert(client, reader, send):
    send(make_egress("core"), make_egress("internal", user="li.si"))  # two users: two incidents
    first, second = sorted(a["id"] for a in _alerts(client, reader))

    client.patch(f"/api/v1/alerts/{first}", json={"status": "resolved", "comment": "done"}, headers=reader)

    other = client.get(f"/api/v1/alerts/{second}", headers=reader).json()
    assert other["status"] == "open" and [h["action"] for h in other["history"]] == ["created"]
