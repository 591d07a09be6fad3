"""The dashboard, the alert list with its bulk actions, one alert's page and its evidence pack."""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from loguru import logger

from server import fleetlist
from server.console import queries
from server.console.charts import Bar, bar_chart
from server.console.exports import ZIP_TYPE
from server.console.labels import STATUS
from server.console.sessions import ConsoleUser
from server.console.web import PREFIX, Console, back, first, parse_since
from server.firmtime import zone as firm_zone
from server.packexport import alert_pack
from server.times import parse_ts

PER_PAGE = 50
MAX_COMMENT_CHARS = 4000
CHANGES = ("acknowledged", "resolved", "false_positive")


def alert_filter(status: str | None, severity: str | None, category: str | None, since: str | None) -> queries.AlertFilter:
    """Filters from the query string; unknown values are refused, not ignored."""
    if status and status not in queries.STATUSES:
        raise HTTPException(422, f"status must be one of {', '.join(queries.STATUSES)}")
    if severity and severity not in queries.SEVERITIES:
        raise HTTPException(422, f"severity must be one of {', '.join(queries.SEVERITIES)}")
    if category and (len(category) > 64 or not all(c.isalnum() or c == "-" for c in category)):
        raise HTTPException(422, "category is lower-case letters, digits and '-'")
    return queries.AlertFilter(status or None, severity or None, category or None, parse_since(since))


def register(router: APIRouter, console: Console) -> None:
    @router.get(PREFIX + "/", include_in_schema=False)
    def dashboard(request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        store = request.app.state.store
        _ = console.translations[console.lang(request)].gettext
        offline_s = request.app.state.config.agent_offline_s
        with store.engine.connect() as conn:
            data = queries.dashboard(conn, store.clock())
            # counted in SQL (server/fleetlist.py); pending and retired agents are neither up nor down
            online = fleetlist.count(conn, fleetlist.FleetFilter(state="online"), store.clock(), offline_s)
            offline = sum(fleetlist.count(conn, fleetlist.FleetFilter(state=s), store.clock(), offline_s) for s in ("offline", "stopped"))
        charts = {
            "alerts": bar_chart([Bar(d[5:], n, f"{d}: {n}") for d, n in data.alerts_per_day], _("Alerts per day, last 30 days")),
            "egress": bar_chart([Bar(d[5:], n, f"{d}: {n}") for d, n in data.egress_per_day], _("Egress events per day, last 30 days")),
        }
        return console.render(request, "dashboard.html", user, data=data, charts=charts, online=online, offline=offline)

    @router.get(PREFIX + "/alerts", include_in_schema=False)
    def alert_list(
        request: Request,
        status: str | None = None,
        severity: str | None = None,
        category: str | None = None,
        since: str | None = None,
        sort: str = Query("id", max_length=16),
        order: str = Query("desc", pattern="^(asc|desc)$"),
        page: int = Query(1, ge=1, le=100_000),
        user: ConsoleUser = Depends(console.user),
    ) -> Response:
        f = alert_filter(status, severity, category, since)
        store = request.app.state.store
        with store.engine.connect() as conn:
            rows, total = queries.alert_page(conn, f, sort if sort in queries.ALERT_SORTS else "id", order == "desc", page, PER_PAGE)
            known = queries.categories(conn)
        filters = {"status": status, "severity": severity, "category": category, "since": since}
        return console.render(
            request, "alerts.html", user, rows=rows, total=total, page=page, pages=max(1, math.ceil(total / PER_PAGE)),
            filters=filters, sort=sort, order=order, categories=known, statuses=queries.STATUSES, severities=queries.SEVERITIES,
            sorts=list(queries.ALERT_SORTS),
        )

    @router.post(PREFIX + "/alerts/bulk", include_in_schema=False)
    def bulk(request: Request, user: ConsoleUser = Depends(console.user), fields: dict = Depends(console.user_form)) -> Response:
        status = first(fields, "status")
        if status not in CHANGES:
            raise HTTPException(422, f"status must be one of {', '.join(CHANGES)}")
        ids = [int(v) for v in fields.get("id", []) if v.isascii() and v.isdigit() and len(v) < 19]
        if not ids:
            return back("/alerts", msg="nothing")
        comment = first(fields, "comment")[:MAX_COMMENT_CHARS]
        store = request.app.state.store
        ids = ids[: PER_PAGE * 4]  # a page's worth, with room; a form never holds more
        for alert_id in ids:
            store.update_alert(alert_id, status, comment, f"console:{user.name}")
        logger.info("alerts updated in bulk count={} status={} by=console:{!r}", len(ids), status, user.name)
        return back("/alerts", msg="updated")

    @router.get(PREFIX + "/alerts/{alert_id}", include_in_schema=False)
    def alert_page(alert_id: int, request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        store = request.app.state.store
        alert = store.get_alert(alert_id) if 0 < alert_id < 2**63 else None
        if alert is None:
            raise HTTPException(404, "no such alert")
        timeline = []
        if alert["user"]:
            times = [e["ts"] for e in alert["events"] if e.get("ts")]
            around = parse_ts(min(times)) if times else parse_ts(alert["created_at"])
            with store.engine.connect() as conn:
                timeline = queries.user_timeline(conn, alert["user"], around)
        evidence = set(alert["event_ids"])
        return console.render(
            request, "alert.html", user, alert=alert, timeline=timeline, evidence=evidence, changes=CHANGES,
            signing_fingerprint=request.app.state.signer.key().fingerprint,  # packs are signed with it (server/signing.py)
        )

    @router.post(PREFIX + "/alerts/{alert_id}", include_in_schema=False)
    def change_alert(alert_id: int, request: Request, user: ConsoleUser = Depends(console.user), fields: dict = Depends(console.user_form)) -> Response:
        status = first(fields, "status")
        if status not in CHANGES and status != "open":
            raise HTTPException(422, f"status must be one of {', '.join(STATUS)}")
        comment = first(fields, "comment").strip()[:MAX_COMMENT_CHARS]
        store = request.app.state.store
        if not (0 < alert_id < 2**63 and store.update_alert(alert_id, status, comment, f"console:{user.name}")):
            raise HTTPException(404, "no such alert")
        logger.info("alert updated id={} status={} by=console:{!r}", alert_id, status, user.name)
        return back(f"/alerts/{alert_id}", msg="updated")

    @router.get(PREFIX + "/alerts/{alert_id}/evidence.zip", include_in_schema=False)
    def evidence(alert_id: int, request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        store, config = request.app.state.store, request.app.state.config
        # signed, with the seals of its events; audited with its SHA-256 (server/packexport.py)
        key = request.app.state.signer.key()
        pack = alert_pack(store, alert_id, key, firm_zone(config.timezone), f"console:{user.name}") if 0 < alert_id < 2**63 else None
        if pack is None:
            raise HTTPException(404, "no such alert")
        data = pack.data
        logger.info("evidence pack exported alert={} sha256={} by=console:{!r}", alert_id, pack.sha256, user.name)
        headers = {"Content-Disposition": f'attachment; filename="miwei-alert-{alert_id}-evidence.zip"'}
        return Response(data, media_type=ZIP_TYPE, headers=headers)
