"""Notification channels: an apprise URL plus routing (severities, categories) and a rate limit.

Channels come from the config (`server.notify`, read-only, ids `config:<n>`) and from the API
(`/api/v1/channels`). URLs carry tokens and passwords: they are shown and logged only as
`redact(url)` (scheme and host), and errors about them are passed through `scrub()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import apprise

from rules.levels import SEVERITIES
from server.notify import netcheck

DEFAULT_MAX_PER_HOUR = 30
MAX_URL_CHARS = 2048

# Our own sender posts these (no redirects, a timeout, a response cap, the checked address).
WEBHOOK_SCHEMES = ("json", "jsons")
# apprise connects to a host the URL names (an SMTP server, a self-hosted service): checked by address.
HOST_SCHEMES = (
    "mailto", "mailtos", "ntfy", "ntfys", "gotify", "gotifys", "matrix", "matrixs", "mmost", "mmosts",
    "rocket", "rockets", "apprise", "apprises", "nctalk", "nctalks", "ncloud", "nclouds",
)  # fmt: skip
# apprise connects to the vendor's fixed endpoint; the URL's "host" part is a token.
VENDOR_SCHEMES = (
    "dingtalk", "wecombot", "feishu", "lark", "slack", "msteams", "workflows", "discord", "tgram",
    "pushplus", "serverchan", "qq", "bark", "barks",
)  # fmt: skip
SUPPORTED_SCHEMES = WEBHOOK_SCHEMES + HOST_SCHEMES + VENDOR_SCHEMES
# Targets that render Markdown: they get the Markdown body (agent text neutralised), the rest plain text.
MARKDOWN_SCHEMES = ("dingtalk", "feishu", "lark", "slack", "discord", "mmost", "mmosts", "rocket", "rockets")


class ChannelError(ValueError):
    """A channel that cannot be used: bad URL, unknown scheme, forbidden target, bad routing."""


@dataclass(frozen=True)
class ChannelSpec:
    """What the config or an API call says about a channel."""

    url: str
    name: str = ""
    severities: tuple[str, ...] = SEVERITIES  # the severities that are sent
    categories: tuple[str, ...] = ()  # empty: every category
    max_per_hour: int = DEFAULT_MAX_PER_HOUR

    def routes(self, severity: str, category: str) -> bool:
        return severity in self.severities and (not self.categories or category in self.categories)


@dataclass(frozen=True)
class Channel(ChannelSpec):
    id: str = ""
    source: str = "api"  # config | api
    enabled: bool = True
    extra: dict = field(default_factory=dict, compare=False)  # created_at, updated_at, created_by

    def public(self) -> dict:
        """The channel as the API shows it: the URL redacted."""
        return {
            "id": self.id,
            "source": self.source,
            "name": self.name,
            "url": redact(self.url),
            "severities": list(self.severities),
            "categories": list(self.categories),
            "max_per_hour": self.max_per_hour,
            "enabled": self.enabled,
            "read_only": self.source == "config",
            **self.extra,
        }


def scheme_of(url: str) -> str:
    return url.partition("://")[0].lower()


def redact(url: str) -> str:
    """scheme://host/… for targets whose host is an address, scheme://… where the host is a token."""
    scheme = scheme_of(url)
    if scheme in WEBHOOK_SCHEMES or scheme in HOST_SCHEMES:
        host = _host(url)
        if host:
            return f"{scheme}://{host}/…"
    return f"{scheme}://…" if scheme.isalnum() else "(unparsable URL)"


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def secrets_of(url: str) -> list[str]:
    """The parts of a URL that may be secret (user, password, path segments, query values, a token
    host), longest first, for scrubbing error texts that might quote them."""
    try:
        parts = urlsplit(url)
        pieces = [parts.username or "", parts.password or "", *parts.path.split("/"), *re.split(r"[&=]", parts.query)]
        if scheme_of(url) not in WEBHOOK_SCHEMES + HOST_SCHEMES:
            pieces.append(parts.hostname or "")
        pieces.append(url.partition("://")[2])
    except ValueError:
        pieces = [url.partition("://")[2]]
    found = {p for raw in pieces for p in (raw, unquote(raw)) if len(p) >= 4}
    return sorted(found, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """An error text with anything from the URL that might be secret replaced by ***."""
    for secret in secrets_of(url):
        text = text.replace(secret, "***")
    return text


def instantiate(url: str):
    """The apprise plugin for a URL; raises ChannelError (never quoting the URL) when it is not usable."""
    if not isinstance(url, str) or not url.strip():
        raise ChannelError("the URL is empty")
    if len(url) > MAX_URL_CHARS:
        raise ChannelError(f"the URL is longer than {MAX_URL_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise ChannelError("the URL contains control characters")
    scheme = scheme_of(url)
    if "://" not in url:
        raise ChannelError("not an apprise URL (scheme://...)")
    if scheme not in SUPPORTED_SCHEMES:
        hint = "json://, jsons://, mailto://, mailtos://, dingtalk://, wecombot://, feishu://, slack://, ..."
        raise ChannelError(f"unsupported notification scheme '{scheme[:20]}' (use {hint})")
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise ChannelError(f"apprise cannot use this {scheme}:// URL (see the apprise documentation for its form)")
    return plugin


def target_host(url: str, plugin=None) -> tuple[str, int] | None:
    """The (host, port) a channel connects to when it is one the URL chooses, else None (vendor)."""
    scheme = scheme_of(url)
    if scheme in VENDOR_SCHEMES:
        return None
    plugin = plugin or instantiate(url)
    if scheme.startswith("mailto"):
        return str(plugin.smtp_host), int(plugin.port or (465 if plugin.secure else 25))
    default_port = 443 if getattr(plugin, "secure", False) else 80
    return str(plugin.host or ""), int(plugin.port or default_port)


def check_url(url: str, allow_private: bool, resolve: bool) -> None:
    """Raise ChannelError unless the URL is usable and its target allowed.

    With `resolve` the host is looked up in DNS (a channel saved through the API, a message about
    to be sent); without, only what needs no DNS is checked (config load: an IP literal, localhost).
    """
    plugin = instantiate(url)
    target = target_host(url, plugin)
    if target is None or allow_private:
        return
    host, port = target
    if not resolve:
        problem = netcheck.check_literal(host)
        if problem:
            raise ChannelError(f"{problem}: notifications may not reach it (server.notify_allow_private allows it)")
        return
    try:
        netcheck.check_target(host, port, allow_private)
    except netcheck.TargetRefused as exc:
        raise ChannelError(str(exc)) from None


def severities_from(value) -> tuple[str, ...]:
    """A minimum severity ("high": high and critical) or a list of severities."""
    if isinstance(value, str):
        if value not in SEVERITIES:
            raise ChannelError(f"unknown severity '{value[:20]}' (one of {', '.join(SEVERITIES)})")
        return SEVERITIES[: SEVERITIES.index(value) + 1]
    values = tuple(value)
    unknown = [v for v in values if v not in SEVERITIES]
    if unknown:
        raise ChannelError(f"unknown severity '{str(unknown[0])[:20]}' (one of {', '.join(SEVERITIES)})")
    if not values:
        raise ChannelError("severities must not be empty (leave it out to send every severity)")
    return tuple(s for s in SEVERITIES if s in values)
