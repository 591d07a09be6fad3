"""What requests takes from the environment for the reporter's requests (proxies, NO_PROXY, the CA
bundle variables, ~/.netrc), read once when the reporter is made (agent/reporter.py
FAST_ENVIRONMENT): every request leaves with the proxies, verify and credentials requests would
have found reading the environment itself each time."""

from __future__ import annotations

import pytest
import requests

from agent import reporter as reporting
from agent.reporter import Reporter

URLS = ["http://collector.lan:8765", "https://collector.lan", "http://127.0.0.1:8765", "https://10.1.2.3:8443"]
ENVIRONMENTS = [
    {},
    {"HTTP_PROXY": "http://proxy.lan:3128"},
    {"HTTPS_PROXY": "http://proxy.lan:3128", "http_proxy": "http://other.lan:8080"},
    {"ALL_PROXY": "socks5://proxy.lan:1080"},
    {
        "HTTPS_PROXY": "http://proxy.lan:3128",
        "HTTP_PROXY": "http://proxy.lan:3128",
        "NO_PROXY": "collector.lan,127.0.0.1",
    },
    {"HTTPS_PROXY": "http://proxy.lan:3128", "NO_PROXY": "10.0.0.0/8"},
    {"HTTPS_PROXY": "http://proxy.lan:3128", "no_proxy": "*"},
    {"REQUESTS_CA_BUNDLE": "/etc/ssl/other.pem"},
    {"CURL_CA_BUNDLE": "/etc/ssl/curl.pem"},
    {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": "/etc/ssl/curl.pem"},
    {"NETRC": "{netrc}"},
    {"NETRC": "{netrc}", "HTTP_PROXY": "http://proxy.lan:3128", "REQUESTS_CA_BUNDLE": "/etc/ssl/other.pem"},
]
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NETRC",
)


class Recording(requests.Session):
    """Records what each request would be sent with, and sends nothing."""

    def __init__(self):
        super().__init__()
        self.sent: list[tuple] = []

    def send(self, request, **kwargs):
        self.sent.append(
            (
                request.method,
                request.url,
                request.headers.get("Authorization"),
                kwargs.get("proxies"),
                kwargs.get("verify"),
            )
        )
        raise requests.ConnectionError("recorded")


def _sent(tmp_path, url: str, fast: bool, ca_bundle: str | None, monkeypatch) -> list[tuple]:
    monkeypatch.setattr(reporting, "FAST_ENVIRONMENT", fast)
    session = Recording()
    reporter = Reporter(url, "x" * 20, str(tmp_path), "a" * 8, "pc", spool=None, session=session, ca_bundle=ca_bundle)
    reporter.token = "mwa_token"
    for attempt in (
        reporter._enroll,
        lambda: reporter._post("/api/v1/events", '{"events":[]}'),
        lambda: reporter._fetch_policy("v2", "v1"),
    ):
        with pytest.raises(requests.ConnectionError):
            attempt()
    session.close()
    return session.sent


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("ca_bundle", [None, "/srv/miwei/ca.pem"])
def test_requests_leave_with_what_requests_reads_from_the_environment(
    tmp_path, monkeypatch, environment, url, ca_bundle
):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine collector.lan login ops password s3cret\nmachine 10.1.2.3 login ops password other\n")
    netrc.chmod(0o600)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(netrc=netrc))
    fast = _sent(tmp_path, url, True, ca_bundle, monkeypatch)
    reference = _sent(tmp_path, url, False, ca_bundle, monkeypatch)
    assert fast == reference
    assert len(fast) == 3


def test_a_session_that_does_not_trust_the_environment_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.lan:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/other.pem")
    session = Recording()
    session.trust_env = False
    reporter = Reporter("https://collector.lan", "x" * 20, str(tmp_path), "a" * 8, "pc", spool=None, session=session)
    with pytest.raises(requests.ConnectionError):
        reporter._enroll()
    assert session.sent[0][3:] == ({}, True)
    session.close()
