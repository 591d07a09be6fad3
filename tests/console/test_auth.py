"""Signing in: argon2 passwords, session cookies, roles, CSRF tokens and the login rate limit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import server.console.sessions as sessions
from server.console.throttle import MAX_ADDRESS_FAILURES, Attempt, LoginThrottle, Refusal
from tests.console.conftest import CHEAP, FORM, PASSWORD, csrf_of, sign_in

ADMIN_PAGES = ["/console/users", "/console/tokens"]
ADMIN_FORMS = [  # (page holding a CSRF token the analyst may see, action)
    ("/console/alerts", "/console/users"),
    ("/console/alerts", "/console/tokens"),
    ("/console/alerts", "/console/rules/upload"),
    ("/console/alerts", "/console/rules/MW-EGRESS-CLASSIFIED/toggle"),
    ("/console/alerts", "/console/devices/allow"),
    ("/console/alerts", "/console/devices/allow/1/remove"),
    ("/console/alerts", "/console/users/1/remove"),
    ("/console/alerts", "/console/tokens/1/revoke"),
]


def test_right_password_opens_a_session_with_strict_cookie(client, make_user):
    make_user("boss")
    answer = sign_in(client, "boss")

    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("mw_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    assert client.get("/console/").status_code == 200


def test_session_cookie_is_secure_under_https(client, make_user):
    make_user("boss")
    browser = TestClient(client.app, base_url="https://testserver")
    cookie = next(h for h in sign_in(browser, "boss").headers.get_list("set-cookie") if h.startswith("mw_session="))
    assert "Secure" in cookie


def test_database_keeps_only_the_hash_of_the_session_id(client, make_user, engine):
    make_user("boss")
    sign_in(client, "boss")
    token = client.cookies.get("mw_session")
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT id_hash FROM console_sessions").scalars().all()
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64


@pytest.mark.parametrize("name, password", [("boss", "wrong-password-123"), ("nobody", PASSWORD), ("", ""), ("boss", "")])
def test_wrong_credentials_are_refused(client, make_user, name, password):
    make_user("boss")
    answer = sign_in(client, name, password)
    assert answer.status_code == 401
    assert "Wrong user name or password." in answer.text
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_pages_redirect_to_login_without_a_session(client):
    for page in ["/console/", "/console/alerts", "/console/alerts/1", "/console/export/alerts.csv", "/console/users"]:
        answer = client.get(page, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login", page


def test_a_forged_session_cookie_is_not_a_session(client):
    client.cookies.set("mw_session", "x" * 43)
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_on_the_server(admin, post_form):
    stolen = admin.cookies.get("mw_session")
    assert post_form(admin, "/console/", "/console/logout").status_code == 303

    replay = TestClient(admin.app)
    replay.cookies.set("mw_session", stolen)
    assert replay.get("/console/", follow_redirects=False).status_code == 303


def test_session_expires(admin, clock):
    clock.advance(12 * 3600 + 1)
    assert admin.get("/console/", follow_redirects=False).status_code == 303


def test_no_user_exists_until_one_is_created(client, engine):
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM users").scalar() == 0
    for name, password in [("admin", "admin"), ("admin", "password"), ("root", "miwei")]:
        assert sign_in(TestClient(client.app), name, password).status_code == 401


# --- roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_analyst_cannot_open_admin_pages(analyst, page):
    assert analyst.get(page).status_code == 403


@pytest.mark.parametrize("page, action", ADMIN_FORMS)
def test_analyst_cannot_change_rules_users_tokens_or_devices(analyst, post_form, page, action):
    answer = post_form(analyst, page, action, {"name": "x.yaml", "text": "", "pattern": "*:*:*", "role": "admin", "password": "p" * 20})
    assert answer.status_code == 403


def test_analyst_handles_alerts_and_sees_no_admin_controls(analyst, send, post_form):
    from tests.server.factories import make_egress

    send(make_egress("core"))
    assert post_form(analyst, "/console/alerts/1", "/console/alerts/1", {"status": "acknowledged", "comment": "mine"}).status_code == 303
    rules = analyst.get("/console/rules").text
    assert "/toggle" not in rules and "/console/rules/upload" not in rules
    assert "/console/users" not in analyst.get("/console/").text


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_state_changes_without_the_right_csrf_token_are_403(admin, send, token):
    from tests.server.factories import make_egress

    send(make_egress("core"))
    body = "status=acknowledged&comment=x" + (f"&csrf={token}" if token is not None else "")
    for action in ["/console/alerts/1", "/console/alerts/bulk", "/console/logout", "/console/tokens"]:
        assert admin.post(action, content=body + "&id=1&name=t", headers=FORM).status_code == 403, action
    assert admin.get("/console/alerts/1").text.count("status-open") >= 1


def test_another_sessions_token_is_not_accepted(admin, make_user):
    make_user("other")
    browser = TestClient(admin.app)
    sign_in(browser, "other")
    theirs = csrf_of(browser.get("/console/").text)
    assert admin.post("/console/logout", content=f"csrf={theirs}", headers=FORM).status_code == 403


def test_login_form_needs_its_double_submit_token(client, make_user):
    make_user("boss")
    client.get("/console/login")
    answer = client.post("/console/login", content=f"csrf=forged&name=boss&password={PASSWORD}", headers=FORM)
    assert answer.status_code == 403


# --- rate limit ---------------------------------------------------------------------------------


def test_five_failures_for_a_user_lock_the_login_with_retry_after(client, make_user):
    make_user("boss")
    for _ in range(5):
        assert sign_in(client, "boss", "wrong-password-123").status_code == 401
    answer = sign_in(client, "boss")  # even the right password waits
    assert answer.status_code == 429
    assert 0 < int(answer.headers["retry-after"]) <= 300
    assert "Too many failed sign-ins" in answer.text


def test_failures_from_one_address_lock_every_name_from_it_at_the_address_limit(client, make_user, monkeypatch):
    make_user("boss")
    monkeypatch.setattr(sessions, "_DUMMY_HASH", CHEAP.hash("not anyone's"))  # unknown names, checked fast
    for i in range(MAX_ADDRESS_FAILURES - 1):  # five per name: no name is locked, the address is at its limit
        assert sign_in(client, f"guess{i // 5}", "wrong-password-123").status_code == 401
    assert sign_in(client, "boss").status_code == 303  # not yet: failures only, a success does not clear the address
    assert sign_in(client, "guess-last", "wrong-password-123").status_code == 401
    answer = sign_in(TestClient(client.app), "boss")
    assert answer.status_code == 429 and 0 < int(answer.headers["retry-after"]) <= 300


def test_throttle_window_slides():
    now = [1000.0]
    throttle = LoginThrottle(max_name_failures=3, max_address_failures=10, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        attempt = throttle.reserve("boss", "10.0.0.1")
        assert isinstance(attempt, Attempt)
        throttle.settle(attempt, succeeded=False)
    assert throttle.reserve("BOSS", "10.0.0.2") == Refusal(61, "name")  # the name, case-insensitive, from any address
    now[0] += 30
    assert throttle.reserve("boss", "10.0.0.1") == Refusal(31, "name")
    assert isinstance(throttle.reserve("li.na", "10.0.0.1"), Attempt)
    now[0] += 31
    assert isinstance(throttle.reserve("boss", "10.0.0.1"), Attempt)


def test_attempts_in_flight_count_before_they_fail():
    throttle = LoginThrottle(max_name_failures=3, max_address_failures=10)
    taken = [throttle.reserve("boss", "10.0.0.1") for _ in range(5)]
    assert [isinstance(a, Attempt) for a in taken] == [True, True, True, False, False]
    throttle.cancel(taken[0])  # not tried: the slot is free again, nothing counted
    assert isinstance(throttle.reserve("boss", "10.0.0.1"), Attempt)


def test_ipv6_clients_count_per_64():
    throttle = LoginThrottle(max_name_failures=100, max_address_failures=2, clock=lambda: 1000.0)
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2"):
        throttle.settle(throttle.reserve(f"name-{host}", host), succeeded=False)
    assert throttle.reserve("other", "2001:db8:1:2:ffff::9") == Refusal(301, "address")
    assert isinstance(throttle.reserve("other", "2001:db8:1:3::1"), Attempt)


def test_success_clears_the_users_failures(client, make_user):
    make_user("boss")
    for _ in range(4):
        sign_in(TestClient(client.app, client=("10.0.0.9", 1)), "boss", "wrong-password-123")
    assert sign_in(client, "boss").status_code == 303
    assert sign_in(TestClient(client.app), "boss", "wrong-password-123").status_code == 401


def test_a_refusal_is_a_console_page_in_the_users_language(analyst):
    answer = analyst.get("/console/users")
    assert answer.status_code == 403 and answer.headers["content-type"].startswith("text/html")
    assert "You may not do this." in answer.text and "administrators only" in answer.text
    assert answer.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
    analyst.cookies.set("mw_lang", "zh")
    assert "您无权执行此操作。" in analyst.get("/console/tokens").text
    assert "未找到。" in analyst.get("/console/alerts/424242").text
