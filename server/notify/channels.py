"""Notification channels: an apprise URL plus routing (severities, categories) and a rate limit.

Channels come from the config (`server.notify`, read-only, ids `config:<n>`) and from the API
(`/api/v1/channels`). URLs carry tokens and passwords: they are shown and logged only as
`redact(url)` (scheme and host), and errors about them are passed through `scrub()`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import apprise

from rules.levels import SEVERITIES
from server.notify import netcheck

DEFAULT_MAX_PER_HOUR = 30
MAX_URL_CHARS = 2048


class ChannelError(ValueError):
    """A channel that cannot be used: bad URL, unknown scheme, forbidden target, bad routing."""


@dataclass(frozen=True)
class Endpoint:
    """A host a channel's sender connects to."""

    host: str
    port: int
    chosen: bool  # True: the URL chose it (resolved, every address checked); False: a vendor's fixed name


@dataclass(frozen=True)
class Scheme:
    """How one apprise scheme is treated. A scheme not in SCHEMES is refused."""

    endpoints: Callable[[object], tuple[Endpoint, ...]]  # where it connects, from the apprise plugin
    host_is_address: bool  # the URL's host part is a host (shown in redact()), not a token
    markdown: bool = False  # the target renders Markdown: it gets the Markdown body


def _url_host(always_https: bool = False) -> Callable[[object], tuple[Endpoint, ...]]:
    def endpoints(plugin) -> tuple[Endpoint, ...]:
        secure = always_https or bool(getattr(plugin, "secure", False))
        return (Endpoint(str(plugin.host or ""), int(plugin.port or (443 if secure else 80)), True),)

    return endpoints


def _smtp_host(plugin) -> tuple[Endpoint, ...]:
    return (Endpoint(str(plugin.smtp_host or ""), int(plugin.port or (465 if plugin.secure else 25)), True),)


def _vendor(*names: str) -> Callable[[object], tuple[Endpoint, ...]]:
    return lambda plugin: tuple(Endpoint(name, 443, False) for name in names)


def _by_mode(mode: str, fixed: Callable, chosen: Callable) -> Callable[[object], tuple[Endpoint, ...]]:
    """ntfy's cloud mode posts to ntfy.sh, Matrix's t2bot mode to webhooks.t2bot.io; else the URL's host."""
    return lambda plugin: fixed(plugin) if str(getattr(plugin, "mode", "")) == mode else chosen(plugin)


# Read from apprise's plugins (apprise/plugins/<name>.py, the URL each one posts to): "host" schemes
# connect to the host the URL names (bark's server, a Power Automate host, an SMTP server, ...);
# vendor schemes to fixed names (the URL's "host" part is a token). Own senders: json, jsons.
_HOST, _HTTPS_HOST = _url_host(), _url_host(always_https=True)
SCHEMES: dict[str, Scheme] = {
    **{s: Scheme(_HOST, True) for s in ("json", "jsons")},
    **{s: Scheme(_smtp_host, True) for s in ("mailto", "mailtos")},
    **{s: Scheme(_by_mode("cloud", _vendor("ntfy.sh"), _HOST), True) for s in ("ntfy", "ntfys")},
    **{s: Scheme(_by_mode("t2bot", _vendor("webhooks.t2bot.io"), _HOST), True) for s in ("matrix", "matrixs")},
    **{s: Scheme(_HOST, True, markdown=True) for s in ("mmost", "mmosts", "rocket", "rockets")},
    **{s: Scheme(_HOST, True) for s in ("gotify", "gotifys", "apprise", "apprises", "nctalk", "nctalks")},
    **{s: Scheme(_HOST, True) for s in ("ncloud", "nclouds", "bark", "barks")},
    "workflows": Scheme(_HTTPS_HOST, True),
    "dingtalk": Scheme(_vendor("oapi.dingtalk.com"), False, markdown=True),
    "wecombot": Scheme(_vendor("qyapi.weixin.qq.com"), False),
    "feishu": Scheme(_vendor("open.feishu.cn"), False, markdown=True),
    "lark": Scheme(_vendor("open.larksuite.com"), False, markdown=True),
    "slack": Scheme(_vendor("hooks.slack.com", "hooks.slack-gov.com", "slack.com"), False, markdown=True),
    "discord": Scheme(_vendor("discord.com"), False, markdown=True),
    "tgram": Scheme(_vendor("api.telegram.org"), False),
    "pushplus": Scheme(_vendor("www.pushplus.plus"), False),
    "schan": Scheme(_vendor("sctapi.ftqq.com"), False),
    "qq": Scheme(_vendor("qmsg.zendee.cn"), False),
}
# Our own sender posts these (no redirects, a timeout, a response cap, the checked address).
WEBHOOK_SCHEMES = ("json", "jsons")
SUPPORTED_SCHEMES = tuple(SCHEMES)
# Targets that render Markdown: they get the Markdown body (agent text neutralised), the rest plain text.
MARKDOWN_SCHEMES = tuple(s for s, rule in SCHEMES.items() if rule.markdown)


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
    host = _shown_host(url)
    if host:
        return f"{scheme}://{host}/…"
    return f"{scheme}://…" if scheme.isalnum() else "(unparsable URL)"


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _shown_host(url: str) -> str:
    """The URL's host where it names a server; "" where it is a token (a vendor scheme, ntfy's cloud
    topic, a t2bot webhook) or the URL is not usable."""
    rule, host = SCHEMES.get(scheme_of(url)), _host(url)
    if rule is None or not rule.host_is_address or not host:
        return ""
    try:
        return host if any(e.chosen for e in endpoints(url)) else ""
    except Exception:  # an unusable URL: show nothing of it
        return ""


def secrets_of(url: str) -> list[str]:
    """The parts of a URL that may be secret (user, password, path segments, query values, a token
    host), longest first, for scrubbing error texts that might quote them."""
    try:
        parts = urlsplit(url)
        pieces = [parts.username or "", parts.password or "", *parts.path.split("/"), *re.split(r"[&=]", parts.query)]
        if not _shown_host(url):
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


def endpoints(url: str, plugin=None) -> tuple[Endpoint, ...]:
    """The hosts a channel connects to (SCHEMES says which, from the apprise plugin)."""
    plugin = plugin or instantiate(url)
    return SCHEMES[scheme_of(url)].endpoints(plugin)


def target_host(url: str, plugin=None) -> tuple[str, int] | None:
    """The (host, port) a channel connects to when the URL chooses it, else None (a vendor's name)."""
    chosen = [e for e in endpoints(url, plugin) if e.chosen]
    return (chosen[0].host, chosen[0].port) if chosen else None


def reachable(url: str, plugin, allow_private: bool) -> dict[str, tuple[str, ...] | None]:
    """The names a send may look up, for netcheck.pinned(): a host the URL chose with its checked
    addresses (raises TargetRefused), a vendor's fixed name with netcheck.VENDOR."""
    names: dict[str, tuple[str, ...] | None] = {}
    for endpoint in endpoints(url, plugin):
        if endpoint.chosen:
            names[endpoint.host] = netcheck.check_target(endpoint.host, endpoint.port, allow_private).addresses
        else:
            names[endpoint.host] = netcheck.VENDOR
    return names


def check_url(url: str, allow_private: bool, resolve: bool) -> None:
    """Raise ChannelError unless the URL is usable and its target allowed.

    With `resolve` the host is looked up in DNS (a channel saved through the API, a message about
    to be sent); without, only what needs no DNS is checked (config load: an IP literal, localhost).
    A vendor's fixed names need no check here: a send may look up only those (netcheck.pinned).
    """
    plugin = instantiate(url)
    for endpoint in endpoints(url, plugin):
        if not endpoint.chosen:
            continue
        if not endpoint.host:
            raise ChannelError("the URL names no host")
        if allow_private:
            continue
        if not resolve:
            problem = netcheck.check_literal(endpoint.host)
            if problem:
                raise ChannelError(f"{problem}: notifications may not reach it (server.notify_allow_private allows it)")
            continue
        try:
            netcheck.check_target(endpoint.host, endpoint.port, allow_private)
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
