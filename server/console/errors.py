"""Refusals as console pages: a 403, 404 or 422 from a console route is an HTML page in the user's
language with the console's headers, not the API's JSON. Redirects (303 to the login page) pass.

A path or query value of the wrong type (FastAPI's RequestValidationError: `/console/alerts/abc`,
`?page=0`) is such a 422 page too, each refused value named and said in the viewer's language
(server/console/validation.py), where the API answers pydantic's English JSON."""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from server.console.labels import N_
from server.console.validation import say

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


def invalid_value(error: dict) -> str:
    """One of pydantic's errors as '<name>: <what is wrong>' in English, in shapes validation.py knows."""
    name = str(error.get("loc", ("",))[-1])[:64]
    kind, limits = error.get("type", ""), error.get("ctx") or {}
    if kind in ("int_parsing", "int_type", "int_from_float"):
        what = "must be a whole number"
    elif kind in ("greater_than_equal", "greater_than") and isinstance(limits.get("ge", limits.get("gt")), int):
        what = f"must be at least {limits.get('ge', limits.get('gt', 0) + 1)}"
    elif kind in ("less_than_equal", "less_than") and isinstance(limits.get("le", limits.get("lt")), int):
        what = f"must be at most {limits.get('le', limits.get('lt', 0) - 1)}"
    elif kind == "string_too_long" and isinstance(limits.get("max_length"), int):
        what = f"is {len(str(error.get('input', '')))} characters, at most {limits['max_length']}"
    elif kind == "string_pattern_mismatch":
        what = "is not in the expected form"
    elif kind == "missing":
        what = "is missing"
    else:
        what = "is not valid"
    return f"{name}: {what}"


def console_route_class(console) -> type[APIRoute]:
    class ConsoleRoute(APIRoute):
        def get_route_handler(self):
            handler = super().get_route_handler()

            async def guarded(request: Request):
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    try:
                        user = console.user(request)
                    except HTTPException:
                        user = None
                    lang = console.lang(request)
                    said = [say(invalid_value(e), lang) for e in exc.errors()[:10]]
                    detail = ("；" if lang == "zh" else "; ").join(dict.fromkeys(said))
                    return console.render(request, "error.html", user, 422, heading=HEADINGS[422], detail=detail)
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
