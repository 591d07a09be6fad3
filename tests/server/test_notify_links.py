"""No link in a notification comes from an agent: bare domains and mailto: in file names are defanged.

Chat and mail clients turn `drop.cn/x`, `evil.example.com` and `mailto:a@b.com` into links without
any http://; an employee who names a file so would put a link in front of the security team.
"""

from __future__ import annotations

import json

import pytest

from server.notify.messages import alert_message, digest_message, line

LINKS = ("drop.cn", "evil.example.com", "mailto:", "boss@corp.com.cn", "corp.com", "公司.中国")
NAME = "/media/zhang/KINGSTON/报价 drop.cn/x mailto:boss@corp.com.cn evil.example.com 公司.中国.docx"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("evil.example.com", "evil．example．com"),
        ("copy to drop.cn/x", "copy to drop．cn/x"),
        ("a.com.cn", "a．com．cn"),  # every dot: "a.com" alone would still be a link
        ("mailto:boss@evil.com", "mailto：boss@evil．com"),
        ("MailTo:x", "MailTo：x"),
        ("javascript:alert(1)", "javascript：alert(1)"),
        ("报价单.zip", "报价单．zip"),  # .zip is a top-level domain: clients link it
        ("user@公司.中国", "user@公司．中国"),
        ("报价单.docx", "报价单.docx"),  # file types that are no top-level domain stay as they are
        ("design v1.2.3.dwg", "design v1.2.3.dwg"),
        ("10.0.0.1", "10.0.0.1"),
        ("zhang.wei", "zhang.wei"),
        ("www.evil.example", "www．evil.example"),
    ],
)
def test_bare_domains_and_mailto_are_defanged(raw, shown):
    assert line(raw) == shown


@pytest.mark.reliability(
    area="input",
    fault="A file name that is a link without http://",
    how="a path holding `drop.cn/x`, `mailto:boss@corp.com.cn`, `evil.example.com` and `公司.中国` in an alert's explanation, host and user, and in a digest's titles",
    outcome="every dot of such a name is `．` and `mailto:` is `mailto：` in the plain text, Markdown, JSON and subject",
)
def test_no_bare_link_survives_in_any_rendering():
    alert = {
        "id": 9,
        "severity": "critical",
        "category": "classified-egress",
        "title": f"copied {NAME}",
        "host": "pc.drop.cn",
        "user": "mailto:boss@corp.com",
        "rule_id": "MW-EGRESS-CLASSIFIED",
        "explanation": f"{NAME} written to USB stick KINGSTON",
    }
    message = alert_message(alert)
    digest = digest_message([dict(alert, id=i) for i in range(3)], 3600, 30)
    for rendered in (
        message.title,
        message.text,
        message.markdown,
        json.dumps(message.data, ensure_ascii=False),
        digest.text,
        digest.markdown,
        json.dumps(digest.data, ensure_ascii=False),
    ):
        for link in LINKS:
            assert link not in rendered, (link, rendered)
    assert "drop．cn/x" in message.text and "mailto：boss@corp．com．cn" in message.text
