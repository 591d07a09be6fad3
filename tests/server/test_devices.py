"""The device register: media seen by agents, the allow-list API, and the unknown-device alert.

MW-UNKNOWN-DEVICE tests `media.identity` (vendor_id:product_id:serial) against `allowed-devices`,
which the collector answers from the allow-list entries in force at ingest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from server.devices import MAX_IDENTITY_CHARS, MAX_WILDCARDS, PatternError, parse_pattern, wildcard_count
from tests.server.factories import KINGSTON, alerts_of, at, make_event

KINGSTON_ID = "0951:1666:60a44c3fae22f0b1"


def mounted(media: dict | None = None, seconds: float = 0, **fields) -> dict:
    return make_event("media.mounted", path=(media or KINGSTON)["mountpoint"], media=media or KINGSTON, egress="removable", ts=at(seconds), **fields)


def allow(client, reader, pattern: str, **fields):
    return client.post("/api/v1/devices/allow", json={"pattern": pattern, **fields}, headers=reader)


def unknown_device_alerts(client, reader) -> list[dict]:
    return alerts_of(client, reader, category="unknown-device")


# --- patterns ---------------------------------------------------------------------------------

MATCHES = [
    ("0951:1666:60A44C3FAE22F0B1", KINGSTON_ID),  # case does not matter
    ("0951:1666:*", KINGSTON_ID),
    ("0951:*:*", KINGSTON_ID),
    ("*:*:60a44c3fae22f0b1", KINGSTON_ID),
    ("09?1:16?6:60A44C3F*", KINGSTON_ID),
    ("*:*:*", KINGSTON_ID),
    ("::vol:5a3c-19e2:67108864", "::vol:5a3c-19e2:67108864"),  # no hardware serial: only its exact identity
    ("0951:1666:VOL:5A3C-19E2:67108864", "0951:1666:vol:5a3c-19e2:67108864"),
    ("0781:5567:a[1]", "0781:5567:a[1]"),  # only * and ? are special
    ("0781:5567:ab:cd", "0781:5567:ab:cd"),  # a serial may hold ':'
]
MISSES = [
    ("0951:1666:60A44C3FAE22F0B2", KINGSTON_ID),
    ("0951:1667:*", KINGSTON_ID),
    ("0781:*:*", KINGSTON_ID),
    ("0951:1666:60A44C3F", KINGSTON_ID),  # the whole part, not a prefix
    ("*:*:*", "::vol:5a3c-19e2:67108864"),  # a wildcard never covers a medium without a serial
    ("0951:1666:*", "0951:1666:vol:5a3c-19e2:67108864"),
    ("::vol:5a3c-19e2:67108864", "::vol:5a3c-19e2:67108865"),  # another size: another medium
    ("*:*:*", "::vol::67108864"),  # neither serial nor volume id: nothing allows it
    ("*:*:*", "::"),  # an old agent's media without identity
    ("*:*:*", "0951:1666:"),
    ("0781:5567:a?1", "0781:5567:a[1]x"),
]


@pytest.mark.parametrize("pattern, identity", MATCHES)
def test_pattern_matches(pattern, identity):
    assert parse_pattern(pattern).matches(identity)


@pytest.mark.parametrize("pattern, identity", MISSES)
def test_pattern_does_not_match(pattern, identity):
    assert not parse_pattern(pattern).matches(identity)


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("60A44C3FAE22F0B1", "is not vendor:product:serial"),
        ("0951:1666", "is not vendor:product:serial"),
        ("kingston:1666:*", "the vendor part 'kingston' must be hex digits"),
        ("0951:16 66:*", "the product part '16 66' must be hex digits"),
        ("0951:1666:a\tb", "control characters"),
        ("::", "empty serial part"),  # one click used to allow every medium without a serial
        ("0951:1666:", "empty serial part"),
        ("::vol:5a3c-*:67108864", "only by its exact identity"),
        ("*:*:vol:5a3c-19e2:67108864", "only by its exact identity"),
        ("::vol::67108864", "cannot be told apart"),
        ("*:*:" + "?*" * 8, "has 18 wildcards; at most 16"),
    ],
)
def test_garbage_pattern_is_refused_with_its_reason(client, reader, pattern, message):
    with pytest.raises(PatternError, match=message):
        parse_pattern(pattern)
    response = allow(client, reader, pattern)
    assert response.status_code == 422 and message in response.json()["detail"]
    assert client.get("/api/v1/devices/allow", headers=reader).json() == {"allow": []}


@pytest.mark.parametrize("pattern, count", [("0951:1666:*", 1), ("*:*:***", 3), ("09??:*:a*?*", 6), ("*:*:*0*0*0*0*0*1", 8)])
def test_a_run_of_stars_is_one_wildcard(pattern, count):
    assert wildcard_count(pattern) == count


def test_a_pattern_at_the_wildcard_cap_is_taken_and_one_more_is_refused():
    at_cap = "*:*:" + "*" * 50 + "?" * (MAX_WILDCARDS - 3)
    assert parse_pattern(at_cap).matches("0951:1666:" + "x" * 100)
    with pytest.raises(PatternError, match=f"at most {MAX_WILDCARDS}"):
        parse_pattern(at_cap + "?")


def test_an_identity_longer_than_any_agent_may_send_is_allowed_by_nothing():
    assert parse_pattern("*:*:*").matches("0951:1666:" + "a" * (MAX_IDENTITY_CHARS - 10))
    assert not parse_pattern("*:*:*").matches("0951:1666:" + "a" * (MAX_IDENTITY_CHARS - 9))


# The attack, in a child process so a backtracking matcher cannot hold the test run: an admin
# allows a pattern with many stars (one someone typed, or a crafted one), then an agent mounts a
# stick whose serial it made up. With Python's re the 175-character serial alone took 74 s, during
# which no agent's batch was stored. The child stores both in a real collector and gets the alert.
_PATHOLOGICAL = textwrap.dedent(
    """
    import sys, uuid
    from fastapi.testclient import TestClient
    from server.app import create_app
    from server.auth import API_TOKEN_PREFIX, new_token
    from server.config import ServerConfig
    from server.database import make_engine, migrate
    from server.store import Store
    from tests.server.factories import ENROLL_SECRET, KINGSTON, make_event

    url = f"sqlite:///{sys.argv[1]}/collector.db"
    engine = make_engine(url)
    migrate(engine)
    store = Store(engine)
    admin = new_token(API_TOKEN_PREFIX)
    store.create_api_token("secops", admin)
    with TestClient(create_app(ServerConfig(listen=("127.0.0.1", 0), database=url, enroll_secret=ENROLL_SECRET), store)) as client:
        enrolled = client.post("/api/v1/enroll", json={"enroll_secret": ENROLL_SECRET, "agent_id": str(uuid.uuid4()), "hostname": "pc-0042"})
        agent = {"Authorization": "Bearer " + enrolled.json()["token"]}
        allowed = client.post("/api/v1/devices/allow", json={"pattern": "*:*:*0*0*0*0*0*1"}, headers={"Authorization": "Bearer " + admin})
        assert allowed.status_code == 201, allowed.text
        for n, length in enumerate((175, 1024)):
            media = {**KINGSTON, "serial": "0" * length}
            event = make_event("media.mounted", path=media["mountpoint"], media=media, egress="removable", ts=f"2026-03-02T09:00:0{n}Z")
            answer = client.post("/api/v1/events", json={"events": [event]}, headers=agent)
            assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
        alerts = client.get("/api/v1/alerts", params={"category": "unknown-device"}, headers={"Authorization": "Bearer " + admin}).json()["alerts"]
        print(len(alerts), "unknown-device alerts")
    """
)


@pytest.mark.reliability(area="input", fault="A made-up serial against an allow-list pattern with many stars", how="`*:*:*0*0*0*0*0*1` allowed, then mounts with serials of 175 and 1,024 zeros, in a child collector given 10 s", outcome="both stored and alerted in well under the 10 s (RE2, linear in the serial; was 74 s for the 175-character serial alone, ingest held for every agent); more than 16 wildcards in a pattern is 422")
def test_a_made_up_serial_cannot_stall_ingest(tmp_path):
    child = subprocess.run([sys.executable, "-c", _PATHOLOGICAL, str(tmp_path)], capture_output=True, text=True, timeout=10, cwd=_repo())
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip().endswith("unknown-device alerts") and not child.stdout.startswith("0 "), child.stdout


def _repo() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[2])


@pytest.mark.parametrize("body", [{}, {"pattern": ""}, {"pattern": "::", "owner": 5}, {"pattern": "::", "colour": "red"}, {"pattern": "a\x00::"}])
def test_malformed_allow_body_is_422(client, reader, body):
    assert client.post("/api/v1/devices/allow", json=body, headers=reader).status_code == 422


# --- the allow-list API -------------------------------------------------------------------------


def test_allow_list_is_added_to_listed_and_removed(client, reader, clock):
    response = allow(client, reader, "0951:1666:*", owner="IT department", note="issued sticks", expires_at="2026-12-31T00:00:00Z")
    assert response.status_code == 201, response.text
    entry = response.json()
    assert entry == {
        "id": entry["id"],
        "pattern": "0951:1666:*",
        "owner": "IT department",
        "note": "issued sticks",
        "expires_at": "2026-12-31T00:00:00.000Z",
        "expired": False,
        "created_by": "token:secops",
        "created_at": "2026-03-02T09:00:00.000Z",
    }
    assert allow(client, reader, "0951:1666:*").status_code == 409  # the same pattern twice
    assert client.get("/api/v1/devices/allow", headers=reader).json() == {"allow": [entry]}

    assert client.delete(f"/api/v1/devices/allow/{entry['id']}", headers=reader).json() == {"id": entry["id"], "removed": True}
    assert client.get("/api/v1/devices/allow", headers=reader).json() == {"allow": []}
    assert client.delete(f"/api/v1/devices/allow/{entry['id']}", headers=reader).status_code == 404


def test_expiry_in_the_past_is_refused(client, reader):
    response = allow(client, reader, "0951:1666:*", expires_at="2020-01-01T00:00:00Z")
    assert response.status_code == 422 and "in the past" in response.json()["detail"]


def test_agents_cannot_read_or_change_the_register(client, agent, reader):
    assert client.get("/api/v1/devices", headers=agent.headers).status_code == 403
    assert client.post("/api/v1/devices/allow", json={"pattern": "*:*:*"}, headers=agent.headers).status_code == 403
    assert client.get("/api/v1/devices/allow").status_code == 401
    assert client.delete("/api/v1/devices/allow/1", headers=agent.headers).status_code == 403


# --- the register ---------------------------------------------------------------------------------


def test_mounts_upsert_one_row_per_device(client, reader, send, agent):
    send(mounted(seconds=0))
    send(mounted(seconds=60, user="li.na"), mounted({**KINGSTON, "label": "RENAMED"}, seconds=120, user="li.na"))
    send(mounted({**KINGSTON, "serial": "OTHER1"}, seconds=30))

    devices = client.get("/api/v1/devices", headers=reader).json()["devices"]
    by_id = {d["identity"]: d for d in devices}
    assert set(by_id) == {KINGSTON_ID, "0951:1666:other1"}
    stick = by_id[KINGSTON_ID]
    assert stick["times_seen"] == 3
    assert (stick["first_seen"], stick["last_seen"]) == (at(0), at(120))
    assert (stick["label"], stick["last_user"], stick["last_agent_id"]) == ("RENAMED", "li.na", agent.agent_id)
    assert (stick["vendor"], stick["model"], stick["bus"], stick["fstype"]) == ("Kingston", "DataTraveler 3.0", "usb", "vfat")
    assert stick["allowed"] is False and stick["allowed_by"] is None


def test_a_late_batch_does_not_overwrite_what_was_seen_since(client, reader, send):
    send(mounted(seconds=600, user="li.na"))
    send(mounted(seconds=0, user="zhang.wei"))  # delivered late (the laptop was offline)
    (stick,) = client.get("/api/v1/devices", headers=reader).json()["devices"]
    assert (stick["first_seen"], stick["last_seen"], stick["last_user"], stick["times_seen"]) == (at(0), at(600), "li.na", 2)


def test_resent_batch_counts_a_mount_once(client, reader, send):
    event = mounted()
    send(event)
    send(event)
    (stick,) = client.get("/api/v1/devices", headers=reader).json()["devices"]
    assert stick["times_seen"] == 1


def test_shares_and_internal_disks_are_not_registered_nor_alerted(client, reader, send):
    share = {"mountpoint": "/mnt/nas", "device": "//nas/projects", "fstype": "cifs"}
    nfs = {"mountpoint": "/mnt/nfs", "device": "nas:/export", "fstype": "nfs4"}
    internal = {**KINGSTON, "mountpoint": "/media/data", "bus": "nvme", "removable": False, "serial": "S4EWNX0R"}
    send(mounted(share), mounted(nfs), mounted(internal))
    assert client.get("/api/v1/devices", headers=reader).json()["devices"] == []
    assert unknown_device_alerts(client, reader) == []


def test_register_filters_and_pages(client, reader, send):
    send(*[mounted({**KINGSTON, "serial": f"S{i:03d}"}, seconds=i) for i in range(5)])
    allow(client, reader, "0951:1666:s00?")  # S000..S004 all match
    allow(client, reader, "*:*:nothing")
    client.delete("/api/v1/devices/allow/1", headers=reader)
    allow(client, reader, "0951:1666:s001")

    allowed = client.get("/api/v1/devices", params={"allowed": "true"}, headers=reader).json()["devices"]
    assert [d["serial"] for d in allowed] == ["S001"]
    assert allowed[0]["allowed_by"]["pattern"] == "0951:1666:s001"
    unknown = client.get("/api/v1/devices", params={"allowed": "false"}, headers=reader).json()["devices"]
    assert [d["serial"] for d in unknown] == ["S004", "S003", "S002", "S000"]
    assert [d["serial"] for d in client.get("/api/v1/devices", params={"q": "s003"}, headers=reader).json()["devices"]] == ["S003"]
    recent = client.get("/api/v1/devices", params={"since": at(3)}, headers=reader).json()["devices"]
    assert [d["serial"] for d in recent] == ["S004", "S003"]

    first = client.get("/api/v1/devices", params={"limit": 2}, headers=reader).json()
    second = client.get("/api/v1/devices", params={"limit": 2, "cursor": first["next"]}, headers=reader).json()
    third = client.get("/api/v1/devices", params={"limit": 2, "cursor": second["next"]}, headers=reader).json()
    assert [d["serial"] for d in first["devices"] + second["devices"] + third["devices"]] == ["S004", "S003", "S002", "S001", "S000"]
    assert "next" not in third


# --- the unknown-device alert -------------------------------------------------------------------


def test_unlisted_stick_raises_unknown_device(client, reader, send):
    send(mounted())
    (alert,) = unknown_device_alerts(client, reader)
    assert (alert["rule_id"], alert["severity"]) == ("MW-UNKNOWN-DEVICE", "low")
    assert "Kingston DataTraveler 3.0" in alert["explanation"]
    assert f"media.identity = {KINGSTON_ID}" in alert["explanation"]


@pytest.mark.parametrize("pattern", ["0951:1666:60A44C3FAE22F0B1", "0951:1666:*", "*:*:60a44c3f*"])
def test_allowed_stick_raises_nothing(client, reader, send, pattern):
    assert allow(client, reader, pattern, owner="zhang.wei").status_code == 201
    send(mounted())
    assert unknown_device_alerts(client, reader) == []


def test_an_expired_entry_no_longer_allows(client, reader, send, clock):
    assert allow(client, reader, "0951:1666:*", expires_at="2026-03-02T10:00:00Z").status_code == 201
    send(mounted(seconds=0))
    assert unknown_device_alerts(client, reader) == []

    clock.advance(3600)  # 10:00: the entry has expired
    (entry,) = client.get("/api/v1/devices/allow", headers=reader).json()["allow"]
    assert entry["expired"] is True
    send(mounted(seconds=3600))
    assert len(unknown_device_alerts(client, reader)) == 1
    (stick,) = client.get("/api/v1/devices", headers=reader).json()["devices"]
    assert stick["allowed"] is False


def test_removing_an_entry_makes_the_stick_unknown_again(client, reader, send):
    entry = allow(client, reader, "0951:1666:*").json()
    send(mounted(seconds=0))
    client.delete(f"/api/v1/devices/allow/{entry['id']}", headers=reader)
    send(mounted(seconds=60))
    assert len(unknown_device_alerts(client, reader)) == 1


def test_media_without_a_serial_are_told_apart_and_allowed_one_by_one(client, reader, send):
    first = {"mountpoint": "/media/u/STICK", "device": "/dev/loop0", "fstype": "exfat", "label": "STICK", "volume_id": "5A3C-19E2", "size_bytes": 67108864}
    second = {**first, "volume_id": "0C1D-77F0"}
    assert allow(client, reader, "*:*:*").status_code == 201  # covers hardware serials only
    send(mounted(first, seconds=0), mounted(second, seconds=30))
    rows = client.get("/api/v1/devices", headers=reader).json()["devices"]
    assert sorted(r["identity"] for r in rows) == ["::vol:0c1d-77f0:67108864", "::vol:5a3c-19e2:67108864"]
    assert not any(r["allowed"] for r in rows)
    assert allow(client, reader, "::vol:5a3c-19e2:67108864").status_code == 201  # the console's allow click
    send(mounted(first, seconds=60), mounted(second, seconds=120), mounted(seconds=180))
    alerts = unknown_device_alerts(client, reader)
    # one alert per stick; the second stick raised its again, the first and the Kingston (*:*:*) did not
    assert sorted(a["count"] for a in alerts) == [1, 2]
    by_identity = {r["identity"]: r["allowed"] for r in client.get("/api/v1/devices", headers=reader).json()["devices"]}
    assert by_identity == {"::vol:5a3c-19e2:67108864": True, "::vol:0c1d-77f0:67108864": False, KINGSTON_ID: True}


def test_media_with_no_identity_at_all_cannot_be_allowed(client, reader, send):
    anonymous = {"mountpoint": "/media/u/STICK", "device": "/dev/loop0", "fstype": "ext4", "label": "STICK", "size_bytes": 4096}
    send(mounted(anonymous, seconds=0))
    (row,) = client.get("/api/v1/devices", headers=reader).json()["devices"]
    assert row["identity"] == "::vol::4096"
    response = allow(client, reader, row["identity"])
    assert response.status_code == 422 and "cannot be told apart" in response.json()["detail"]
    send(mounted(anonymous, seconds=60))
    assert [a["count"] for a in unknown_device_alerts(client, reader)] == [2]


def test_serials_on_the_old_watchlist_still_allow(client, reader, send):
    client.post("/api/v1/watchlists/allowed-devices/members", json={"value": "60A44C3FAE22F0B1"}, headers=reader)
    send(mounted())
    assert unknown_device_alerts(client, reader) == []
