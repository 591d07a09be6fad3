"""Wires the collector together: config, store and the FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from server import __version__
from server.api import router
from server.config import ServerConfig
from server.store import Store

MAX_BODY_BYTES = 32 * 1024 * 1024

LANDING = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>MiWei collector</title></head>
<body><h1>MiWei (密卫) collector</h1>
<p>The API is under <code>/api/v1</code>; its schema is <a href="/openapi.json">/openapi.json</a>.
The web console is not part of this version yet.</p></body></html>"""


class BodyLimit:
    """Refuse request bodies over a size cap (413) before anything parses them."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await _too_large(scope, receive, send, self.max_bytes)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _too_large(scope, receive, send, self.max_bytes)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope, receive, send, max_bytes: int) -> None:
    response = JSONResponse({"detail": f"request body larger than {max_bytes} bytes"}, status_code=413)
    await response(scope, receive, send)


def create_app(config: ServerConfig, store: Store) -> FastAPI:
    app = FastAPI(title="MiWei collector", version=__version__, docs_url=None, redoc_url=None)
    app.state.config = config
    app.state.store = store
    app.include_router(router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def landing() -> str:
        return LANDING

    @app.middleware("http")
    async def security_headers(request, call_next):
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    return app
