"""TLS: the server's certificate and key, the agent's CA bundle, and the warning for plain HTTP."""

from __future__ import annotations

import pytest
import requests

pytest.importorskip("cryptography")  # in the dev extra

from loguru import logger  # noqa: E402

from agent.config import load_agent_config  # noqa: E402
from agent.reporter import Reporter  # noqa: E402
from rules.errors import InvalidInput  # noqa: E402
from server.config import load_server_config  # noqa: E402
from tests.server.certs import make_pki  # noqa: E402

SECRET = "test-secret-0123456789"


def _server_config(tmp_path, **keys) -> str:
    lines = ["server:", f"  enroll_secret: {SECRET}", "  database: sqlite:///./miwei.db"]
    lines += [f"  {k}: {v}" for k, v in keys.items()]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _errors(path: str, load=load_server_config) -> list[tuple[int, str, str]]:
    with pytest.raises(InvalidInput) as caught:
        load(path)
    return [(e.line, e.key_path, e.message) for e in caught.value.errors]


def test_certificate_and_key_that_match_are_taken_with_absolute_paths(tmp_path):
    pki = make_pki(tmp_path / "pki")
    config = load_server_config(_server_config(tmp_path, tls_cert="pki/server.pem", tls_key="pki/server.key"))
    assert (config.tls_cert, config.tls_key) == (str(pki.cert), str(pki.key))


def test_without_tls_keys_the_server_serves_plain_http(tmp_path):
    config = load_server_config(_server_config(tmp_path))
    assert (config.tls_cert, config.tls_key) == (None, None)


@pytest.mark.reliability(area="access", fault="Broken TLS config", how="garbage PEM, a key of another certificate, a missing file, one of the two keys", outcome="located config errors (`FILE:LINE:COL: server.tls_cert: ...`), the server does not start")
def test_garbage_pem_is_a_located_error(tmp_path):
    make_pki(tmp_path / "pki")
    (tmp_path / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    errors = _errors(_server_config(tmp_path, tls_cert="garbage.pem", tls_key="pki/server.key"))
    assert len(errors) == 1
    line, key_path, message = errors[0]
    assert (line, key_path) == (4, "server.tls_cert")
    assert message.startswith("cannot load the certificate and key")


@pytest.mark.reliability(area="access", fault="Broken TLS config", how="garbage PEM, a key of another certificate, a missing file, one of the two keys", outcome="located config errors (`FILE:LINE:COL: server.tls_cert: ...`), the server does not start")
def test_key_of_another_certificate_is_a_located_error_on_the_key(tmp_path):
    make_pki(tmp_path / "one")
    make_pki(tmp_path / "two")
    errors = _errors(_server_config(tmp_path, tls_cert="one/server.pem", tls_key="two/server.key"))
    assert [(line, key_path) for line, key_path, _ in errors] == [(5, "server.tls_key")]
    assert "KEY_VALUES_MISMATCH" in errors[0][2] or "mismatch" in errors[0][2].lower()


@pytest.mark.reliability(area="access", fault="Broken TLS config", how="garbage PEM, a key of another certificate, a missing file, one of the two keys", outcome="located config errors (`FILE:LINE:COL: server.tls_cert: ...`), the server does not start")
def test_missing_file_is_a_located_error(tmp_path):
    make_pki(tmp_path / "pki")
    errors = _errors(_server_config(tmp_path, tls_cert="pki/nowhere.pem", tls_key="pki/server.key"))
    assert [(line, key_path) for line, key_path, _ in errors] == [(4, "server.tls_cert")]
    assert "No such file" in errors[0][2]


@pytest.mark.parametrize("given", ["tls_cert", "tls_key"])
@pytest.mark.reliability(area="access", fault="Broken TLS config", how="garbage PEM, a key of another certificate, a missing file, one of the two keys", outcome="located config errors (`FILE:LINE:COL: server.tls_cert: ...`), the server does not start")
def test_one_without_the_other_is_an_error(tmp_path, given):
    pki = make_pki(tmp_path / "pki")
    path = pki.cert if given == "tls_cert" else pki.key
    errors = _errors(_server_config(tmp_path, **{given: str(path)}))
    other = "tls_key" if given == "tls_cert" else "tls_cert"
    assert errors == [(4, f"server.{given}", f"server.{other} is missing")]


# --- the agent -------------------------------------------------------------------------------


def _agent_config(tmp_path, url: str, **keys) -> str:
    lines = ["agent:", f"  server_url: {url}", f"  enroll_secret: {SECRET}", f"  state_dir: {tmp_path / 'state'}"]
    lines += [f"  {k}: {v}" for k, v in keys.items()]
    path = tmp_path / "agent.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_agent_ca_bundle_is_taken_and_defaults_to_the_system_store(tmp_path):
    pki = make_pki(tmp_path / "pki")
    assert load_agent_config(_agent_config(tmp_path, "https://localhost:8765", ca_bundle="pki/ca.pem")).ca_bundle == str(pki.ca)
    assert load_agent_config(_agent_config(tmp_path, "https://localhost:8765")).ca_bundle is None


@pytest.mark.parametrize(
    "content, expected",
    [("not a certificate\n", "not a PEM file of CA certificates"), (None, "cannot read")],
    ids=["garbage", "missing"],
)
def test_agent_ca_bundle_that_does_not_load_is_a_located_error(tmp_path, content, expected):
    if content is not None:
        (tmp_path / "ca.pem").write_text(content)
    errors = _errors(_agent_config(tmp_path, "https://localhost:8765", ca_bundle="ca.pem"), load_agent_config)
    assert [(line, key_path) for line, key_path, _ in errors] == [(5, "agent.ca_bundle")]
    assert expected in errors[0][2]


@pytest.fixture
def log_lines():
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="WARNING", format="{level} {message}")
    yield lines
    logger.remove(sink)


@pytest.mark.parametrize(
    "url, loud",
    [
        ("http://10.0.0.5:8765", True),
        ("http://collector.example.com", True),
        ("http://[2001:db8::1]:8765", True),
        ("http://127.0.0.1:8765", False),
        ("http://localhost:8765", False),
        ("http://[::1]:8765", False),
        ("https://collector.example.com", False),
    ],
)
@pytest.mark.reliability(area="access", fault="Plain HTTP across a network", how="`server_url: http://` to a non-loopback host; `listen` on a non-loopback address without TLS", outcome="a loud `PLAIN HTTP` warning at agent start / collector start")
def test_plain_http_to_a_non_loopback_host_warns_loudly_at_start(tmp_path, log_lines, url, loud):
    reporter = Reporter(url, SECRET, str(tmp_path), "a" * 8, "pc", spool=None)
    warned = [line for line in log_lines if "PLAIN HTTP" in line]
    assert bool(warned) == loud, log_lines
    if loud:
        assert warned[0].startswith("WARNING") and url in warned[0]
    reporter.session.close()


@pytest.mark.reliability(area="fault", fault="`REQUESTS_CA_BUNDLE` set on the agent's host", how="the environment names the system store while `agent.ca_bundle` names the private CA", outcome="the agent still verifies against `agent.ca_bundle` (requests lets the variable override a session's `verify`; the reporter passes it on every request)")
def test_reporter_verifies_against_the_ca_bundle_even_when_the_environment_names_another(tmp_path, monkeypatch):
    """requests lets REQUESTS_CA_BUNDLE override a session's verify: the reporter passes it on every request."""
    pki = make_pki(tmp_path / "pki")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    seen = []

    class Recording(requests.Session):
        def send(self, request, **kwargs):
            seen.append(kwargs.get("verify"))
            raise requests.ConnectionError("recorded")

    with_ca = Reporter("https://localhost:1", SECRET, str(tmp_path), "a" * 8, "pc", spool=None, session=Recording(), ca_bundle=str(pki.ca))
    without = Reporter("https://localhost:1", SECRET, str(tmp_path), "a" * 8, "pc", spool=None, session=Recording())
    for reporter in (with_ca, without):
        with pytest.raises(requests.ConnectionError):
            reporter._enroll()
        reporter.session.close()
    assert seen == [str(pki.ca), "/etc/ssl/certs/ca-certificates.crt"]  # no bundle: the system store, as configured


@pytest.mark.parametrize(
    "host, loopback",
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False), ("collector.lan", False)],
)
@pytest.mark.reliability(area="access", fault="Plain HTTP across a network", how="`server_url: http://` to a non-loopback host; `listen` on a non-loopback address without TLS", outcome="a loud `PLAIN HTTP` warning at agent start / collector start")
def test_the_collector_warns_about_plain_http_on_anything_but_loopback(host, loopback):
    from server.cli import _loopback

    assert _loopback(host) is loopback
