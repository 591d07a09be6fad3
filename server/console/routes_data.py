"""Agents' approve and retire forms, event search, the secret register, the device register (allow/deny) and the table exports."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from loguru import logger

from server import firmtime
from server.console import exporttables, queries, routes_register
from server.console.exports import CSV_TYPE, XLSX_TYPE, Table, in_language, to_csv, to_xlsx
from server.console.i18n import gettext_for
from server.console.labels import label
from server.console.routes_alerts import alert_filter
from server.console.sessions import ConsoleUser
from server.console.web import PREFIX, Console, back, first, parse_since
from server.devices import PatternError

EVENTS_PER_PAGE = 100
EXPORT_MAX_ROWS = 100_000
MAX_TEXT = 200


def event_filter(type: str | None, agent_id: str | None, user: str | None, path: str | None, since: str | None, zone: str = firmtime.DEFAULT_ZONE) -> queries.EventFilter:
    for name, value in (("type", type), ("agent_id", agent_id), ("user", user), ("path", path)):
        if value and len(value) > MAX_TEXT:
            raise HTTPException(422, f"{name} is at most {MAX_TEXT} characters")
    return queries.EventFilter(type or None, agent_id or None, user or None, path or None, parse_since(since, zone))


def register(router: APIRouter, console: Console) -> None:
    # the agents page itself is routes_fleet.py (filtered, paged); its single-agent forms are these
    @router.post(PREFIX + "/agents/{agent_id}/approve", include_in_schema=False)
    def approve_agent(agent_id: str, request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)) -> Response:
        done = len(agent_id) <= 64 and request.app.state.store.fleet.approve(agent_id, f"console:{user.name}")
        if done:
            logger.info("agent approved agent_id={} by=console:{!r}", agent_id, user.name)
        return back("/agents", msg="agent_approved" if done else "not_found")

    @router.post(PREFIX + "/agents/{agent_id}/retire", include_in_schema=False)
    def retire_agent(agent_id: str, request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)) -> Response:
        block = first(fields, "block_host") == "1"
        token_hash = len(agent_id) <= 64 and request.app.state.store.fleet.retire(agent_id, f"console:{user.name}", block_host=block)
        if token_hash:
            budget = getattr(request.app.state, "auth_budget", None)  # out of the guard's cache at once
            if budget is not None:
                budget.forget(bytes.fromhex(token_hash))
            logger.info("agent retired agent_id={} block_host={} by=console:{!r}", agent_id, block, user.name)
        return back("/agents", msg="agent_retired" if token_hash else "not_found")

    @router.get(PREFIX + "/events", include_in_schema=False)
    def events_page(
        request: Request,
        type: str | None = None,
        agent_id: str | None = None,
        user_name: str | None = Query(None, alias="user"),
        path: str | None = None,
        since: str | None = None,
        before: int | None = Query(None, ge=1, lt=2**63),
        user: ConsoleUser = Depends(console.user),
    ) -> Response:
        f = event_filter(type, agent_id, user_name, path, since, console.zone(request))
        with request.app.state.store.engine.connect() as conn:
            rows, next_seq = queries.event_page(conn, f, EVENTS_PER_PAGE, before)
            types = queries.event_types(conn)
        filters = {"type": type, "agent_id": agent_id, "user": user_name, "path": path, "since": since}
        return console.render(request, "events.html", user, rows=rows, next_seq=next_seq, filters=filters, types=types)

    @router.get(PREFIX + "/register", include_in_schema=False)
    def register_page(request: Request, item: int | None = Query(None, ge=1, lt=2**31), user: ConsoleUser = Depends(console.user)) -> Response:
        return routes_register.render_page(request, user, console, item)  # central items, their history, the figures

    routes_register.register_routes(router, console)  # the register's forms, export and import

    @router.get(PREFIX + "/devices", include_in_schema=False)
    def devices_page(request: Request, q: str | None = Query(None, max_length=MAX_TEXT), user: ConsoleUser = Depends(console.user)) -> Response:
        register = request.app.state.store.devices
        items, _ = register.list(None, q or None, None, None, 1000, None)
        return console.render(request, "devices.html", user, devices=items, allow=register.allow_entries(), q=q or "")

    @router.post(PREFIX + "/devices/allow", include_in_schema=False)
    def allow_device(request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)) -> Response:
        store = request.app.state.store
        days = first(fields, "days")
        expires_at = None
        if days:
            if not (days.isascii() and days.isdigit() and 0 < int(days) <= 3650):
                raise HTTPException(422, "days is a whole number from 1 to 3650, or empty for no end")
            expires_at = store.clock() + timedelta(days=int(days))
        try:
            entry = store.devices.allow(first(fields, "pattern"), first(fields, "owner")[:255], first(fields, "note")[:2000], expires_at, f"console:{user.name}")
        except PatternError as exc:
            raise HTTPException(422, str(exc)) from None
        if entry is None:
            return back("/devices", msg="exists")
        logger.info("device allowed id={} pattern={!r} by=console:{!r}", entry["id"], entry["pattern"], user.name)
        return back("/devices", msg="allowed")

    @router.post(PREFIX + "/devices/allow/{entry_id}/remove", include_in_schema=False)
    def disallow_device(entry_id: int, request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)) -> Response:
        if not (0 < entry_id < 2**63 and request.app.state.store.devices.disallow(entry_id, f"console:{user.name}")):
            return back("/devices", msg="not_found")
        logger.info("device allow-list entry removed id={} by=console:{!r}", entry_id, user.name)
        return back("/devices", msg="disallowed")

    @router.get(PREFIX + "/export/{what}.{fmt}", include_in_schema=False)
    def export(
        what: str,
        fmt: str,
        request: Request,
        status: str | None = None,
        severity: str | None = None,
        category: str | None = None,
        since: str | None = None,
        type: str | None = None,
        agent_id: str | None = None,
        user_name: str | None = Query(None, alias="user"),
        path: str | None = None,
        level: str | None = None,
        host: str | None = None,
        device: str | None = None,
        register_item: str | None = None,
        assignee: str | None = None,
        until: str | None = None,
        user: ConsoleUser = Depends(console.user),
    ) -> Response:
        if fmt not in ("csv", "xlsx"):
            raise HTTPException(404, "exports are .csv or .xlsx")
        store = request.app.state.store
        if what == "alerts":
            more = {"level": level, "user": user_name, "host": host, "device": device, "register_item": register_item, "until": until,
                    "assignee": user.name if assignee == "me" else assignee}  # the alert list's filters (server/alertquery.py)
            gettext = gettext_for(console.translations, console.lang(request))
            with store.engine.connect() as conn:  # with devices, match, handling history (server/console/exporttables.py)
                table = exporttables.alerts_table(
                    conn, alert_filter(status, severity, category, since, zone=console.zone(request), **more), EXPORT_MAX_ROWS,
                    console.zone(request), lambda kind, value: gettext(label(kind, value)) if value else "",
                )
        elif what == "events":
            with store.engine.connect() as conn:  # with the medium, place, app, match and register item
                table = exporttables.events_table(conn, event_filter(type, agent_id, user_name, path, since, console.zone(request)), EXPORT_MAX_ROWS)
        elif what == "register":
            table = _register_table(store, console)
        elif what == "devices":
            table = _devices_table(store)
        else:
            raise HTTPException(404, "exports: alerts, events, register, devices")
        table = in_language(table, console.lang(request))  # headers and explanations in the viewer's language
        table = dataclasses.replace(table, rows=list(table.rows))  # counted for the audit log
        data = to_csv(table, console.zone(request)) if fmt == "csv" else to_xlsx(table, console.zone(request))
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        logger.info("export what={} format={} by=console:{!r}", what, fmt, user.name)
        filters = {k: v for k, v in dict(status=status, severity=severity, category=category, since=since, type=type,
                                          agent_id=agent_id, user=user_name, path=path).items() if v}  # fmt: skip
        details = {"rows": len(table.rows), "filters": filters, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        store.audit(f"console:{user.name}", f"export.{what}", f"{what}.{fmt}", details)  # the digest matches a file handed on
        headers = {"Content-Disposition": f'attachment; filename="miwei-{what}-{stamp}.{fmt}"'}
        return Response(data, media_type=CSV_TYPE if fmt == "csv" else XLSX_TYPE, headers=headers)


DEVICE_COLUMNS = ("id", "identity", "vendor", "model", "serial", "label", "fstype", "bus", "first_seen", "last_seen", "last_host", "last_user", "times_seen", "allowed")


def _register_table(store, console: Console) -> Table:
    with store.engine.connect() as conn:
        data = queries.secret_register(conn, console.register)
    rows = [["folder", f["level"], f["host"], f["folder"], f["files"], f["last"]] for f in data.folders]
    rows += [["watched", "", w["hostname"], p, "", ""] for w in data.watched for p in w["paths"]]
    rows += [["egress", e["level"], "", "", e["sources"], e["last"]] for e in data.egress_by_level]
    return Table("secret-register", ("kind", "level", "host", "folder", "files", "last_activity"), rows, times=("last_activity",))


def _devices_table(store) -> Table:
    items, _ = store.devices.list(None, None, None, None, EXPORT_MAX_ROWS, None)
    return Table("devices", DEVICE_COLUMNS, ([d[c] for c in DEVICE_COLUMNS] for d in items), times=("first_seen", "last_seen"))
