"""GET /api/v1/audit: the audit log, newest first, paged (server/audit.py)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request

from server.api import Limit, _cursor, _utc
from server.auth import Caller, reader_caller

router = APIRouter(prefix="/api/v1")


@router.get("/audit")
def list_audit(
    request: Request,
    actor: str | None = Query(None, min_length=1, max_length=255, description="e.g. token:secops or console:li.wei"),
    action: str | None = Query(None, pattern="^[a-z_]+(\\.[a-z_]*)*$", max_length=64, description="exact, or a prefix ending in '.' (alert.)"),
    since: datetime | None = None,
    limit: int = Limit,
    cursor: str | None = Query(None, max_length=32),
    caller: Caller = Depends(reader_caller),
) -> dict:
    page = request.app.state.store.list_audit(actor, action, _utc(since), limit, _cursor(cursor))
    return {"audit": page.items, **({"next": page.next_cursor} if page.next_cursor else {})}
