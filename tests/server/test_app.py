"""The application around the API: schema migration, health, schema, headers, the body size cap."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

from server.app import MAX_BODY_BYTES, create_app
from server.database import current_revision, head_revision, make_engine, migrate
from server.store import Store
from tests.server.factories import make_egress, make_event

MARKUP_NAME = "<img src=x onerror=alert(1)>.docx"
TABLES = {
    "agents", "api_tokens", "users", "events", "alerts", "alert_events", "alert_history",
    "policies", "watchlists", "watchlist_members", "rule_hits", "correlation_state", "agent_silences",
}  # fmt: skip


def test_migrate_creates_the_schema_at_head(db_url):
    engine = make_engine(db_url)
    assert current_revision(engine) is None

    assert migrate(engine) == (None, head_revision())

    assert current_revision(engine) == head_revision()
    assert TABLES <= set(inspect(engine).get_table_names())


def test_migrating_again_is_harmless(engine, store, client, agent, send):
    send(make_egress("core"))

    assert migrate(engine) == (head_revision(), head_revision())
    assert migrate(engine) == (head_revision(), head_revision())

    assert store.count_events() == 1
    assert len(store.list_alerts().items) == 1
    assert store.agent_for_token(agent.token) == agent.agent_id


def test_health_answers_ok_without_a_token(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["version"]


def test_health_reports_an_unreachable_database(config, tmp_path):
    missing = create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'x.db'}")
    with TestClient(create_app(config, Store(missing))) as client:
        response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["detail"] == "database unreachable"


def test_openapi_schema_is_served(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/health",
        "/api/v1/enroll",
        "/api/v1/events",
        "/api/v1/heartbeat",
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}",
        "/api/v1/agents",
        "/api/v1/policy",
        "/api/v1/policy/history",
        "/api/v1/watchlists",
        "/api/v1/watchlists/{name}",
        "/api/v1/watchlists/{name}/members",
        "/api/v1/watchlists/{name}/members/{value}",
    ):
        assert path in paths, path
    assert {"get", "patch"} <= set(paths["/api/v1/alerts/{alert_id}"])


def test_file_names_with_markup_come_back_as_plain_json_strings(client, reader, send):
    path = f"/media/usb/{MARKUP_NAME}"
    source = f"/srv/rnd/{MARKUP_NAME}"
    send(make_egress("core", path=path, source_path=source, user="<script>alert(2)</script>"))

    events = client.get("/api/v1/events", headers=reader)
    alerts = client.get("/api/v1/alerts", headers=reader)
    (alert,) = alerts.json()["alerts"]
    detail = client.get(f"/api/v1/alerts/{alert['id']}", headers=reader)

    for response in (events, alerts, detail):
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "&lt;" not in response.text and "&amp;" not in response.text  # not HTML-escaped either
    assert events.json()["events"][0]["path"] == path
    assert events.json()["events"][0]["source_path"] == source
    assert path in alert["explanation"] and source in alert["explanation"]
    assert detail.json()["events"][0]["path"] == path
    assert detail.json()["user"] == "<script>alert(2)</script>"


def _every_kind_of_answer(client, agent, reader) -> dict:
    big = {**agent.headers, "Content-Length": str(MAX_BODY_BYTES + 1)}
    return {
        "ok": client.get("/api/v1/alerts", headers=reader),
        "health": client.get("/api/v1/health"),
        "openapi": client.get("/openapi.json"),
        "landing page": client.get("/"),
        "401": client.get("/api/v1/alerts"),
        "403": client.get("/api/v1/alerts", headers=agent.headers),
        "404": client.get("/api/v1/alerts/77", headers=reader),
        "404 route": client.get("/api/v1/nothing-here"),
        "405": client.delete("/api/v1/alerts/1", headers=reader),
        "422": client.post("/api/v1/events", json={"events": [{"id": "x"}]}, headers=agent.headers),
        "413": client.post("/api/v1/events", content=b" " * (MAX_BODY_BYTES + 1), headers=big),
    }


def test_every_answer_carries_nosniff_and_a_strict_csp(client, agent, reader):
    for name, response in _every_kind_of_answer(client, agent, reader).items():
        assert response.headers.get("x-content-type-options") == "nosniff", name
        assert "default-src 'none'" in response.headers.get("content-security-policy", ""), name


@pytest.mark.reliability(area="input", fault="Body over 32 MB", how="declared by Content-Length, or streamed chunked without one", outcome="413 before parsing")
def test_body_over_the_cap_is_413(client, agent, store):
    body = b'{"events": [' + json.dumps(make_event()).encode() + b"]" + b" " * MAX_BODY_BYTES + b"}"
    response = client.post(
        "/api/v1/events", content=body, headers={**agent.headers, "Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in response.json()["detail"]
    assert store.count_events() == 0


def _chunks(body: bytes, size: int = 1024 * 1024):
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.reliability(area="input", fault="Body over 32 MB", how="declared by Content-Length, or streamed chunked without one", outcome="413 before parsing")
def test_streamed_body_over_the_cap_is_413(client, agent, store):
    """Without a Content-Length (chunked upload), the cap still holds and still answers 413."""
    body = b'{"events": [' + json.dumps(make_event()).encode() + b"]" + b" " * MAX_BODY_BYTES + b"}"
    response = client.post(
        "/api/v1/events", content=_chunks(body), headers={**agent.headers, "Content-Type": "application/json"}
    )

    assert response.status_code == 413, response.text
    assert store.count_events() == 0


def test_streamed_body_under_the_cap_is_accepted(client, agent, store):
    body = b'{"events": [' + json.dumps(make_event()).encode() + b"]" + b" " * (MAX_BODY_BYTES // 2) + b"}"
    response = client.post(
        "/api/v1/events", content=_chunks(body, 4096), headers={**agent.headers, "Content-Type": "application/json"}
    )
    assert response.json() == {"accepted": 1, "duplicates": 0}


@pytest.mark.parametrize("declared", ["abc", "-1", "1e9"])
@pytest.mark.reliability(area="input", fault="Unreadable Content-Length", how="`abc`, `-1`, `1e9`", outcome="400 or 413")
def test_unreadable_content_length_is_refused(client, agent, declared):
    response = client.post(
        "/api/v1/events", content=b'{"events": []}', headers={**agent.headers, "Content-Length": declared}
    )
    assert response.status_code in (400, 413), response.text
