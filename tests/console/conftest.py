"""Console fixtures: the collector's app under TestClient (tests/server's fixtures), users, a signed-in browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from tests.server import conftest as server_fixtures

# the collector's fixtures (tests/server/conftest.py), shared by name
clock, db_url, engine, store, config = server_fixtures.clock, server_fixtures.db_url, server_fixtures.engine, server_fixtures.store, server_fixtures.config
client, enroll, agent, send = server_fixtures.client, server_fixtures.enroll, server_fixtures.agent, server_fixtures.send
api_token, reader = server_fixtures.api_token, server_fixtures.reader

PASSWORD = "correct-horse-battery"
# argon2 keeps its parameters in the hash: a cheap one keeps these tests fast and verifies the same way
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(browser: TestClient, name: str, password: str = PASSWORD, lang: str = "en"):
    """Log in through the form, as a browser does; returns the answer to the POST (not followed)."""
    browser.cookies.set("mw_lang", lang)
    page = browser.get("/console/login")
    return browser.post(
        "/console/login", data={"csrf": csrf_of(page.text), "name": name, "password": password}, follow_redirects=False
    )


@pytest.fixture
def make_user(store) -> Callable[[str, str], str]:
    def make_user(name: str, role: str = "admin", password: str = PASSWORD) -> str:
        store.create_user(name, role, CHEAP.hash(password))
        return name

    return make_user


@pytest.fixture
def admin(client, make_user) -> TestClient:
    """The test client, signed in as an administrator (English)."""
    make_user("boss", "admin")
    assert sign_in(client, "boss").status_code == 303
    return client


@pytest.fixture
def analyst(client, make_user) -> TestClient:
    """A second browser on the same app, signed in as an analyst."""
    make_user("li.na", "analyst")
    browser = TestClient(client.app)
    assert sign_in(browser, "li.na").status_code == 303
    return browser


@pytest.fixture
def post_form() -> Callable:
    """POST a console form with the CSRF token of the page it is on."""

    def post_form(browser: TestClient, page: str, action: str, data: dict | list | None = None, **kw):
        token = csrf_of(browser.get(page).text)
        body = [("csrf", token)] + (list(data.items()) if isinstance(data, dict) else list(data or []))
        return browser.post(action, content=urlencode(body), headers=FORM, follow_redirects=False, **kw)

    return post_form
