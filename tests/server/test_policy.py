"""The collector is the source of truth for rules: GET with ETag and 304, PUT checked whole, history.

The active policy is the default packs + the firm's own rule files + the configured working time.
"""

from __future__ import annotations

import dataclasses
from datetime import date, time

import pytest
from fastapi.testclient import TestClient

from rules.loader import default_pack_sources
from rules.policy import build_policy, default_policy, policy_from_payload
from rules.worktime import WorkTime
from server.app import create_app
from server.policies import MAX_CUSTOM_FILES, MAX_FILE_BYTES
from tests.samples import SITE_RULES as SITE
from tests.server.factories import alerts_of, make_egress, make_event, put_policy

BROKEN = """\
- id: SITE-TXT-EGRESS
  title: A text file written to an egress place
  category: classified-egress
  severity: lowest
  when:
    type: egress.file
    extention: txt
"""


def _get(client, headers, etag: str | None = None):
    return client.get("/api/v1/policy", headers={**headers, **({"If-None-Match": etag} if etag else {})})


def test_policy_is_the_packs_with_the_configured_working_time(client, reader, agent):
    response = _get(client, agent.headers)

    assert response.status_code == 200, response.text
    payload = response.json()
    expected = default_policy()
    assert payload == expected.to_payload()
    assert response.headers["etag"] == f'"{expected.version}"'
    assert policy_from_payload(payload).version == expected.version  # what the agent checks
    assert _get(client, reader).json() == payload  # API tokens may read it too


@pytest.mark.parametrize("etag", ['"{v}"', "{v}", 'W/"{v}"', '"0000000000000000", "{v}"', "*"])
def test_a_matching_if_none_match_gets_304_without_a_body(client, agent, etag):
    version = default_policy().version

    response = _get(client, agent.headers, etag.format(v=version))

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == f'"{version}"'


@pytest.mark.parametrize("etag", ['"0123456789abcdef"', "", '""'])
def test_another_version_gets_the_whole_policy(client, agent, etag):
    response = _get(client, agent.headers, etag)
    assert response.status_code == 200 and response.json()["version"] == default_policy().version


def test_policy_needs_a_token(client):
    assert client.get("/api/v1/policy").status_code == 401
    assert client.get("/api/v1/policy", headers={"Authorization": "Bearer mwa_nope"}).status_code == 401


def test_put_activates_the_firms_rules_and_agents_see_the_new_version(client, reader, agent, send):
    old = _get(client, agent.headers).json()["version"]

    answer = put_policy(client, reader, ("site.yaml", SITE))

    new = answer["version"]
    assert new != old and answer["changed"] is True and answer["warnings"] == []
    assert new == build_policy(default_pack_sources() + [("site.yaml", SITE)], WorkTime()).version
    assert _get(client, agent.headers, f'"{old}"').status_code == 200
    assert _get(client, agent.headers, f'"{new}"').status_code == 304
    assert {"name": "site.yaml", "text": SITE} in _get(client, agent.headers).json()["files"]
    heartbeat = client.post("/api/v1/heartbeat", json={"hostname": "pc-0042", "policy_version": old}, headers=agent.headers)
    assert heartbeat.json()["policy_version"] == new
    # and the collector judges events by it
    send(make_egress(None, path="/media/zhang/KINGSTON/notes.txt", match=None, source_path=None))
    (alert,) = alerts_of(client, reader)
    assert (alert["rule_id"], alert["severity"]) == ("SITE-TXT-EGRESS", "low")


def test_a_broken_rule_set_is_refused_with_its_errors_and_the_active_one_stays(client, reader, agent):
    put_policy(client, reader, ("site.yaml", SITE))
    before = _get(client, agent.headers).json()

    response = client.put("/api/v1/policy", json={"files": [{"name": "site.yaml", "text": BROKEN}]}, headers=reader)

    assert response.status_code == 422
    assert response.json() == {
        "detail": "the rule set has errors; the active one is unchanged",
        "errors": [
            "site.yaml:4:13: SITE-TXT-EGRESS.severity: unknown severity 'lowest' (did you mean 'low'?)",
            "site.yaml:7:5: SITE-TXT-EGRESS.when.extention: unknown field 'extention' (did you mean 'extension'?)",
        ],
    }
    assert _get(client, agent.headers).json() == before
    assert len(client.get("/api/v1/policy/history", headers=reader).json()["policies"]) == 2


@pytest.mark.parametrize(
    "files,error",
    [
        ([{"name": "packs/egress.yaml", "text": SITE}], "packs/egress.yaml: names starting with 'packs/' are reserved for the shipped packs"),
        ([{"name": "a.yaml", "text": SITE}, {"name": "a.yaml", "text": SITE}], "a.yaml: two files have this name"),
        ([{"name": "big.yaml", "text": "#" * (MAX_FILE_BYTES + 1)}], f"big.yaml: larger than {MAX_FILE_BYTES} bytes"),
        ([{"name": f"f{i}.yaml", "text": "[]"} for i in range(MAX_CUSTOM_FILES + 1)], f"at most {MAX_CUSTOM_FILES} rule files, got {MAX_CUSTOM_FILES + 1}"),
        ([{"name": "dup.yaml", "text": SITE.replace("SITE-TXT-EGRESS", "MW-EGRESS-CLASSIFIED")}], "dup.yaml:1:3: MW-EGRESS-CLASSIFIED: duplicate rule id (first defined at packs/egress.yaml:4)"),
        ([{"name": "empty.yaml", "text": ""}], "empty.yaml:1:1: the file holds no rules (a rule file is a YAML list of rules)"),
    ],
)
def test_rule_files_outside_the_limits_are_refused(client, reader, files, error):
    response = client.put("/api/v1/policy", json={"files": files}, headers=reader)
    assert response.status_code == 422, response.text
    assert error in response.json()["errors"]
    assert len(client.get("/api/v1/policy/history", headers=reader).json()["policies"]) == 1


@pytest.mark.parametrize("body", [{}, {"files": [{"name": "", "text": SITE}]}, {"files": [{"name": "a\nb", "text": SITE}]}, {"files": "x"}, {"files": [{"name": "a.yaml"}]}])
def test_malformed_bodies_are_refused(client, reader, body):
    assert client.put("/api/v1/policy", json=body, headers=reader).status_code == 422


def test_only_api_tokens_may_change_the_policy(client, agent):
    response = client.put("/api/v1/policy", json={"files": [{"name": "site.yaml", "text": SITE}]}, headers=agent.headers)
    assert response.status_code == 403
    assert client.put("/api/v1/policy", json={"files": []}).status_code == 401


def test_lint_warnings_come_back_with_the_version(client, reader):
    no_type = SITE.replace("    type: egress.file\n", "")
    answer = put_policy(client, reader, ("site.yaml", no_type))
    assert answer["warnings"] == ["site.yaml:1:3: SITE-TXT-EGRESS.when: no 'type' condition: the rule is tested on every event (e.g. type: egress.file)"]


def test_the_same_rules_again_change_nothing(client, reader):
    first = put_policy(client, reader, ("site.yaml", SITE))
    again = put_policy(client, reader, ("site.yaml", SITE))
    assert again == {**first, "changed": False}
    assert len(client.get("/api/v1/policy/history", headers=reader).json()["policies"]) == 2


def test_history_lists_every_activation_newest_first(client, reader, clock):
    start = default_policy().version
    clock.advance(60)
    v1 = put_policy(client, reader, ("site.yaml", SITE))["version"]
    clock.advance(60)
    v2 = put_policy(client, reader)["version"]  # back to the packs alone

    history = client.get("/api/v1/policy/history", headers=reader).json()["policies"]

    assert [(h["version"], h["active"], h["created_by"], h["files"], h["created_at"]) for h in history] == [
        (v2, True, "token:secops", [], "2026-03-02T09:02:00.000Z"),
        (v1, False, "token:secops", ["site.yaml"], "2026-03-02T09:01:00.000Z"),
        (start, False, "startup", [], "2026-03-02T09:00:00.000Z"),
    ]
    assert v2 == start
    assert history[0]["packs"] == [name for name, _ in default_pack_sources()]
    assert history[0]["worktime"] == WorkTime().to_dict()
    assert len(client.get("/api/v1/policy/history", params={"limit": 1}, headers=reader).json()["policies"]) == 1
    assert client.get("/api/v1/policy/history", headers={"Authorization": "Bearer x"}).status_code == 401


# --- startup --------------------------------------------------------------------------------------

SHIFTS = WorkTime(timezone="Asia/Shanghai", days=("mon", "tue", "wed", "thu", "fri", "sat"), start=time(8), end=time(20), holidays=(date(2026, 10, 1),))


def test_startup_keeps_the_custom_files_and_applies_the_configured_working_time(config, store, reader):
    with TestClient(create_app(config, store)) as client:
        custom = put_policy(client, reader, ("site.yaml", SITE))["version"]

    with TestClient(create_app(dataclasses.replace(config, working_time=SHIFTS), store)) as client:
        payload = client.get("/api/v1/policy", headers=reader).json()
        history = client.get("/api/v1/policy/history", headers=reader).json()["policies"]

    assert payload["worktime"] == SHIFTS.to_dict()
    assert {"name": "site.yaml", "text": SITE} in payload["files"]
    assert payload["version"] == build_policy(default_pack_sources() + [("site.yaml", SITE)], SHIFTS).version != custom
    assert [(h["created_by"], h["files"]) for h in history] == [("startup", ["site.yaml"]), ("token:secops", ["site.yaml"]), ("startup", [])]


def test_starting_again_with_the_same_config_adds_nothing(config, store, reader):
    for _ in range(3):
        with TestClient(create_app(config, store)) as client:
            history = client.get("/api/v1/policy/history", headers=reader).json()["policies"]
    assert len(history) == 1


def test_working_time_decides_off_hours(config, store, reader, agent):
    # 09:00 UTC on Monday 2 March is 17:00 in Shanghai: working hours; with a day ending at 16:00 it is not
    opened = make_event("file.opened", level="core", ts="2026-03-02T09:00:00.000Z")
    early = dataclasses.replace(config, working_time=dataclasses.replace(WorkTime(), end=time(16)))
    with TestClient(create_app(config, store)) as client:
        client.post("/api/v1/events", json={"events": [opened]}, headers=agent.headers)
        assert alerts_of(client, reader) == []
    with TestClient(create_app(early, store)) as client:
        client.post("/api/v1/events", json={"events": [dict(opened, id=make_event()["id"])]}, headers=agent.headers)
        (alert,) = alerts_of(client, reader)
    assert (alert["rule_id"], alert["category"]) == ("MW-OFF-HOURS-CORE", "off-hours")
    assert "working_hours = false (working_hours is false)" in alert["explanation"]
    assert "2026-03-02 17:00:00 CST" in alert["explanation"]


def test_events_and_heartbeats_keep_the_policy_version_they_were_evaluated_under(client, reader, agent, send):
    send(make_event(policy_version="p-0042"))
    client.post("/api/v1/heartbeat", json={"hostname": "pc-0042", "policy_version": "p-0042"}, headers=agent.headers)

    (event,) = client.get("/api/v1/events", headers=reader).json()["events"]
    (listed,) = client.get("/api/v1/agents", headers=reader).json()["agents"]
    assert event["policy_version"] == listed["policy_version"] == "p-0042"
