"""The IT security console: server-rendered pages under /console for the security officer and assessors.

`console_router()` builds everything the console needs (templates, catalogues, sign-in throttle) and
returns one router; server/app.py includes it. Pages read through console/queries.py and change
state through the store, as the HTTP API does. See docs/console.md.
"""

from __future__ import annotations

from fastapi import APIRouter

from server.console import (
    routes_admin,
    routes_alerts,
    routes_assessor,
    routes_auth,
    routes_channels,
    routes_dashboard,
    routes_data,
    routes_fleet,
    routes_groups,
    routes_people,
    tables,  # noqa: F401 - registers the console's table and indexes on the shared MetaData
)
from server.console.errors import console_route_class
from server.console.throttle import LoginThrottle, VerifySlots
from server.console.web import PREFIX, Console

__all__ = ["PREFIX", "console_router"]


def console_router(throttle: LoginThrottle | None = None, verify_slots: VerifySlots | None = None) -> APIRouter:
    console = Console(throttle, verify_slots)
    router = APIRouter(route_class=console_route_class(console))
    for module in (routes_auth, routes_channels, routes_dashboard, routes_alerts, routes_fleet, routes_groups, routes_data, routes_admin, routes_people, routes_assessor):  # fleet first: its /agents page
        module.register(router, console)
    return router
