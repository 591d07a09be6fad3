"""The dashboard: open incidents by severity and category, this week against the last, the trend by
category, files sent out, top users, hosts and devices, and the agents that stopped reporting.

Every figure is counted in SQL (server/console/dashboard.py); the charts are server-side SVG
(server/console/charts.py) that take the width of their card.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markupsafe import Markup

from server.console import dashboard
from server.console.charts import WIDE, Bar, HBar, Pair, Series, bar_chart, hbar_chart, pair_chart, stacked_chart
from server.console.labels import label
from server.console.sessions import ConsoleUser
from server.console.web import PREFIX, Console

TREND_SERIES = 5  # the busiest categories get a colour each; the rest are summed as "other"


def charts(data: dashboard.Figures, _) -> dict[str, Markup]:
    def alerts_link(**kw) -> str:
        return f"{PREFIX}/alerts?{urlencode(kw)}"

    days = [d.strftime("%m-%d") for d in data.days]
    iso_days = [d.isoformat() for d in data.days]
    severity = [
        HBar(_(label("severity", s)), n, f"{_(label('severity', s))}: {n}", f"fill-{s}", alerts_link(severity=s))
        for s, n in data.open_by_severity
    ]
    category = [
        HBar(_(label("category", c)), n, f"{_(label('category', c))}: {n}", f"s{i % 6}", alerts_link(category=c))
        for i, (c, n) in enumerate(data.open_by_category)
    ]
    week = [
        Pair(
            _(label("category", c)),
            now,
            before,
            _("%(what)s: %(now)s in the last 7 days, %(before)s in the 7 before")
            % {"what": _(label("category", c)), "now": now, "before": before},
            alerts_link(category=c),
        )
        for c, now, before in data.week.by_category
    ]
    names = list(data.trend)
    series = [Series(_(label("category", c)), data.trend[c], f"s{i}") for i, c in enumerate(names[:TREND_SERIES])]
    if len(names) > TREND_SERIES:
        rest = [sum(data.trend[c][i] for c in names[TREND_SERIES:]) for i in range(len(days))]
        series.append(Series(_("other categories"), rest, "s-other"))
    users = [
        HBar(v, n, f"{v}: {n}", "bar", f"{PREFIX}/people/user?{urlencode({'name': v})}") for v, n in data.top_users
    ]
    hosts = [
        HBar(v, n, f"{v}: {n}", "bar", f"{PREFIX}/people/host?{urlencode({'name': v})}") for v, n in data.top_hosts
    ]
    devices = [
        HBar(
            f"{d['vendor']} {d['model']}".strip() or d["identity"],
            d["times_seen"],
            f"{d['vendor']} {d['model']} {d['label']}: {d['times_seen']}",
            "bar",
            f"{PREFIX}/devices/{d['id']}",
        )
        for d in data.top_devices
    ]
    return {
        "severity": hbar_chart(severity, _("Open incidents by severity")),
        "category": hbar_chart(category, _("Open incidents by category")) if category else Markup(""),
        "week": pair_chart(
            week, _("last 7 days"), _("the 7 days before"), _("New alerts by category, this week against last")
        )
        if week
        else Markup(""),
        "trend": stacked_chart(days, series, _("Alerts per day by category, last 30 days"), titles=iso_days),
        "files": bar_chart(
            [Bar(d, n, f"{i}: {n}") for d, i, n in zip(days, iso_days, data.files_per_day, strict=True)],
            _("Files sent out per day, last 30 days"),
            width=WIDE,
        ),
        "users": hbar_chart(users, _("Top users (alerts, 30 days)")) if users else Markup(""),
        "hosts": hbar_chart(hosts, _("Top hosts (alerts, 30 days)")) if hosts else Markup(""),
        "devices": hbar_chart(devices, _("Top devices (times mounted)")) if devices else Markup(""),
    }


def register(router: APIRouter, console: Console) -> None:
    @router.get(PREFIX + "/", include_in_schema=False)
    def dashboard_page(request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        store = request.app.state.store
        _ = console.translations[console.lang(request)].gettext
        with store.engine.connect() as conn:
            data = dashboard.figures(
                conn, store.clock(), console.zone(request), request.app.state.config.agent_offline_s
            )
        return console.render(request, "dashboard.html", user, data=data, charts=charts(data, _))
