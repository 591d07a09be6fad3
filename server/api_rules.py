"""The rules part of the API: the active policy (agents fetch it), its history, the rules in it
and which are switched off, and watchlists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from rules.grouppolicy import combined_version
from rules.loader import RULE_ID, WATCHLIST_NAME
from rules.policy import MAX_DISABLED, Policy, dependents
from server.auth import Caller, admin_caller, any_caller, reader_caller
from server.models import MemberIn, PolicyIn, WatchlistIn
from server.policies import PACK_PREFIX, PolicyRefused
from server.watchlists import Member

router = APIRouter(prefix="/api/v1")
WatchlistName = Path(pattern=WATCHLIST_NAME.pattern, description="lower case letters, digits, '-' and '_', e.g. departing")
RuleIdPath = Path(pattern=RULE_ID.pattern, description="a rule id, e.g. MW-EGRESS-CLASSIFIED")
RuleId = Annotated[str, StringConstraints(pattern=RULE_ID.pattern)]


class DisabledIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule_ids: list[RuleId] = Field(max_length=MAX_DISABLED, description="every rule to switch off; the others are on")


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
    payload = policy.to_payload()
    version = policy.version
    if caller.kind == "agent":  # its group's register locations and places (server/groups.py)
        group = request.app.state.store.groups.policy_for(caller.name)
        if group is not None:
            payload["group"] = group.to_payload()
            version = combined_version(policy.version, group)
    headers = {"ETag": f'"{version}"'}
    if etag_matches(request.headers.get("if-none-match"), version):
        return Response(status_code=304, headers=headers)
    return JSONResponse(payload, headers=headers)


@router.put("/policy")
def put_policy(body: PolicyIn, request: Request, caller: Caller = Depends(admin_caller)) -> Response:
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


def rule_states(policy: Policy) -> list[dict]:
    """Each rule of the policy: where it comes from and whether it runs.

    `enabled` is whether it is evaluated; `switched_off` whether the policy's disabled list turns
    it off (a rule can also be off in its own file, `enabled: false`, which only an upload changes).
    """
    off = set(policy.disabled)
    rules = [("event", r) for r in policy.ruleset.event_rules] + [("correlation", r) for r in policy.ruleset.correlation_rules]
    return [
        {
            "id": r.id, "title": r.title, "title_zh": r.title_zh or None, "kind": kind, "category": r.category, "severity": r.severity,
            "file": r.where.file if r.where else None, "shipped": bool(r.where and r.where.file.startswith(PACK_PREFIX)),
            "enabled": r.enabled, "switched_off": r.id in off,
        }
        for kind, r in rules
    ]  # fmt: skip


@router.get("/rules")
def list_rules(request: Request, caller: Caller = Depends(reader_caller)) -> dict:
    policy = request.app.state.store.policies.active()
    return {"version": policy.version, "disabled": list(policy.disabled), "rules": rule_states(policy)}


def _switch(request: Request, change, actor: str, what: str) -> Response:
    try:
        proposal = request.app.state.store.policies.set_disabled(change, actor)
    except PolicyRefused as refused:
        logger.warning("rule switch refused what={} by={!r} errors={}", what, actor, len(refused.errors))
        return JSONResponse({"detail": "refused; the active policy is unchanged", "errors": refused.errors}, status_code=400)
    policy = request.app.state.store.policies.active()
    if proposal.changed:
        logger.info("rules switched what={} version={} disabled={} by={!r}", what, proposal.version, len(policy.disabled), actor)
    return JSONResponse({"version": proposal.version, "changed": proposal.changed, "disabled": list(policy.disabled)})


@router.put("/rules/disabled")
def put_disabled(body: DisabledIn, request: Request, caller: Caller = Depends(admin_caller)) -> Response:
    """Switch off exactly these rules (shipped or uploaded) and switch on every other one that was
    switched off. 400 with located errors for an unknown id or a rule still counted by a
    correlation rule that stays on."""
    wanted = list(dict.fromkeys(body.rule_ids))  # in the order given, repeats dropped: errors say disabled[i] of this list, and the id
    return _switch(request, lambda _: wanted, f"token:{caller.name}", "list")


@router.post("/rules/{rule_id}/disable")
def disable_rule(request: Request, rule_id: str = RuleIdPath, caller: Caller = Depends(admin_caller)) -> Response:
    """Switch one rule off. 404 for no such rule, 409 while a correlation rule that stays on counts it."""
    policy = request.app.state.store.policies.active()
    if rule_id not in policy.ruleset.ids:
        raise HTTPException(404, "no such rule")
    counted_by = [r for r in dependents(policy.ruleset, rule_id) if r not in policy.disabled]
    if counted_by:
        detail = f"{rule_id} is counted by {', '.join(counted_by)}, which stays on: switch that off first"
        return JSONResponse({"detail": detail, "counted_by": counted_by}, status_code=409)
    return _switch(request, lambda current: sorted({*current, rule_id}), f"token:{caller.name}", f"disable:{rule_id}")


@router.post("/rules/{rule_id}/enable")
def enable_rule(request: Request, rule_id: str = RuleIdPath, caller: Caller = Depends(admin_caller)) -> Response:
    """Switch one rule back on (a rule written `enabled: false` in its file stays off: upload the file changed)."""
    if rule_id not in request.app.state.store.policies.active().ruleset.ids:
        raise HTTPException(404, "no such rule")
    return _switch(request, lambda current: [r for r in current if r != rule_id], f"token:{caller.name}", f"enable:{rule_id}")


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
def put_watchlist(body: WatchlistIn, request: Request, name: str = WatchlistName, caller: Caller = Depends(admin_caller)) -> dict:
    members = [Member(m.value, m.note) for m in body.members]
    count = request.app.state.store.watchlists.replace(name, members, f"token:{caller.name}")
    logger.info("watchlist replaced name={} members={} by=token:{!r}", name, count, caller.name)
    return {"name": name, "members": count}


@router.post("/watchlists/{name}/members")
def add_member(body: MemberIn, request: Request, response: Response, name: str = WatchlistName, caller: Caller = Depends(admin_caller)) -> dict:
    try:
        added = request.app.state.store.watchlists.add(name, Member(body.value, body.note), f"token:{caller.name}")
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    response.status_code = 201 if added else 200
    logger.info("watchlist member {} name={} by=token:{!r}", "added" if added else "updated", name, caller.name)
    return {"name": name, "value": body.value, "added": added}


@router.delete("/watchlists/{name}/members/{value:path}")
def remove_member(request: Request, value: str, name: str = WatchlistName, caller: Caller = Depends(admin_caller)) -> dict:
    if not request.app.state.store.watchlists.remove(name, value.strip(), f"token:{caller.name}"):
        raise HTTPException(404, "no such member")
    logger.info("watchlist member removed name={} by=token:{!r}", name, caller.name)
    return {"name": name, "value": value, "removed": True}
