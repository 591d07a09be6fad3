"""The console's request plumbing: templates, language, the signed-in user, forms and their CSRF token.

One Console per application (made by server.console.console_router): the Jinja2 environment
(autoescape on for every template: agent data is only ever text), the compiled catalogues and
the sign-in throttle and verification slots live here, not in module globals.
"""

from __future__ import annotations

import os
from datetime import datetime
from urllib.parse import parse_qs, urlencode

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context

from server import firmtime
from server.console.i18n import LANG_COOKIE, gettext_for, load_translations, negotiate
from server.console.labels import label
from server.console.register import RegisterFold
from server.console.sessions import SESSION_COOKIE, ConsoleUser, same_token, session_user
from server.console.throttle import LoginThrottle, VerifySlots
from server.console.words import page_words

TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")
PREFIX = "/console"
MAX_FORM_BYTES = 3 * 1024 * 1024  # a rule pack (256 KB) url-encoded, with room
# stricter than the console needs ('self' only where used): no inline script or style, no foreign origin
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
NAV = (  # (path, msgid, admin only)
    ("/", "Dashboard", False),
    ("/alerts", "Alerts", False),
    ("/events", "Events", False),
    ("/agents", "Agents", False),
    ("/groups", "Groups", False),
    ("/register", "Secret register", False),
    ("/devices", "Devices", False),
    ("/rules", "Rules", False),
    ("/users", "Users", True),
    ("/tokens", "Tokens", True),
    ("/channels", "Channels", False),
    ("/audit", "Audit log", False),
    ("/assessor", "Assessor's report", False),  # server/console/routes_assessor.py
)


def short_time(value: str | datetime | None, zone: str = firmtime.DEFAULT_ZONE) -> str:
    """'2026-11-26T22:51:52.123Z' -> '2026-11-27 06:51:52': the firm's wall clock (the page names the zone)."""
    return firmtime.show(value, zone)


@pass_context
def _page_time(context, value: str | datetime | None) -> str:
    """The `t` filter: the page's firm_zone (render() sets it; a template without it fails loudly)."""
    return short_time(value, context["firm_zone"])


def human_size(value: int | None) -> str:
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


class Console:
    def __init__(self, throttle: LoginThrottle | None = None, verify_slots: VerifySlots | None = None):
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters["t"] = _page_time
        self.env.filters["size"] = human_size
        self.translations = load_translations()
        self.throttle = throttle or LoginThrottle()
        self.verify_slots = verify_slots or VerifySlots()
        self.register = RegisterFold()

        # A form's body is read (and its CSRF token checked) by these async dependencies, so the
        # routes that take them can be plain `def`: their database work then runs in the
        # threadpool, never on the event loop.
        async def user_form(request: Request, user: ConsoleUser = Depends(self.user)) -> dict[str, list[str]]:
            return await self.form(request, user)

        async def admin_form(request: Request, user: ConsoleUser = Depends(self.admin)) -> dict[str, list[str]]:
            return await self.form(request, user)

        self.user_form, self.admin_form = user_form, admin_form

    # --- language -------------------------------------------------------------------------------

    def lang(self, request: Request) -> str:
        return negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))

    @staticmethod
    def zone(request: Request) -> str:
        """The firm's time zone (server.timezone): every time a page shows, every time a filter reads."""
        return getattr(request.app.state.config, "timezone", firmtime.DEFAULT_ZONE)

    def render(self, request: Request, template: str, user: ConsoleUser | None, status_code: int = 200, **context) -> HTMLResponse:
        lang = self.lang(request)
        zone = self.zone(request)
        gettext = gettext_for(self.translations, lang)
        page = self.env.get_template(template).render(
            _=gettext,
            lang=lang,
            user=user,
            nav=[(PREFIX + p, t) for p, t, admin_only in NAV if not admin_only or (user and user.is_admin)],
            here=request.url.path,
            here_full=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            P=PREFIX,
            label=lambda kind, value: gettext(label(kind, value)) if value is not None else "",
            firm_zone=zone,
            zone_label=firmtime.zone_label(zone, lang),
            msg=request.query_params.get("msg"),
            qs=lambda **kw: urlencode({k: v for k, v in kw.items() if v not in (None, "")}),
            **page_words(request, lang),
            **context,
        )
        return HTMLResponse(page, status_code=status_code, headers=PAGE_HEADERS)

    # --- who is asking --------------------------------------------------------------------------

    def user(self, request: Request) -> ConsoleUser:
        """The signed-in user, or a redirect to the login page."""
        store = request.app.state.store
        found = session_user(store.engine, request.cookies.get(SESSION_COOKIE), store.clock())
        if found is None:
            raise HTTPException(303, "sign in first", headers={"Location": f"{PREFIX}/login"})
        return found

    def admin(self, request: Request) -> ConsoleUser:
        found = self.user(request)
        if not found.is_admin:
            raise HTTPException(403, "administrators only")
        return found

    async def form(self, request: Request, user: ConsoleUser | None, expected_csrf: str | None = None) -> dict[str, list[str]]:
        """The url-encoded form body, after its CSRF token matched the session's (else 403)."""
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            raise HTTPException(415, "send the form url-encoded")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"form larger than {MAX_FORM_BYTES} bytes")
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=5000)
        except (UnicodeDecodeError, ValueError):
            raise HTTPException(400, "the form is not valid url-encoded UTF-8") from None
        expected = user.csrf if user else expected_csrf
        if not same_token((fields.get("csrf") or [None])[0], expected):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
        return fields


def first(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    values = fields.get(name)
    return values[0] if values else default


def back(path: str, **params) -> RedirectResponse:
    """303 to a console page after a form (post/redirect/get)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(PREFIX + path + (f"?{query}" if query else ""), status_code=303)


def parse_since(value: str | None, zone: str = firmtime.DEFAULT_ZONE) -> datetime | None:
    """A 'since' field (date or date and time on the firm's clock, `zone`); None when empty; 422 when not a time."""
    if not value:
        return None
    try:
        return firmtime.parse_local(value, zone)
    except ValueError:
        raise HTTPException(422, "since must be a date like 2026-11-20 or 2026-11-20T08:00") from None
