"""Notification channels from the console: create, test (to a loopback receiver), edit, disable,
route; admin only, CSRF, audited; secrets never shown back in pages or logs; the SSRF checks hold."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.console.channelforms import build_url
from server.notify.channels import ChannelError
from tests.console.conftest import FORM, csrf_of, sign_in
from tests.server.notify_rig import captured_logs, http_receiver

SECRET = "hunter2-TOKEN-abcdef"
PASSWORD = "smtp-Pa55word-xyz"


@pytest.fixture
def console_app(config, store, make_user):
    """A collector whose notifications may reach loopback (as tests/server's notify tests allow it)."""
    made = []

    def build(allow_private: bool = True) -> TestClient:
        app = create_app(dataclasses.replace(config, notify_allow_private=allow_private), store)
        app.state.notify_poll_s = 3600.0
        client = TestClient(app)
        client.__enter__()
        made.append(client)
        return client

    make_user("boss", "admin")
    make_user("li.na", "analyst")
    yield build
    for client in made:
        client.__exit__(None, None, None)


def _signed_in(client: TestClient, name: str) -> TestClient:
    browser = TestClient(client.app)
    assert sign_in(browser, name).status_code == 303
    return browser


def _post(browser: TestClient, action: str, data: list[tuple[str, str]], page: str = "/console/channels"):
    token = csrf_of(browser.get(page).text)
    return browser.post(action, content=urlencode([("csrf", token), *data]), headers=FORM, follow_redirects=False)


def _webhook_form(
    url: str, name: str = "ops hook", severities=("critical", "high"), categories=()
) -> list[tuple[str, str]]:
    return [("name", name), ("kind", "webhook"), ("address", url), *[("severity", s) for s in severities],
            *[("category", c) for c in categories], ("max_per_hour", "30"), ("enabled", "1")]  # fmt: skip


def _channel_id(html: str) -> str:
    return re.search(r'action="/console/channels/(ch_[0-9a-f]+)/test"', html).group(1)


def test_create_test_edit_disable_round_trip(console_app, store):
    app = console_app()
    admin = _signed_in(app, "boss")
    with http_receiver() as rig, captured_logs() as logs:
        hook = f"http://ops:{SECRET}@127.0.0.1:{rig.port}/hook/{SECRET}?token={SECRET}"
        made = _post(admin, "/console/channels", _webhook_form(hook, categories=("classified-egress",)))
        assert made.status_code == 303 and made.headers["location"] == "/console/channels?msg=channel_saved"
        page = admin.get("/console/channels").text
        channel_id = _channel_id(page)
        assert "json://127.0.0.1/…" in page and SECRET not in page
        assert "The channel was saved." in admin.get(made.headers["location"]).text

        tested = _post(admin, f"/console/channels/{channel_id}/test", [])
        assert tested.status_code == 200 and "delivered." in tested.text
        assert len(rig.hits) == 1 and rig.hits[0].path == f"/hook/{SECRET}?token={SECRET}"  # the URL as typed
        assert rig.hits[0].json()["miwei"]["test"] is True

        edit = admin.get(f"/console/channels/{channel_id}")
        assert edit.status_code == 200 and SECRET not in edit.text and 'value="ops hook"' in edit.text
        changed = _post(
            admin,
            f"/console/channels/{channel_id}",
            [
                ("name", "ops hook 2"),
                ("kind", "webhook"),
                ("severity", "critical"),
                ("max_per_hour", "5"),
                ("enabled", "1"),
            ],
            page=f"/console/channels/{channel_id}",
        )
        assert changed.status_code == 303
        kept = app.app.state.channels.get(channel_id)
        assert (
            kept.url.endswith(f"/hook/{SECRET}?-token={SECRET}")
            and kept.severities == ("critical",)
            and kept.categories == ()
            and kept.max_per_hour == 5
        )

        off = _post(admin, f"/console/channels/{channel_id}/state", [("enabled", "0")])
        assert off.headers["location"] == "/console/channels?msg=channel_disabled"
        assert app.app.state.channels.get(channel_id).enabled is False
        assert "disabled" in admin.get("/console/channels").text
        assert _post(admin, f"/console/channels/{channel_id}/delete", []).status_code == 303
        assert app.app.state.channels.get(channel_id) is None
    assert not [line for line in logs if SECRET in line], "a secret reached the log"
    actions = [e["action"] for e in store.list_audit(actor="console:boss").items]
    for action in ("channel.create", "channel.test", "channel.update", "channel.delete"):
        assert action in actions
    assert not [e for e in store.list_audit().items if SECRET in str(e)], "a secret reached the audit log"


def test_a_failed_test_is_shown(console_app):
    app = console_app()
    admin = _signed_in(app, "boss")
    with http_receiver([500]) as rig:
        _post(admin, "/console/channels", _webhook_form(f"http://127.0.0.1:{rig.port}/hook"))
        channel_id = _channel_id(admin.get("/console/channels").text)
        tested = _post(admin, f"/console/channels/{channel_id}/test", [])
    assert 'class="error"' in tested.text and "not delivered" in tested.text


def test_routing_by_severity_and_category(console_app, store):
    app = console_app()
    admin = _signed_in(app, "boss")
    _post(
        admin,
        "/console/channels",
        _webhook_form(
            "https://hooks.example.com/x", severities=("critical",), categories=("bulk-egress", "unknown-device")
        ),
    )
    (channel,) = app.app.state.channels.list()
    assert channel.severities == ("critical",) and channel.categories == ("bulk-egress", "unknown-device")
    assert (
        channel.routes("critical", "bulk-egress")
        and not channel.routes("high", "bulk-egress")
        and not channel.routes("critical", "off-hours")
    )


def test_ssrf_checks_of_server_notify_apply(console_app):
    app = console_app(allow_private=False)
    admin = _signed_in(app, "boss")
    for target in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/x"):
        refused = _post(admin, "/console/channels", _webhook_form(target))
        assert refused.status_code == 422, target
        assert "The channel was not saved:" in refused.text
    assert app.app.state.channels.list() == []


def test_secrets_are_not_shown_back_when_a_form_is_refused(console_app):
    app = console_app()
    admin = _signed_in(app, "boss")
    form = [("name", "mail"), ("kind", "email"), ("smtp_host", "smtp.example.com"), ("smtp_port", "465"), ("security", "ssl"),
            ("user", "ops"), ("password", PASSWORD), ("to", "not-an-address"), ("severity", "high")]  # fmt: skip
    refused = _post(admin, "/console/channels", form)
    assert refused.status_code == 422 and PASSWORD not in refused.text
    dingtalk = [
        ("name", "dt"),
        ("kind", "dingtalk"),
        ("address", f"https://oapi.dingtalk.com/robot/send?access_token={SECRET}"),
        ("secret", "bad secret!"),
        ("severity", "high"),
    ]
    refused = _post(admin, "/console/channels", dingtalk)
    assert refused.status_code == 422 and SECRET not in refused.text


def test_the_kinds_build_apprise_urls():
    def url(kind, **fields):
        return build_url(kind, {k: [v] for k, v in fields.items()})

    assert (
        url("dingtalk", address="https://oapi.dingtalk.com/robot/send?access_token=abcdef123456", secret="SECabc123456")
        == "dingtalk://SECabc123456@abcdef123456/"
    )
    assert (
        url(
            "wecom", address="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
        )
        == "wecombot://693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    )
    assert (
        url("feishu", address="https://open.feishu.cn/open-apis/bot/v2/hook/0123456789abcdef")
        == "feishu://0123456789abcdef"
    )
    assert url("webhook", address="https://hooks.example.com:8443/a/b?x=1") == "jsons://hooks.example.com:8443/a/b?-x=1"
    assert url(
        "email",
        smtp_host="smtp.qiye.aliyun.com",
        smtp_port="465",
        security="ssl",
        user="ops@x.cn",
        password="p@ss",
        to="a@x.cn, b@x.cn",
        sender="ops@x.cn",
    ) == ("mailtos://ops%40x.cn:p%40ss@smtp.qiye.aliyun.com:465?to=a%40x.cn%2Cb%40x.cn&from=ops%40x.cn&mode=ssl")
    for kind, fields in (("dingtalk", {"address": "https://oapi.dingtalk.com/robot/send"}), ("webhook", {"address": "ftp://x/y"}),
                         ("email", {"smtp_host": "x", "to": ""}), ("nonsense", {})):  # fmt: skip
        with pytest.raises(ChannelError):
            url(kind, **fields)


def test_admin_only_and_csrf(console_app):
    app = console_app()
    admin, analyst = _signed_in(app, "boss"), _signed_in(app, "li.na")
    _post(admin, "/console/channels", _webhook_form("https://hooks.example.com/x"))
    channel_id = app.app.state.channels.list()[0].id
    page = analyst.get("/console/channels")
    assert (
        page.status_code == 200
        and "hooks.example.com" in page.text
        and "/test" not in page.text
        and "Add a channel" not in page.text
    )
    assert analyst.get(f"/console/channels/{channel_id}").status_code == 403
    for action in ("/console/channels", f"/console/channels/{channel_id}", f"/console/channels/{channel_id}/test",
                   f"/console/channels/{channel_id}/state", f"/console/channels/{channel_id}/delete"):  # fmt: skip
        assert _post(analyst, action, _webhook_form("https://hooks.example.com/y")).status_code == 403, action
        no_csrf = admin.post(
            action,
            content=urlencode(_webhook_form("https://hooks.example.com/y")),
            headers=FORM,
            follow_redirects=False,
        )
        assert no_csrf.status_code == 403, action
    anonymous = TestClient(app.app)
    assert anonymous.get("/console/channels", follow_redirects=False).status_code == 303
    assert len(app.app.state.channels.list()) == 1 and app.app.state.channels.list()[0].enabled


def test_config_channels_are_read_only(console_app, config, store):
    from server.notify.channels import ChannelSpec

    app = create_app(
        dataclasses.replace(
            config, notify=(ChannelSpec(f"json://127.0.0.1:9/{SECRET}", "from config"),), notify_allow_private=True
        ),
        store,
    )
    with TestClient(app) as client:
        admin = _signed_in(client, "boss")
        page = admin.get("/console/channels").text
        assert "from config" in page and SECRET not in page and "config file" in page
        assert admin.get("/console/channels/config:0").status_code == 409
        assert _post(admin, "/console/channels/config:0/delete", []).status_code == 409


def test_channels_page_in_chinese(console_app):
    app = console_app()
    admin = _signed_in(app, "boss")
    admin.cookies.set("mw_lang", "zh")
    html = admin.get("/console/channels").text
    for english in (
        "Add a channel",
        "Where messages go",
        "DingTalk robot",
        "Send a test message",
        "What is sent there",
    ):
        assert english not in html


def test_refusals_in_chinese(console_app):
    app = console_app(allow_private=False)
    admin = _signed_in(app, "boss")
    admin.cookies.set("mw_lang", "zh")
    no_severity = _post(admin, "/console/channels", [("name", "x"), ("kind", "wecom"), ("address", "abcdefgh12345")])
    assert no_severity.status_code == 422 and "请至少勾选一个严重程度" in no_severity.text
    private = _post(admin, "/console/channels", _webhook_form("http://127.0.0.1:9/hook"))
    assert (
        private.status_code == 422
        and "无法使用该目标" in private.text
        and "127.0.0.1" not in private.text.split("<main>")[1].split("</form>")[0]
    )


def test_an_email_channel_sends_its_test_through_smtp(console_app, store):
    from tests.server.notify_rig import smtp_server

    app = console_app()
    admin = _signed_in(app, "boss")
    with smtp_server(PASSWORD) as (port, envelopes), captured_logs() as logs:
        form = [("name", "security office"), ("kind", "email"), ("smtp_host", "127.0.0.1"), ("smtp_port", str(port)), ("security", "none"),
                ("user", "secops"), ("password", PASSWORD), ("sender", "miwei@example.com"), ("to", "team@example.com, boss@example.com"),
                ("severity", "critical"), ("enabled", "1")]  # fmt: skip
        assert _post(admin, "/console/channels", form).status_code == 303
        page = admin.get("/console/channels").text
        assert PASSWORD not in page and "secops" not in page and "mailto://127.0.0.1/…" in page
        tested = _post(admin, f"/console/channels/{_channel_id(page)}/test", [])
        assert "delivered." in tested.text and PASSWORD not in tested.text
    recipients = sorted(r for e in envelopes for r in e.rcpt_tos)  # apprise sends one mail to each
    assert recipients == ["boss@example.com", "team@example.com"]
    assert "MiWei test message" in envelopes[0].content.decode("utf-8", "replace")
    assert not [line for line in logs if PASSWORD in line]
