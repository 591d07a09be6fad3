"""Sign in and out, the language menu, the console's static files and the collector's front page."""

from __future__ import annotations

import os
import secrets

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from loguru import logger
from starlette.concurrency import run_in_threadpool

from server.console.i18n import LANG_COOKIE, LANGUAGES
from server.console.sessions import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_S,
    ConsoleUser,
    check_password,
    close_session,
    open_session,
)
from server.console.web import PREFIX, Console, first

STATIC = os.path.join(os.path.dirname(__file__), "static")
STATIC_TYPES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml"}
MAX_NAME_CHARS = 64


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
        client = request.client.host if request.client else "unknown"
        keys = [f"ip:{client}", f"user:{name.lower()}"]
        wait_s = console.limiter.retry_after_s(keys)
        if wait_s:
            logger.warning("console login refused: too many failures user={!r} client={}", name, client)
            return _login_form(request, console, "too_many", 429, {"Retry-After": str(wait_s)})
        # argon2 takes tens of milliseconds of CPU: off the event loop, so other requests go on
        found = await run_in_threadpool(check_password, request.app.state.store.engine, name, password) if name and password else None
        if found is None:
            console.limiter.failed(keys)
            logger.warning("console login failed user={!r} client={}", name, client)
            return _login_form(request, console, "wrong", 401)
        console.limiter.succeeded(keys[1])
        store = request.app.state.store
        token = await run_in_threadpool(open_session, store.engine, found[0], store.clock())  # a database write
        logger.info("console login user={!r} role={} client={}", name, found[1], client)
        response = RedirectResponse(PREFIX + "/", status_code=303)
        _cookie(response, request, SESSION_COOKIE, token, SESSION_S)
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    @router.post(PREFIX + "/logout", include_in_schema=False)
    def logout(request: Request, user: ConsoleUser = Depends(console.user), fields: dict = Depends(console.user_form)) -> Response:
        # plain def: the session lookup and close_session run in the threadpool; the async form
        # dependency reads the body and checks the CSRF token on the loop
        close_session(request.app.state.store.engine, request.cookies.get(SESSION_COOKIE))
        logger.info("console logout user={!r}", user.name)
        response = RedirectResponse(PREFIX + "/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def _login_form(request: Request, console: Console, error: str | None = None, status_code: int = 200, headers: dict | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = console.render(request, "login.html", None, status_code, login_csrf=token, error=error)
    _cookie(response, request, LOGIN_COOKIE, token, 3600)
    response.headers.update(headers or {})
    return response
