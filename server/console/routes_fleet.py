"""The fleet page: thousands of agents searched, filtered, sorted and paged in SQL, and retired in bulk.

The list itself is server/fleetlist.py (GET /api/v1/agents reads the same). Bulk actions are admin
only, carry the session's CSRF token (console.admin_form) and go through the fleet register one
agent at a time, so each retirement is audited as agent.retire like the single-agent form's.
Moving ticked agents to a group is server/groups.py's manual move (sticky, audited as group.move).
Registered before routes_data, whose single-agent approve and retire forms stay there.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from loguru import logger

from server import firmtime, fleetlist
from server.console.sessions import ConsoleUser
from server.console.web import PREFIX, Console, back, first
from server.fleetquery import FleetQuery, fleet_query
from server.foundin import item_names
from server.groups import GroupError

AGENTS_PER_PAGE = 50
MAX_BULK = 1000  # ticked agents in one bulk action
BACK_KEYS = (
    "host",
    "user",
    "version",
    "policy_version",
    "state",
    "seen_after",
    "seen_before",
    "lags",
    "group",
    "os",
    "sort",
    "order",
    "page",
)


def register(router: APIRouter, console: Console) -> None:
    @router.get(PREFIX + "/agents", include_in_schema=False)
    def agents_page(
        request: Request,
        query: FleetQuery = Depends(fleet_query),
        page: int = Query(1, ge=1, le=1_000_000),
        user: ConsoleUser = Depends(console.user),
    ) -> Response:
        f, sort, order, filters = query.filter, query.sort, query.order, query.given
        f = _seen_on_firm_clock(f, filters, console.zone(request))
        store, config = request.app.state.store, request.app.state.config
        with store.engine.connect() as conn:
            fleet = fleetlist.fleet_page(
                conn, f, store.clock(), config.agent_offline_s, sort, order == "desc", page, AGENTS_PER_PAGE
            )
            groups = sorted(fleetlist.group_names(conn).items())
            # the names beside each agent's index size per register item
            names = item_names(conn, {i for a in fleet.agents for i, _ in a.indexed_by_item})
        return console.render(
            request, "agents.html", user, fleet=fleet, filters=filters, sort=sort, order=order, sorts=tuple(fleetlist.SORTS),
            states=fleetlist.STATES, groups=groups, item_names=names, oses=fleetlist.OS_CHOICES, offline_s=config.agent_offline_s, here_query=urlencode({**filters, "sort": sort, "order": order, "page": page}),
        )  # fmt: skip

    @router.post(PREFIX + "/agents/bulk", include_in_schema=False)
    def bulk_agents(
        request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)
    ) -> Response:
        """Retire the ticked agents, or move them to a group by hand (or back to the placement rules)."""
        action = first(fields, "action")
        if action not in ("retire", "move"):
            raise HTTPException(422, "action is retire or move")
        ids = [i for i in dict.fromkeys(fields.get("id", [])) if 0 < len(i) <= 64]
        if len(ids) > MAX_BULK:
            raise HTTPException(422, f"at most {MAX_BULK} agents at once")
        back_to = first(fields, "back")[:2000]  # the page's query: only its own keys are kept
        if not ids:
            return _back_to_agents(back_to, "nothing")
        if action == "move":
            return _move(request, user, ids, first(fields, "to_group"), back_to)
        block = first(fields, "block_host") == "1"
        store, budget = request.app.state.store, getattr(request.app.state, "auth_budget", None)
        retired = 0
        for agent_id in ids:
            token_hash = store.fleet.retire(
                agent_id, f"console:{user.name}", block_host=block, note="retired with others from the fleet page"
            )
            if token_hash:
                retired += 1
                if budget is not None:  # out of the guard's cache at once
                    budget.forget(bytes.fromhex(token_hash))
        logger.info("agents retired count={} of={} block_host={} by=console:{!r}", retired, len(ids), block, user.name)
        return _back_to_agents(back_to, "agents_retired" if retired else "not_found")


def _seen_on_firm_clock(f: fleetlist.FleetFilter, given: dict, zone: str) -> fleetlist.FleetFilter:
    """A date typed into the console is the firm's day (server.timezone), not UTC's as in the API;
    fleet_query checked the text already."""
    seen = {k: firmtime.parse_local(given[k], zone) for k in ("seen_after", "seen_before") if given.get(k)}
    return dataclasses.replace(f, **seen) if seen else f


def _move(request: Request, user: ConsoleUser, ids: list[str], to_group: str, back_to: str) -> Response:
    if to_group != "rules" and not (to_group.isascii() and to_group.isdigit() and 0 < int(to_group) < 2**31):
        raise HTTPException(422, "to_group is a group's number, or rules (back to the placement rules)")
    try:
        moved = request.app.state.store.groups.move(
            ids, None if to_group == "rules" else int(to_group), f"console:{user.name}"
        )
    except GroupError as exc:
        if exc.status == 404:
            return _back_to_agents(back_to, "not_found")
        raise HTTPException(422, str(exc)) from None
    logger.info("agents moved count={} to_group={} by=console:{!r}", moved, to_group, user.name)
    return _back_to_agents(back_to, "agents_released" if to_group == "rules" else "agents_moved")


def _back_to_agents(query: str, msg: str) -> RedirectResponse:
    """Back to the page the bulk form was on, with its filters (only the page's own parameters)."""
    kept = {k: v for k, v in parse_qsl(query)[:20] if k in BACK_KEYS and len(v) <= fleetlist.MAX_TEXT}
    return back("/agents", **kept, msg=msg)
