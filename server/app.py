"""Wires the collector together: config, store and the FastAPI application."""

from __future__ import annotations

import math
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger

from server import __version__
from server.absence import AbsenceWatcher, Health
from server.api import router
from server.api_audit import router as audit_router
from server.api_channels import router as channels_router
from server.api_devices import router as devices_router
from server.api_evidence import router as evidence_router
from server.api_groups import router as groups_router
from server.api_register import router as register_router
from server.api_rules import router as rules_router
from server.config import ServerConfig
from server.console import console_router
from server.enrolgate import EnrolGate
from server.firmtime import zone
from server.incidents import IncidentSettings
from server.limits import install_limits
from server.retention import RetentionSchedule
from server.seals import SealSchedule, seal_pending
from server.signing import Signer, key_path
from server.store import Store

MAX_BODY_BYTES = 32 * 1024 * 1024
ABSENCE_CHECK_S = 5.0  # how often silent agents are looked for
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


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
        seen, too_large, started = 0, False, False

        async def limited_receive():
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message):
            # FastAPI turns any error while reading the body into its own 400: drop that answer
            nonlocal started
            if not too_large:
                started = True
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if too_large and not started:
            await _too_large(scope, receive, send, self.max_bytes)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope, receive, send, max_bytes: int) -> None:
    response = JSONResponse(
        {"detail": f"request body larger than {max_bytes} bytes"}, status_code=413, headers=SECURITY_HEADERS
    )
    await response(scope, receive, send)


def _encodable(value):
    """Validation errors echo the input, which may hold lone surrogates or NaN that JSON cannot carry."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encodable(v) for v in value]
    return value


async def _invalid_request(request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": _encodable(jsonable_encoder(exc.errors()))}, status_code=422)


def create_app(config: ServerConfig, store: Store, absence_check_s: float = ABSENCE_CHECK_S) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not getattr(app.state, "policy_activated", False):  # several workers: the supervisor did (server/workers.py)
            _activate_policy(config, store)
        if not getattr(app.state, "background", True):  # a worker other than slot 0 serves requests only
            yield
            return
        started = store.clock()
        health = Health(config.agent_offline_s, config.agent_offline_escalate, config.agent_stopped_alert_s)
        watcher = AbsenceWatcher(lambda: store.check_absence(config.agent_offline_s, started, health), absence_check_s, store.prune_hits)
        watcher.start()
        retention = RetentionSchedule(lambda: store.purge_events(config.retention_days))
        retention.start()
        # the previous day's chained events, sealed and signed once (server/seals.py)
        sealing = SealSchedule(lambda: seal_pending(store.engine, app.state.signer.key(), zone(config.timezone), store.clock(), config.tsa_url))
        sealing.start()
        try:
            yield
        finally:
            watcher.stop()
            retention.stop()
            sealing.stop()

    app = FastAPI(title="MiWei collector", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.config = config
    app.state.store = store
    app.state.signer = Signer(key_path(config.database, config.signing_key_file))  # packs and seals (server/signing.py)
    app.state.enrol_gate = EnrolGate(config.enroll_per_address_per_min, config.enroll_total_per_min)  # server/enrolgate.py
    store.clock_skew_s = config.clock_skew_s
    store.incidents = IncidentSettings(config.incident_window_s, config.incident_escalate_files, config.incident_escalate_bytes)
    app.include_router(router)
    app.include_router(rules_router)
    app.include_router(devices_router)
    app.include_router(evidence_router)  # an alert's signed pack and its report (server/api_evidence.py)
    app.include_router(register_router)  # the central secret register (server/register.py)
    app.include_router(audit_router)
    app.include_router(console_router())
    app.include_router(groups_router)
    app.include_router(channels_router)  # its lifespan runs the notification sender
    app.add_exception_handler(RequestValidationError, _invalid_request)

    @app.middleware("http")
    async def security_headers(request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():  # the console sets its own CSP for its pages
            response.headers.setdefault(name, value)
        return response

    install_limits(app)  # nesting 400, batch 413, agent rate 429, unwritable database 503; inside BodyLimit
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    return app


def _activate_policy(config: ServerConfig, store: Store) -> None:
    """The packs of this version, the latest custom rule files and the configured working time."""
    try:
        policy = store.policies.activate_at_startup(config.working_time)
    except Exception as exc:  # an unreachable database: /health says so; the policy is retried on use
        logger.error("cannot activate the policy at startup error={}: {!r}", type(exc).__name__, str(exc))
        return
    logger.info("policy in force version={} rules={}", policy.version, len(policy.ruleset.ids))
