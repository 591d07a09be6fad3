"""The dashboard's figures against a database whose answer is known, on the firm's days; its charts."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
from sqlalchemy import insert

from server.schema import alerts
from tests.server.factories import KINGSTON, T0, at, make_egress, make_event

# T0 is 2026-03-02 09:00 UTC, 17:00 in Shanghai (the default server.timezone)
ALERTS = [  # (hours before T0, severity, category, status, user)
    (1, "critical", "classified-egress", "open", "zhang.wei"),
    (2, "critical", "classified-egress", "open", "zhang.wei"),
    (3, "critical", "classified-egress", "open", "wang.fang"),
    (72, "high", "bulk-egress", "acknowledged", "zhang.wei"),
    (9 * 24, "low", "unknown-device", "open", "li.na"),
    (10 * 24, "medium", "off-hours", "resolved", "li.na"),
    (10 * 24 + 1, "medium", "off-hours", "false_positive", "li.na"),
    (15.5, "info", "off-hours", "resolved", "<b>x</b>"),  # 2026-03-01 17:30 UTC: 03-02 01:30 in Shanghai
]


@pytest.fixture
def known(admin, store, clock):
    with store.engine.begin() as conn:
        for hours, severity, category, status, user in ALERTS:
            moment = T0 - timedelta(hours=hours)
            conn.execute(
                insert(alerts).values(
                    rule_id="MW-TEST", category=category, severity=severity, title="t", status=status, created_at=moment,
                    updated_at=moment, host="pc-0042", user=user, count=1, explanation="",
                )
            )  # fmt: skip
    return admin


def test_open_incidents_by_severity_and_category(known):
    html = known.get("/console/").text
    for severity, n in (("critical", 3), ("high", 1), ("medium", 0), ("low", 1), ("info", 0)):
        assert f'<a href="/console/alerts?severity={severity}"><title>{severity.title()}: {n}</title>' in html
    assert '<a href="/console/alerts?category=classified-egress"><title>Classified content leaving: 3</title>' in html
    assert '<a class="count" href="/console/alerts">5</a>' in html  # open or acknowledged


def _week(html: str) -> str:
    return re.search(r'<table class="compact figures">.*?</table>', html, re.S).group(0)


def test_this_week_against_last(known, send, clock):
    html = known.get("/console/").text
    # the 8 alerts: 5 in the last 7 firm's days (1, 2, 3, 15.5 and 72 hours ago), 3 in the 7 before
    assert re.search(r"New alerts</td><td class=\"num\">5</td><td class=\"num\">3</td>", _week(html))
    assert "Off-hours access: 1 in the last 7 days, 2 in the 7 before" in html
    send(*[make_egress("core", ts=at(-3600 * h), path=f"/media/zhang/KINGSTON/{h}.dwg") for h in (1, 2, 30)])
    send(make_egress("core", ts=at(-3600 * 24 * 8)))
    week = _week(known.get("/console/").text)
    assert re.search(r"Files sent out</td><td class=\"num\">3</td><td class=\"num\">1</td>", week)


def test_trend_by_category_on_the_firms_days(known):
    html = known.get("/console/").text
    # 17:30 UTC on 03-01 is 01:30 on 03-02 in Shanghai: it counts on the firm's 03-02 with the others of that day
    assert "<title>2026-03-02 Classified content leaving: 3</title>" in html
    assert "<title>2026-03-02 Off-hours access: 1</title>" in html
    assert "<title>2026-03-01 Off-hours access" not in html


def test_trend_in_utc_moves_the_late_alert(known, client):
    client.app.state.config = dataclasses.replace(client.app.state.config, timezone="UTC")
    html = known.get("/console/").text
    assert "<title>2026-03-01 Off-hours access: 1</title>" in html


def test_top_users_link_and_escape(known):
    html = known.get("/console/").text
    assert '<a href="/console/people/user?name=zhang.wei"><title>zhang.wei: 3</title>' in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_agents_not_reporting(known, enroll, clock):
    enroll("pc-silent")
    clock.advance(3600)
    html = known.get("/console/").text
    assert 'href="/console/people/host?name=pc-silent"' in html
    assert re.search(r'<span class="bad">\d+</span> not reporting', html)


def test_charts_take_the_cards_width(known, send):
    send(make_event("media.mounted", path=None, media=dict(KINGSTON), egress="removable", ts=at(-60)))
    html = known.get("/console/").text
    svgs = re.findall(r"<svg [^>]*>", html)
    assert len(svgs) == 8
    for svg in svgs:
        assert 'class="chart"' in svg and re.search(r'viewBox="0 0 \d+ \d+"', svg) and "width=" not in svg
    css = known.get("/console/static/console.css").text
    assert "svg.chart { width: 100%; height: auto; display: block; }" in css


def test_dashboard_in_chinese(known):
    known.cookies.set("mw_lang", "zh")
    html = known.get("/console/").text
    for english in (
        "Open incidents by severity",
        "This week against last",
        "not reporting",
        "Alerts per day by category",
    ):
        assert english not in html


def test_new_charts_escape_every_text():
    from server.console.charts import HBar, Pair, Series, hbar_chart, pair_chart, short, stacked_chart

    evil = '<script>alert("x")</script>&'
    drawn = [
        hbar_chart([HBar(evil, 3, evil, "bar", f"/console/people/user?name={evil}")], evil),
        pair_chart([Pair(evil, 2, 1, evil, "/x?a=1&b=2")], evil, evil, evil),
        stacked_chart(["03-02"], [Series(evil, [4], "s0")], evil, titles=[evil]),
    ]
    for svg in drawn:
        assert "<script>" not in svg and "&lt;script&gt;" in svg and "&amp;" in svg
    assert 'href="/x?a=1&amp;b=2"' in drawn[1]
    assert short("涉密图纸目录清单", 8) == "涉密图纸…" and short("abc", 8) == "abc"
