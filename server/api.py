"""The HTTP API, versioned under /api/v1 (README.md, "HTTP API")."""

from __future__ import annotations

import dataclasses
import hmac
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from loguru import logger
from sqlalchemy import text

from server import __version__, alertquery, batchdecode, fleetlist, incidents, triage
from server.alerts import TransitionConflict
from server.auth import AGENT_TOKEN_PREFIX, Caller, admin_caller, agent_caller, new_token, reader_caller
from server.authguard import client_address
from server.fleet import DuplicateRefused
from server.fleetquery import FleetQuery, fleet_query
from server.models import AlertAssign, AlertPatch, EnrollIn, EventBatch, HeartbeatIn

router = APIRouter(prefix="/api/v1")


Limit = Query(100, ge=1, le=1000, description="page size (at most 1000)")


def _cursor(value: str | None) -> int | None:
    if value is None:
        return None
    # isdigit() alone admits '²' (int() refuses it) and '١٢'; ids are positive 63-bit integers
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) >= 2**63:
        raise HTTPException(400, "invalid cursor: pass back the 'next' value of the previous page")
    return int(value)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise HTTPException(422, "since is out of range: give a time between years 1 and 9999 in UTC") from None


@router.get("/health")
def health(request: Request) -> dict:
    try:
        with request.app.state.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the health check must answer, not raise
        logger.error("health check: database unreachable error={}", type(exc).__name__)
        raise HTTPException(503, "database unreachable") from None
    return {"status": "ok", "version": __version__}


@router.post("/enroll")
def enroll(body: EnrollIn, request: Request) -> dict:
    """The shared secret or a live group key buys a token (server/fleet.py); wrong secrets spend the
    address's failure budget (server/authguard.py), enrolments are rate-limited (server/enrolgate.py)."""
    state, store = request.app.state, request.app.state.store
    address = client_address(request.scope)
    budget = getattr(state, "auth_budget", None)
    if budget is not None and (wait_s := budget.retry_after_s(address)):
        raise HTTPException(429, f"too many failed authentications from this address; retry in {wait_s} s", headers={"Retry-After": str(wait_s)})
    key = store.fleet.check_key(body.enroll_secret)
    shared = state.config.enroll_shared_secret and hmac.compare_digest(body.enroll_secret.encode("utf-8"), state.config.enroll_secret.encode("utf-8"))
    if key.key_id is None and not shared:
        if budget is not None:
            budget.failed(address)
        logger.warning("enrolment refused: {} client={} hostname={!r}", f"{key.problem} enrolment key" if key.problem != "unknown" else "wrong secret", address, body.hostname)
        raise HTTPException(403, f"enrolment key {key.problem}" if key.problem in ("expired", "revoked") else "wrong enrolment secret")
    gate = getattr(state, "enrol_gate", None)
    admission = gate.admit(address) if gate is not None else None
    if admission is not None and admission.retry_after_s:
        if admission.burst_started:
            store.report_enrolment_burst(address, admission.scope, body.hostname)
        raise HTTPException(429, f"too many enrolments; retry in {admission.retry_after_s} s", headers={"Retry-After": str(admission.retry_after_s)})
    token = new_token(AGENT_TOKEN_PREFIX)
    try:
        done = store.fleet.enroll(str(body.agent_id), body.hostname, body.version, token, address, key.key_id, state.config.duplicate_host)
    except DuplicateRefused:
        logger.warning("enrolment refused: a live agent has this host name client={} hostname={!r}", address, body.hostname)
        raise HTTPException(409, "a live agent has this host name: an admin must retire it first (server.duplicate_host: refuse)") from None
    logger.log(
        "WARNING" if done.state == "pending" or done.agent_id != str(body.agent_id) else "INFO",
        "agent enrolled agent_id={} proposed={} state={} reason={} hostname={!r} client={} key_id={}",
        done.agent_id, body.agent_id, done.state, done.reason or "-", body.hostname, address, key.key_id,
    )  # fmt: skip
    store.groups.seen(done.agent_id, body.hostname, body.os)  # placed in a group by host name, OS, key
    answer = {"agent_id": done.agent_id, "token": token, "state": done.state}
    if done.state == "pending":
        answer["detail"] = f"waiting for an admin's approval ({done.reason.replace('_', ' ')}): the token works once approved"
    return answer


async def _event_batch(request: Request) -> EventBatch:
    """The batch server/limits.py decoded and validated with its checks (server/batchdecode.py),
    else the body decoded as FastAPI decodes a model body (the reference path, and its 422s)."""
    decoded = request.scope.get(batchdecode.SCOPE_KEY)
    return decoded if decoded is not None else batchdecode.reference_batch(await request.body())


@router.post("/events", openapi_extra={"requestBody": batchdecode.openapi_body()})
def ingest(request: Request, caller: Caller = Depends(agent_caller), batch: EventBatch = Depends(_event_batch)) -> dict:
    # host is the enrolled one: a body naming another is stored with claimed_host and raises agent-tamper
    if getattr(request.app.state, "reference_ingest", False):  # the per-event reference (server/batchdecode.py)
        stored = [e.to_event(caller.name) for e in batch.events]
    else:
        stored = [e.stored(caller.name) for e in batch.events]
    result = request.app.state.store.ingest(stored, enrolled_host=caller.host)
    return {"accepted": result.accepted, "duplicates": result.duplicates}


@router.post("/heartbeat")
def heartbeat(body: HeartbeatIn, request: Request, caller: Caller = Depends(agent_caller)) -> dict:
    status = {"dead_events": body.dead_events, "watched": body.watched, "indexed_files": body.indexed_files}
    if body.indexed_by_item is not None:  # server/foundin.py sums it for the register
        status["indexed_by_item"] = {str(k): v for k, v in body.indexed_by_item.items()}
    chain = body.chain.model_dump() if body.chain else None
    pipeline = body.pipeline.model_dump() if body.pipeline else None
    request.app.state.store.heartbeat(
        caller.name, body.hostname, body.version, body.policy_version, body.spool_depth, status, chain, body.agent_time_text(),
        pipeline, request.app.state.config.pipeline_stall_s,
    )
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # an agent whose policy_version differs fetches GET /api/v1/policy: a changed rule, or a change to
    # its group or the register items it holds, arrives within one heartbeat
    store = request.app.state.store
    store.groups.seen(caller.name, caller.host or body.hostname, body.os)  # the enrolled host name places it
    return {"status": "ok", "server_time": now, "policy_version": store.groups.version_for(caller.name, store.active_policy_version())}


@router.get("/alerts")
def list_alerts(
    request: Request,
    status: str | None = Query(None, pattern="^(open|acknowledged|resolved|false_positive|active|all)$"),
    severity: str | None = Query(None, pattern="^(critical|high|medium|low|info)$"),
    category: str | None = Query(None, pattern="^[a-z0-9-]{1,64}$"),
    level: str | None = Query(None, pattern="^(core|important|general|internal)$"),
    user: str | None = Query(None, max_length=255),
    host: str | None = Query(None, max_length=255),
    device: str | None = Query(None, max_length=255),
    register_item: str | None = Query(None, max_length=255),
    assignee: str | None = Query(None, max_length=255),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Limit,
    cursor: str | None = Query(None, max_length=32),
    caller: Caller = Depends(reader_caller),
) -> dict:
    """The console list's filters (server/alertquery.py), every status unless one is asked for
    (active: open and acknowledged); since/until in UTC unless they carry an offset, until exclusive."""
    given = {"status": status, "severity": severity, "category": category, "level": level, "user": user, "host": host,
             "device": device, "register_item": register_item, "assignee": assignee}  # fmt: skip
    try:
        found = alertquery.parse_filter(given, alertquery.UTC, default_status="all")
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    found = dataclasses.replace(found, since=_utc(since), until=_utc(until))
    page = request.app.state.store.list_alerts(limit=limit, cursor=_cursor(cursor), where=found.where())
    return {"alerts": page.items, **({"next": page.next_cursor} if page.next_cursor else {})}


@router.get("/alerts/{alert_id}")
def get_alert(alert_id: int, request: Request, caller: Caller = Depends(reader_caller)) -> dict:
    alert = request.app.state.store.get_alert(alert_id) if 0 < alert_id < 2**63 else None
    if alert is None:
        raise HTTPException(404, "no such alert")
    return alert


@router.get("/alerts/{alert_id}/files")
def get_alert_files(
    alert_id: int,
    request: Request,
    page: int = Query(1, ge=1, le=10**9),
    per_page: int = Query(incidents.FILES_PER_PAGE, ge=1, le=1000),
    caller: Caller = Depends(reader_caller),
) -> dict:
    """An incident's files in arrival order, a page at a time (server/incidents.py); an alert that is
    not an incident has none."""
    store = request.app.state.store
    with store.engine.connect() as conn:
        found = incidents.files_page(conn, alert_id, page, per_page) if 0 < alert_id < 2**63 else None
    if found is None:
        raise HTTPException(404, "no such alert")
    return {"alert_id": alert_id, "page": found.page, "pages": found.pages, "total": found.total, "files": found.files}


@router.patch("/alerts/{alert_id}")
def patch_alert(alert_id: int, body: AlertPatch, request: Request, caller: Caller = Depends(reader_caller)) -> dict:
    """A status change or a comment; 409 for a change the alert's status does not allow (a closed
    alert is reopened, status open, before it is acknowledged: server/alerts.py TRANSITIONS)."""
    try:
        alert = request.app.state.store.update_alert(alert_id, body.status, body.comment, f"token:{caller.name}") if 0 < alert_id < 2**63 else None
    except TransitionConflict as exc:
        logger.info("alert change refused id={} from={} to={} by=token:{!r}", alert_id, exc.current, exc.status, caller.name)
        raise HTTPException(409, str(exc)) from None
    if alert is None:
        raise HTTPException(404, "no such alert")
    logger.info("alert updated id={} status={} by=token:{!r}", alert_id, body.status, caller.name)
    return alert


@router.post("/alerts/{alert_id}/assign")
def assign_alert(alert_id: int, body: AlertAssign, request: Request, caller: Caller = Depends(reader_caller)) -> dict:
    """Give the alert to a console analyst or admin (null: nobody): history, audit log, their e-mail."""
    store = request.app.state.store
    if not (0 < alert_id < 2**63 and store.get_alert(alert_id) is not None):
        raise HTTPException(404, "no such alert")
    try:
        triage.assign(store.engine, [alert_id], body.assignee, f"token:{caller.name}", store.clock())
    except triage.UnknownAssignee as exc:
        raise HTTPException(422, str(exc)) from None
    return store.get_alert(alert_id)


@router.delete("/alerts/{alert_id}")
def delete_alert(alert_id: int, request: Request, caller: Caller = Depends(admin_caller)) -> dict:
    """Admins only: the alert, its history and its evidence links go; the audit log keeps the record."""
    if not (0 < alert_id < 2**63 and request.app.state.store.delete_alert(alert_id, f"token:{caller.name}")):
        raise HTTPException(404, "no such alert")
    logger.info("alert deleted id={} by=token:{!r}", alert_id, caller.name)
    return {"id": alert_id, "deleted": True}


@router.get("/events")
def list_events(
    request: Request,
    type: str | None = Query(None, pattern="^[a-z_]+(\\.[a-z_]+)*$", max_length=64),
    agent_id: str | None = Query(None, pattern="^[A-Za-z0-9-]{1,64}$"),
    since: datetime | None = None,
    limit: int = Limit,
    cursor: str | None = Query(None, max_length=32),
    caller: Caller = Depends(reader_caller),
) -> dict:
    since_text = _utc(since).isoformat(timespec="milliseconds").replace("+00:00", "Z") if since else None
    page = request.app.state.store.list_events(type, agent_id, since_text, limit, _cursor(cursor))
    return {"events": page.items, **({"next": page.next_cursor} if page.next_cursor else {})}


@router.get("/agents")
def list_agents(
    request: Request,
    query: FleetQuery = Depends(fleet_query),
    limit: int = Limit,
    cursor: str | None = Query(None, max_length=32),
    caller: Caller = Depends(reader_caller),
) -> dict:
    """The fleet page's data: the same filters, sorted, paged (`next` is the following page's number)."""
    page = _cursor(cursor) or 1
    store = request.app.state.store
    with store.engine.connect() as conn:
        fleet = fleetlist.fleet_page(
            conn, query.filter, store.clock(), request.app.state.config.agent_offline_s, query.sort, query.descending, page, limit
        )
    more = {"next": str(page + 1)} if page < fleet.pages else {}
    answer = {"agents": [dataclasses.asdict(a) for a in fleet.agents], "total": fleet.total, "target_version": fleet.target_version}
    return {**answer, "group_targets": {str(k): v for k, v in fleet.group_targets.items()}, **more}
