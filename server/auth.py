"""Who is calling: agent tokens may ingest, heartbeat and fetch the policy; API tokens read and act on the rest.

Every request's token is checked against the database (one indexed probe), so a revoked token is
refused at once (a retired agent's too: 401; a pending agent's is 403 and no failure, see
server/fleet.py). server/authguard.py stands in front: it refuses tokens of an impossible shape
and throttles addresses that fail too often; this module tells it about each failure and each
token verified.

An API token has a role, as a console user has: an analyst reads everything and works alerts
(acknowledge, resolve, comment); only an admin changes what raises alerts or who is told (rules,
watchlists, the device allow-list, channels) and deletes alerts. Tokens made before roles existed
are admins (migration 0009), so no integration broke on upgrade.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request

from server.authguard import AGENT_TOKEN_PREFIX, API_TOKEN_PREFIX, client_address, digest

ROLES = ("admin", "analyst")


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Caller:
    kind: str  # agent | api
    name: str  # agent id, or the API token's name
    role: str = ""  # an API token's role: admin | analyst; empty for agents
    host: str = ""  # an agent's enrolled host name: what its events are stored under (server/fleet.py)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def _identify(request: Request) -> Caller:
    token = _bearer(request)
    caller = _lookup(request, token)
    budget = getattr(request.app.state, "auth_budget", None)  # server.authguard.FailureBudget
    if caller is None:
        if budget is not None:
            budget.failed(client_address(request.scope))
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    if budget is not None:
        budget.verified(digest(token))
    return caller


def _lookup(request: Request, token: str) -> Caller | None:
    store = request.app.state.store
    if len(token) <= 256:
        if token.startswith(AGENT_TOKEN_PREFIX) and (agent := store.fleet.identify(token)) and agent.state != "retired":
            if agent.state == "pending":  # a known token, not a failure: the agent waits, its events stay in its spool
                raise HTTPException(403, "this agent waits for an admin's approval", headers={"Retry-After": "300"})
            return Caller("agent", agent.agent_id, host=agent.hostname)
        if token.startswith(API_TOKEN_PREFIX) and (found := store.api_token(token)):
            return Caller("api", *found)
    return None


def agent_caller(request: Request) -> Caller:
    caller = _identify(request)
    if caller.kind != "agent":
        raise HTTPException(403, "this endpoint is for agents")
    return caller


def reader_caller(request: Request) -> Caller:
    caller = _identify(request)
    if caller.kind != "api":
        raise HTTPException(403, "agent tokens may only send events and heartbeats")
    return caller


def admin_caller(request: Request) -> Caller:
    """An API token with the admin role: for changing rules, watchlists, devices, channels, and deleting alerts."""
    caller = reader_caller(request)
    if caller.role != "admin":
        raise HTTPException(403, f"this API token's role is {caller.role}: only an admin token may do this")
    return caller


def any_caller(request: Request) -> Caller:
    """An agent or an API token: for what both need, such as the active policy."""
    return _identify(request)
