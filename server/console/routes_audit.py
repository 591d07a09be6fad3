"""The audit log page: filters, paging in SQL, readable actions in the viewer's language, and export.

Registered by routes_admin (whose pages these were). The export is itself audited (export.audit,
with the filters and the row count) before the file is handed out.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from loguru import logger

from server.console import auditlog, queries
from server.console.exports import CSV_TYPE, XLSX_TYPE, Table, to_csv, to_xlsx
from server.console.i18n import gettext_for
from server.console.labels import LABELS, N_
from server.console.sessions import ConsoleUser
from server.console.web import PREFIX, Console

PER_PAGE = 50
EXPORT_MAX_ROWS = 100_000
EXPORT_COLUMNS = ("id", "at", "actor", "action", "what", "target", "client", "details")
# actions the shared catalogue of audit actions (labels.py "action") may not name yet
MORE_ACTIONS = {
    "logout": N_("Signed out"),
    "login.ok": N_("Signed in"),
    "login.failed": N_("Sign-in refused"),
    "login.locked": N_("Sign-ins locked"),
    "channel.create": N_("Notification channel created"),
    "channel.update": N_("Notification channel changed"),
    "channel.delete": N_("Notification channel deleted"),
    "register.create": N_("Register item determined"),
    "register.update": N_("Register item changed"),
    "register.declassify": N_("Register item declassified"),
    "register.destroy": N_("Register item destroyed"),
    "group.move": N_("Agents moved to a group"),
    "group.rules": N_("Placement rules changed"),
    "export.register": N_("Register figures exported"),
    "export.audit": N_("Audit log exported"),
}
KINDS = {  # every action of a kind: the filter's first choices
    "login.": N_("Sign-ins (all)"),
    "alert.": N_("Alert handling (all)"),
    "export.": N_("Exports (all)"),
}


MORE_ACTORS = {"anonymous": N_("Not signed in")}  # a refused sign-in has no actor


def actor_label(actor: str) -> str:
    return LABELS.get("actor", {}).get(actor) or MORE_ACTORS.get(actor) or actor


def action_label(action: str) -> str:
    """The msgid naming an audit action: the shared catalogue's, else this page's, else the action."""
    return LABELS.get("action", {}).get(action) or MORE_ACTIONS.get(action) or KINDS.get(action) or action


def register(router: APIRouter, console: Console) -> None:
    @router.get(PREFIX + "/audit", include_in_schema=False)
    def audit_page(
        request: Request,
        actor: str | None = Query(None, max_length=auditlog.MAX_TEXT),
        action: str | None = Query(None, max_length=64),
        target: str | None = Query(None, max_length=auditlog.MAX_TEXT),
        since: str | None = Query(None, alias="from", max_length=auditlog.MAX_TEXT),
        until: str | None = Query(None, max_length=auditlog.MAX_TEXT),
        page: int = Query(1, ge=1, le=1_000_000),
        user: ConsoleUser = Depends(console.user),
    ) -> Response:
        f = _filter(request, console, actor, action, target, since, until)
        store = request.app.state.store
        with store.engine.connect() as conn:
            rows, total = auditlog.page(conn, f, page, PER_PAGE)
            known = auditlog.actions(conn)
            first_page = not f.given() and page == 1  # alert handling and rule changes below, as before
            changes = queries.alert_changes(conn) if first_page else []
        gettext = gettext_for(console.translations, console.lang(request))
        filters = {"actor": actor, "action": action, "target": target, "from": since, "until": until}
        choices = [(k, gettext(KINDS[k])) for k in KINDS] + [(a, gettext(action_label(a))) for a in known]
        return console.render(
            request, "audit.html", user, rows=rows, total=total, page=page, pages=max(1, -(-total // PER_PAGE)),
            filters={k: v for k, v in filters.items() if v}, choices=choices, action_name=lambda a: gettext(action_label(a)),
            actor_name=lambda a: gettext(actor_label(a)), details=auditlog.details_text, first_page=first_page, changes=changes,
            policies=store.policies.history(50) if first_page else [],
        )  # fmt: skip

    @router.get(PREFIX + "/audit/export.{fmt}", include_in_schema=False)
    def audit_export(
        fmt: str,
        request: Request,
        actor: str | None = Query(None, max_length=auditlog.MAX_TEXT),
        action: str | None = Query(None, max_length=64),
        target: str | None = Query(None, max_length=auditlog.MAX_TEXT),
        since: str | None = Query(None, alias="from", max_length=auditlog.MAX_TEXT),
        until: str | None = Query(None, max_length=auditlog.MAX_TEXT),
        user: ConsoleUser = Depends(console.user),
    ) -> Response:
        if fmt not in ("csv", "xlsx"):
            raise HTTPException(404, "exports are .csv or .xlsx")
        f = _filter(request, console, actor, action, target, since, until)
        store = request.app.state.store
        with store.engine.connect() as conn:
            rows = auditlog.for_export(conn, f, EXPORT_MAX_ROWS)
        gettext = gettext_for(console.translations, console.lang(request))
        table = Table(
            "audit", EXPORT_COLUMNS,
            [[r.id, r.at, r.actor, r.action, gettext(action_label(r.action)), r.target, r.client, auditlog.details_text(r.details)] for r in rows],
            times=("at",),
        )  # fmt: skip
        zone = console.zone(request)
        data = to_csv(table, zone) if fmt == "csv" else to_xlsx(table, zone)
        given = {k: v for k, v in dict(actor=actor, action=action, target=target, since=since, until=until).items() if v}
        digest = hashlib.sha256(data).hexdigest()  # the file handed on can be matched to this export
        store.audit(f"console:{user.name}", "export.audit", f"audit.{fmt}", {"rows": len(rows), "filters": given, "sha256": digest})
        logger.info("export what=audit format={} rows={} by=console:{!r}", fmt, len(rows), user.name)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {"Content-Disposition": f'attachment; filename="miwei-audit-{stamp}.{fmt}"'}
        return Response(data, media_type=CSV_TYPE if fmt == "csv" else XLSX_TYPE, headers=headers)


def _filter(request: Request, console: Console, actor, action, target, since, until) -> auditlog.AuditFilter:
    try:
        return auditlog.parse_filter(actor, action, target, since, until, console.zone(request))
    except auditlog.FilterError as exc:
        raise HTTPException(422, str(exc)) from None
