"""Notifications end to end on SQLite: a real SMTP server, a local webhook receiver, the outbox.

The sender's thread runs with the app but polls only once an hour here; each test drives rounds
itself with `run_once()`, so what is sent when is decided by the test's fake clock, not by timing.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from server.app import create_app
from server.notify import netcheck, outbox
from server.notify.channels import ChannelSpec
from server.notify.tables import notifications
from tests.server.factories import make_egress
from tests.server.notify_rig import captured_logs, enroll_agent, http_receiver, post_events, smtp_server

EVIL = "x\r\nBcc: evil@example.com <img src=x onerror=alert(1)> **bold** [link](http://evil)"
PASSWORD = "Sm7p-pa55word-4711"


@pytest.fixture
def notify_client(config, store):
    """Build a client whose config has the given channels (allow_private on unless said otherwise)."""
    made = []

    def build(*channels, allow_private: bool = True) -> TestClient:
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


def _egress(n: int = 1, **fields) -> list[dict]:
    """n alerts: files of n users (one user's files to one stick are one incident, issue 19)."""
    return [make_egress("core", **{"sha256": f"{i:064x}", "user": f"user{i:02d}", **fields}) for i in range(n)]


def _alerts(client, reader) -> list[dict]:
    return client.get("/api/v1/alerts", headers=reader).json()["alerts"]


def _rows(store, **where) -> list[dict]:
    return outbox.outbox_rows(store.engine, **where)


def _sender(client):
    return client.app.state.notifier


def test_alert_mail_reaches_a_real_smtp_server_in_the_firms_language_and_without_header_injection(notify_client, reader, store):
    with smtp_server(PASSWORD) as (port, envelopes), captured_logs() as logs:
        url = f"mailto://secops:{PASSWORD}@127.0.0.1:{port}?mode=insecure&from=miwei@example.com&to=team@example.com"
        client = notify_client(ChannelSpec(url=url, severities=("critical",)))
        agent = enroll_agent(client)
        post_events(client, agent, _egress(path=f"/media/zhang/KINGSTON/{EVIL}.dwg", user=f"zhang{EVIL}"))
        assert _sender(client).run_once() == {"sent": 1}

    assert len(envelopes) == 1
    envelope = envelopes[0]
    assert envelope.rcpt_tos == ["team@example.com"]  # the Bcc in the file name added no recipient
    mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert sorted(mail.keys()) == sorted(
        [
            "Content-Type",
            "MIME-Version",
            "Content-Transfer-Encoding",
            "X-Application",
            "Subject",
            "From",
            "To",
            "Message-ID",
            "Date",
        ]
    )
    assert mail["Bcc"] is None
    subject = str(mail["Subject"])
    assert subject.startswith("[密卫] 严重 #") and "\r" not in subject and "\n" not in subject
    body = mail.get_content()
    assert "密卫告警 #" in body and "MiWei alert #" not in body  # server.language: zh (the default) only
    assert "用户：zhangx Bcc: evil@example．com" in body  # the user name: its line break gone, the domain defanged
    assert "http://evil" not in body and "hxxp：//evil" in body  # no live link from a file name
    assert PASSWORD not in "\n".join(logs)
    (alert,) = [a for a in _alerts(client, reader) if a["severity"] == "critical"]
    (row,) = _rows(store, alert_id=alert["id"])
    assert row["status"] == "sent" and row["attempts"] == 1 and row["kind"] == "alert"


@pytest.fixture
def webhook(notify_client):
    """A receiver and a client with one config channel posting to it (critical alerts only)."""
    with http_receiver() as rig:
        client = notify_client(ChannelSpec(url=rig.url, severities=("critical",)))
        yield rig, client, enroll_agent(client)


def test_webhook_gets_the_alert_as_json_once_even_when_the_batch_is_sent_again(webhook, reader, store):
    rig, client, agent = webhook
    batch = _egress(3)
    assert post_events(client, agent, batch)["accepted"] == 3
    assert post_events(client, agent, batch) == {"accepted": 0, "duplicates": 3}  # the agent retried the batch
    critical = [a for a in _alerts(client, reader) if a["severity"] == "critical"]
    assert len(critical) == 3
    assert len(_rows(store)) == 3  # one outbox row per alert and channel, none for the resent batch
    assert _sender(client).run_once() == {"sent": 3}
    assert _sender(client).run_once() == {}
    assert sorted(h.json()["miwei"]["alert"]["id"] for h in rig.hits) == sorted(a["id"] for a in critical)
    hit = rig.hits[0]
    assert hit.path == "/hook" and hit.headers["Content-Type"].startswith("application/json")
    assert hit.json()["title"].startswith("[密卫] 严重 #")
    assert hit.json()["miwei"]["alert"]["category"] == "classified-egress"


def test_routing_by_severity_and_category(notify_client, reader, store):
    with http_receiver() as rig:
        base = f"json://127.0.0.1:{rig.port}"
        client = notify_client(
            ChannelSpec(url=f"{base}/critical", severities=("critical",)),
            ChannelSpec(
                url=f"{base}/high-up-egress", severities=("critical", "high"), categories=("classified-egress",)
            ),
            ChannelSpec(url=f"{base}/deletions", categories=("mass-deletion",)),
        )
        agent = enroll_agent(client)
        levels = ("core", "important", "general")  # critical, high, medium
        post_events(client, agent, [make_egress(level, sha256=f"{i:064x}", user=f"u{i}") for i, level in enumerate(levels)])
        by_severity = {a["severity"]: a["id"] for a in _alerts(client, reader)}
        assert set(by_severity) == {"critical", "high", "medium"}
        assert _sender(client).run_once() == {"sent": 3}
        got = sorted((h.path, h.json()["miwei"]["alert"]["severity"]) for h in rig.hits)
        assert got == [("/critical", "critical"), ("/high-up-egress", "critical"), ("/high-up-egress", "high")]
        statuses = sorted((r["channel_id"], r["status"]) for r in _rows(store))
        assert statuses == sorted(
            [
                ("config:0", "sent"),
                ("config:0", "skipped"),
                ("config:0", "skipped"),
                ("config:1", "sent"),
                ("config:1", "sent"),
                ("config:1", "skipped"),
            ]
        )


@pytest.mark.reliability(area="fault", fault="Notification receiver failing or stalled", how="a receiver answering errors; a sender whose lease runs out", outcome="retried with growing backoff, given up after a day; a stalled sender's lease passes to another, sent once")
def test_a_failing_receiver_is_retried_with_growing_backoff_until_it_answers(notify_client, reader, store, clock):
    with http_receiver(answers=[500, 503]) as rig:
        client = notify_client(ChannelSpec(url=rig.url, severities=("critical",)))
        agent = enroll_agent(client)
        post_events(client, agent, _egress(1))
        sender = _sender(client)
        assert sender.run_once() == {"pending": 1}
        (row,) = _rows(store)
        first_delay = (outbox.aware(row["next_attempt_at"]) - clock()).total_seconds()
        assert 24 <= first_delay <= 36 and row["attempts"] == 1 and "HTTP 500" in row["last_error"]
        assert sender.run_once() == {}  # not due yet
        clock.advance(first_delay + 1)
        assert sender.run_once() == {"pending": 1}
        (row,) = _rows(store)
        second_delay = (outbox.aware(row["next_attempt_at"]) - clock()).total_seconds()
        assert 48 <= second_delay <= 72 and "HTTP 503" in row["last_error"]
        clock.advance(second_delay + 1)
        assert sender.run_once() == {"sent": 1}
        assert len(rig.hits) == 3
        (row,) = _rows(store)
        assert row["status"] == "sent" and row["attempts"] == 3 and row["last_error"] is None


@pytest.mark.reliability(area="fault", fault="Notification receiver failing or stalled", how="a receiver answering errors; a sender whose lease runs out", outcome="retried with growing backoff, given up after a day; a stalled sender's lease passes to another, sent once")
def test_backoff_grows_to_an_hour_and_gives_up_after_a_day(notify_client, store, clock):
    assert [round(outbox.backoff_s(n, _Mid())) for n in (1, 2, 3, 4, 8, 20)] == [30, 60, 120, 240, 3600, 3600]
    with http_receiver(answers=[500] * 50) as rig, captured_logs() as logs:
        client = notify_client(ChannelSpec(url=rig.url, severities=("critical",)))
        post_events(client, enroll_agent(client), _egress(1))
        sender = _sender(client)
        assert sender.run_once() == {"pending": 1}
        clock.advance(25 * 3600)
        assert sender.run_once() == {"failed": 1}
        clock.advance(25 * 3600)
        assert sender.run_once() == {}
    (row,) = _rows(store)
    assert row["status"] == "failed" and row["attempts"] == 2
    assert any("notification given up" in line for line in logs)


class _Mid:
    def uniform(self, a, b):
        return (a + b) / 2


def test_over_the_rate_limit_alerts_go_out_in_one_digest(notify_client, store, clock):
    with http_receiver() as rig:
        client = notify_client(ChannelSpec(url=rig.url, severities=("critical",), max_per_hour=3))
        agent = enroll_agent(client)
        post_events(client, agent, _egress(10, path=f"/media/zhang/KINGSTON/{EVIL}.dwg"))
        assert _sender(client).run_once() == {"sent": 3}
        singles = [h.json() for h in rig.hits if "alert" in h.json()["miwei"]]
        digests = [h.json() for h in rig.hits if "digest" in h.json()["miwei"]]
        assert len(singles) == 2 and len(digests) == 1
        digest = digests[0]
        assert digest["miwei"]["digest"]["count"] == 8
        assert digest["miwei"]["digest"]["by_severity"] == {"critical": 8}
        assert "密卫告警摘要" in digest["message"] and "MiWei digest" not in digest["message"]
        rows = _rows(store)
        assert sum(r["status"] == "digested" for r in rows) == 8 and sum(r["kind"] == "digest" for r in rows) == 1

        # the hour's three messages are used: the next alert waits for a slot
        post_events(client, agent, [make_egress("core", sha256="f" * 64)])
        assert _sender(client).run_once() == {}
        assert len(rig.hits) == 3
        clock.advance(3602)
        assert _sender(client).run_once() == {"sent": 1}
        assert "alert" in rig.hits[-1].json()["miwei"]


def test_a_digest_that_fails_is_retried_like_an_alert(notify_client, store, clock):
    with http_receiver(answers=[500]) as rig:
        client = notify_client(ChannelSpec(url=rig.url, severities=("critical",), max_per_hour=1))
        post_events(client, enroll_agent(client), _egress(4))
        assert _sender(client).run_once() == {"pending": 1}
        clock.advance(3600)
        assert _sender(client).run_once() == {"sent": 1}
        (digest,) = [h.json() for h in rig.hits[1:]]
        assert digest["miwei"]["digest"]["count"] == 4


def test_the_background_thread_sends_without_being_asked(config, store):
    with http_receiver() as rig:
        app = create_app(
            dataclasses.replace(
                config, notify=(ChannelSpec(url=rig.url, severities=("critical",)),), notify_allow_private=True
            ),
            store,
        )
        app.state.notify_poll_s = 0.1
        with TestClient(app) as client:
            post_events(client, enroll_agent(client), _egress(1))
            _wait(lambda: rig.hits)
        assert not app.state.notifier._thread.is_alive()  # stopped with the app


def _wait(condition, timeout_s: float = 20.0):
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not within the wait"
        time.sleep(0.05)


# --- webhook safety ------------------------------------------------------------------------------


def test_a_redirect_is_not_followed(notify_client, store):
    with http_receiver(answers=["redirect"]) as rig:
        client = notify_client(ChannelSpec(url=rig.url, severities=("critical",)))
        post_events(client, enroll_agent(client), _egress(1))
        assert _sender(client).run_once() == {"pending": 1}
        assert [h.path for h in rig.hits] == ["/hook"]  # /elsewhere never asked
        (row,) = _rows(store)
        assert "302" in row["last_error"] and "redirects are not followed" in row["last_error"]


def test_a_huge_answer_is_cut_after_the_cap(notify_client, store):
    with http_receiver(answers=["huge"]) as rig:
        client = notify_client(ChannelSpec(url=rig.url, severities=("critical",)))
        post_events(client, enroll_agent(client), _egress(1))
        assert _sender(client).run_once() == {"sent": 1}
        _wait(lambda: rig.huge_written)
    assert rig.huge_written[0] < 64 * 1024 * 1024  # the server could not get its 64 MB out: we hung up


def test_a_name_that_resolves_to_loopback_at_send_time_is_not_contacted(notify_client, store, reader, monkeypatch):
    answers = {"hooks.example.test": ["93.184.216.34"]}
    monkeypatch.setattr(netcheck, "resolve", lambda host, port: answers[host])
    with http_receiver() as rig:
        client = notify_client(allow_private=False)
        made = client.post(
            "/api/v1/channels",
            json={"url": f"json://hooks.example.test:{rig.port}/hook", "severities": "critical"},
            headers=reader,
        )
        assert made.status_code == 201, made.text
        answers["hooks.example.test"] = ["127.0.0.1"]  # the DNS answer changed after the check
        post_events(client, enroll_agent(client), _egress(1))
        assert _sender(client).run_once() == {"pending": 1}
        assert rig.hits == []
        (row,) = _rows(store)
        assert "127.0.0.1, which is loopback" in row["last_error"]


def test_the_webhook_connects_to_the_address_it_checked(notify_client, reader, monkeypatch):
    monkeypatch.setattr(netcheck, "resolve", lambda host, port: {"hooks.example.test": ["127.0.0.1"]}[host])
    with http_receiver() as rig:
        client = notify_client(ChannelSpec(url=f"json://hooks.example.test:{rig.port}/hook", severities=("critical",)))
        post_events(client, enroll_agent(client), _egress(1))
        assert _sender(client).run_once() == {"sent": 1}
        assert rig.hits[0].headers["Host"] == f"hooks.example.test:{rig.port}"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("json://127.0.0.1:8080/hook", "loopback"),
        ("json://10.20.30.40/hook", "private"),
        ("jsons://169.254.169.254/latest/meta-data", "link-local"),
        ("json://[::1]:8080/hook", "loopback"),
        ("json://[fd00::1]/hook", "private"),
        ("json://0.0.0.0/hook", "unspecified"),
        ("json://224.0.0.1/hook", "multicast"),
        ("json://localhost/hook", "loopback"),
        ("mailto://user:pw-123456@192.168.1.10?to=a@example.com", "private"),
    ],
)
def test_a_channel_to_a_private_address_is_refused_when_saved(notify_client, reader, url, why):
    client = notify_client(allow_private=False)
    made = client.post("/api/v1/channels", json={"url": url}, headers=reader)
    assert made.status_code == 422, made.text
    assert why in made.json()["detail"]
    assert "pw-123456" not in made.text
    assert client.get("/api/v1/channels", headers=reader).json()["channels"] == []


def test_secrets_never_reach_the_logs(notify_client, reader, store):
    token = "SECRETtoken0123456789abcdef"
    with http_receiver(answers=[500]) as rig, captured_logs() as logs:
        client = notify_client(
            ChannelSpec(
                url=f"json://ops:{PASSWORD}@127.0.0.1:{rig.port}/hook/{token}?+X-Token={token}",
                severities=("critical",),
            )
        )
        made = client.post(
            "/api/v1/channels", json={"url": f"json://ops:{PASSWORD}@127.0.0.1:{rig.port}/h/{token}"}, headers=reader
        )
        assert made.status_code == 201
        post_events(client, enroll_agent(client), _egress(1))
        _sender(client).run_once()
        client.post(f"/api/v1/channels/{made.json()['id']}/test", headers=reader)
        listed = client.get("/api/v1/channels", headers=reader).text
    assert any(h.headers.get("X-Token") == token for h in rig.hits)  # the secret was used...
    text = "\n".join(logs)
    assert "notification not delivered" in text and "json://127.0.0.1/…" in text
    for secret in (PASSWORD, token):  # ...and shown nowhere
        assert secret not in text and secret not in listed
        assert all(secret not in (r["last_error"] or "") for r in _rows(store))


def test_outbox_rows_commit_with_their_alert(store, engine, clock):
    """insert_alerts is the only writer: without a channel, no row; a rolled-back alert leaves none."""
    from server.alerts import AlertDraft, insert_alerts
    from server.database import writing
    from server.notify.channelstore import ChannelStore

    ChannelStore(engine, clock).sync_config([ChannelSpec(url="json://127.0.0.1/hook")])
    draft = AlertDraft("R", "classified-egress", "high", "t", "e", (), None, None, None)
    with pytest.raises(RuntimeError):
        with writing(engine) as conn:
            insert_alerts(conn, [draft], clock())
            raise RuntimeError("the ingest failed after the alerts")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(notifications)).scalar() == 0
    with writing(engine) as conn:
        (alert_id,) = insert_alerts(conn, [draft], clock())
    assert [r["alert_id"] for r in _rows(store)] == [alert_id]


@pytest.mark.reliability(area="fault", fault="Notification receiver failing or stalled", how="a receiver answering errors; a sender whose lease runs out", outcome="retried with growing backoff, given up after a day; a stalled sender's lease passes to another, sent once")
def test_a_stalled_senders_lease_runs_out_another_sends_and_the_stalled_one_does_not(notify_client, store, clock):
    with http_receiver() as rig:
        client = notify_client(ChannelSpec(url=rig.url, severities=("critical",)))
        post_events(client, enroll_agent(client), _egress(1))
        (stalled,) = outbox.claim(store.engine, clock())  # a sender took it and stalled (or died)
        assert _sender(client).run_once() == {}  # leased: nobody else sends it meanwhile
        clock.advance(outbox.LEASE_S + 1)
        assert _sender(client).run_once() == {"sent": 1}
        assert _sender(client)._send(stalled) == "lost"  # the stalled sender wakes up: it sends nothing
        assert len(rig.hits) == 1
        (row,) = _rows(store)
        assert row["status"] == "sent" and row["attempts"] == 1


def test_a_correlation_alert_is_routed_by_the_severity_it_ends_with(notify_client, store):
    """bulk-egress is inserted as a placeholder and given its severity later in the same transaction."""
    with http_receiver() as rig:
        client = notify_client(ChannelSpec(url=rig.url, severities=("critical",), categories=("bulk-egress",)))
        post_events(client, enroll_agent(client), _egress(25, user="zhang.wei"))  # one user: one burst
        assert _sender(client).run_once() == {"sent": 1}
        (hit,) = rig.hits
        assert hit.json()["miwei"]["alert"]["category"] == "bulk-egress"
        assert hit.json()["miwei"]["alert"]["severity"] == "critical"
