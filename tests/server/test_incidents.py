"""Incidents (issue 19 item 1): one user's egress to one destination within the session window is one
alert that grows; rules matching one file are facets of its row; notified on open and on escalation
only; files paged through the API. Events go through the ingest API as an agent sends them."""

from __future__ import annotations

import pytest

from server.notify.channels import ChannelSpec
from server.store import Store
from tests.server.factories import KINGSTON, alerts_of, at, make_egress
from tests.server.notify_rig import enroll_agent, http_receiver, post_events
from tests.server.test_notify import notify_client  # noqa: F401 - the fixture, used here too

WINDOW_S = 1800  # server.incident_window_s by default
OTHER_STICK = {**KINGSTON, "serial": "0000AAAA1111", "label": "BACKUP", "vendor": "SanDisk", "model": "Cruzer"}


def _file(i: int, seconds: float | None = None, level: str = "general", **fields) -> dict:
    """The i-th file of a USB session, 30 s apart unless `seconds` says when."""
    values = dict(
        ts=at(i * 30 if seconds is None else seconds),
        path=f"/media/zhang/KINGSTON/图纸-{i:02d}.dwg",
        sha256=f"{i:064x}",
        size=1000 + i,
        source_path=f"/srv/rnd/drawings/图纸-{i:02d}.dwg",
        register_entry=f"Drawings {i}",
    )
    values.update(fields)
    return make_egress(level, **values)


@pytest.fixture
def analyst(store: Store) -> dict[str, str]:
    store.create_api_token("li.na", "mwt_analyst-token-for-incident-tests-0001", role="analyst")
    return {"Authorization": "Bearer mwt_analyst-token-for-incident-tests-0001"}


def _egress_alerts(client, reader) -> list[dict]:
    return [a for a in alerts_of(client, reader) if a["category"] != "bulk-egress"]


def test_a_usb_session_of_fourteen_files_is_one_incident_with_every_file(client, reader, analyst, send, clock):
    files = [_file(i, level="important" if i == 3 else "general") for i in range(14)]
    for f in files:  # one batch per file, as a real agent sends a slow copy
        send(f)
        clock.advance(30)

    (incident,) = _egress_alerts(client, reader)  # before issue 19: 14 alerts
    assert incident["kind"] == "incident"
    assert (incident["file_count"], incident["count"]) == (14, 14)
    assert incident["total_bytes"] == sum(f["size"] for f in files)
    assert (incident["first_ts"], incident["last_ts"]) == (at(0), at(13 * 30))
    assert incident["first_file"] == "图纸-00.dwg"
    assert (incident["top_level"], incident["register_item"]) == ("important", "Drawings 3")
    assert incident["destination"] == "Kingston DataTraveler 3.0 (serial 60A44C3FAE22F0B1)"
    assert (incident["device_label"], incident["device_vendor"], incident["place_kind"]) == ("KINGSTON", "Kingston", "removable")
    assert incident["facets"] == ["classified-egress"]
    # the highest file is important (high); 10 files or more: one step up
    assert incident["severity"] == "critical"
    assert sorted(incident["event_ids"]) == sorted(f["id"] for f in files)

    answer = client.get(f"/api/v1/alerts/{incident['id']}/files", headers=analyst)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["total"], body["page"], body["pages"]) == (14, 1, 1)
    assert [f["name"] for f in body["files"]] == [f"图纸-{i:02d}.dwg" for i in range(14)]
    third = body["files"][3]
    assert third == {
        "seq": 4, "event_id": files[3]["id"], "at": at(90), "path": "/media/zhang/KINGSTON/图纸-03.dwg", "name": "图纸-03.dwg",
        "size": 1003, "sha256": f"{3:064x}", "level": "important", "register_item": "Drawings 3",
        "source": "/srv/rnd/drawings/图纸-03.dwg", "match": {"method": "exact", "similarity": 1.0},
        "facets": [{"category": "classified-egress", "rule_id": "MW-EGRESS-CLASSIFIED", "severity": "high"}],
    }  # fmt: skip
    paged = client.get(f"/api/v1/alerts/{incident['id']}/files", params={"page": 3, "per_page": 5}, headers=analyst).json()
    assert (paged["pages"], [f["seq"] for f in paged["files"]]) == (3, [11, 12, 13, 14])

    history = client.get(f"/api/v1/alerts/{incident['id']}", headers=reader).json()["history"]
    actions = [h["action"] for h in history]
    assert actions.count("created") == 1 and actions.count("repeated") == 13
    # the fourth file is more severe; the tenth passes the first count threshold
    assert [h["comment"] for h in history if h["action"] == "escalated"] == [
        "medium -> high: 4 files, 3.9 KB",
        "high -> critical: 10 files, 9.8 KB",
    ]


def test_another_stick_another_user_or_a_pause_longer_than_the_window_is_another_incident(client, reader, send):
    send(_file(0), _file(1), _file(2))  # 0 s, 30 s, 60 s
    send(_file(3, media=OTHER_STICK, path="/media/zhang/BACKUP/a.dwg"))  # another device
    send(_file(4, user="li.si"))  # another user, same stick
    send(_file(5, seconds=60 + WINDOW_S))  # exactly the window after the last file: joins
    send(_file(6, seconds=60 + 2 * WINDOW_S + 1))  # a pause longer than the window: a new one

    incidents = sorted(_egress_alerts(client, reader), key=lambda a: a["id"])
    assert [(a["user"], a["destination"].split(" (")[0], a["file_count"]) for a in incidents] == [
        ("zhang.wei", "Kingston DataTraveler 3.0", 4),
        ("zhang.wei", "SanDisk Cruzer", 1),
        ("li.si", "Kingston DataTraveler 3.0", 1),
        ("zhang.wei", "Kingston DataTraveler 3.0", 1),
    ]
    assert incidents[0]["last_ts"] == at(60 + WINDOW_S)


def test_a_closed_incident_takes_no_more_files(client, reader, send):
    send(_file(0))
    (first,) = _egress_alerts(client, reader)
    client.patch(f"/api/v1/alerts/{first['id']}", json={"status": "resolved", "comment": "approved"}, headers=reader)
    send(_file(1))
    assert [a["file_count"] for a in sorted(_egress_alerts(client, reader), key=lambda a: a["id"])] == [1, 1]


def test_classified_marked_and_personal_rules_on_one_file_are_three_facets_of_one_row(client, reader, analyst, send):
    detections = [
        {"detector": "trade_secret_marking", "count": 2, "sample": "商业秘密"},
        {"detector": "cn_resident_id", "count": 12, "sample": "3301**********123X"},
    ]
    send(_file(0, level="core", detections=detections))

    (incident,) = _egress_alerts(client, reader)  # before issue 19: three alerts for one event
    assert incident["facets"] == ["classified-egress", "marked-egress", "personal-data-egress"]
    assert (incident["category"], incident["rule_id"], incident["severity"]) == ("classified-egress", "MW-EGRESS-CLASSIFIED", "critical")
    assert (incident["count"], incident["file_count"]) == (1, 1)
    (row,) = client.get(f"/api/v1/alerts/{incident['id']}/files", headers=analyst).json()["files"]
    assert [f["category"] for f in row["facets"]] == ["classified-egress", "marked-egress", "personal-data-egress"]
    assert [f["rule_id"] for f in row["facets"]] == ["MW-EGRESS-CLASSIFIED", "MW-EGRESS-MARKED", "MW-PII-RESIDENT-ID"]
    assert row["match"]["detections"] == [{"detector": "trade_secret_marking", "count": 2}, {"detector": "cn_resident_id", "count": 12}]
    # the list's category filter finds the incident by any of its facets, not only its own category
    for category in ("marked-egress", "personal-data-egress"):
        found = client.get("/api/v1/alerts", params={"category": category}, headers=reader).json()["alerts"]
        assert [a["id"] for a in found] == [incident["id"]], category
    assert client.get("/api/v1/alerts", params={"category": "uninspectable-egress"}, headers=reader).json()["alerts"] == []


def test_a_file_written_again_joins_its_row_and_a_more_telling_category_renames_the_incident(client, reader, analyst, send):
    marked = [{"detector": "trade_secret_marking", "count": 1, "sample": "内部资料"}]
    send(_file(0, level=None, detections=marked, source_path=None, register_entry=None, match=None))
    (incident,) = _egress_alerts(client, reader)
    assert (incident["category"], incident["severity"]) == ("marked-egress", "high")
    send(_file(0, ts=at(40), level="core"))  # the same file (path and content) again, now classified
    (incident,) = _egress_alerts(client, reader)
    assert (incident["file_count"], incident["count"]) == (1, 2)
    assert (incident["category"], incident["rule_id"], incident["severity"]) == ("classified-egress", "MW-EGRESS-CLASSIFIED", "critical")
    assert incident["facets"] == ["classified-egress", "marked-egress"]
    (row,) = client.get(f"/api/v1/alerts/{incident['id']}/files", headers=analyst).json()["files"]
    assert sorted(f["category"] for f in row["facets"]) == ["classified-egress", "marked-egress"]


def test_files_of_an_unknown_alert_are_404_and_agents_cannot_read_them(client, reader, agent, send):
    send(_file(0))
    assert client.get("/api/v1/alerts/999/files", headers=reader).status_code == 404
    assert client.get("/api/v1/alerts/1/files", headers=agent.headers).status_code == 403
    assert client.get("/api/v1/alerts/1/files", params={"page": 0}, headers=reader).status_code == 422


def test_notified_when_the_incident_opens_and_when_it_escalates_never_per_file(notify_client, reader, clock):  # noqa: F811
    with http_receiver() as rig:
        client = notify_client(ChannelSpec(url=rig.url))
        agent = enroll_agent(client)
        sender = client.app.state.notifier
        post_events(client, agent, [_file(0)])
        assert sender.run_once() == {"sent": 1}  # opened: medium (general)
        for i in range(1, 9):  # files 2-9: nothing
            post_events(client, agent, [_file(i)])
            assert sender.run_once() == {}, i
        post_events(client, agent, [_file(9)])  # the tenth: one step up
        assert sender.run_once() == {"sent": 1}
        for i in range(10, 15):
            post_events(client, agent, [_file(i)])
            assert sender.run_once() == {}, i
        severities = [h.json()["miwei"]["alert"]["severity"] for h in rig.hits]
        assert severities == ["medium", "high"]
        opened, escalated = (h.json() for h in rig.hits)
        assert [m["miwei"]["alert"]["file_count"] for m in (opened, escalated)] == [1, 10]
        assert "文件：10 个，共 9.8 KB　去向：Kingston DataTraveler 3.0 (serial 60A44C3FAE22F0B1)" in escalated["message"]
        (incident,) = [a for a in alerts_of(client, reader) if a["category"] != "bulk-egress"]
        assert incident["file_count"] == 15


def test_the_bulk_egress_rule_still_counts_the_files_of_an_incident(client, reader, send):
    send(*[_file(i, level="core", seconds=i * 10) for i in range(20)])
    (bulk,) = alerts_of(client, reader, category="bulk-egress")
    assert bulk["count"] == 20
    (incident,) = alerts_of(client, reader, category="classified-egress")
    assert incident["file_count"] == 20 and sorted(incident["event_ids"]) == sorted(bulk["event_ids"])


def test_other_alerts_keep_their_dedup(client, reader, send):
    """A non-egress rule (an unknown device) still folds repeats by its group, not into incidents."""
    from tests.server.factories import make_event

    send(make_event("media.mounted", media=dict(KINGSTON), egress="removable"))
    send(make_event("media.mounted", media=dict(KINGSTON), egress="removable", ts=at(60)))
    (alert,) = alerts_of(client, reader, category="unknown-device")
    assert (alert["kind"], alert["count"], alert["file_count"]) == ("alert", 2, 0)


def test_an_incidents_message_names_its_files_size_and_destination_in_the_chosen_language():
    from server.notify.messages import alert_message
    from tests.server.factories import T0

    row = {"id": 7, "severity": "high", "category": "classified-egress", "title": "Classified content written to an egress place",
           "created_at": T0, "kind": "incident", "file_count": 13, "total_bytes": 3 * 1024**2, "destination": "Kingston DataTraveler 3.0"}  # fmt: skip
    assert "Files: 13 (3 MB)  Destination: Kingston DataTraveler 3.0" in alert_message(row, lang="en").text
    assert "文件：13 个，共 3 MB　去向：Kingston DataTraveler 3.0" in alert_message(row, lang="zh").text
    assert alert_message(row, lang="en").data["alert"]["file_count"] == 13
    plain = {**row, "kind": "alert"}
    assert "Files:" not in alert_message(plain, lang="en").text and "file_count" not in alert_message(plain, lang="en").data["alert"]


def test_the_same_file_written_again_after_a_pause_is_a_file_of_a_new_incident_even_in_one_batch(client, reader, send):
    send(_file(0), _file(0, seconds=2 * WINDOW_S))  # an agent back online delivers both at once
    incidents = sorted(_egress_alerts(client, reader), key=lambda a: a["id"])
    assert [(a["file_count"], a["first_ts"]) for a in incidents] == [(1, at(0)), (1, at(2 * WINDOW_S))]


def test_a_channel_for_one_category_hears_of_an_incident_once_a_file_of_its_category_joins(notify_client, reader):  # noqa: F811
    """Routing by every category among the incident's files, not only the one it is named after."""
    pii = [{"detector": "cn_resident_id", "count": 12, "sample": "3301**"}]
    with http_receiver() as rig:
        client = notify_client(ChannelSpec(url=rig.url, categories=("personal-data-egress",)))
        agent = enroll_agent(client)
        sender = client.app.state.notifier
        post_events(client, agent, [_file(0, level="core")])  # classified only: not this channel's
        assert sender.run_once() == {}
        post_events(client, agent, [_file(1, level="core", detections=pii)])  # personal data joins
        assert sender.run_once() == {"sent": 1}
        post_events(client, agent, [_file(2, level="core", detections=pii)])  # more of it: nothing new
        assert sender.run_once() == {}
        (hit,) = rig.hits
        assert hit.json()["miwei"]["alert"]["category"] == "classified-egress"
        assert hit.json()["miwei"]["alert"]["file_count"] == 2
