"""The drill-down pages an officer follows from any name: a user, a host, a removable device, one event.

Names come from agents and are only ever text here: they travel in the query string (a user name
may hold '/', '?' or RTL marks) and the templates escape them (autoescape, no |safe on agent data).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from server.console import people
from server.console.charts import WIDE, Bar, bar_chart
from server.console.sessions import ConsoleUser
from server.console.web import PREFIX, Console

MAX_NAME = 255  # alerts.user, alerts.host and events.user are String(255)


def egress_chart(per_day: list[tuple[str, int]], title: str):
    return bar_chart([Bar(d[5:], n, f"{d}: {n}") for d, n in per_day], title, width=WIDE)


def register(router: APIRouter, console: Console) -> None:
    def person_page(kind: str, name: str, request: Request, user: ConsoleUser) -> Response:
        if not name.strip():
            raise HTTPException(422, f"name the {kind}: ?name=...")
        _ = console.translations[console.lang(request)].gettext
        store = request.app.state.store
        with store.engine.connect() as conn:
            data = people.person(conn, kind, name, store.clock(), console.zone(request))
        chart = egress_chart(data.egress_per_day, _("Files sent out per day, last 30 days"))
        return console.render(request, "person.html", user, data=data, chart=chart)

    @router.get(PREFIX + "/people/user", include_in_schema=False)
    def user_page(
        request: Request, name: str = Query(..., max_length=MAX_NAME), user: ConsoleUser = Depends(console.user)
    ) -> Response:
        return person_page("user", name, request, user)

    @router.get(PREFIX + "/people/host", include_in_schema=False)
    def host_page(
        request: Request, name: str = Query(..., max_length=MAX_NAME), user: ConsoleUser = Depends(console.user)
    ) -> Response:
        return person_page("host", name, request, user)

    @router.get(PREFIX + "/devices/{device_id}", include_in_schema=False)
    def device_page(device_id: int, request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        store = request.app.state.store
        with store.engine.connect() as conn:
            data = (
                people.device(conn, device_id, store.clock(), console.zone(request)) if 0 < device_id < 2**63 else None
            )

        if data is None:
            raise HTTPException(404, "no such device")
        _ = console.translations[console.lang(request)].gettext
        chart = egress_chart(data.egress_per_day, _("Files sent out per day, last 30 days"))
        return console.render(request, "device.html", user, data=data, chart=chart)

    @router.get(PREFIX + "/events/{event_id}", include_in_schema=False)
    def event_page(event_id: str, request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        if len(event_id) > 36:
            raise HTTPException(404, "no such event")
        with request.app.state.store.engine.connect() as conn:
            data = people.event(conn, event_id)
        if data is None:
            raise HTTPException(404, "no such event")
        return console.render(request, "event.html", user, data=data)
