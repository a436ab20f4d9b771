"""Who the client is behind proxies: ``X-Forwarded-For`` and ``X-Forwarded-Proto``, believed only when
the connection comes from a trusted proxy (``forwarded_allow_ips``: addresses and CIDRs).

Each proxy appends the address it received the request from to ``X-Forwarded-For``, so the list is
only as trustworthy as the hop that wrote each entry: the entries left of the first proxy we do not
trust were written by the client. The client is therefore the rightmost entry that is not a trusted
proxy. When every entry is trusted (a client inside a trusted range, or ``*``), it is the rightmost
entry, the one the proxy that connected to us wrote. uvicorn's own middleware takes the leftmost entry
in that case, which the client chooses; the login throttle counts failures per client address, so a
client that picked its address would escape it. This middleware replaces uvicorn's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ForwardedHeaders", "TrustedProxies"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES = frozenset({"http", "https"})
#: How many hosts' answers are remembered: the proxies in front of the provider are few; a flood of
#: other addresses only empties the memo now and then.
_MEMO_SIZE = 1024


class TrustedProxies:
    """The proxies whose forwarded headers are believed: ``*``, or comma-separated addresses and CIDRs."""

    def __init__(self, spec: str) -> None:
        entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
        self.everyone = "*" in entries
        self.networks: tuple[_Network, ...] = tuple(parse_network(entry) for entry in entries if entry != "*")
        # Every request asks about its connection's peer, nearly always the same few proxies: parsing
        # the address each time would cost more than the rest of this middleware.
        self._memo: dict[str, bool] = {}

    def __contains__(self, host: object) -> bool:
        if self.everyone:
            return True
        if not isinstance(host, str):
            return False
        trusted = self._memo.get(host)
        if trusted is None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            trusted = self._memo[host] = self._trusts(host)
        return trusted

    def _trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client_of(self, forwarded_for: Iterable[str]) -> str | None:
        """The client's address from the ``X-Forwarded-For`` entries, left to right; None when empty."""
        hosts = [_host_of(entry) for entry in forwarded_for]
        hosts = [host for host in hosts if host]
        for host in reversed(hosts):
            if host not in self:
                return host
        return hosts[-1] if hosts else None


def parse_network(entry: str) -> _Network:
    """An address (a network of one) or a CIDR; a clear error for anything else."""
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(
            f"{entry!r} is not an IP address or CIDR (trusted proxies are addresses, CIDRs or '*')"
        ) from None


def _host_of(entry: str) -> str:
    """The address of one ``X-Forwarded-For`` entry: ``192.0.2.1``, ``192.0.2.1:4711``, ``2001:db8::1``
    or ``[2001:db8::1]:4711``."""
    entry = entry.strip()
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry


class ForwardedHeaders:
    """ASGI middleware: the client address and scheme of a request that a trusted proxy forwarded."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and client[0] in self.trusted:
            forwarded_for: list[str] = []
            proto: str | None = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded_for.extend(value.decode("latin-1").split(","))
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").strip().lower()
            scope = dict(scope)
            host = self.trusted.client_of(forwarded_for)
            if host is not None:
                scope["client"] = (host, 0)
            if proto in _SCHEMES:
                scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
        await self.app(scope, receive, send)
