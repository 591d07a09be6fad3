"""Where a notification may connect: public addresses only, unless the config allows private ones.

A webhook URL is chosen by whoever manages channels; without a check it could make the collector
call its own admin ports, the cloud metadata service (169.254.169.254) or anything else on the
internal network (server-side request forgery). A target's name is resolved and every address it
resolves to must be public, when the channel is saved and again before each message is sent, since
a DNS answer can change in between. The webhook sender then connects to the address it checked.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The target resolves to an address notifications may not reach, or does not resolve."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    addresses: tuple[str, ...]  # checked, in the resolver's order: connect to these


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (tests replace this function to change the DNS answer)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
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
