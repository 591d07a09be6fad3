"""The audit log: every administrative action, written with the change, readable via GET /api/v1/audit,
never carrying secrets."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from server import audit
from server.app import create_app
from server.schema import audit_log
from tests.server.factories import alerts_of, make_egress, put_policy, walk

SECRET = "hunter2-TOKEN-abcdef"
SERVER = str(Path(sys.executable).parent / "miwei-server")
RULE = """\
- id: ACME-CAD
  title: CAD drawing to USB
  category: classified-egress
  severity: high
  when:
    type: egress.file
    extension: dwg
"""


def _audit(client, reader, **params) -> list[dict]:
    response = client.get("/api/v1/audit", params=params, headers=reader)
    assert response.status_code == 200, response.text
    return response.json()["audit"]


def test_alert_changes_and_deletes_are_audited_with_the_caller(client, reader, send):
    send(make_egress("core"))
    alert_id = alerts_of(client, reader)[0]["id"]
    client.patch(f"/api/v1/alerts/{alert_id}", json={"status": "acknowledged", "comment": "on it"}, headers=reader)
    client.patch(f"/api/v1/alerts/{alert_id}", json={"status": "acknowledged"}, headers=reader)  # no change: no entry
    client.delete(f"/api/v1/alerts/{alert_id}", headers=reader)

    entries = _audit(client, reader, action="alert.")
    assert [(e["action"], e["actor"], e["target"]) for e in entries] == [
        ("alert.delete", "token:secops", f"alert:{alert_id}"),
        ("alert.status", "token:secops", f"alert:{alert_id}"),
    ]
    assert entries[1]["details"] == {"status": "acknowledged", "comment": "on it"}


def test_rule_changes_are_audited_and_a_refused_rule_set_is_not(client, reader):
    put_policy(client, reader, ("acme.yaml", RULE))
    refused = client.put("/api/v1/policy", json={"files": [{"name": "bad.yaml", "text": "- id: x\n"}]}, headers=reader)
    assert refused.status_code == 422

    (entry,) = _audit(client, reader, action="policy.activate")
    assert entry["actor"] == "token:secops" and entry["details"]["files"] == ["acme.yaml"]


def test_device_and_watchlist_changes_are_audited(client, reader):
    made = client.post("/api/v1/devices/allow", json={"pattern": "0951:1666:*", "owner": "IT"}, headers=reader)
    assert made.status_code == 201, made.text
    client.delete(f"/api/v1/devices/allow/{made.json()['id']}", headers=reader)
    client.post("/api/v1/watchlists/departing/members", json={"value": "zhang.wei", "note": "leaves in May"}, headers=reader)
    client.delete("/api/v1/watchlists/departing/members/zhang.wei", headers=reader)

    entries = _audit(client, reader)[:-1]  # the last: the fixture's token.create
    assert [e["action"] for e in entries] == ["watchlist.remove", "watchlist.add", "device.disallow", "device.allow"]
    assert {e["actor"] for e in entries} == {"token:secops"}


def test_channel_changes_are_audited_without_their_url(config, store, reader):
    app = create_app(dataclasses.replace(config, notify_allow_private=True), store)
    app.state.notify_poll_s = 3600.0
    with TestClient(app) as client:
        made = client.post("/api/v1/channels", json={"url": f"json://ops:{SECRET}@127.0.0.1:9/hook/{SECRET}", "name": "ops"}, headers=reader)
        assert made.status_code in (200, 201), made.text
        channel_id = made.json()["id"]
        changed = client.patch(f"/api/v1/channels/{channel_id}", json={"url": f"json://127.0.0.1:9/{SECRET}2"}, headers=reader)
        assert changed.status_code == 200, changed.text
        assert client.delete(f"/api/v1/channels/{channel_id}", headers=reader).status_code == 200

        entries = _audit(client, reader, action="channel.")
    assert [e["action"] for e in entries] == ["channel.delete", "channel.update", "channel.create"]
    assert entries[1]["details"]["target_changed"] is True
    assert SECRET not in json.dumps(entries)


def test_users_and_tokens_made_on_the_command_line_are_audited_without_secrets(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  database: sqlite:///./miwei.db\n  enroll_secret: a-long-enough-secret-value\n")
    run = lambda *args, stdin="": subprocess.run([SERVER, *args, "-c", str(config)], input=stdin, capture_output=True, text=True, timeout=60)  # noqa: E731
    assert run("create-user", "wang.li", "--role", "admin", "--password-stdin", stdin="correct horse battery\n").returncode == 0
    token = run("create-token", "nightly").stdout.strip()

    with sqlite3.connect(tmp_path / "miwei.db") as conn:
        rows = conn.execute("SELECT actor, action, target, details FROM audit_log ORDER BY id").fetchall()
    assert [r[:3] for r in rows] == [("cli", "user.create", "user:wang.li"), ("cli", "token.create", rows[1][2])]
    assert json.loads(rows[0][3])["role"] == "admin" and json.loads(rows[1][3]) == {"name": "nightly", "role": "admin"}
    text = repr(rows)
    assert token not in text and "correct horse" not in text and "argon2" not in text


def test_revoke_token_on_the_command_line_is_audited(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  database: sqlite:///./miwei.db\n  enroll_secret: a-long-enough-secret-value\n")
    run = lambda *args: subprocess.run([SERVER, *args, "-c", str(config)], capture_output=True, text=True, timeout=60)  # noqa: E731
    assert run("create-token", "nightly").returncode == 0
    done = run("revoke-token", "nightly")
    assert (done.returncode, done.stdout.strip()) == (0, "revoked 1 token named 'nightly'")
    again = run("revoke-token", "nightly")
    assert again.returncode != 0 and "no live API token named 'nightly'" in again.stderr
    with sqlite3.connect(tmp_path / "miwei.db") as conn:
        assert conn.execute("SELECT actor, action FROM audit_log ORDER BY id").fetchall() == [("cli", "token.create"), ("cli", "token.revoke")]
        assert conn.execute("SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL").fetchone()[0] == 0


def test_store_functions_record_who_acted(store, engine):
    token_id = store.create_api_token("ci", "mwt_" + "x" * 40, actor="console:boss")
    assert store.revoke_api_token(token_id, actor="console:boss") is True
    assert store.revoke_api_token(token_id, actor="console:boss") is False
    user_id = store.create_user("li.na", "analyst", "$argon2id$stub", actor="console:boss")
    assert store.remove_user(user_id, actor="console:boss") is True
    store.audit("console:boss", "export.events", "events", {"rows": 120, "format": "csv"})

    page = store.list_audit(actor="console:boss")
    assert [e["action"] for e in page.items] == ["export.events", "user.remove", "user.create", "token.revoke", "token.create"]
    assert "x" * 40 not in json.dumps(page.items)


def test_the_last_admin_cannot_be_removed_and_nothing_is_audited(store, engine):
    user_id = store.create_user("boss", "admin", "$argon2id$stub", actor="cli")
    with pytest.raises(ValueError):
        store.remove_user(user_id, actor="console:boss")
    assert [e["action"] for e in store.list_audit().items] == ["user.create"]


def test_details_that_name_a_secret_are_refused(engine, clock):
    with engine.begin() as conn, pytest.raises(ValueError, match="password"):
        audit.record(conn, clock(), "cli", "user.create", "user:x", {"password": "hunter2"})


def test_the_audit_is_paged_and_filtered(client, reader, store, clock):
    for i in range(7):
        clock.advance(60)
        store.audit("console:boss" if i % 2 else "token:secops", "export.alerts", f"alerts:{i}", {"rows": i})

    pages = walk(client, "/api/v1/audit", "audit", reader, limit=3, action="export.alerts")
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [e["target"] for p in pages for e in p] == [f"alerts:{i}" for i in reversed(range(7))]
    assert [e["target"] for e in _audit(client, reader, actor="console:boss")] == ["alerts:5", "alerts:3", "alerts:1"]
    assert [e["target"] for e in _audit(client, reader, since="2026-03-02T09:06:00Z")] == ["alerts:6", "alerts:5"]


@pytest.mark.parametrize("params", [{"action": "DROP TABLE"}, {"limit": 0}, {"cursor": "x"}, {"since": "yesterday"}])
def test_bad_audit_queries_are_refused(client, reader, params):
    assert client.get("/api/v1/audit", params=params, headers=reader).status_code in (400, 422)


def test_the_audit_needs_an_api_token(client, agent):
    assert client.get("/api/v1/audit").status_code == 401
    assert client.get("/api/v1/audit", headers=agent.headers).status_code == 403


def test_the_audit_row_is_written_in_the_changes_transaction(store, engine, monkeypatch):
    """If the audit row cannot be written, the change does not happen either."""
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(RuntimeError):
        store.create_user("li.na", "analyst", "$argon2id$stub", actor="cli")
    assert store.user_exists("li.na") is False
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar() == 0
