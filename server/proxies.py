"""Who the client is behind a reverse proxy: X-Forwarded-For/Proto believed only from `server.trusted_proxies`.

The throttles (server/authguard.py for tokens, server/console/throttle.py for sign-ins) count per
client address, and the session cookie is `Secure` when the request came over HTTPS. Behind a
proxy that terminates TLS the TCP peer is the proxy and the scheme is http, so both would be
wrong; believing the headers from anyone would let a client write its own address (and escape
every per-address limit by rotating it). So `ForwardedHeaders`, a pure ASGI middleware in front
of everything that reads the client, rewrites `scope["client"]` and `scope["scheme"]` only when
the TCP peer is one of the configured proxies:

- X-Forwarded-For (every header line, joined, as RFC 9110 reads repeated fields) is walked from
  the right: each entry was appended by the hop to its right, so the first entry that is not
  itself a trusted proxy is the client. An entry that is not an address ends the walk at the last
  trusted hop (a proxy never writes garbage; a client does, left of the proxy's own entry).
- X-Forwarded-Proto's last value, when it is http or https, becomes the scheme.

From any other peer both headers are ignored. With the default (no trusted proxies) nothing changes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from rules.schema import Context, describe, scalar

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_FORWARDED_HOPS = 32  # a longer X-Forwarded-For is read only this far from the right
SCHEMES = {"http": "http", "https": "https"}
WS_SCHEMES = {"http": "ws", "https": "wss"}


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a peer or a proxy writes it ('10.0.0.1', '::1', '[::1]', '10.0.0.1:5555'); an
    IPv4-mapped IPv6 address is taken as the IPv4 address it maps."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6] or [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    @classmethod
    def of(cls, values: Iterable[str | Network]) -> TrustedProxies:
        return cls(tuple(v if isinstance(v, ipaddress.IPv4Network | ipaddress.IPv6Network) else ipaddress.ip_network(v) for v in values))

    def trusts(self, address: str) -> bool:
        parsed = parse_address(address)
        return parsed is not None and any(parsed in network for network in self.networks)

    def client(self, peer: str, forwarded_for: str) -> str:
        """The client address: the right-most X-Forwarded-For entry that is not a trusted proxy."""
        client = peer
        for entry in list(reversed(forwarded_for.split(",")))[:MAX_FORWARDED_HOPS]:
            parsed = parse_address(entry)
            if parsed is None:
                break
            client = str(parsed)
            if not any(parsed in network for network in self.networks):
                break
        return client


def _joined(scope, name: bytes) -> str | None:
    values = [value.decode("latin-1") for key, value in scope.get("headers") or () if key == name]
    return ",".join(values) if values else None


class ForwardedHeaders:
    """ASGI middleware: the client address and scheme a trusted proxy reports, else the TCP peer's."""

    def __init__(self, app, trusted: TrustedProxies):
        self.app, self.trusted = app, trusted

    async def __call__(self, scope, receive, send):
        if self.trusted.networks and scope["type"] in ("http", "websocket") and scope.get("client"):
            peer, port = scope["client"][0], scope["client"][1]
            if self.trusted.trusts(peer):
                scope = dict(scope)
                forwarded_for = _joined(scope, b"x-forwarded-for")
                if forwarded_for is not None:
                    scope["client"] = (self.trusted.client(peer, forwarded_for), port)
                proto = (_joined(scope, b"x-forwarded-proto") or "").rpartition(",")[2].strip().lower()
                if proto in SCHEMES:
                    scope["scheme"] = SCHEMES[proto] if scope["type"] == "http" else WS_SCHEMES[proto]
        await self.app(scope, receive, send)


def trusted_proxies_setting(node: yaml.Node, key_path: str, ctx: Context):
    """`server.trusted_proxies`: a list of addresses or networks (CIDR); no catch-all network."""
    hint = "addresses or networks of your reverse proxies, e.g. [10.0.0.5, 10.1.0.0/24, 'fd00::/64']"
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return ()
    if not isinstance(node, yaml.SequenceNode):
        return ctx.error(node, key_path, f"expected a list of addresses or networks, got {describe(node)}", hint)
    networks: list[Network] = []
    for i, child in enumerate(node.value):
        value = scalar(child) if isinstance(child, yaml.ScalarNode) else None
        where = f"{key_path}[{i}]"
        if not isinstance(value, str):
            ctx.error(child, where, f"expected an address or a network, got {describe(child)}", hint)
            continue
        try:
            network = ipaddress.ip_network(value.strip())
        except ValueError as exc:
            ctx.error(child, where, f"not an address or a network: {value!r} ({exc})", hint)
            continue
        if network.prefixlen == 0:
            ctx.error(child, where, f"{value} is every address: any client could then write its own address and scheme", hint)
            continue
        networks.append(network)
    return tuple(networks)
