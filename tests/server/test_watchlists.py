"""Watchlists kept on the collector: edited through the API, used by rules as they ingest.

`watchlist: departing` raises a rule's severity one step for a listed user; the condition
`{in_watchlist: allowed-devices}` tests a field against a list (MW-UNKNOWN-DEVICE).
"""

from __future__ import annotations

import pytest

from tests.server.factories import alerts_of, at, make_egress, make_event, put_policy

DEPARTING = {"members": [{"value": "zhang.wei", "note": "leaving 2026-12-31"}, {"value": "li.na"}]}


def _put(client, reader, name: str, body: dict):
    return client.put(f"/api/v1/watchlists/{name}", json=body, headers=reader)


def test_put_lists_and_reads_a_watchlist(client, reader, clock):
    assert client.get("/api/v1/watchlists", headers=reader).json() == {"watchlists": []}

    response = _put(client, reader, "departing", DEPARTING)

    assert response.status_code == 200, response.text
    assert response.json() == {"name": "departing", "members": 2}
    assert client.get("/api/v1/watchlists", headers=reader).json() == {
        "watchlists": [{"name": "departing", "members": 2, "updated_at": "2026-03-02T09:00:00.000Z"}]
    }
    members = client.get("/api/v1/watchlists/departing", headers=reader).json()["members"]
    assert members == [
        {"value": "li.na", "note": "", "added_at": "2026-03-02T09:00:00.000Z", "added_by": "token:secops"},
        {"value": "zhang.wei", "note": "leaving 2026-12-31", "added_at": "2026-03-02T09:00:00.000Z", "added_by": "token:secops"},
    ]


def test_put_replaces_and_keeps_when_members_were_added(client, reader, clock):
    _put(client, reader, "departing", DEPARTING)
    clock.advance(3600)

    _put(client, reader, "departing", {"members": [{"value": "zhang.wei", "note": "left early"}, {"value": "wang.fang"}]})

    members = {m["value"]: m for m in client.get("/api/v1/watchlists/departing", headers=reader).json()["members"]}
    assert set(members) == {"zhang.wei", "wang.fang"}
    assert members["zhang.wei"]["note"] == "left early"
    assert members["zhang.wei"]["added_at"] == "2026-03-02T09:00:00.000Z"
    assert members["wang.fang"]["added_at"] == "2026-03-02T10:00:00.000Z"


def test_members_are_added_and_removed_one_by_one(client, reader):
    added = client.post("/api/v1/watchlists/allowed-devices/members", json={"value": "60A44C3FAE22F0B1", "note": "IT stick"}, headers=reader)
    again = client.post("/api/v1/watchlists/allowed-devices/members", json={"value": "60a44c3fae22f0b1", "note": "IT stick, renewed"}, headers=reader)

    assert (added.status_code, added.json()["added"]) == (201, True)
    assert (again.status_code, again.json()["added"]) == (200, False)  # case does not make another member
    (member,) = client.get("/api/v1/watchlists/allowed-devices", headers=reader).json()["members"]
    assert member["note"] == "IT stick, renewed"

    assert client.delete("/api/v1/watchlists/allowed-devices/members/60A44C3FAE22F0B1", headers=reader).status_code == 200
    assert client.get("/api/v1/watchlists/allowed-devices", headers=reader).json()["members"] == []
    gone = client.delete("/api/v1/watchlists/allowed-devices/members/60A44C3FAE22F0B1", headers=reader)
    assert (gone.status_code, gone.json()["detail"]) == (404, "no such member")


def test_unknown_watchlist_is_404(client, reader):
    response = client.get("/api/v1/watchlists/departing", headers=reader)
    assert (response.status_code, response.json()["detail"]) == (404, "no such watchlist")


@pytest.mark.parametrize("name", ["Departing", "1st", "a" * 65, "with space", "dépa"])
def test_invalid_watchlist_name_is_refused(client, reader, name):
    assert _put(client, reader, name, DEPARTING).status_code in (404, 422)
    assert client.get("/api/v1/watchlists", headers=reader).json() == {"watchlists": []}


@pytest.mark.parametrize(
    "body",
    [
        {"members": [{"value": ""}]},
        {"members": [{"value": "   "}]},
        {"members": [{"value": "a\x00b"}]},
        {"members": [{"value": "tab\there"}]},
        {"members": [{"value": "x" * 201}]},
        {"members": [{"value": "ok", "note": "n" * 1001}]},
        {"members": [{"value": "ok", "colour": "red"}]},
        {"members": "zhang.wei"},
        {},
    ],
)
def test_invalid_members_are_refused_and_change_nothing(client, reader, body):
    _put(client, reader, "departing", DEPARTING)
    response = _put(client, reader, "departing", body)
    assert response.status_code == 422, response.text
    assert len(client.get("/api/v1/watchlists/departing", headers=reader).json()["members"]) == 2


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("GET", "/api/v1/watchlists", None),
        ("GET", "/api/v1/watchlists/departing", None),
        ("PUT", "/api/v1/watchlists/departing", DEPARTING),
        ("POST", "/api/v1/watchlists/departing/members", {"value": "x"}),
        ("DELETE", "/api/v1/watchlists/departing/members/x", None),
    ],
)
def test_agents_cannot_read_or_change_watchlists(client, agent, method, path, body):
    assert client.request(method, path, json=body, headers=agent.headers).status_code == 403
    assert client.request(method, path, json=body).status_code == 401


# --- watchlists in rules --------------------------------------------------------------------------


@pytest.mark.parametrize("level,usual,raised", [("important", "high", "critical"), ("general", "medium", "high"), ("core", "critical", "critical")])
def test_a_departing_user_raises_the_severity_one_step(client, reader, send, level, usual, raised):
    send(make_egress(level, user="wang.fang"))
    _put(client, reader, "departing", DEPARTING)
    send(make_egress(level, user="Zhang.Wei"))  # lookups ignore case

    listed, other = alerts_of(client, reader, category="classified-egress")
    assert (other["user"], other["severity"]) == ("wang.fang", usual)
    assert (listed["user"], listed["severity"]) == ("Zhang.Wei", raised)
    assert "raised one step because user Zhang.Wei is on watchlist 'departing'" in listed["explanation"]
    assert "raised one step" not in other["explanation"]


def test_removing_a_user_from_the_watchlist_takes_effect_at_once(client, reader, send):
    _put(client, reader, "departing", DEPARTING)
    client.delete("/api/v1/watchlists/departing/members/zhang.wei", headers=reader)
    send(make_egress("important"))
    (alert,) = alerts_of(client, reader)
    assert alert["severity"] == "high"


def _mounted(serial: str) -> dict:
    return make_event(
        "media.mounted",
        path=None,
        media={"mountpoint": "/media/zhang/STICK", "device": "/dev/sdb1", "vendor": "Kingston", "model": "DataTraveler 3.0", "serial": serial},
        egress="removable",
    )


def test_a_stick_not_on_the_allow_list_raises_unknown_device(client, reader, send):
    client.post("/api/v1/watchlists/allowed-devices/members", json={"value": "IT-0001", "note": "IT's stick"}, headers=reader)

    send(_mounted("IT-0001"))
    assert alerts_of(client, reader) == []

    send(_mounted("PRIVATE-42"))

    (alert,) = alerts_of(client, reader)
    assert (alert["rule_id"], alert["category"], alert["severity"]) == ("MW-UNKNOWN-DEVICE", "unknown-device", "low")
    assert "Kingston DataTraveler 3.0 mounted at /media/zhang/STICK" in alert["explanation"]
    assert "None of its exceptions held: media.identity = ::private-42 (not: media.identity is on watchlist allowed-devices)" in alert["explanation"]


def test_without_an_allow_list_every_stick_is_unknown(client, reader, send):
    send(_mounted("IT-0001"))
    assert [a["rule_id"] for a in alerts_of(client, reader)] == ["MW-UNKNOWN-DEVICE"]


CORRELATED = """\
- id: ACME-DEPARTING-BULK
  title: Several classified files leaving with one user
  category: bulk-egress
  severity: medium
  watchlist: departing
  correlate:
    rules: [MW-EGRESS-CLASSIFIED]
    group_by: [user]
    window: 10m
    count: {gte: 3}
"""


def test_a_watchlist_raises_a_correlation_rule_too(client, reader, send):
    put_policy(client, reader, ("acme.yaml", CORRELATED))
    _put(client, reader, "departing", DEPARTING)
    send(*[make_egress("internal", ts=at(i), user="li.na") for i in range(3)])
    send(*[make_egress("internal", ts=at(i), user="wang.fang") for i in range(3)])

    by_user = {a["user"]: a for a in alerts_of(client, reader, category="bulk-egress")}
    assert (by_user["li.na"]["severity"], by_user["wang.fang"]["severity"]) == ("high", "medium")
    assert "raised one step because user li.na is on watchlist 'departing'" in by_user["li.na"]["explanation"]
