"""Who may call what: agent tokens ingest and heartbeat, API tokens read and update alerts."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from server.schema import api_tokens
from tests.server.factories import ENROLL_SECRET, make_egress, make_event

HEARTBEAT = {"hostname": "pc-0042", "version": "0.1.0", "spool_depth": 0}

# (method, path, JSON body); {alert} is replaced by an existing alert's id
AGENT_ONLY = [
    ("POST", "/api/v1/events", {"events": []}),
    ("POST", "/api/v1/heartbeat", HEARTBEAT),
]
READER_ONLY = [
    ("GET", "/api/v1/alerts", None),
    ("GET", "/api/v1/alerts/{alert}", None),
    ("PATCH", "/api/v1/alerts/{alert}", {"status": "acknowledged", "comment": "looking"}),
    ("GET", "/api/v1/events", None),
    ("GET", "/api/v1/agents", None),
]
RULES_READER_ONLY = [  # the rest of the rules API is tested in test_policy.py and test_watchlists.py
    ("PUT", "/api/v1/policy", {"files": []}),
    ("GET", "/api/v1/policy/history", None),
    ("GET", "/api/v1/watchlists", None),
    ("PUT", "/api/v1/watchlists/departing", {"members": [{"value": "zhang.wei"}]}),
    ("POST", "/api/v1/watchlists/departing/members", {"value": "zhang.wei"}),
]
EITHER = [("GET", "/api/v1/policy", None)]  # agents follow the policy; scripts may read it
PROTECTED = AGENT_ONLY + READER_ONLY + RULES_READER_ONLY + EITHER


@pytest.fixture
def alert_id(send, client, reader) -> int:
    send(make_egress("core"))
    return client.get("/api/v1/alerts", headers=reader).json()["alerts"][0]["id"]


def _call(client, method, path, body, headers, alert_id):
    return client.request(method, path.format(alert=alert_id), json=body, headers=headers)


@pytest.mark.parametrize("method,path,body", READER_ONLY + RULES_READER_ONLY)
def test_agent_token_cannot_read(client, agent, alert_id, method, path, body):
    response = _call(client, method, path, body, agent.headers, alert_id)
    assert response.status_code == 403, response.text
    assert response.json()["detail"]


def test_agent_token_cannot_change_an_alert(client, agent, reader, alert_id):
    _call(client, "PATCH", "/api/v1/alerts/{alert}", {"status": "false_positive"}, agent.headers, alert_id)
    assert client.get(f"/api/v1/alerts/{alert_id}", headers=reader).json()["status"] == "open"


@pytest.mark.parametrize("method,path,body", AGENT_ONLY)
def test_agent_token_may_ingest_and_heartbeat(client, agent, method, path, body):
    assert client.request(method, path, json=body, headers=agent.headers).status_code == 200


@pytest.mark.parametrize("method,path,body", AGENT_ONLY)
def test_api_token_cannot_ingest_or_heartbeat(client, reader, method, path, body):
    response = client.request(method, path, json=body, headers=reader)
    assert response.status_code == 403, response.text
    assert response.json()["detail"]


def test_api_token_cannot_slip_events_in(client, reader, store):
    client.post("/api/v1/events", json={"events": [make_event()]}, headers=reader)
    assert store.count_events() == 0


@pytest.mark.parametrize("method,path,body", READER_ONLY + RULES_READER_ONLY + EITHER)
def test_api_token_may_read_and_update_alerts(client, reader, alert_id, method, path, body):
    response = _call(client, method, path, body, reader, alert_id)
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize("method,path,body", EITHER)
def test_agent_token_may_fetch_the_policy(client, agent, method, path, body):
    assert client.request(method, path, json=body, headers=agent.headers).status_code == 200


def test_bearer_scheme_is_case_insensitive(client, api_token):
    assert client.get("/api/v1/alerts", headers={"Authorization": f"bearer {api_token}"}).status_code == 200


BAD_CREDENTIALS = {
    "no header": None,
    "empty header": "",
    "scheme only": "Bearer",
    "scheme and blank": "Bearer    ",
    "unknown api token": "Bearer mwt_" + "A" * 43,
    "unknown agent token": "Bearer mwa_" + "A" * 43,
    "token without a known prefix": "Bearer xyz_" + "A" * 43,
    "very long token": "Bearer mwt_" + "A" * 5000,
    "basic scheme": "Basic {api}",
    "token scheme": "Token {api}",
    "token without scheme": "{api}",
    "agent token in basic scheme": "Basic {agent}",
    "token with a suffix": "Bearer {api}x",
    "token truncated": "Bearer {api_short}",
}


@pytest.mark.parametrize("credential", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
@pytest.mark.parametrize("method,path,body", PROTECTED)
def test_missing_or_wrong_token_is_401(client, agent, api_token, alert_id, credential, method, path, body):
    headers = {}
    if credential is not None:
        value = credential.format(api=api_token, agent=agent.token, api_short=api_token[:-1])
        headers["Authorization"] = value
    response = _call(client, method, path, body, headers, alert_id)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"]


def test_revoked_api_token_is_401(client, engine, reader, clock):
    assert client.get("/api/v1/alerts", headers=reader).status_code == 200
    with engine.begin() as conn:
        conn.execute(update(api_tokens).values(revoked_at=clock()))
    assert client.get("/api/v1/alerts", headers=reader).status_code == 401


def test_tokens_are_not_stored_in_clear(engine, agent, api_token):
    with engine.connect() as conn:
        dump = "\n".join(
            str(row) for table in ("agents", "api_tokens") for row in conn.exec_driver_sql(f"SELECT * FROM {table}")
        )
    assert agent.token not in dump and api_token not in dump
    assert agent.agent_id in dump


@pytest.mark.parametrize(
    "secret", ["", "wrong-secret-of-enough-length", ENROLL_SECRET + "x", ENROLL_SECRET[:-1], ENROLL_SECRET.upper()]
)
def test_wrong_enroll_secret_is_403_and_enrols_nobody(client, reader, secret):
    body = {"enroll_secret": secret, "agent_id": str(uuid.uuid4()), "hostname": "intruder"}
    response = client.post("/api/v1/enroll", json=body)

    assert response.status_code == 403, response.text
    assert "token" not in response.json()
    assert client.get("/api/v1/agents", headers=reader).json()["agents"] == []


def test_enroll_answers_a_fresh_agent_token(client, agent):
    assert agent.token.startswith("mwa_") and len(agent.token) > 40


def test_enrolling_with_a_taken_id_cannot_take_over_that_agent(client, enroll, agent):
    """The secret is shared by every PC: knowing it must not lock a real agent out."""
    again = enroll(agent_id=agent.agent_id)

    assert again.agent_id != agent.agent_id
    assert again.token != agent.token
    assert client.post("/api/v1/heartbeat", json=HEARTBEAT, headers=agent.headers).status_code == 200
    # the same host name as a live agent: the newcomer waits for an admin (server/fleet.py)
    assert client.post("/api/v1/heartbeat", json=HEARTBEAT, headers=again.headers).status_code == 403
