"""DingTalk, WeCom, Feishu and Slack payloads, captured offline at the HTTP layer apprise uses.

apprise posts with `requests.post` (Slack with `requests.request`); both are replaced by a recorder
that answers 200, so the exact JSON that would reach the vendor is checked: the endpoint, the
message type, Chinese before English, and an agent's file name that cannot render as markup.
"""

from __future__ import annotations

import json

import pytest
import requests

from server.notify.messages import alert_message, digest_message
from server.notify.transport import DeliveryError, Transport

EVIL = "x\r\nBcc: evil@example.com <img src=x onerror=alert(1)> **bold** [link](http://evil)"
ALERT = {
    "id": 42,
    "rule_id": "MW-EGRESS-CLASSIFIED",
    "category": "classified-egress",
    "severity": "critical",
    "title": "Classified content written to an egress place",
    "host": "pc-0042",
    "user": "zhang.wei",
    "count": 1,
    "created_at": None,
    "explanation": f"/media/zhang/KINGSTON/{EVIL}.dwg written to USB stick KINGSTON, by user zhang.wei",
}
LIVE_MARKUP = ("<img", "**bold**", "*bold*", "[link]", "](", "http://evil", "<http", "\r\nBcc")


@pytest.fixture
def posted(monkeypatch):
    calls: list[dict] = []

    def record(*args, **kwargs):
        if args and args[0] in ("POST", "post"):
            args = args[1:]
        calls.append({"url": args[0] if args else kwargs.get("url"), **kwargs})
        response = requests.Response()
        response.status_code = 200
        hook = "hooks.slack.com" in str(calls[-1]["url"])
        response._content = b"ok" if hook else b'{"ok": true, "errcode": 0, "code": 0, "StatusCode": 0}'
        response.headers["Content-Type"] = "application/json"
        return response

    monkeypatch.setattr(requests, "post", record)
    monkeypatch.setattr(requests, "request", record)
    return calls


def _payload(call: dict) -> dict:
    data = call.get("data") if call.get("data") is not None else call.get("json")
    return json.loads(data) if isinstance(data, (str, bytes)) else data


def _no_live_markup(text: str) -> None:
    for bad in LIVE_MARKUP:
        assert bad not in text, bad


def test_dingtalk_gets_markdown_with_the_file_name_inert(posted):
    Transport(allow_private=False).deliver("dingtalk://0123456789abcdef0123/", alert_message(ALERT))
    (call,) = posted
    assert call["url"].startswith("https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef0123")
    assert call["allow_redirects"] is False and call["timeout"] == (10.0, 10.0)
    payload = _payload(call)
    assert payload["msgtype"] == "markdown"
    text = payload["markdown"]["text"]
    assert text.index("密卫告警 #42") < text.index("MiWei alert #42")
    assert "＜img src＝x onerror＝alert（1）＞ ＊＊bold＊＊ ［link］（hxxp：//evil）" in text
    _no_live_markup(text)
    _no_live_markup(payload["markdown"]["title"])


def test_wecom_gets_plain_text(posted):
    Transport(allow_private=False).deliver("wecombot://abcd1234-botkey", alert_message(ALERT))
    (call,) = posted
    assert call["url"].startswith("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abcd1234-botkey")
    payload = _payload(call)
    assert payload["msgtype"] == "text"
    content = payload["text"]["content"]
    assert content.index("密卫告警 #42") < content.index("MiWei alert #42")
    assert content.count("\r") == 1  # apprise's own line break after the title; the file name's is gone
    assert "\nBcc" not in content and "\n> Bcc: evil" in content  # a forged line is still quoted
    assert "http://evil" not in content and "hxxp：//evil" in content


def test_feishu_gets_a_card_with_lark_markdown_inert(posted):
    Transport(allow_private=False).deliver("feishu://a1b2c3d4-token", alert_message(ALERT))
    (call,) = posted
    assert call["url"].startswith("https://open.feishu.cn/open-apis/bot/v2/hook/a1b2c3d4-token")
    payload = _payload(call)
    assert payload["msg_type"] == "interactive"
    flat = json.dumps(payload, ensure_ascii=False)
    assert "密卫告警 #42" in flat and "MiWei alert #42" in flat
    _no_live_markup(flat)


def test_slack_gets_mrkdwn_with_the_file_name_inert(posted):
    Transport(allow_private=False).deliver(
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/", alert_message(ALERT)
    )
    (call,) = posted
    assert call["url"] == "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    flat = json.dumps(_payload(call), ensure_ascii=False)
    assert "密卫告警 #42" in flat and "MiWei alert #42" in flat
    _no_live_markup(flat)
    assert "<!channel>" not in flat and "<@" not in flat


def test_a_digest_keeps_titles_inert_too(posted):
    alerts = [dict(ALERT, id=i, title=f"{EVIL} {i}") for i in range(15)]
    Transport(allow_private=False).deliver("dingtalk://0123456789abcdef0123/", digest_message(alerts, 3600, 30))
    text = _payload(posted[0])["markdown"]["text"]
    assert "15 条告警" in text and "15 alerts" in text
    assert text.count("- ＃") == 10  # the top 10 titles only
    _no_live_markup(text)


def test_a_vendor_error_is_a_delivery_error_without_the_token(monkeypatch):
    def refuse(*args, **kwargs):
        response = requests.Response()
        response.status_code = 400
        response._content = b'{"errcode": 300001, "errmsg": "token is not exist"}'
        return response

    monkeypatch.setattr(requests, "post", refuse)
    with pytest.raises(DeliveryError) as raised:
        Transport(allow_private=False).deliver("dingtalk://0123456789abcdef0123/", alert_message(ALERT))
    assert "0123456789abcdef0123" not in str(raised.value)
