"""Notification channels in the console: list (everyone signed in), create, edit, test, disable,
enable and delete (administrators, with the form's CSRF token), routed by severity and category.

The same store (server/notify/channelstore.py: audited, pending messages dropped when a target
changes), the same URL and SSRF checks (channels.check_url, resolving the host) and the same
transport (a test goes out exactly as an alert would) as /api/v1/channels. Targets hold tokens and
passwords: pages show channels.redact(url), logs too, and a refused form is shown again without
what was typed into its secret fields.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from loguru import logger
from sqlalchemy import func, select

from server.api_channels import _parts as channel_parts
from server.console import channelforms
from server.console.labels import CATEGORY
from server.console.sessions import ConsoleUser
from server.console.web import PREFIX, Console, back, first
from server.notify.channels import Channel, ChannelError, ChannelSpec, check_url, redact
from server.notify.messages import test_message
from server.notify.tables import notifications
from server.notify.transport import DeliveryError
from server.schema import alerts

MAX_ID = 64
TARGET_REFUSED = (
    "the target cannot be used: the address is not one this kind accepts, does not resolve, or is a private"
    " address notifications may not reach (server.notify_allow_private allows those)"
)


def register(router: APIRouter, console: Console) -> None:
    def known_categories(request: Request) -> list[str]:
        with request.app.state.store.engine.connect() as conn:
            seen = set(conn.execute(select(alerts.c.category).distinct()).scalars())
        return sorted(set(CATEGORY) | seen)

    def outbox(request: Request) -> dict[str, dict[str, int]]:
        with request.app.state.store.engine.connect() as conn:
            rows = conn.execute(
                select(notifications.c.channel_id, notifications.c.status, func.count()).group_by(
                    notifications.c.channel_id, notifications.c.status
                )
            ).all()
        counts: dict[str, dict[str, int]] = {}
        for channel_id, status, n in rows:
            counts.setdefault(channel_id, {})[status] = n
        return counts

    def view(request: Request, user: ConsoleUser, status_code: int = 200, **extra) -> Response:
        channels = channel_parts(request.app)[0].list()
        context = {"error": None, "result": None, "form": {}, "editing": None}
        context.update(extra)
        return console.render(
            request, "channels.html", user, status_code, channels=[_shown(c) for c in channels], outbox=outbox(request),
            categories=known_categories(request), kinds=channelforms.KINDS, **context,
        )  # fmt: skip

    def existing(request: Request, channel_id: str, writable: bool = True) -> Channel:
        channel = channel_parts(request.app)[0].get(channel_id) if len(channel_id) <= MAX_ID else None
        if channel is None:
            raise HTTPException(404, "no such channel")
        if writable and channel.source == "config":
            raise HTTPException(409, "this channel comes from the config file (server.notify): change it there")
        return channel

    def checked(request: Request, url: str, user: ConsoleUser) -> None:
        """The API's checks (scheme, target, SSRF); their detail (a host, an address) goes to the log,
        the page says in the viewer's language what was refused."""
        try:
            check_url(url, request.app.state.config.notify_allow_private, resolve=True)
        except ChannelError as exc:
            logger.warning(
                "channel target refused target={} by=console:{!r} error={!r}", redact(url), user.name, str(exc)
            )
            raise ChannelError(TARGET_REFUSED) from None

    def safe_form(fields: dict) -> dict[str, str]:
        """What a refused form shows again: never a token, a password or a whole address."""
        keep = ("name", "kind", "smtp_host", "smtp_port", "security", "user", "sender", "to", "max_per_hour")
        return {k: first(fields, k) for k in keep} | {
            "severity": fields.get("severity", []),
            "category": fields.get("category", []),
        }

    @router.get(PREFIX + "/channels", include_in_schema=False)
    def channels_page(request: Request, user: ConsoleUser = Depends(console.user)) -> Response:
        return view(request, user)

    @router.post(PREFIX + "/channels", include_in_schema=False)
    def create(
        request: Request, user: ConsoleUser = Depends(console.admin), fields: dict = Depends(console.admin_form)
    ) -> Response:
        kind = first(fields, "kind")
        try:
            route = channelforms.routing(fields)
            url = channelforms.build_url(kind, fields)
            checked(request, url, user)
        except ChannelError as exc:
            logger.warning("channel refused kind={} by=console:{!r} error={!r}", kind[:20], user.name, str(exc))
            return view(request, user, 422, error=str(exc), form=safe_form(fields))
        spec = ChannelSpec(url, route.name, route.severities, route.categories, route.max_per_hour)
        channel = channel_parts(request.app)[0].create(spec, route.enabled, f"console:{user.name}")  # audited there
        logger.info("channel created id={} target={} by=console:{!r}", channel.id, redact(url), user.name)
        return back("/channels", msg="channel_saved")

    @router.get(PREFIX + "/channels/{channel_id}", include_in_schema=False)
    def edit_page(channel_id: str, request: Request, user: ConsoleUser = Depends(console.admin)) -> Response:
        channel = existing(request, channel_id)
        form = {"name": channel.name, "kind": channelforms.kind_of(channel.url), "max_per_hour": str(channel.max_per_hour),
                "severity": list(channel.severities), "category": list(channel.categories)}  # fmt: skip
        return view(request, user, editing=_shown(channel), form=form)

    @router.post(PREFIX + "/channels/{channel_id}", include_in_schema=False)
    def update(
        channel_id: str,
        request: Request,
        user: ConsoleUser = Depends(console.admin),
        fields: dict = Depends(console.admin_form),
    ) -> Response:
        old = existing(request, channel_id)
        try:
            route = channelforms.routing(fields)
            url = channelforms.build_url(first(fields, "kind"), fields) if channelforms.has_target(fields) else old.url
            checked(request, url, user)
        except ChannelError as exc:
            logger.warning("channel change refused id={} by=console:{!r} error={!r}", channel_id, user.name, str(exc))
            return view(request, user, 422, error=str(exc), form=safe_form(fields), editing=_shown(old))
        spec = ChannelSpec(url, route.name, route.severities, route.categories, route.max_per_hour)
        channel_parts(request.app)[0].update(channel_id, spec, route.enabled, f"console:{user.name}")  # audited there
        logger.info(
            "channel changed id={} target={} target_changed={} by=console:{!r}",
            channel_id,
            redact(url),
            url != old.url,
            user.name,
        )
        return back("/channels", msg="channel_saved")

    @router.post(PREFIX + "/channels/{channel_id}/state", include_in_schema=False)
    def switch(
        channel_id: str,
        request: Request,
        user: ConsoleUser = Depends(console.admin),
        fields: dict = Depends(console.admin_form),
    ) -> Response:
        old = existing(request, channel_id)
        enabled = first(fields, "enabled") == "1"
        spec = ChannelSpec(old.url, old.name, old.severities, old.categories, old.max_per_hour)
        channel_parts(request.app)[0].update(
            channel_id, spec, enabled, f"console:{user.name}"
        )  # pending messages dropped when disabled
        logger.info("channel {} id={} by=console:{!r}", "enabled" if enabled else "disabled", channel_id, user.name)
        return back("/channels", msg="channel_enabled" if enabled else "channel_disabled")

    @router.post(PREFIX + "/channels/{channel_id}/delete", include_in_schema=False)
    def delete(
        channel_id: str,
        request: Request,
        user: ConsoleUser = Depends(console.admin),
        fields: dict = Depends(console.admin_form),
    ) -> Response:
        channel = existing(request, channel_id)
        channel_parts(request.app)[0].delete(channel_id, f"console:{user.name}")
        logger.info("channel deleted id={} target={} by=console:{!r}", channel_id, redact(channel.url), user.name)
        return back("/channels", msg="channel_deleted")

    @router.post(PREFIX + "/channels/{channel_id}/test", include_in_schema=False)
    def test(
        channel_id: str,
        request: Request,
        user: ConsoleUser = Depends(console.admin),
        fields: dict = Depends(console.admin_form),
    ) -> Response:
        """Send a test message now and show whether it was delivered. Like the API, a failure reads the
        same whatever its cause (a refused port would otherwise tell which internal ports listen);
        the reason goes to the collector's log."""
        channel = existing(request, channel_id, writable=False)
        store = request.app.state.store
        try:
            channel_parts(request.app)[1].deliver(channel.url, test_message(channel.name or channel.id))
            delivered = True
        except DeliveryError as exc:
            logger.warning("channel test failed id={} target={} error={!r}", channel_id, redact(channel.url), str(exc))
            delivered = False
        store.audit(f"console:{user.name}", "channel.test", f"channel:{channel_id}", {"delivered": delivered})
        logger.info(
            "channel test id={} target={} delivered={} by=console:{!r}",
            channel_id,
            redact(channel.url),
            delivered,
            user.name,
        )
        result = {"delivered": delivered, "name": channel.name or channel.id, "at": store.clock()}
        return view(request, user, result=result)


def _shown(channel: Channel) -> dict:
    """A channel as a page shows it: the target redacted (scheme and host, never tokens or passwords)."""
    return {
        "id": channel.id, "name": channel.name, "kind": channelforms.kind_of(channel.url), "target": redact(channel.url),
        "severities": list(channel.severities), "categories": list(channel.categories), "max_per_hour": channel.max_per_hour,
        "enabled": channel.enabled, "read_only": channel.source == "config", "source": channel.source,
    }  # fmt: skip
