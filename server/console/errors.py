"""Refusals as console pages: a 403, 404 or 422 from a console route is an HTML page in the user's
language with the console's headers, not the API's JSON. Redirects (303 to the login page) pass."""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute

from server.console.labels import N_

HEADINGS = {
    400: N_("The request could not be read."),
    403: N_("You may not do this."),
    404: N_("Not found."),
    409: N_("This cannot be done here."),
    413: N_("The form is too large."),
    415: N_("The request could not be read."),
    422: N_("Some input is not valid."),
}


def console_route_class(console) -> type[APIRoute]:
    class ConsoleRoute(APIRoute):
        def get_route_handler(self):
            handler = super().get_route_handler()

            async def guarded(request: Request):
                try:
                    return await handler(request)
                except HTTPException as exc:
                    if exc.status_code not in HEADINGS:
                        raise
                    try:
                        user = console.user(request)
                    except HTTPException:
                        user = None
                    heading = HEADINGS[exc.status_code]
                    return console.render(request, "error.html", user, exc.status_code, heading=heading, detail=str(exc.detail))

            return guarded

    return ConsoleRoute
