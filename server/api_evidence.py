"""Evidence through the API: an alert's signed pack with its report in the asked language.

GET /api/v1/alerts/{id}/evidence.zip?lang=zh|en (default: the firm's `server.language`); any API
token (admin or analyst). The same pack as the console's button (server/packexport.py), audited
as export.evidence with the ZIP's SHA-256.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from loguru import logger

from server.auth import Caller, reader_caller
from server.firmtime import zone as firm_zone
from server.packexport import alert_pack

router = APIRouter(prefix="/api/v1")


@router.get(
    "/alerts/{alert_id}/evidence.zip", response_class=Response, responses={200: {"content": {"application/zip": {}}}}
)
def evidence_pack(
    request: Request,
    alert_id: int = Path(..., ge=1, lt=2**63),
    lang: str | None = Query(None, pattern="^(zh|en)$", description="the report's language; default: server.language"),
    caller: Caller = Depends(reader_caller),
) -> Response:
    config, store = request.app.state.config, request.app.state.store
    actor = f"token:{caller.name}"
    pack = alert_pack(
        store,
        alert_id,
        request.app.state.signer.key(),
        firm_zone(config.timezone),
        actor,
        lang=lang or config.language,
        offline_after_s=config.agent_offline_s,
    )
    if pack is None:
        raise HTTPException(404, "no such alert")
    logger.info("evidence pack exported alert={} sha256={} by={}", alert_id, pack.sha256, actor)
    headers = {"Content-Disposition": f'attachment; filename="miwei-alert-{alert_id}-evidence.zip"'}
    return Response(pack.data, media_type="application/zip", headers=headers)
