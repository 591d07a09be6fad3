"""HTTPS end to end: `miwei-server run` with a certificate, `miwei-agent run` with the CA bundle."""

from __future__ import annotations

import pytest
import requests

pytest.importorskip("cryptography")  # in the dev extra

from tests.e2e.conftest import DRAWING, copy, sha256  # noqa: E402
from tests.e2e.harness import Deployment, wait_for  # noqa: E402
from tests.server.certs import make_pki  # noqa: E402


@pytest.fixture
def tls_deployment(tmp_path, classified):
    usb = tmp_path / "usb"
    usb.mkdir()
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Drawings")], egress_folders=[usb], tls=make_pki(tmp_path / "pki"))
    d.usb = usb
    yield d
    d.close()


@pytest.mark.reliability(area="access", fault="Plain HTTP to an HTTPS collector; HTTPS without the CA", how="`http://` to the TLS port; `https://` verified against the system store", outcome="connection refused at the TLS layer; certificate verification fails; the agent delivers over HTTPS verified against its CA")
def test_agent_delivers_an_event_over_https_verified_against_its_ca(tls_deployment, classified, monkeypatch):
    d = tls_deployment
    # requests lets this variable override a session's CA: the agent must still use agent.ca_bundle
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    d.start_server()
    assert d.url.startswith("https://")
    with pytest.raises(requests.RequestException):  # the listener speaks HTTPS only
        requests.get(f"http://127.0.0.1:{d.port}/api/v1/health", timeout=5)
    with pytest.raises(requests.exceptions.SSLError):  # and its certificate is not in the system store
        requests.get(d.url + "/api/v1/health", timeout=5)
    d.start_agent()
    copy(classified["drawings"] / "pump-impeller.dwg", d.usb / "pump-impeller.dwg")
    [event] = wait_for(lambda: d.get("/api/v1/events", type="egress.file")["events"], 30, what="the egress event over HTTPS")
    assert event["sha256"] == sha256(DRAWING)
    assert "PLAIN HTTP" not in d.log("miwei-agent")


@pytest.mark.reliability(area="fault", fault="Wrong CA for the collector's certificate", how="the agent's `ca_bundle` names another CA than the one that signed the server certificate", outcome="nothing sent (`CERTIFICATE_VERIFY_FAILED` in the agent log on every retry), the event stays spooled, the agent keeps running")
def test_agent_with_the_wrong_ca_refuses_to_send_and_keeps_its_events(tls_deployment, classified, tmp_path):
    d = tls_deployment
    stranger = make_pki(tmp_path / "other-pki", name="Someone else's CA")
    text = d.config.read_text(encoding="utf-8")
    d.config.write_text(text.replace(f"ca_bundle: {tmp_path / 'pki' / 'ca.pem'}", f"ca_bundle: {stranger.ca}"), encoding="utf-8")
    assert str(stranger.ca) in d.config.read_text(encoding="utf-8")
    d.start_server()
    d.start_agent()
    copy(classified["drawings"] / "pump-impeller.dwg", d.usb / "pump-impeller.dwg")
    wait_for(lambda: d.spool_depth() > 0, 30, what="the egress event in the spool")
    wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in d.log("miwei-agent"), 30, what="the agent to say why it cannot send")
    assert d.agent.poll() is None  # no crash: it keeps retrying
    assert d.stored_count("egress.file") == 0
    assert d.spool_depth() > 0
    assert "delivery failed" in d.log("miwei-agent")
