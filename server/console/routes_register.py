"""The console's central secret register: items with their history, the admin's forms (determine,
change, declassify, destroy), XLSX export and import. The page itself (with the figures from the
events) is routes_data's /register; a form the register refuses renders it again with every error
and the admin's input kept (422), so nothing typed is lost."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from loguru import logger
from starlette.concurrency import run_in_threadpool

from server import register
from server.console import queries
from server.console.exports import XLSX_TYPE
from server.console.sessions import ConsoleUser, same_token
from server.console.web import PREFIX, Console, back, first
from server.database import writing
from server.foundin import NOWHERE, found_in
from server.register_check import CATEGORIES, LEVELS, RegisterError, check_fields, parse_location_lines
from server.register_xlsx import MAX_XLSX_BYTES, SheetError, export_xlsx, import_audited

FORM_FIELDS = ("name", "level", "category", "owner_department", "owner_person", "scope", "period", "locations")
MAX_UPLOAD_BYTES = MAX_XLSX_BYTES + 64 * 1024  # the workbook and the form's other fields


def render_page(request: Request, user: ConsoleUser, console: Console, item_id: int | None = None, status_code: int = 200,
                errors: list[str] | None = None, draft: dict | None = None) -> Response:  # fmt: skip
    """The register page: central items, the chosen item's history, the figures from the events."""
    with request.app.state.store.engine.connect() as conn:
        data = queries.secret_register(conn, console.register)
        items = register.list_items(conn, active_only=False)
        chosen = register.get(conn, item_id) if item_id else None
        history = register.history(conn, chosen.id) if chosen else []
        found = found_in(conn)  # per item: on how many PCs, in how many files (the agents' heartbeats)
    if draft is None and chosen is not None:
        draft = {**chosen.fields.as_dict(), "locations": location_lines(chosen.locations)}
    return console.render(request, "register.html", user, status_code=status_code, data=data, items=items, chosen=chosen,
                          history=history, errors=errors or [], draft=draft or {}, levels=LEVELS, categories=CATEGORIES,
                          found=found, nowhere=NOWHERE)  # fmt: skip


def location_lines(locations: tuple[tuple[str, str], ...]) -> str:
    return "\n".join(f"{os_name}:{pattern}" for os_name, pattern in locations)


def _raw(fields: dict[str, list[str]]) -> tuple[dict, dict, list[str]]:
    """(fields for server/register.py, the form as typed, errors of the locations box)."""
    draft = {f: first(fields, f) for f in FORM_FIELDS}
    locations, errors = parse_location_lines(draft["locations"])
    return {**draft, "locations": locations}, draft, [f"locations: {e}" for e in errors]


def register_routes(router: APIRouter, console: Console) -> None:
    @router.post(PREFIX + "/register/items", include_in_schema=False)
    def create_item(
        request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)
    ) -> Response:
        store = request.app.state.store
        raw, draft, errors = _raw(fields)
        try:
            if errors:  # the other fields are checked too, so every error is shown at once
                check_fields(raw)
                raise RegisterError([])
            with writing(store.engine) as conn:
                item = register.create(conn, raw, f"console:{user.name}", first(fields, "reason"), store.clock())
        except RegisterError as exc:
            errors += [f"{e.field}: {e.message}" for e in exc.errors]
            return render_page(request, user, console, None, 422, errors, draft)
        logger.info("register item determined id={} level={} by=console:{!r}", item.id, item.level, user.name)
        return back("/register", item=item.id, msg="register_saved")

    @router.post(PREFIX + "/register/items/{item_id}", include_in_schema=False)
    def change_item(
        item_id: int,
        request: Request,
        user: ConsoleUser = Depends(console.admin),
        fields: dict = Depends(console.admin_form),
    ) -> Response:
        store = request.app.state.store
        raw, draft, errors = _raw(fields)
        try:
            if errors:  # the other fields are checked too, so every error is shown at once
                check_fields(raw)
                raise RegisterError([])
            with writing(store.engine) as conn:
                found = register.update(
                    conn, item_id, raw, f"console:{user.name}", first(fields, "reason"), store.clock()
                )
        except RegisterError as exc:
            errors += [f"{e.field}: {e.message}" for e in exc.errors]
            return render_page(request, user, console, item_id, 422, errors, draft)
        except register.StateError as exc:
            return render_page(request, user, console, item_id, 409, [str(exc)], draft)
        if found is None:
            return back("/register", msg="not_found")
        logger.info("register item changed id={} changed={} by=console:{!r}", item_id, found[1], user.name)
        return back("/register", item=item_id, msg="register_saved" if found[1] else "register_unchanged")

    @router.post(PREFIX + "/register/items/{item_id}/{action}", include_in_schema=False)
    def change_state(item_id: int, action: str, request: Request, user: ConsoleUser = Depends(console.admin),
                     fields: dict = Depends(console.admin_form)) -> Response:  # fmt: skip
        change = {"declassify": register.declassify, "destroy": register.destroy}.get(action)
        if change is None:
            raise HTTPException(404, "register items are declassified or destroyed")
        store = request.app.state.store
        try:
            with writing(store.engine) as conn:
                item = change(conn, item_id, f"console:{user.name}", first(fields, "reason"), store.clock())
        except RegisterError as exc:
            return render_page(request, user, console, item_id, 422, [f"{e.field}: {e.message}" for e in exc.errors])
        except register.StateError as exc:
            return render_page(request, user, console, item_id, 409, [str(exc)])
        if item is None:
            return back("/register", msg="not_found")
        logger.info("register item {} id={} by=console:{!r}", item.state, item_id, user.name)
        return back("/register", item=item_id, msg=f"register_{item.state}")

    @router.get(PREFIX + "/register/items.xlsx", include_in_schema=False)
    def export_items(request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        store = request.app.state.store
        with store.engine.connect() as conn:
            data = export_xlsx(conn)
        store.audit(f"console:{user.name}", "export.register_items", "register.xlsx", {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        return Response(
            data, media_type=XLSX_TYPE, headers={"Content-Disposition": 'attachment; filename="miwei-register.xlsx"'}
        )

    @router.post(PREFIX + "/register/import", include_in_schema=False)
    async def import_items(request: Request, user: ConsoleUser = Depends(console.admin)) -> Response:
        fields, workbook = await _upload(request, user)
        store = request.app.state.store
        reason = fields.get("reason", "").strip() or "imported from XLSX"
        try:
            result = await run_in_threadpool(
                import_audited, store.engine, store.clock, workbook, f"console:{user.name}", reason[:2000]
            )
        except SheetError as exc:
            return await run_in_threadpool(render_page, request, user, console, None, 422, list(exc.errors))
        logger.info(
            "register imported by=console:{!r} created={} changed={}", user.name, result.created, result.changed
        )
        return back("/register", msg="register_imported")


async def _upload(request: Request, user: ConsoleUser) -> tuple[dict[str, str], bytes]:
    """A multipart/form-data body (the one console form with a file): its text fields and the file
    named `workbook`, after its CSRF token matched the session's (else 403). Parsed by the standard
    library's email parser over a body bounded to MAX_UPLOAD_BYTES."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise HTTPException(415, "send the workbook as multipart/form-data")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"the workbook is larger than {MAX_XLSX_BYTES} bytes")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + bytes(body))
    if not message.is_multipart():
        raise HTTPException(400, "the form is not multipart")
    fields: dict[str, str] = {}
    workbook = b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "workbook":
            workbook = payload
        elif isinstance(name, str) and len(fields) < 10:
            fields[name] = payload.decode("utf-8", "replace")
    if not same_token(fields.get("csrf"), user.csrf):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    if not workbook:
        raise HTTPException(422, "choose an XLSX file to import")
    return fields, workbook
