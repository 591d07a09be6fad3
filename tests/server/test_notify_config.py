"""server.notify and server.notify_allow_private in the config file; message cleaning; address checks."""

from __future__ import annotations

import pytest

from rules.errors import InvalidInput
from server.config import load_server_config
from server.notify import netcheck
from server.notify.channels import ChannelSpec, redact, scrub
from server.notify.messages import alert_message, block, line, md

HEAD = "server:\n  enroll_secret: test-secret-0123456789\n"


def _load(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(HEAD + text, encoding="utf-8")
    return load_server_config(str(path))


def test_channels_are_urls_or_mappings_with_routing(tmp_path):
    config = _load(
        tmp_path,
        "  notify:\n"
        "    - mailtos://secops:pw-0123456789@mail.example.com?to=soc@example.com\n"
        "    - url: dingtalk://0123456789abcdef/\n"
        "      name: 保密办钉钉群\n"
        "      severities: high\n"
        "      categories: [classified-egress, bulk-egress]\n"
        "      max_per_hour: 10\n"
        "    - url: wecombot://botkey-1234\n"
        "      severities: [info, critical]\n",
    )
    mail, ding, wecom = config.notify
    assert mail == ChannelSpec(url="mailtos://secops:pw-0123456789@mail.example.com?to=soc@example.com")
    assert mail.severities == ("critical", "high", "medium", "low", "info") and mail.max_per_hour == 30
    assert ding == ChannelSpec(
        "dingtalk://0123456789abcdef/", "保密办钉钉群", ("critical", "high"), ("classified-egress", "bulk-egress"), 10
    )
    assert wecom.severities == ("critical", "info")
    assert (
        ding.routes("high", "bulk-egress")
        and not ding.routes("medium", "bulk-egress")
        and not ding.routes("high", "off-hours")
    )
    assert config.notify_allow_private is False


def test_a_private_webhook_is_refused_unless_allowed(tmp_path):
    with pytest.raises(InvalidInput) as caught:
        _load(tmp_path, "  notify: [json://127.0.0.1:9000/hook]\n")
    assert str(caught.value).endswith(
        "config.yaml:3:12: server.notify[0]: json://127.0.0.1/…: 127.0.0.1 is loopback: notifications may not reach it "
        "(server.notify_allow_private allows it) (see the notify lines of config.example.yaml)"
    )
    allowed = _load(tmp_path, "  notify_allow_private: true\n  notify: [json://127.0.0.1:9000/hook]\n")
    assert allowed.notify_allow_private is True and allowed.notify[0].url == "json://127.0.0.1:9000/hook"


def test_errors_about_a_channel_never_quote_its_secrets(tmp_path):
    with pytest.raises(InvalidInput) as caught:
        _load(
            tmp_path,
            "  notify:\n    - json://ops:pw-0123456789@10.0.0.8/hook/tok-abcdef123\n    - url: gopher://tok-abcdef123@x\n",
        )
    assert "pw-0123456789" not in str(caught.value) and "tok-abcdef123" not in str(caught.value)
    assert len(caught.value.errors) == 2


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "not globally routable"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_table(address, reason):
    assert netcheck.forbidden_reason(address) == reason


def test_every_resolved_address_must_be_public(monkeypatch):
    monkeypatch.setattr(netcheck, "resolve", lambda host, port: ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(netcheck.TargetRefused, match="10.0.0.1, which is private"):
        netcheck.check_target("mixed.example.test", 443, allow_private=False)
    assert netcheck.check_target("mixed.example.test", 443, allow_private=True).addresses == (
        "93.184.216.34",
        "10.0.0.1",
    )

    def fail(host, port):
        raise OSError("no such name")

    monkeypatch.setattr(netcheck, "resolve", fail)
    with pytest.raises(netcheck.TargetRefused, match="cannot resolve"):
        netcheck.check_target("nowhere.example.test", 443, allow_private=True)


def test_redaction_keeps_only_scheme_and_host():
    assert redact("mailtos://user:pw@smtp.example.com:465?to=a@b.c") == "mailtos://smtp.example.com/…"
    assert redact("dingtalk://token-abc/secret") == "dingtalk://…"
    assert redact("json://u:p@hooks.example.com/x?+X-Token=t") == "json://hooks.example.com/…"
    assert (
        scrub("failed for token-abcdef at /hook/token-abcdef", "dingtalk://token-abcdef/")
        == "failed for *** at /hook/***"
    )


@pytest.mark.parametrize(
    ("raw", "one_line"),
    [
        ("a\r\nBcc: x@y", "a Bcc: x@y"),
        ("a\x00b\x1bc", "a b c"),
        ("bidi\u202etxt.exe", "bidi txt.exe"),
        ("line\u2028sep", "line sep"),
        ("go to https://evil.example/x", "go to hxxps：//evil.example/x"),
        ("www.evil.example", "www．evil.example"),
        ("x" * 400, "x" * 299 + "…"),
    ],
)
def test_one_line_fields_have_no_breaks_controls_or_links(raw, one_line):
    assert line(raw) == one_line


def test_markdown_syntax_becomes_inert_look_alikes():
    assert (
        md(line("<b>*x*</b> [a](b) `c` # h | ~d~ _e_ !f"))
        == "＜b＞＊x＊＜/b＞ ［a］（b） ｀c｀ ＃ h ｜ ～d～ ＿e＿ ！f"
    )
    assert block("one\r\ntwo\rthree\x07") == "one\ntwo\nthree"


def test_a_long_explanation_is_capped():
    message = alert_message(
        {"id": 1, "severity": "high", "category": "bulk-egress", "title": "t", "explanation": "y" * 10_000}
    )
    assert len(message.text) < 3000 and "…" in message.text
