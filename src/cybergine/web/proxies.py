"""Who the client is when a reverse proxy stands in front: the one place that decides.

Forwarded headers are anyone's to write, so they are believed only from a peer listed in
``CYBERGINE_TRUSTED_PROXIES`` (none by default). From such a peer, the client is the
right-most address of ``X-Forwarded-For`` that is not itself a trusted proxy: each proxy
appends the address it saw, so everything left of that is what the client claimed.
``X-Forwarded-Proto`` from a trusted peer sets the scheme.

The middleware rewrites the ASGI scope's ``client`` (and ``scheme``) before anything else
reads them, so per-IP limits, logs and ``web.clients.client_ip`` all see the same
address. It also notes whether the request came through a proxy at all, for what must
be served only to a browser on this machine (``came_through_proxy``).
"""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Any of these means a proxy (or someone pretending to be one) handled the request.
FORWARDED_HEADERS = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-real-ip"}
)
_PROXIED = "cybergine.proxied"
_SCHEMES = {"http", "https", "ws", "wss"}


def parse_trusted_proxies(value: str) -> tuple[IPNetwork, ...]:
    """``"10.0.0.5, 172.16.0.0/12"`` → networks; ValueError naming a bad entry."""
    networks = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(
                f"CYBERGINE_TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                "(write e.g. 10.0.0.5 or 172.16.0.0/12, comma-separated)"
            ) from exc
    return tuple(networks)


def _address(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:443
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # 203.0.113.9:51234
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class TrustedProxies:
    def __init__(self, networks: tuple[IPNetwork, ...]) -> None:
        self.networks = networks

    def trusts(self, host: str | None) -> bool:
        address = _address(host) if host else None
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client's address, for a request from ``peer`` carrying these
        ``X-Forwarded-For`` values (in header order)."""
        if not self.trusts(peer):
            return peer
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        client = peer
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break  # unreadable: keep the last address a trusted hop vouched for
            client = str(address)
            if not self.trusts(client):
                break
        return client


class ForwardedHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        peer_address = scope.get("client")
        peer = peer_address[0] if peer_address else None
        trusted_peer = self.trusted.trusts(peer)
        scope[_PROXIED] = trusted_peer or any(name in FORWARDED_HEADERS for name, _ in headers)
        if trusted_peer and peer is not None:
            forwarded_for = [v.decode("latin-1") for n, v in headers if n == b"x-forwarded-for"]
            scope["client"] = (self.trusted.client(peer, forwarded_for), 0)
            proto = next((v for n, v in headers if n == b"x-forwarded-proto"), None)
            scheme = proto.decode("latin-1").strip().lower() if proto else ""
            if scheme in _SCHEMES:
                websocket = scope["type"] == "websocket"
                scope["scheme"] = scheme.replace("http", "ws") if websocket else scheme
        await self.app(scope, receive, send)


def came_through_proxy(connection: HTTPConnection) -> bool:
    """True when a proxy handled the request: its peer is a trusted proxy or it carries
    a forwarded header. Unknown (no middleware) counts as proxied."""
    return bool(connection.scope.get(_PROXIED, True))
