"""Notifications in the firm's language (server.language): all Chinese or all English, the
explanation's part in that language, the rule's Chinese title; no setting in code: both, as before."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from rules.explain import bilingual
from server.app import create_app
from server.config import load_server_config
from server.notify.channels import ChannelSpec
from server.notify.messages import alert_message, digest_message
from tests.server.factories import make_egress
from tests.server.notify_rig import enroll_agent, http_receiver, post_events

CJK = re.compile(r"[\u4e00-\u9fff]")
ALERT = {
    "id": 7, "rule_id": "MW-EGRESS-CLASSIFIED", "category": "classified-egress", "severity": "critical",
    "title": "Classified content written to an egress place", "host": "pc-0042", "user": "zhang.wei", "count": 1,
    "created_at": datetime(2026, 3, 2, 9, tzinfo=UTC),
    "explanation": bilingual("a.dwg written to removable media.\nSeverity critical.", "用户 zhang.wei 把文件 a.dwg 复制到移动存储介质。\n严重程度：严重。"),
}  # fmt: skip


def test_a_chinese_message_holds_no_english_sentence():
    message = alert_message(ALERT, "https://miwei.example", lang="zh", title_zh="涉密内容写入外发位置")
    assert message.title.startswith("[密卫] 严重 #7：涉密内容写入外发位置")
    assert "复制到移动存储介质" in message.text and "严重程度：严重" in message.text
    for text in (message.text, message.markdown, message.title):
        assert not re.search(r"\b(Severity|Category|Host|User|Time|Count|Rule|Explanation|Console|written)\b", text), (
            text
        )


def test_an_english_message_holds_no_chinese():
    message = alert_message(ALERT, "https://miwei.example", lang="en", title_zh="涉密内容写入外发位置")
    assert message.title.startswith("[MiWei] CRITICAL #7: Classified content written")
    assert "a.dwg written to removable media." in message.text
    for text in (message.text, message.markdown, message.title):
        assert not CJK.search(text), text


def test_without_a_language_a_message_has_both_as_before():
    message = alert_message(ALERT)
    assert message.text.index("密卫告警 #7") < message.text.index("MiWei alert #7")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_digest_is_in_one_language(lang):
    digest = digest_message(
        [dict(ALERT, id=i) for i in range(5)], 3600, 3, lang, {"MW-EGRESS-CLASSIFIED": "涉密内容写入外发位置"}
    )
    if lang == "en":
        assert not CJK.search(digest.text + digest.title) and "MiWei digest" in digest.text
    else:
        assert "MiWei" not in digest.text and "涉密内容写入外发位置" in digest.text and "Classified" not in digest.text


def test_the_setting_is_read_and_refused_when_unknown(tmp_path):
    path = tmp_path / "server.yaml"
    base = "server:\n  enroll_secret: correct-horse-battery-staple-42\n"
    path.write_text(base)
    assert load_server_config(str(path)).language == "zh"
    path.write_text(base + "  language: en\n")
    assert load_server_config(str(path)).language == "en"
    path.write_text(base + "  language: fr\n")
    with pytest.raises(Exception, match="language"):
        load_server_config(str(path))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_collector_sends_in_server_language(config, store, lang):
    with http_receiver() as rig:
        app = create_app(
            dataclasses.replace(
                config,
                notify=(ChannelSpec(url=rig.url, severities=("critical",)),),
                notify_allow_private=True,
                language=lang,
            ),
            store,
        )
        app.state.notify_poll_s = 3600.0
        with TestClient(app) as client:
            post_events(client, enroll_agent(client), [make_egress("core")])
            assert client.app.state.notifier.run_once() == {"sent": 1}
        (hit,) = rig.hits
        body = hit.json()["message"]
        if lang == "zh":
            assert (
                "涉密内容写入外发位置" in hit.json()["title"] and "MiWei alert" not in body and "用户 zhang.wei" in body
            )
        else:
            assert not CJK.search(body + hit.json()["title"]) and "written to removable media" in body
