"""Where a notification may connect, tried as an admin token holder would to reach internal ports.

Every scheme of channels.SCHEMES is covered: bark, barks and workflows name their server in the
URL like json:// does and are checked the same way (when saved and before each send); vendor
schemes may look up only their fixed names while apprise sends; /test answers one sentence
whether the port listens, answers garbage, answers HTTP 500 or is closed. Loopback only: names
under .test are answered by a replaced resolver, never by DNS.
"""

from __future__ import annotations

import contextvars
import dataclasses
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.notify import netcheck, outbox
from server.notify.channels import SCHEMES, ChannelSpec, endpoints, instantiate
from server.notify.messages import alert_message
from server.notify.transport import DeliveryError, Transport
from tests.server.factories import make_egress
from tests.server.notify_rig import captured_logs, enroll_agent, free_port, http_receiver, post_events

SSRF = dict(
    area="access",
    fault="SSRF through an apprise scheme whose host the URL chooses (bark, barks, workflows, ...)",
    how="an admin token saves `bark://127.0.0.1:PORT/…`, `barks://[::1]/…`, `workflows://10.0.0.1/…`, a name resolving to loopback; a saved name that turns to loopback before the send",
    outcome="422 when saved, not contacted when sent (the name's addresses are checked before each send and apprise may look up only the checked name, pinned to the checked address)",
)
ORACLE = dict(
    area="access",
    fault="Channel test as a port scanner",
    how="`POST /api/v1/channels/{id}/test` against a loopback port that answers HTTP 500, one that answers garbage and a closed one (private targets allowed)",
    outcome="the same 502 body for all three; the reason only in the collector's log",
)
# A URL of every scheme in the table, each naming (where it can) a host that resolves to loopback.
SAMPLES = {
    "json": "json://hook.example.test/h",
    "jsons": "jsons://hook.example.test/h",
    "mailto": "mailto://u:pw-12345@smtp.example.test?to=a@example.test",
    "mailtos": "mailtos://u:pw-12345@smtp.example.test?to=a@example.test",
    "ntfy": "ntfy://ntfy.example.test/topic",
    "ntfys": "ntfys://ntfy.example.test/topic",
    "gotify": "gotify://gotify.example.test/token-abcdef",
    "gotifys": "gotifys://gotify.example.test/token-abcdef",
    "matrix": "matrix://user:pw@matrix.example.test/#room",
    "matrixs": "matrixs://user:pw@matrix.example.test/#room",
    "mmost": "mmost://mm.example.test/token-abcdef",
    "mmosts": "mmosts://mm.example.test/token-abcdef",
    "rocket": "rocket://user:pw@rocket.example.test/#channel",
    "rockets": "rockets://user:pw@rocket.example.test/#channel",
    "apprise": "apprise://apprise.example.test/token-abcdef",
    "apprises": "apprises://apprise.example.test/token-abcdef",
    "nctalk": "nctalk://user:pw@nc.example.test/roomtoken",
    "nctalks": "nctalks://user:pw@nc.example.test/roomtoken",
    "ncloud": "ncloud://user:pw@nc.example.test/target",
    "nclouds": "nclouds://user:pw@nc.example.test/target",
    "bark": "bark://bark.example.test/device-key",
    "barks": "barks://bark.example.test/device-key",
    "workflows": "workflows://flow.example.test/workflow-id/signature-abc",
    "dingtalk": "dingtalk://0123456789abcdef0123/",
    "wecombot": "wecombot://abcd1234-botkey",
    "feishu": "feishu://a1b2c3d4-token",
    "lark": "lark://a1b2c3d4-token",
    "slack": "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/",
    "discord": "discord://123456789012345678/webhook-token-abcdef",
    "tgram": "tgram://123456789:AAHabcdefghijklmnopqrstuvwxyz012345/12345678/",
    "pushplus": "pushplus://0123456789abcdef0123456789abcdef",
    "schan": "schan://SCT123456abcdef",
    "qq": "qq://0123456789abcdef01234567",
}
ALERT = {"id": 7, "severity": "critical", "category": "classified-egress", "title": "t", "explanation": "x"}


@pytest.fixture
def make_client(config, store):
    made = []

    def build(*channels, allow_private: bool) -> TestClient:
        specs = tuple(c if isinstance(c, ChannelSpec) else ChannelSpec(url=c) for c in channels)
        app = create_app(dataclasses.replace(config, notify=specs, notify_allow_private=allow_private), store)
        app.state.notify_poll_s = 3600.0
        client = TestClient(app)
        client.__enter__()
        made.append(client)
        return client

    yield build
    for client in made:
        client.__exit__(None, None, None)


@pytest.fixture
def dns(monkeypatch):
    """A resolver for *.test names (what netcheck.resolve answers), recording what it was asked."""
    answers: dict[str, list[str]] = {}
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host in answers:
            return answers[host]
        if netcheck.literal_address(host):
            return [netcheck.literal_address(host)]
        raise OSError(f"{host} is not in the test's DNS")

    monkeypatch.setattr(netcheck, "resolve", resolve)
    return answers, asked


@contextmanager
def raw_listener(greeting: bytes):
    """A loopback TCP port that says `greeting` to whoever connects and hangs up (an SSH, Redis, ...)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(greeting)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        server.close()


def test_every_scheme_of_the_table_has_a_sample_and_apprise_takes_it():
    assert sorted(SAMPLES) == sorted(SCHEMES)
    for scheme, url in SAMPLES.items():
        assert endpoints(url, instantiate(url)), scheme


# --- saved: a private target is refused ------------------------------------------------------------


@pytest.mark.reliability(**SSRF)
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("bark://127.0.0.1:{port}/device-key", "loopback"),
        ("barks://127.0.0.1:{port}/device-key", "loopback"),
        ("barks://[::1]:{port}/device-key", "loopback"),
        ("bark://rebind.example.test:{port}/device-key", "127.0.0.1, which is loopback"),
        ("workflows://10.0.0.1/workflow-id/signature-abc", "private"),
        ("workflows://169.254.169.254:{port}/workflow-id/signature-abc", "link-local"),
        ("ntfy://127.0.0.1:{port}/topic", "loopback"),
        ("gotify://rebind.example.test/token-abcdef", "127.0.0.1, which is loopback"),
    ],
)
def test_a_vendor_scheme_naming_a_private_host_is_refused_when_saved(make_client, reader, dns, url, why):
    dns[0]["rebind.example.test"] = ["127.0.0.1"]
    with http_receiver() as rig:
        client = make_client(allow_private=False)
        made = client.post("/api/v1/channels", json={"url": url.format(port=rig.port)}, headers=reader)
        assert made.status_code == 422, made.text
        assert why in made.json()["detail"]
        assert client.get("/api/v1/channels", headers=reader).json()["channels"] == []
    assert rig.hits == []


def test_a_loopback_bark_in_the_config_stops_the_start():
    from server.notify.channels import ChannelError, check_url

    with pytest.raises(ChannelError, match="loopback"):
        check_url("bark://127.0.0.1:8080/device-key", allow_private=False, resolve=False)
    with pytest.raises(ChannelError, match="private"):
        check_url("workflows://10.0.0.1/workflow-id/signature-abc", allow_private=False, resolve=False)


# --- sent: checked again, and apprise reaches only what was checked ----------------------------------


@pytest.mark.reliability(**SSRF)
def test_a_saved_bark_channel_whose_name_turns_to_loopback_is_not_contacted(make_client, reader, store, dns):
    answers, _ = dns
    answers["bark.example.test"] = ["93.184.216.34"]
    with http_receiver() as rig:
        client = make_client(allow_private=False)
        made = client.post(
            "/api/v1/channels",
            json={"url": f"bark://bark.example.test:{rig.port}/device-key", "severities": "critical"},
            headers=reader,
        )
        assert made.status_code == 201, made.text
        answers["bark.example.test"] = ["127.0.0.1"]  # the DNS answer changed after the check
        post_events(client, enroll_agent(client), [make_egress("core", sha256="ab" * 32)])
        assert client.app.state.notifier.run_once() == {"pending": 1}
        (row,) = outbox.outbox_rows(store.engine)
        assert "127.0.0.1, which is loopback" in row["last_error"]
    assert rig.hits == []


def test_apprise_connects_to_the_address_that_was_checked(dns):
    """bark.example.test exists only in the checked answer: apprise reaching the receiver proves it
    used that answer instead of asking DNS again (where a rebinding name would change it)."""
    dns[0]["bark.example.test"] = ["127.0.0.1"]
    with http_receiver() as rig:
        Transport(allow_private=True).deliver(f"bark://bark.example.test:{rig.port}/device-key", alert_message(ALERT))
    assert [h.path for h in rig.hits] == ["/push"]


def test_inside_a_send_only_the_checked_names_resolve_even_on_apprises_threads():
    names = {"bark.example.test": ("127.0.0.1",)}
    with netcheck.pinned(names, allow_private=False):
        assert {i[4][0] for i in socket.getaddrinfo("bark.example.test", 80)} == {"127.0.0.1"}
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("localhost", 80)
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("127.0.0.1", 80)  # a literal is a name too: not the checked one
        context = contextvars.copy_context()  # what apprise's worker pool does
        with ThreadPoolExecutor(1) as pool:
            with pytest.raises(socket.gaierror):
                pool.submit(context.run, socket.getaddrinfo, "metadata.example.test", 80).result()
    assert socket.getaddrinfo("127.0.0.1", 80)  # outside a send nothing changes


def test_a_vendor_name_resolving_to_a_private_address_is_refused_at_lookup(dns):
    dns[0]["oapi.dingtalk.com"] = ["10.1.2.3"]
    with netcheck.pinned({"oapi.dingtalk.com": netcheck.VENDOR}, allow_private=False):
        with pytest.raises(socket.gaierror, match="10.1.2.3, which is private"):
            socket.getaddrinfo("oapi.dingtalk.com", 443)
    with netcheck.pinned({"oapi.dingtalk.com": netcheck.VENDOR}, allow_private=True):
        assert {i[4][0] for i in socket.getaddrinfo("oapi.dingtalk.com", 443)} == {"10.1.2.3"}


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_a_send_looks_up_only_the_names_the_table_gives(scheme, dns):
    """Each scheme sent for real through apprise, every name answered with loopback (nothing listens
    on the vendor's port 443 here, so each fails fast): the names asked for are the table's, and
    apprise asked for no other (the pinned lookup would have refused and logged it)."""
    answers, asked = dns
    url = SAMPLES[scheme]
    expected = {e.host for e in endpoints(url, instantiate(url))}
    for name in expected:
        answers[name] = ["127.0.0.1"]
    with captured_logs() as logs:
        try:
            Transport(allow_private=True, timeout_s=2.0).deliver(url, alert_message(ALERT))
        except DeliveryError:
            pass  # nothing answers: the point is where it tried
    assert asked and set(asked) <= expected, (scheme, asked)
    assert not any("notification lookup refused" in x for x in logs), (scheme, logs)
    if SCHEMES[scheme].endpoints(instantiate(url))[0].chosen:
        assert all(e.endswith(".example.test") for e in expected), expected  # the URL's host, not a vendor's


# --- /test is not a port scanner ---------------------------------------------------------------------


@pytest.mark.reliability(**ORACLE)
@pytest.mark.parametrize("scheme", ["json", "bark", "gotify"])
def test_the_test_button_says_the_same_for_a_listening_and_a_closed_port(make_client, reader, scheme):
    closed = free_port()
    with http_receiver(answers=[500] * 4) as rig, raw_listener(b"SSH-2.0-OpenSSH_9.2\r\n") as garbage:
        ports = {"http 500": rig.port, "garbage": garbage, "closed": closed}
        path = {"json": "/hook", "bark": "/device-key", "gotify": "/token-abcdef"}[scheme]
        client = make_client(allow_private=True)
        answers = {}
        for what, port in ports.items():
            made = client.post("/api/v1/channels", json={"url": f"{scheme}://127.0.0.1:{port}{path}"}, headers=reader)
            assert made.status_code == 201, made.text
            tested = client.post(f"/api/v1/channels/{made.json()['id']}/test", headers=reader)
            answers[what] = (tested.status_code, tested.content)
    assert rig.hits, "the HTTP port was reached: a target that fails there must still look like a closed one"
    assert len(set(answers.values())) == 1, answers
    assert answers["closed"][0] == 502
