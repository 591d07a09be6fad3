"""The rules part of the API: the active policy (agents fetch it), its history, and watchlists."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from loguru import logger

from rules.loader import WATCHLIST_NAME
from server.auth import Caller, any_caller, reader_caller
from server.models import MemberIn, PolicyIn, WatchlistIn
from server.policies import PolicyRefused
from server.watchlists import Member

router = APIRouter(prefix="/api/v1")
WatchlistName = Path(pattern=WATCHLIST_NAME.pattern, description="lower case letters, digits, '-' and '_', e.g. departing")


def etag_matches(header: str | None, version: str) -> bool:
    """If-None-Match holds the version: quoted or not, weak or strong, or '*'."""
    if not header:
        return False
    for tag in header.split(","):
        tag = tag.strip()
        tag = tag[2:] if tag.startswith("W/") else tag
        if tag == "*" or tag.strip('"') == version:
            return True
    return False


@router.get("/policy")
def get_policy(request: Request, caller: Caller = Depends(any_caller)) -> Response:
    policy = request.app.state.store.policies.active()
    headers = {"ETag": f'"{policy.version}"'}
    if etag_matches(request.headers.get("if-none-match"), policy.version):
        return Response(status_code=304, headers=headers)
    return JSONResponse(policy.to_payload(), headers=headers)


@router.put("/policy")
def put_policy(body: PolicyIn, request: Request, caller: Caller = Depends(reader_caller)) -> Response:
    store, config = request.app.state.store, request.app.state.config
    files = [(f.name, f.text) for f in body.files]
    try:
        proposal = store.policies.propose(files, config.working_time, f"token:{caller.name}")
    except PolicyRefused as refused:
        logger.warning("rule set refused by=token:{!r} errors={}", caller.name, len(refused.errors))
        return JSONResponse({"detail": "the rule set has errors; the active one is unchanged", "errors": refused.errors}, status_code=422)
    if proposal.changed:
        logger.info("policy activated version={} files={} by=token:{!r}", proposal.version, len(files), caller.name)
    return JSONResponse({"version": proposal.version, "changed": proposal.changed, "warnings": proposal.warnings})


@router.get("/policy/history")
def policy_history(request: Request, limit: int = Query(100, ge=1, le=1000), caller: Caller = Depends(reader_caller)) -> dict:
    return {"policies": request.app.state.store.policies.history(limit)}


@router.get("/watchlists")
def list_watchlists(request: Request, caller: Caller = Depends(reader_caller)) -> dict:
    return {"watchlists": request.app.state.store.watchlists.names()}


@router.get("/watchlists/{name}")
def get_watchlist(request: Request, name: str = WatchlistName, caller: Caller = Depends(reader_caller)) -> dict:
    members = request.app.state.store.watchlists.members(name)
    if members is None:
        raise HTTPException(404, "no such watchlist")
    return {"name": name, "members": members}


@router.put("/watchlists/{name}")
def put_watchlist(body: WatchlistIn, request: Request, name: str = WatchlistName, caller: Caller = Depends(reader_caller)) -> dict:
    members = [Member(m.value, m.note) for m in body.members]
    count = request.app.state.store.watchlists.replace(name, members, f"token:{caller.name}")
    logger.info("watchlist replaced name={} members={} by=token:{!r}", name, count, caller.name)
    return {"name": name, "members": count}


@router.post("/watchlists/{name}/members")
def add_member(body: MemberIn, request: Request, response: Response, name: str = WatchlistName, caller: Caller = Depends(reader_caller)) -> dict:
    try:
        added = request.app.state.store.watchlists.add(name, Member(body.value, body.note), f"token:{caller.name}")
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    response.status_code = 201 if added else 200
    logger.info("watchlist member {} name={} by=token:{!r}", "added" if added else "updated", name, caller.name)
    return {"name": name, "value": body.value, "added": added}


@router.delete("/watchlists/{name}/members/{value:path}")
def remove_member(request: Request, value: str, name: str = WatchlistName, caller: Caller = Depends(reader_caller)) -> dict:
    if not request.app.state.store.watchlists.remove(name, value.strip(), f"token:{caller.name}"):
        raise HTTPException(404, "no such member")
    logger.info("watchlist member removed name={} by=token:{!r}", name, caller.name)
    return {"name": name, "value": value, "removed": True}
