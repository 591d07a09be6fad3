"""The secret register's part of the API (README.md, "HTTP API"): read by analyst and admin tokens,
changed by admin tokens only. Field checks are server/register_check.py's; a refused field answers
422 with `detail.errors`, a list of {field, message}."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server import register
from server.auth import Caller, admin_caller, reader_caller
from server.console.exports import XLSX_TYPE
from server.database import writing
from server.foundin import NOWHERE, found_in
from server.register_check import CATEGORIES, LEVELS, MAX_LOCATIONS, RegisterError
from server.register_xlsx import MAX_XLSX_BYTES, SheetError, export_xlsx, import_audited

router = APIRouter(prefix="/api/v1")
Loose = Annotated[str, StringConstraints(max_length=10_000)]  # lengths are register_check's to judge, with its message


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    os: Loose
    pattern: Loose


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Loose
    level: Loose
    category: Loose
    owner_department: Loose = ""
    owner_person: Loose = ""
    scope: Loose = ""
    period: Loose
    locations: list[LocationIn] = Field(default_factory=list, max_length=MAX_LOCATIONS * 4)
    reason: Loose = ""  # 定密依据: why it is a secret


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Loose | None = None
    level: Loose | None = None
    category: Loose | None = None
    owner_department: Loose | None = None
    owner_person: Loose | None = None
    scope: Loose | None = None
    period: Loose | None = None
    locations: list[LocationIn] | None = Field(None, max_length=MAX_LOCATIONS * 4)
    reason: Loose


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Loose


def _refused(exc: RegisterError) -> HTTPException:
    return HTTPException(
        422, {"message": str(exc), "errors": [{"field": e.field, "message": e.message} for e in exc.errors]}
    )


@router.get("/register")
def list_register(
    request: Request,
    state: str = Query("all", pattern="^(all|active|declassified|destroyed)$"),
    level: str | None = Query(None, pattern=f"^({'|'.join(LEVELS)})$"),
    category: str | None = Query(None, pattern=f"^({'|'.join(CATEGORIES)})$"),
    q: str | None = Query(None, min_length=1, max_length=200, description="text in the name, owner or locations"),
    caller: Caller = Depends(reader_caller),
) -> dict:
    with request.app.state.store.engine.connect() as conn:
        items = register.list_items(
            conn, active_only=False, state=None if state == "all" else state, level=level, category=category, q=q
        )
        found = found_in(conn)  # pcs, files: where the agents' last heartbeats found each item
    return {"items": [{**i.as_dict(), **dataclasses.asdict(found.get(i.id, NOWHERE))} for i in items]}


@router.get("/register/export.xlsx")
def export_register(request: Request, caller: Caller = Depends(reader_caller)) -> Response:
    store = request.app.state.store
    with store.engine.connect() as conn:
        data = export_xlsx(conn)
    store.audit(f"token:{caller.name}", "export.register_items", "register.xlsx", {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    return Response(
        data, media_type=XLSX_TYPE, headers={"Content-Disposition": 'attachment; filename="miwei-register.xlsx"'}
    )


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    xlsx_base64: Annotated[str, StringConstraints(min_length=1, max_length=MAX_XLSX_BYTES * 4 // 3 + 4)]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = "imported from XLSX"


@router.post("/register/import")
def import_register(body: ImportIn, request: Request, caller: Caller = Depends(admin_caller)) -> dict:
    """The API takes JSON only (server/limits.py): the workbook travels base64-encoded."""
    try:
        data = base64.b64decode(body.xlsx_base64, validate=True)
    except ValueError:
        raise HTTPException(
            422, {"message": "xlsx_base64 is not base64", "errors": ["xlsx_base64 is not base64"]}
        ) from None
    store = request.app.state.store
    try:
        result = import_audited(store.engine, store.clock, data, f"token:{caller.name}", body.reason)
    except SheetError as exc:
        raise HTTPException(
            422, {"message": "the sheet was not imported: nothing changed", "errors": list(exc.errors)}
        ) from None
    return dataclasses.asdict(result)


@router.get("/register/{item_id}")
def get_item(item_id: int, request: Request, caller: Caller = Depends(reader_caller)) -> dict:
    with request.app.state.store.engine.connect() as conn:
        item = register.get(conn, item_id)
        if item is None:
            raise HTTPException(404, "no such register item")
        return {"item": item.as_dict(), "history": [h.as_dict() for h in register.history(conn, item_id)]}


@router.post("/register", status_code=201)
def create_item(body: ItemIn, request: Request, caller: Caller = Depends(admin_caller)) -> dict:
    store = request.app.state.store
    raw = body.model_dump(exclude={"reason"})
    try:
        with writing(store.engine) as conn:
            item = register.create(conn, raw, f"token:{caller.name}", body.reason, store.clock())
    except RegisterError as exc:
        raise _refused(exc) from None
    logger.info("register item determined id={} level={} by=token:{!r}", item.id, item.level, caller.name)
    return item.as_dict()


@router.patch("/register/{item_id}")
def change_item(item_id: int, body: ChangeIn, request: Request, caller: Caller = Depends(admin_caller)) -> dict:
    store = request.app.state.store
    changes = body.model_dump(exclude={"reason"}, exclude_none=True)
    try:
        with writing(store.engine) as conn:
            found = register.update(conn, item_id, changes, f"token:{caller.name}", body.reason, store.clock())
    except RegisterError as exc:
        raise _refused(exc) from None
    except register.StateError as exc:
        raise HTTPException(409, str(exc)) from None
    if found is None:
        raise HTTPException(404, "no such register item")
    item, changed = found
    logger.info("register item changed id={} changed={} by=token:{!r}", item.id, changed, caller.name)
    return {**item.as_dict(), "changed": changed}


@router.post("/register/{item_id}/{action}")
def change_state(
    item_id: int, action: str, body: ReasonIn, request: Request, caller: Caller = Depends(admin_caller)
) -> dict:
    change = {"declassify": register.declassify, "destroy": register.destroy}.get(action)
    if change is None:
        raise HTTPException(404, "register items are declassified or destroyed")
    store = request.app.state.store
    try:
        with writing(store.engine) as conn:
            item = change(conn, item_id, f"token:{caller.name}", body.reason, store.clock())
    except RegisterError as exc:
        raise _refused(exc) from None
    except register.StateError as exc:
        raise HTTPException(409, str(exc)) from None
    if item is None:
        raise HTTPException(404, "no such register item")
    logger.info("register item {} id={} by=token:{!r}", item.state, item.id, caller.name)
    return item.as_dict()
