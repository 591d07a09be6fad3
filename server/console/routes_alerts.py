"""The alert list with its bulk actions, one alert's page and its evidence pack (the dashboard: routes_dashboard.py)."""


from __future__ import annotations

import math
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from loguru import logger

from server import alertquery, incidents, savedviews, triage
from server.alerts import TransitionConflict
from server.console import queries
from server.console.exports import ZIP_TYPE
from server.console.labels import STATUS
from server.console.sessions import ConsoleUser
from server.console.web import PREFIX, Console, back, first
from server.firmtime import zone as firm_zone
from server.packexport import alert_pack
from server.times import parse_ts

PER_PAGE = 50
MAX_COMMENT_CHARS = 4000
CHANGES = ("acknowledged", "resolved", "false_positive")
CLOSED = ("resolved", "false_positive")  # not offered "acknowledge" (list and alert page)


def alert_filter(
    status: str | None, severity: str | None, category: str | None, since: str | None, zone: str = "UTC", **more: str | None
) -> queries.AlertFilter:
    """Filters from the query string (exports: every status unless one is asked for, times on `zone`'s
    clock); unknown values are refused, not ignored."""
    try:
        given = {"status": status, "severity": severity, "category": category, "since": since, **more}
        return alertquery.parse_filter(given, firm_zone(zone), "all")
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def list_filter(request: Request, given: dict[str, str], me: str) -> alertquery.AlertFilter:
    """The list's filters: open and acknowledged unless asked otherwise, times on the firm's clock;
    assignee=me is the signed-in user."""
    if given.get("assignee") == "me":
        given = {**given, "assignee": me}
    try:
        return alertquery.parse_filter(given, firm_zone(request.app.state.config.timezone))  # server.timezone
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _ids(fields: dict[str, list[str]]) -> list[int]:
    return [int(v) for v in fields.get("id", [])[: triage.MAX_BULK] if v.isascii() and v.isdigit() and len(v) < 19]


def _comment(fields: dict[str, list[str]]) -> str:
    """The officer's note; one longer than the form allows is refused (422), not cut short."""
    comment = first(fields, "comment").strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise HTTPException(422, f"comment: is {len(comment)} characters, at most {MAX_COMMENT_CHARS}")
    return comment


def _status_refused(value: str, allowed: str) -> HTTPException:
    """A status the form may not send, said in a shape server/console/validation.py words in Chinese."""
    return HTTPException(422, f"status: '{value[:100]}' is not {allowed}")


def _kept(fields: dict[str, list[str]]) -> dict[str, str]:
    """The list's filters a form carried back (its hidden 'back' field), filter keys only."""
    return dict(parse_qsl(savedviews.clean_query(first(fields, "back"))))


def register(router: APIRouter, console: Console) -> None:
    @router.get(PREFIX + "/alerts", include_in_schema=False)
    def alert_list(
        request: Request,
        given: dict[str, str] = Depends(alertquery.given_filters),
        sort: str = Query("id", max_length=16),
        order: str = Query("desc", pattern="^(asc|desc)$"),
        page: int = Query(1, ge=1, le=100_000),
        user: ConsoleUser = Depends(console.user),
    ) -> Response:
        f = list_filter(request, given, user.name)
        store = request.app.state.store
        with store.engine.connect() as conn:
            rows, total = queries.alert_page(conn, f, sort if sort in queries.ALERT_SORTS else "id", order == "desc", page, PER_PAGE)
            known = queries.categories(conn)
            people = triage.analysts(conn)
            views = savedviews.list_views(conn, user.name)
        return console.render(
            request, "alerts.html", user, rows=rows, total=total, page=page, pages=max(1, math.ceil(total / PER_PAGE)),
            filters=given, sort=sort, order=order, categories=known, statuses=alertquery.STATUS_CHOICES, severities=queries.SEVERITIES,
            levels=alertquery.LEVELS, sorts=list(queries.ALERT_SORTS), analysts=people, views=views, closed=CLOSED,
            changed=request.query_params.get("n"), here_query=savedviews.clean_query(request.url.query),
        )

    @router.post(PREFIX + "/alerts/bulk", include_in_schema=False)
    def bulk(request: Request, user: ConsoleUser = Depends(console.user), fields: dict = Depends(console.user_form)) -> Response:
        kept = _kept(fields)
        action = first(fields, "status") or first(fields, "action")
        if action not in (*CHANGES, "assign"):
            raise _status_refused(action, "a bulk action: one of acknowledged, resolved, false_positive or assign")
        ids = _ids(fields)
        if not ids:
            return back("/alerts", **kept, msg="nothing")
        store, actor = request.app.state.store, f"console:{user.name}"
        if action == "assign":
            try:
                done = triage.assign(store.engine, ids, first(fields, "assignee")[:255], actor, store.clock())
            except triage.UnknownAssignee as exc:
                raise HTTPException(422, str(exc)) from None
        else:
            done = triage.set_status(store.engine, ids, action, _comment(fields), actor, store.clock())
        return back("/alerts", **kept, msg="changed", n=str(done.changed))

    @router.post(PREFIX + "/alerts/views", include_in_schema=False)
    def save_view(request: Request, user: ConsoleUser = Depends(console.user), fields: dict = Depends(console.user_form)) -> Response:
        store = request.app.state.store
        try:
            view = savedviews.save_view(store.engine, user.name, first(fields, "name"), first(fields, "back"), store.clock())
        except savedviews.ViewRefused as exc:
            raise HTTPException(422, str(exc)) from None
        logger.info("saved view stored id={} by=console:{!r}", view.id, user.name)
        return back("/alerts", **dict(parse_qsl(view.query)), msg="view_saved")

    @router.get(PREFIX + "/alerts/views/{view_id}", include_in_schema=False)
    def open_view(view_id: int, request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        with request.app.state.store.engine.connect() as conn:
            view = savedviews.get_view(conn, user.name, view_id) if 0 < view_id < 2**63 else None
        if view is None:
            raise HTTPException(404, "no such saved view")
        return back("/alerts", **dict(parse_qsl(view.query)))

    @router.post(PREFIX + "/alerts/views/{view_id}/delete", include_in_schema=False)
    def delete_view(view_id: int, request: Request, user: ConsoleUser = Depends(console.user), fields: dict = Depends(console.user_form)) -> Response:
        if not (0 < view_id < 2**63 and savedviews.delete_view(request.app.state.store.engine, user.name, view_id)):
            raise HTTPException(404, "no such saved view")
        return back("/alerts", msg="view_deleted")

    @router.post(PREFIX + "/alerts/{alert_id}/assign", include_in_schema=False)
    def assign_alert(alert_id: int, request: Request, user: ConsoleUser = Depends(console.user), fields: dict = Depends(console.user_form)) -> Response:
        store = request.app.state.store
        if not (0 < alert_id < 2**63 and store.get_alert(alert_id) is not None):
            raise HTTPException(404, "no such alert")
        try:
            triage.assign(store.engine, [alert_id], first(fields, "assignee")[:255], f"console:{user.name}", store.clock())
        except triage.UnknownAssignee as exc:
            raise HTTPException(422, str(exc)) from None
        return back(f"/alerts/{alert_id}", msg="updated")

    @router.get(PREFIX + "/alerts/{alert_id}", include_in_schema=False)
    def alert_page(
        alert_id: int, request: Request, page: int = Query(1, ge=1, le=10**7), user: ConsoleUser = Depends(console.user)
    ) -> Response:
        store = request.app.state.store
        alert = store.get_alert(alert_id, incident_page=True) if 0 < alert_id < 2**63 else None
        if alert is None:
            raise HTTPException(404, "no such alert")
        files = None  # an incident's files, a page of them (server/incidents.py)
        if alert["kind"] == "incident":
            with store.engine.connect() as conn:
                files = incidents.files_page(conn, alert_id, page, incidents.FILES_PER_PAGE)
        timeline = []
        if alert["user"]:
            times = [e["ts"] for e in alert["events"] if e.get("ts")] or [t for t in (alert.get("first_ts"),) if t]
            around = parse_ts(min(times)) if times else parse_ts(alert["created_at"])
            with store.engine.connect() as conn:
                timeline = queries.user_timeline(conn, alert["user"], around)
        evidence = set(alert["event_ids"])
        with store.engine.connect() as conn:
            people = triage.analysts(conn)
        return console.render(
            request, "alert.html", user, alert=alert, timeline=timeline, evidence=evidence, changes=CHANGES, analysts=people, closed=CLOSED, files=files,
            signing_fingerprint=request.app.state.signer.key().fingerprint,  # packs are signed with it (server/signing.py)
        )

    @router.post(PREFIX + "/alerts/{alert_id}", include_in_schema=False)
    def change_alert(alert_id: int, request: Request, user: ConsoleUser = Depends(console.user), fields: dict = Depends(console.user_form)) -> Response:
        status = first(fields, "status")
        if status not in CHANGES and status != "open":
            raise _status_refused(status, f"a status: one of {', '.join(STATUS)}")
        comment = _comment(fields)
        store = request.app.state.store
        try:
            changed = 0 < alert_id < 2**63 and store.update_alert(alert_id, status, comment, f"console:{user.name}")
        except TransitionConflict as exc:  # e.g. a colleague resolved it while this page was open
            logger.info("alert change refused id={} from={} to={} by=console:{!r}", alert_id, exc.current, exc.status, user.name)
            raise HTTPException(409, str(exc)) from None
        if not changed:
            raise HTTPException(404, "no such alert")
        logger.info("alert updated id={} status={} by=console:{!r}", alert_id, status, user.name)
        return back(f"/alerts/{alert_id}", msg="updated")

    @router.get(PREFIX + "/signing-key.pem", include_in_schema=False)
    def signing_key(request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        """The public key packs and seals are signed with, to hand to whoever checks them."""
        headers = {"Content-Disposition": 'attachment; filename="miwei-collector-public-key.pem"'}
        return Response(request.app.state.signer.key().public_pem, media_type="application/x-pem-file", headers=headers)

    @router.get(PREFIX + "/alerts/{alert_id}/evidence.zip", include_in_schema=False)
    def evidence(alert_id: int, request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        store, config = request.app.state.store, request.app.state.config
        # signed, with the seals of its events; audited with its SHA-256 (server/packexport.py)
        key = request.app.state.signer.key()
        pack = (  # the report in it (report.html, report.pdf) in the viewer's language
            alert_pack(store, alert_id, key, firm_zone(config.timezone), f"console:{user.name}", lang=console.lang(request), offline_after_s=config.agent_offline_s)
            if 0 < alert_id < 2**63 else None
        )
        if pack is None:
            raise HTTPException(404, "no such alert")
        data = pack.data
        logger.info("evidence pack exported alert={} sha256={} by=console:{!r}", alert_id, pack.sha256, user.name)
        headers = {"Content-Disposition": f'attachment; filename="miwei-alert-{alert_id}-evidence.zip"'}
        return Response(data, media_type=ZIP_TYPE, headers=headers)
