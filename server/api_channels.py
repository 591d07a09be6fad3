"""Notification channels in the API (/api/v1/channels), and the sender's life with the app.

Reading channels takes an API token; changing and testing them takes an admin token.
Channel URLs hold secrets: answers and logs show them redacted.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select

from server.auth import Caller, admin_caller, reader_caller
from server.notify.channels import DEFAULT_MAX_PER_HOUR, ChannelError, ChannelSpec, check_url, redact, severities_from
from server.notify.channelstore import ChannelStore
from server.notify.messages import test_message
from server.notify.sender import POLL_S, NotificationSender
from server.notify.tables import notifications
from server.notify.transport import DeliveryError, Transport

Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Name = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,64}$")]
Severity = Annotated[str, StringConstraints(pattern=r"^(critical|high|medium|low|info)$")]
ChannelId = Annotated[str, StringConstraints(max_length=64)]
NOT_DELIVERED = "not delivered (the collector's log says why)"


@asynccontextmanager
async def notify_lifespan(app: FastAPI):
    """Write the config's channels, then run the sender until the app stops (in one worker of several)."""
    if not getattr(app.state, "background", True):  # slot 0 sends (server/workers.py)
        yield
        return
    channels, transport = _parts(app)
    try:
        channels.sync_config(app.state.config.notify)
    except Exception as exc:  # an unreachable database: the sender's rounds will say so too
        logger.error("cannot write the config's notification channels error={}: {!r}", type(exc).__name__, str(exc))
    store = app.state.store
    sender = NotificationSender(
        store.engine, store.clock, transport, poll_s=getattr(app.state, "notify_poll_s", POLL_S),
        zone=getattr(app.state.config, "timezone", "Asia/Shanghai"), language=getattr(app.state.config, "language", "zh"),
        titles_zh=lambda: _titles_zh(store),
    )
    app.state.notifier = sender
    sender.start()
    logger.info("notification sender started channels={}", len(app.state.config.notify))
    try:
        yield
    finally:
        sender.stop()


router = APIRouter(prefix="/api/v1", lifespan=notify_lifespan)


def _titles_zh(store) -> dict[str, str]:
    """Rule id -> the rule's Chinese title (title_zh), from the active policy."""
    ruleset = store.policies.active().ruleset
    return {r.id: r.title_zh for r in (*ruleset.event_rules, *ruleset.correlation_rules) if r.title_zh}


def _parts(app: FastAPI) -> tuple[ChannelStore, Transport]:
    if not hasattr(app.state, "channels"):
        store = app.state.store
        app.state.channels = ChannelStore(store.engine, store.clock)
        app.state.transport = Transport(app.state.config.notify_allow_private)
    return app.state.channels, app.state.transport


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url
    name: Name = ""
    severities: Severity | list[Severity] | None = Field(None, description="a minimum severity, or a list; default all")
    categories: list[Category] = Field(default_factory=list, max_length=100, description="empty: every category")
    max_per_hour: int = Field(DEFAULT_MAX_PER_HOUR, ge=1, le=10_000)
    enabled: bool = True


class ChannelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url | None = None
    name: Name | None = None
    severities: Severity | list[Severity] | None = None
    categories: list[Category] | None = Field(None, max_length=100)
    max_per_hour: int | None = Field(None, ge=1, le=10_000)
    enabled: bool | None = None


def _spec(url: str, name: str, severities, categories, max_per_hour: int, request: Request) -> ChannelSpec:
    try:
        sevs = severities_from(severities) if severities is not None else ChannelSpec(url).severities
        check_url(url, request.app.state.config.notify_allow_private, resolve=True)
    except ChannelError as exc:
        raise HTTPException(422, f"{redact(url)}: {exc}") from None
    return ChannelSpec(
        url=url, name=name, severities=sevs, categories=tuple(dict.fromkeys(categories)), max_per_hour=max_per_hour
    )


def _existing(request: Request, channel_id: str, writable: bool = False):
    channel = _parts(request.app)[0].get(channel_id)
    if channel is None:
        raise HTTPException(404, "no such channel")
    if writable and channel.source == "config":
        raise HTTPException(409, "this channel comes from the config file (server.notify): change it there")
    return channel


@router.get("/channels")
def list_channels(request: Request, caller: Caller = Depends(reader_caller)) -> dict:
    return {"channels": [c.public() for c in _parts(request.app)[0].list()]}


@router.get("/channels/{channel_id}")
def get_channel(channel_id: ChannelId, request: Request, caller: Caller = Depends(reader_caller)) -> dict:
    channel = _existing(request, channel_id)
    with request.app.state.store.engine.connect() as conn:
        counts = conn.execute(
            select(notifications.c.status, func.count())
            .where(notifications.c.channel_id == channel_id)
            .group_by(notifications.c.status)
        )
        outbox = {status: n for status, n in counts}
    return {**channel.public(), "outbox": outbox}


@router.post("/channels", status_code=201)
def create_channel(body: ChannelIn, request: Request, caller: Caller = Depends(admin_caller)) -> dict:
    spec = _spec(body.url, body.name, body.severities, body.categories, body.max_per_hour, request)
    channel = _parts(request.app)[0].create(spec, body.enabled, f"token:{caller.name}")
    logger.info("channel created id={} target={} by=token:{!r}", channel.id, redact(channel.url), caller.name)
    return channel.public()


@router.patch("/channels/{channel_id}")
def patch_channel(
    channel_id: ChannelId, body: ChannelPatch, request: Request, caller: Caller = Depends(admin_caller)
) -> dict:
    old = _existing(request, channel_id, writable=True)
    given = body.model_dump(exclude_unset=True)
    if any(given.get(k, 0) is None for k in ("url", "name", "categories", "max_per_hour", "enabled")):
        raise HTTPException(422, "a field given must have a value (leave it out to keep it)")
    url = given.get("url", old.url)
    severities = given["severities"] if given.get("severities") is not None else list(old.severities)
    spec = _spec(
        url,
        given.get("name", old.name),
        severities,
        given.get("categories", old.categories),
        given.get("max_per_hour", old.max_per_hour),
        request,
    )
    channel = _parts(request.app)[0].update(channel_id, spec, given.get("enabled", old.enabled), f"token:{caller.name}")
    if channel is None:
        raise HTTPException(404, "no such channel")
    logger.info(
        "channel changed id={} target={} fields={} by=token:{!r}",
        channel_id,
        redact(channel.url),
        sorted(given),
        caller.name,
    )
    return channel.public()


@router.delete("/channels/{channel_id}")
def delete_channel(channel_id: ChannelId, request: Request, caller: Caller = Depends(admin_caller)) -> dict:
    channel = _existing(request, channel_id, writable=True)
    _parts(request.app)[0].delete(channel_id, f"token:{caller.name}")
    logger.info("channel deleted id={} target={} by=token:{!r}", channel_id, redact(channel.url), caller.name)
    return {"id": channel_id, "deleted": True}


@router.post("/channels/{channel_id}/test")
def test_channel(channel_id: ChannelId, request: Request, caller: Caller = Depends(admin_caller)) -> dict:
    """Send a test message now (a plain def: FastAPI runs it on a worker thread, not the event loop).

    A failure answers the same words whatever the cause: a refused connection, a closed port, an
    HTTP error or a TLS failure would otherwise tell an admin token which internal ports listen.
    The reason goes to the collector's log."""
    channel = _existing(request, channel_id)
    try:
        _parts(request.app)[1].deliver(channel.url, test_message(channel.name or channel.id))
    except DeliveryError as exc:
        logger.warning("channel test failed id={} target={} error={!r}", channel_id, redact(channel.url), str(exc))
        raise HTTPException(502, NOT_DELIVERED) from None
    logger.info("channel test sent id={} target={} by=token:{!r}", channel_id, redact(channel.url), caller.name)
    return {"id": channel_id, "delivered": True}
