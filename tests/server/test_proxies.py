"""`server.trusted_proxies`: forwarded headers believed from the proxies listed, and from no one else."""

from __future__ import annotations

import dataclasses
import ipaddress
import re

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

import server.console.sessions as sessions
from rules.errors import InvalidInput
from server.app import create_app
from server.config import load_server_config
from server.console.throttle import MAX_ADDRESS_FAILURES
from server.proxies import TrustedProxies
from tests.console.conftest import csrf_of
from tests.server.factories import ENROLL_SECRET

PASSWORD = "correct-horse-battery"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PROXY, OUTSIDER = ("10.9.0.2", 41000), ("203.0.113.9", 41000)
COOKIE_VALUE = re.compile(r"mw_login=([^;]+)")


@pytest.fixture
def proxied(config, store, monkeypatch):
    """The collector behind a reverse proxy at 10.9.0.0/16; unknown names cost a cheap check."""
    monkeypatch.setattr(sessions, "_DUMMY_HASH", CHEAP.hash("not anyone's"))
    app = create_app(dataclasses.replace(config, trusted_proxies=(ipaddress.ip_network("10.9.0.0/16"),)), store)
    store.create_user("boss", "admin", CHEAP.hash(PASSWORD))
    with TestClient(app):
        yield app


def login(app, peer: tuple[str, int], name: str, password: str, headers: dict | None = None):
    """One sign-in through the form, sending the login cookie by hand (a Secure cookie over http
    would not be sent back by the client's cookie jar)."""
    browser = TestClient(app, client=peer, cookies={"mw_lang": "en"})
    page = browser.get("/console/login", headers=headers)
    cookie = COOKIE_VALUE.search(page.headers["set-cookie"]).group(1)
    browser.cookies.clear()
    return browser.post(
        "/console/login",
        data={"csrf": csrf_of(page.text), "name": name, "password": password},
        headers={**(headers or {}), "Cookie": f"mw_login={cookie}; mw_lang=en"},
        follow_redirects=False,
    )


@pytest.mark.reliability(
    area="access",
    fault="Forged X-Forwarded-For to escape the sign-in throttle",
    how=f"{MAX_ADDRESS_FAILURES} wrong sign-ins, each for a new name with a new X-Forwarded-For, from a peer not in `trusted_proxies`; the same through a trusted proxy",
    outcome="from the untrusted peer the header is ignored and its address is locked; through the trusted proxy each forwarded client is counted on its own, so one client's lockout leaves another signing in",
)
def test_forwarded_for_counts_only_from_a_trusted_proxy(proxied):
    for i in range(MAX_ADDRESS_FAILURES):
        forged = {"X-Forwarded-For": f"192.0.2.{i + 1}"}
        assert login(proxied, OUTSIDER, f"name{i}", "wrong", forged).status_code == 401
    refused = login(proxied, OUTSIDER, "boss", PASSWORD, {"X-Forwarded-For": "192.0.2.250"})
    assert refused.status_code == 429, "a forged X-Forwarded-For reset the address's failures"

    attacker = {"X-Forwarded-For": "198.51.100.66, 10.9.0.7"}  # through two proxies, both trusted
    for i in range(MAX_ADDRESS_FAILURES):
        assert login(proxied, PROXY, f"other{i}", "wrong", attacker).status_code == 401
    assert login(proxied, PROXY, "boss", PASSWORD, attacker).status_code == 429
    colleague = login(proxied, PROXY, "boss", PASSWORD, {"X-Forwarded-For": "198.51.100.67"})
    assert colleague.status_code == 303, "the proxy's other clients were locked out with the attacker"


@pytest.mark.reliability(
    area="access",
    fault="Forged X-Forwarded-For to escape the bad-token budget",
    how="bad API tokens with a new X-Forwarded-For each, from a peer not in `trusted_proxies`",
    outcome="429 once the peer's budget is spent, whatever the header says; a trusted proxy's other clients keep their own budget",
)
def test_token_budget_counts_the_forwarded_client_only_from_a_trusted_proxy(proxied):
    bad = "mwt_" + "A" * 43

    def call(peer, forwarded: str):
        headers = {"Authorization": f"Bearer {bad}", "X-Forwarded-For": forwarded}
        return TestClient(proxied, client=peer).get("/api/v1/alerts", headers=headers).status_code

    statuses = [call(OUTSIDER, f"192.0.2.{i + 1}") for i in range(25)]
    assert statuses[:20] == [401] * 20 and 429 in statuses[20:]
    statuses = [call(PROXY, "198.51.100.66") for _ in range(25)]
    assert 429 in statuses
    assert call(PROXY, "198.51.100.67") == 401  # another client behind the proxy: its own budget


@pytest.mark.reliability(
    area="access",
    fault="Session cookie behind a TLS-terminating proxy",
    how="sign in with `X-Forwarded-Proto: https` from a trusted proxy and from any other peer",
    outcome="the session cookie is `Secure` through the trusted proxy (it was not, behind any proxy); the header from another peer changes nothing",
)
def test_session_cookie_is_secure_behind_a_trusted_tls_proxy(proxied):
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.5"}

    through_proxy = login(proxied, PROXY, "boss", PASSWORD, https)
    assert through_proxy.status_code == 303
    session = next(h for h in through_proxy.headers.get_list("set-cookie") if h.startswith("mw_session="))
    assert "Secure" in session and "HttpOnly" in session

    direct = login(proxied, OUTSIDER, "boss", PASSWORD, https)
    assert direct.status_code == 303
    session = next(h for h in direct.headers.get_list("set-cookie") if h.startswith("mw_session="))
    assert "Secure" not in session


@pytest.mark.parametrize(
    "peer, forwarded, client",
    [
        ("10.9.0.2", "198.51.100.5", "198.51.100.5"),
        ("10.9.0.2", "6.6.6.6, 198.51.100.5", "198.51.100.5"),  # the client's own entry, left of the proxy's, is not believed
        ("10.9.0.2", "198.51.100.5, 10.9.3.3", "198.51.100.5"),  # a chain of trusted proxies
        ("10.9.0.2", "10.9.3.3, 10.9.4.4", "10.9.3.3"),  # every hop trusted: the left-most
        ("10.9.0.2", "junk, 10.9.3.3", "10.9.3.3"),  # not an address: the last trusted hop
        ("10.9.0.2", "[2001:db8::5]:443", "2001:db8::5"),
        ("10.9.0.2", "198.51.100.5:5555", "198.51.100.5"),
        ("::ffff:10.9.0.2", "198.51.100.5", "198.51.100.5"),  # a mapped IPv4 peer is the IPv4 address
    ],
)
def test_forwarded_client_is_the_right_most_untrusted_entry(peer, forwarded, client):
    trusted = TrustedProxies.of(["10.9.0.0/16"])
    assert trusted.trusts(peer)
    assert trusted.client(peer, forwarded) == client


@pytest.mark.parametrize(
    "value, message",
    [
        ("[10.0.0.1/8]", "server.trusted_proxies[0]: not an address or a network: '10.0.0.1/8' (10.0.0.1/8 has host bits set)"),
        ("[proxy.example]", "server.trusted_proxies[0]: not an address or a network: 'proxy.example'"),
        ("[10.0.0.5, 0.0.0.0/0]", "server.trusted_proxies[1]: 0.0.0.0/0 is every address"),
        ("['::/0']", "server.trusted_proxies[0]: ::/0 is every address"),
        ("10.0.0.5", "server.trusted_proxies: expected a list of addresses or networks, got a string"),
        ("[[10.0.0.5]]", "server.trusted_proxies[0]: expected an address or a network, got a list"),
    ],
)
def test_trusted_proxies_are_checked_at_load(tmp_path, value, message):
    path = tmp_path / "config.yaml"
    path.write_text(f"server:\n  enroll_secret: {ENROLL_SECRET}\n  trusted_proxies: {value}\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        load_server_config(str(path))
    (error,) = caught.value.errors
    assert "config.yaml:3:" in str(error) and message in str(error), str(error)
    assert "(addresses or networks of your reverse proxies" in str(error)


def test_trusted_proxies_load_as_networks(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"server:\n  enroll_secret: {ENROLL_SECRET}\n  trusted_proxies: [10.0.0.5, 10.1.0.0/24, 'fd00::/64']\n", encoding="utf-8")
    assert load_server_config(str(path)).trusted_proxies == tuple(
        ipaddress.ip_network(n) for n in ("10.0.0.5/32", "10.1.0.0/24", "fd00::/64")
    )
