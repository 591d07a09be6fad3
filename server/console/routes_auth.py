"""Sign in and out, the language menu, the console's static files and the collector's front page."""

from __future__ import annotations

import os
import secrets
from functools import partial

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from loguru import logger
from starlette.concurrency import run_in_threadpool

from server.console.i18n import LANG_COOKIE, LANGUAGES
from server.console.sessions import (
    LOGIN_COOKIE,
    MAX_NAME_CHARS,
    SESSION_COOKIE,
    SESSION_S,
    ConsoleUser,
    SignIn,
    audit_sign_in,
    check_password,
    close_session,
    open_session,
)
from server.console.throttle import BUSY_RETRY_S, LoginThrottle, Refusal
from server.console.web import PREFIX, Console, first

STATIC = os.path.join(os.path.dirname(__file__), "static")
STATIC_TYPES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml"}


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int | None, http_only: bool = True) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=http_only, samesite="strict", secure=request.url.scheme == "https"
    )


def register(router: APIRouter, console: Console) -> None:
    @router.get("/", include_in_schema=False)
    def front() -> RedirectResponse:
        return RedirectResponse(PREFIX + "/", status_code=303)

    @router.get(PREFIX, include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse(PREFIX + "/", status_code=303)

    @router.get(PREFIX + "/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC_TYPES:
            raise HTTPException(404, "no such file")
        with open(os.path.join(STATIC, name), "rb") as f:
            return Response(f.read(), media_type=STATIC_TYPES[name])

    @router.get(PREFIX + "/lang/{lang}", include_in_schema=False)
    def switch_language(lang: str, request: Request, next: str = PREFIX + "/") -> RedirectResponse:
        if lang not in LANGUAGES:
            raise HTTPException(404, "no such language")
        target = next if next.startswith(PREFIX + "/") and "//" not in next and "\\" not in next else PREFIX + "/"
        response = RedirectResponse(target, status_code=303)
        _cookie(response, request, LANG_COOKIE, lang, 365 * 86400, http_only=False)
        return response

    @router.get(PREFIX + "/login", include_in_schema=False)
    def login_page(request: Request) -> Response:
        return _login_form(request, console)

    @router.post(PREFIX + "/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        fields = await console.form(request, None, request.cookies.get(LOGIN_COOKIE))
        name = first(fields, "name").strip()[:MAX_NAME_CHARS]
        password = first(fields, "password")
        client = request.client.host if request.client else "unknown"  # a trusted proxy's client: server/proxies.py
        # the attempt is taken before the password is checked, so a burst cannot outrun the count
        attempt = console.throttle.reserve(name, client)
        if isinstance(attempt, Refusal):
            logger.warning("console login refused: too many attempts user={!r} client={} limit={}", name, client, attempt.locked)
            error = "busy" if attempt.locked == "busy" else "too_many"
            return _login_form(request, console, error, 429, {"Retry-After": str(attempt.retry_after_s)})
        settled = False
        try:
            store = request.app.state.store
            checked, found = True, None
            if name and password:  # argon2 (CPU, 64 MiB): in the threadpool, a bounded number at once
                checked, found = await run_in_threadpool(console.verify_slots.run, partial(check_password, store.engine, name, password))
            if not checked:
                logger.warning("console login refused: password checks busy user={!r} client={}", name, client)
                return _login_form(request, console, "busy", 429, {"Retry-After": str(BUSY_RETRY_S)})
            reached = console.throttle.settle(attempt, succeeded=found is not None)
            settled = True
            if found is None:
                logger.warning("console login failed user={!r} client={}", name, client)
                await run_in_threadpool(_audit_failure, store, name, client, reached, console.throttle)
                return _login_form(request, console, "wrong", 401)
            token = await run_in_threadpool(open_session, store.engine, found[0], store.clock(), SignIn(name, found[1], client))
        finally:
            if not settled:  # not tried (busy, or an error): neither a failure nor a success
                console.throttle.cancel(attempt)
        logger.info("console login user={!r} role={} client={}", name, found[1], client)
        response = RedirectResponse(PREFIX + "/", status_code=303)
        _cookie(response, request, SESSION_COOKIE, token, SESSION_S)
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    @router.post(PREFIX + "/logout", include_in_schema=False)
    def logout(request: Request, user: ConsoleUser = Depends(console.user), fields: dict = Depends(console.user_form)) -> Response:
        # plain def: the session lookup and close_session run in the threadpool; the async form
        # dependency reads the body and checks the CSRF token on the loop
        store = request.app.state.store
        client = request.client.host if request.client else "unknown"  # a trusted proxy's client: server/proxies.py
        close_session(store.engine, request.cookies.get(SESSION_COOKIE), store.clock(), SignIn(user.name, user.role, client))
        logger.info("console logout user={!r} client={}", user.name, client)
        response = RedirectResponse(PREFIX + "/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def _audit_failure(store, name: str, client: str, reached: tuple[str, ...], throttle: LoginThrottle) -> None:
    now = store.clock()
    audit_sign_in(store.engine, now, "login.failed", name, client)
    for limit in reached:
        window_s = int(throttle.window_s)
        logger.warning("console sign-in locked limit={} user={!r} client={} failures={} window_s={}", limit, name, client, throttle.limits[limit], window_s)
        audit_sign_in(store.engine, now, "login.locked", name, client, {"limit": limit, "failures": throttle.limits[limit], "window_s": window_s})


def _login_form(request: Request, console: Console, error: str | None = None, status_code: int = 200, headers: dict | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = console.render(request, "login.html", None, status_code, login_csrf=token, error=error)
    _cookie(response, request, LOGIN_COOKIE, token, 3600)
    response.headers.update(headers or {})
    return response
