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
# the reasons the console's routes give (HTTPException details), shown in the viewer's language;
# a reason not listed here (one with a value in it) is shown as it is
DETAILS = (
    N_("the form is not multipart"),
    N_("the form is not valid url-encoded UTF-8"),
    N_("administrators only"),
    N_("missing or wrong CSRF token: reload the page and try again"),
    N_("exports are .csv or .xlsx"),
    N_("exports: alerts, events, register, devices"),
    N_("no such alert"),
    N_("no such channel"),
    N_("no such device"),
    N_("no such event"),
    N_("no such file"),
    N_("no such language"),
    N_("no such rule"),
    N_("no such saved view"),
    N_("register items are declassified or destroyed"),
    N_("this channel comes from the config file (server.notify): change it there"),
    N_("send the form url-encoded"),
    N_("send the workbook as multipart/form-data"),
    N_("a token name is 1-64 letters, digits, '.', '_', '@' or '-'"),
    N_("action is add, remove, up or down"),
    N_("action is retire or move"),
    N_("choose an XLSX file to import"),
    N_("days is a whole number from 1 to 3650, or empty for no end"),
    N_("since must be a date like 2026-11-20 or 2026-11-20T08:00"),
    N_("the file name ends in .yaml or .yml and has no folder in it"),
    N_("to_group is a group's number, or rules (back to the placement rules)"),
)


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
