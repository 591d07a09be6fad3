"""Where a notification may connect: public addresses only, unless the config allows private ones.

A webhook URL is chosen by whoever manages channels; without a check it could make the collector
call its own admin ports, the cloud metadata service (169.254.169.254) or anything else on the
internal network (server-side request forgery). A target's name is resolved and every address it
resolves to must be public, when the channel is saved and again before each message is sent, since
a DNS answer can change in between. The webhook sender then connects to the address it checked.

apprise connects by itself (requests, smtplib), so while it sends, `pinned()` holds the names the
channel may reach: a name lookup in that context (apprise's worker threads copy it) answers a
checked name with the addresses that were checked, resolves a vendor's fixed name and checks its
addresses, and refuses every other name. A plugin that would follow a redirect, a discovery answer
(Matrix's .well-known) or a host we did not expect thus cannot connect anywhere else.
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from loguru import logger

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The target resolves to an address notifications may not reach, or does not resolve."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    addresses: tuple[str, ...]  # checked, in the resolver's order: connect to these


_system_getaddrinfo = socket.getaddrinfo  # the resolver itself, before guard() wraps it


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (tests replace this function to change the DNS answer)."""
    infos = _system_getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def forbidden_reason(address: str) -> str | None:
    """Why an address may not be reached (loopback, private, ...), or None for a public address."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("not globally routable", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def literal_address(host: str) -> str | None:
    """The host as an IP address when it is one (brackets of IPv6 removed), else None."""
    bare = host.strip("[]")
    try:
        return str(ipaddress.ip_address(bare.split("%", 1)[0]))
    except ValueError:
        return None


def check_literal(host: str) -> str | None:
    """A check that needs no DNS (config load): an IP literal or localhost that is not public."""
    if host.lower().rstrip(".") in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return f"{host} is loopback"
    address = literal_address(host)
    reason = forbidden_reason(address) if address else None
    return f"{host} is {reason}" if reason else None


def check_target(host: str, port: int, allow_private: bool) -> Target:
    """Resolve and check; raises TargetRefused. With `allow_private` any address is fine."""
    if not host:
        raise TargetRefused("the URL names no host")
    try:
        addresses = [literal_address(host)] if literal_address(host) else resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc.__class__.__name__}") from None
    if not addresses:
        raise TargetRefused(f"{host} resolves to no address")
    if not allow_private:
        for address in addresses:
            reason = forbidden_reason(address)
            if reason:
                raise TargetRefused(
                    f"{host} resolves to {address}, which is {reason} (server.notify_allow_private allows it)"
                )
    return Target(host, port, tuple(addresses))


# --- name lookups while apprise sends ----------------------------------------------------------

VENDOR = None  # a pin meaning: a vendor's fixed name, resolved when asked and its addresses checked


@dataclass(frozen=True)
class _Pins:
    names: Mapping[str, tuple[str, ...] | None]  # normalised name -> checked addresses, or VENDOR
    allow_private: bool


_pins: contextvars.ContextVar[_Pins | None] = contextvars.ContextVar("miwei_notify_pins", default=None)


def _normalised(host) -> str:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return str(host or "").strip("[]").lower().rstrip(".")


def _proxy_hosts() -> set[str]:
    """Proxies the operator set in the environment (requests connects to them, not to the target)."""
    hosts = set()
    for value in urllib.request.getproxies().values():
        try:
            hosts.add(_normalised(urlsplit(value if "://" in value else f"http://{value}").hostname))
        except ValueError:
            continue
    return hosts - {""}


def _infos(addresses: tuple[str, ...], port, family: int, type_: int, proto: int, flags: int) -> list:
    infos: list = []
    for address in addresses:
        try:
            infos += _system_getaddrinfo(address, port, family, type_, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            continue  # an IPv6 address asked for as IPv4, ...
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, "no checked address of the asked family")
    return infos


def _guarded_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's names
    pins = _pins.get()
    if pins is None:
        return _system_getaddrinfo(host, port, family, type, proto, flags)
    name = _normalised(host)
    if name in pins.names:
        addresses = pins.names[name]
        if addresses is VENDOR:
            try:
                addresses = check_target(name, 443, pins.allow_private).addresses
            except TargetRefused as exc:
                logger.warning("notification lookup refused host={!r}: {}", name[:100], exc)
                raise socket.gaierror(socket.EAI_NONAME, str(exc)) from None
        return _infos(addresses, port, family, type, proto, flags)
    if name in _proxy_hosts():
        return _system_getaddrinfo(host, port, family, type, proto, flags)
    logger.warning("notification lookup refused host={!r}: not a host this channel may reach", name[:100])
    raise socket.gaierror(socket.EAI_NONAME, "not a host this notification channel may reach")


def guard() -> None:
    """Route the process's name lookups through the pins (idempotent; no effect outside `pinned`)."""
    if socket.getaddrinfo is not _guarded_getaddrinfo:
        socket.getaddrinfo = _guarded_getaddrinfo


@contextmanager
def pinned(names: Mapping[str, tuple[str, ...] | None], allow_private: bool) -> Iterator[None]:
    """While inside, lookups in this context answer only `names` (see the module docstring)."""
    guard()
    token = _pins.set(_Pins({_normalised(k): v for k, v in names.items()}, allow_private))
    try:
        yield
    finally:
        _pins.reset(token)
