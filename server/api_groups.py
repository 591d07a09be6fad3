"""The groups part of the API: agent groups, their placement rules and manual moves (server/groups.py).

Admin tokens change, analysts read; every change is audited in the transaction that makes it.
"""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request
from loguru import logger

from server.auth import Caller, admin_caller, reader_caller
from server.groups import GroupError

router = APIRouter(prefix="/api/v1")

GroupId = Path(ge=1, le=2**31 - 1, description="a group id")


def _an_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31


def _refused(exc: GroupError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


@router.get("/groups")
def list_groups(request: Request, caller: Caller = Depends(reader_caller)) -> dict:
    return request.app.state.store.groups.list()


@router.get("/groups/{group_id}")
def get_group(group_id: int = GroupId, *, request: Request, caller: Caller = Depends(reader_caller)) -> dict:
    group = request.app.state.store.groups.get(group_id)
    if group is None:
        raise HTTPException(404, "no such group")
    return group


@router.post("/groups", status_code=201)
def create_group(request: Request, body: dict = Body(...), caller: Caller = Depends(admin_caller)) -> dict:
    try:
        group = request.app.state.store.groups.create(body, f"token:{caller.name}")
    except GroupError as exc:
        raise _refused(exc) from None
    logger.info("group created id={} name={!r} by=token:{!r}", group["id"], group["name"], caller.name)
    return group


@router.patch("/groups/{group_id}")
def change_group(
    group_id: int = GroupId, *, request: Request, body: dict = Body(...), caller: Caller = Depends(admin_caller)
) -> dict:
    try:
        group = request.app.state.store.groups.change(group_id, body, f"token:{caller.name}")
    except GroupError as exc:
        raise _refused(exc) from None
    logger.info("group changed id={} fields={} by=token:{!r}", group_id, sorted(body), caller.name)
    return group


@router.delete("/groups/{group_id}")
def delete_group(group_id: int = GroupId, *, request: Request, caller: Caller = Depends(admin_caller)) -> dict:
    try:
        request.app.state.store.groups.delete(group_id, f"token:{caller.name}")
    except GroupError as exc:
        raise _refused(exc) from None
    return {"id": group_id, "deleted": True}


@router.put("/groups/rules")
def set_rules(request: Request, body: dict = Body(...), caller: Caller = Depends(admin_caller)) -> dict:
    """The whole ordered list of placement rules: [{group_id, hostname, os, enroll_key_id}]."""
    try:
        rules = request.app.state.store.groups.set_rules(body.get("rules"), f"token:{caller.name}")
    except GroupError as exc:
        raise _refused(exc) from None
    return {"rules": rules}


@router.post("/groups/move")
def move_agents(request: Request, body: dict = Body(...), caller: Caller = Depends(admin_caller)) -> dict:
    """{"agents": [ids], "group_id": N} moves them by hand (sticky); "group_id": null releases them to the rules."""
    agents, group_id = body.get("agents"), body.get("group_id")
    if (
        not isinstance(agents, list)
        or not all(isinstance(a, str) for a in agents)
        or (group_id is not None and not isinstance(group_id, int))
    ):
        raise HTTPException(400, 'body: {"agents": [agent ids], "group_id": a group id or null}')
    try:
        moved = request.app.state.store.groups.move(agents, group_id, f"token:{caller.name}")
    except GroupError as exc:
        raise _refused(exc) from None
    return {"moved": moved, "group_id": group_id}
