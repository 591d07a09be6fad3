"""The device register's part of the API: media seen by any agent, and the allow-list (README.md, "HTTP API")."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from loguru import logger

from server.api import Limit, _cursor, _utc
from server.auth import Caller, admin_caller, reader_caller
from server.devices import PatternError
from server.models import DeviceAllowIn

router = APIRouter(prefix="/api/v1")


@router.get("/devices")
def list_devices(
    request: Request,
    allowed: bool | None = Query(None, description="only devices the allow-list allows (true) or does not (false)"),
    q: str | None = Query(None, min_length=1, max_length=200, description="text in the identity, names, label, host or user"),
    agent_id: str | None = Query(None, pattern="^[A-Za-z0-9-]{1,64}$"),
    since: datetime | None = Query(None, description="last seen at or after"),
    limit: int = Limit,
    cursor: str | None = Query(None, max_length=32),
    caller: Caller = Depends(reader_caller),
) -> dict:
    since_text = _utc(since).isoformat(timespec="milliseconds").replace("+00:00", "Z") if since else None
    items, next_cursor = request.app.state.store.devices.list(allowed, q, agent_id, since_text, limit, _cursor(cursor))
    return {"devices": items, **({"next": next_cursor} if next_cursor else {})}


@router.get("/devices/allow")
def list_allowed(request: Request, caller: Caller = Depends(reader_caller)) -> dict:
    return {"allow": request.app.state.store.devices.allow_entries()}


@router.post("/devices/allow", status_code=201)
def add_allowed(body: DeviceAllowIn, request: Request, caller: Caller = Depends(admin_caller)) -> dict:
    expires_at = _utc(body.expires_at)
    if expires_at is not None and expires_at <= request.app.state.store.clock():
        raise HTTPException(422, "expires_at is in the past: an expired entry allows nothing")
    try:
        entry = request.app.state.store.devices.allow(body.pattern, body.owner, body.note, expires_at, f"token:{caller.name}")
    except PatternError as exc:
        raise HTTPException(422, str(exc)) from None
    if entry is None:
        raise HTTPException(409, "this pattern is already on the allow-list")
    logger.info("device allowed id={} pattern={!r} by=token:{!r}", entry["id"], entry["pattern"], caller.name)
    return entry


@router.delete("/devices/allow/{entry_id}")
def remove_allowed(entry_id: int, request: Request, caller: Caller = Depends(admin_caller)) -> dict:
    if not (0 < entry_id < 2**63 and request.app.state.store.devices.disallow(entry_id, f"token:{caller.name}")):
        raise HTTPException(404, "no such allow-list entry")
    logger.info("device allow-list entry removed id={} by=token:{!r}", entry_id, caller.name)
    return {"id": entry_id, "removed": True}
