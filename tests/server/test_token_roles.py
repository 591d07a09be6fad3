"""API tokens have roles, as console users do: an analyst reads and works alerts; an admin changes the rest.

Routes are enumerated from the app, so a new route is covered here (or fails) without a list to keep:
every API route that changes something is for admins, but the one that works an alert.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import insert, select, text

from server.auth import API_TOKEN_PREFIX, new_token
from server.database import _alembic_config, make_engine
from server.schema import api_tokens, audit_log
from tests.server.test_access import AGENT_ROUTES, ENROLMENT, PUBLIC, _routes, _url

ANALYST_MAY_CHANGE = {("PATCH", "/api/v1/alerts/{alert_id}"), ("POST", "/api/v1/alerts/{alert_id}/assign")}  # acknowledge, resolve, comment, assign
CHANGES = ("POST", "PUT", "PATCH", "DELETE")


def _token(store, role: str) -> dict[str, str]:
    token = new_token(API_TOKEN_PREFIX)
    store.create_api_token(f"{role}-bot", token, "test", role)
    return {"Authorization": f"Bearer {token}"}


def _api_routes(client) -> list[tuple[str, str]]:
    found = [
        (m, p) for m, p in _routes(client.app) if p.startswith("/api/") and (m, p) not in PUBLIC | AGENT_ROUTES and (m, p) != ENROLMENT
    ]
    assert len(found) >= 20
    return found


def _call(client, method: str, path: str, headers: dict):
    return client.request(method, _url(path), headers=headers, json={} if method in ("POST", "PUT", "PATCH") else None)


@pytest.mark.reliability(area="access", fault="Analyst API token on admin routes", how="every `/api/v1` route enumerated from the app, called with an analyst token", outcome="403 on every change but working an alert (rules, switched-off rules, watchlists, devices, channels, alert deletion); every read allowed")
def test_an_analyst_token_reads_everything_and_changes_only_alerts(client, store):
    headers = _token(store, "analyst")
    refused, allowed = [], []
    for method, path in _api_routes(client):
        response = _call(client, method, path, headers)
        if method in CHANGES and (method, path) not in ANALYST_MAY_CHANGE:
            assert response.status_code == 403, (method, path, response.status_code, response.text)
            assert "only an admin token" in response.json()["detail"]
            refused.append(path)
        else:
            assert response.status_code not in (401, 403), (method, path, response.status_code, response.text)
            allowed.append(path)
    assert {"/api/v1/policy", "/api/v1/devices/allow", "/api/v1/channels"} <= set(refused)
    assert "/api/v1/alerts" in allowed and "/api/v1/audit" in allowed


def test_an_admin_token_is_never_refused_by_role(client, store):
    headers = _token(store, "admin")
    for method, path in _api_routes(client):
        response = _call(client, method, path, headers)
        assert response.status_code not in (401, 403), (method, path, response.status_code, response.text)


def test_an_analyst_token_can_acknowledge_an_alert_but_not_delete_it(client, store, send):
    from tests.server.factories import make_egress

    send(make_egress())
    headers = _token(store, "analyst")
    alert = client.get("/api/v1/alerts", headers=headers).json()["alerts"][0]
    url = f"/api/v1/alerts/{alert['id']}"
    assert client.patch(url, json={"status": "acknowledged", "comment": "looking"}, headers=headers).status_code == 200
    assert client.delete(url, headers=headers).status_code == 403
    assert client.get(url, headers=headers).status_code == 200  # still there


def test_a_token_is_made_with_its_role_and_the_audit_says_which(store):
    token = new_token(API_TOKEN_PREFIX)
    token_id = store.create_api_token("siem", token, "cli", "analyst")
    assert store.api_token(token) == ("siem", "analyst")
    with store.engine.connect() as conn:
        details = conn.execute(select(audit_log.c.details).where(audit_log.c.target == f"token:{token_id}")).scalar()
    assert "analyst" in str(details)
    with pytest.raises(ValueError, match="role must be one of admin, analyst"):
        store.create_api_token("x", new_token(API_TOKEN_PREFIX), "cli", "root")


def test_cli_create_token_takes_a_role_and_defaults_to_admin(config, store, capsys, monkeypatch):
    from server import cli

    monkeypatch.setattr(cli, "load_server_config", lambda *a, **k: config)
    for argv, role in ((["create-token", "scripts"], "admin"), (["create-token", "siem", "--role", "analyst"], "analyst")):
        assert cli.main(argv) == 0
        token = capsys.readouterr().out.strip()
        assert store.api_token(token) == (argv[1], role)
    with pytest.raises(SystemExit):
        cli.main(["create-token", "x", "--role", "root"])


def _to(engine, revision: str, downgrade: bool = False) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if downgrade else command.upgrade)(cfg, revision)


@pytest.mark.reliability(area="access", fault="Tokens made before roles existed", how="a token row written at schema 0007, then the upgrade to head", outcome="the token is an admin (nothing an integration did breaks); a downgrade revokes analyst tokens rather than make them admins")
def test_tokens_made_before_roles_are_admins_after_the_upgrade(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        _to(engine, "0007")
        with engine.begin() as conn:  # a token as 0007 stored it: no role column yet
            conn.execute(insert(api_tokens).values(name="integration", token_hash="ab" * 32, created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        _to(engine, "head")
        with engine.connect() as conn:
            assert conn.execute(select(api_tokens.c.name, api_tokens.c.role)).all() == [("integration", "admin")]
        with engine.begin() as conn:
            conn.execute(insert(api_tokens).values(name="siem", token_hash="cd" * 32, created_at=datetime(2026, 2, 1, tzinfo=UTC), role="analyst"))
        _to(engine, "0008", downgrade=True)  # back: the analyst token must not come out an admin
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, revoked_at IS NOT NULL FROM api_tokens ORDER BY id")).all()
        assert rows == [("integration", 0), ("siem", 1)]
        _to(engine, "head")
    finally:
        engine.dispose()
