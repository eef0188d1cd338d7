"""Where the platform may send requests on a tenant's behalf: the one outbound-URL policy.

A URL a tenant chooses (an assistant's model base URL today; shop and webhook URLs next) is
a way into whatever the server can reach: its loopback, the cloud's metadata service, the
private network. So such a URL must be https, carry no credentials, use the https port, and
name a host whose every address is public. The operator lists the exceptions (a self-hosted
Ollama on the LAN) in ``CYBERGINE_OUTBOUND_ALLOWED_HOSTS``: host names, addresses or
networks, each optionally with a port; listed destinations may use plain http and any port.

The rule is checked when a URL is set and again whenever it is used.
:meth:`OutboundPolicy.validate` refuses a URL when it is set
(:class:`~cybergine.errors.InvalidInput` naming the field). :meth:`OutboundPolicy.transport`
checks every request again (so a redirect, if a client follows one, is checked as well),
and its connections resolve the host themselves, check the addresses and connect to the
very address checked, so a name that resolved to a public address at validation and
resolves to 127.0.0.1 a minute later (DNS rebinding) is refused. TLS still verifies the
certificate against the host name. Operator-configured URLs (the platform's own model
endpoint, Meta's Graph API) are trusted and do not go through this module.

Pure: reads no settings; the allow-list and the resolver are given to the policy.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from cybergine.errors import InvalidInput
from cybergine.tls import client_context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> every address the host resolves to.
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]

SETTING = "CYBERGINE_OUTBOUND_ALLOWED_HOSTS"
HTTPS_PORT = 443
RESOLVE_TIMEOUT_SECONDS = 5.0
MAX_URL_CHARS = 2000
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

# Ranges Python's ``is_global`` of 3.11 still calls global, or that embed another address.
_NOT_PUBLIC: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64: whatever IPv4 address it embeds
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
)
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)", re.IGNORECASE)
_EXCEPTION_HINT = f"the server's operator can allow it in {SETTING}"
_NOT_PUBLIC_NAME = (
    "{host} is not a public host (it does not resolve, or not only to public addresses)"
)


class DestinationRefused(httpx.TransportError):
    """A URL or address the policy does not allow; the message says why, readably. An
    httpx transport error, so that clients on httpx (the OpenAI SDK too) handle it as a
    request that could not be made."""


@dataclass(frozen=True)
class AllowedDestination:
    """One entry of the operator's allow-list: a host name or a network, and a port
    (``None``: any port)."""

    name: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def matches_name(self, host: str, port: int) -> bool:
        return self.name == host and self.port in (None, port)

    def matches_address(self, address: IPAddress, port: int) -> bool:
        return (
            self.network is not None
            and address.version == self.network.version
            and address in self.network
            and self.port in (None, port)
        )


def parse_allowed(text: str) -> tuple[AllowedDestination, ...]:
    """The allow-list setting: comma-separated ``host[:port]`` entries, where host is a DNS
    name (``ollama.lan``), an address (``10.0.0.5``, ``[fd00::5]``) or a network
    (``10.0.0.0/8``, ``[fd00::/8]:11434``); an IPv6 entry without a port may leave out the
    brackets. Raises ``ValueError`` naming the bad entry."""
    entries = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        host, port_text = entry, ""
        if entry.startswith("["):
            host, bracket, rest = entry[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(f"{SETTING}: {entry!r} is not host[:port]")
            port_text = rest[1:]
        elif entry.count(":") == 1:
            host, port_text = entry.split(":")
        port = None
        if port_text or entry.endswith(":"):
            if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
                raise ValueError(f"{SETTING}: {entry!r} has no valid port (1 to 65535)")
            port = int(port_text)
        try:
            network = ipaddress.ip_network(host)
        except ValueError:
            if "/" in host or ":" in host:
                raise ValueError(f"{SETTING}: {entry!r} is not a valid network") from None
            name = _host_name(host)
            if name is None:
                raise ValueError(f"{SETTING}: {entry!r} is not a valid host name") from None
            entries.append(AllowedDestination(name=name, port=port))
        else:
            entries.append(AllowedDestination(network=network, port=port))
    return tuple(entries)


def _host_name(host: str) -> str | None:
    """``host`` as a comparable DNS name (lower case, no final dot), or None if it is not
    one (after IDNA encoding, which httpx has done to a URL's ``raw_host``)."""
    name = host.lower().removesuffix(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(p) for p in name.split(".")):
        return None
    return name


def unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) stands for: a
    dual-stack socket connects there."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_class(address: IPAddress) -> str | None:
    """Why ``address`` is not public ("loopback", "private", ...), or None if it is."""
    address = unmapped(address)
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.sixtofour  # 2002::/16 reaches the IPv4 address inside
        if embedded is not None and address_class(embedded) is not None:
            return "6to4 of a non-public"
        if address.teredo is not None:
            return "Teredo"
        if address.scope_id:
            return "scoped"
    for kind, test in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if test:
            return kind
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared (carrier-grade NAT)"
    if any(address.version == n.version and address in n for n in _NOT_PUBLIC):
        return "special-purpose"
    if not address.is_global:
        return "non-public"
    return None


_SHARED = ipaddress.IPv4Network("100.64.0.0/10")


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host`` (as a socket would connect)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # as a socket gets it: IDNA-encoded, IPv6 without brackets
    port: int


def parse_url(value: str) -> httpx.URL:
    """``value`` as httpx (our clients) reads it, if it is an absolute http(s) URL without
    credentials and with a valid host and port; else :class:`DestinationRefused`. Never
    raises anything else, whatever the input."""
    if len(value) > MAX_URL_CHARS:
        raise DestinationRefused(f"The URL is longer than {MAX_URL_CHARS} characters.")
    try:
        url = httpx.URL(value)
        host = url.raw_host.decode("ascii")
        port = url.port
    except (httpx.InvalidURL, ValueError, UnicodeError):
        raise DestinationRefused("This is not a valid URL.") from None
    if url.scheme not in ("http", "https") or not host:
        raise DestinationRefused("Give an https:// URL, such as https://api.example.com/v1.")
    if url.userinfo:
        raise DestinationRefused(
            "A URL cannot carry a user name or password; put keys in their own field."
        )
    if port is not None and not 1 <= port <= 65535:
        raise DestinationRefused(f"Port {port} is not a port (1 to 65535).")
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise DestinationRefused("This is not a valid URL.") from None
        if address.scope_id:
            raise DestinationRefused("An IPv6 zone (%...) cannot be used in a URL here.")
    elif _host_name(host) is None:
        raise DestinationRefused(f"{host!r} is not a valid host name.")
    return url


def _target(url: httpx.URL) -> _Target:
    port = url.port or (HTTPS_PORT if url.scheme == "https" else 80)
    return _Target(url.scheme, url.raw_host.decode("ascii"), port)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class OutboundPolicy:
    """The rule for tenant-chosen destinations, with the operator's ``allowed`` exceptions
    (the setting's text, or parsed entries). ``resolver`` answers ``(host, port)`` with
    addresses; the system's unless a test gives one (it is the only lookup the policy
    makes, at validation and at connect time alike)."""

    def __init__(
        self,
        allowed: str | Iterable[AllowedDestination] = (),
        *,
        resolver: Resolver = system_resolver,
        resolve_timeout: float = RESOLVE_TIMEOUT_SECONDS,
    ) -> None:
        self.allowed = parse_allowed(allowed) if isinstance(allowed, str) else tuple(allowed)
        self._resolver = resolver
        self._resolve_timeout = resolve_timeout

    # -- the rule --

    async def check(self, url: str | httpx.URL) -> None:
        """Raises :class:`DestinationRefused` unless the policy lets a request go to
        ``url``: its syntax, scheme and port, and where its host resolves to now."""
        target = _target(parse_url(str(url)))
        if not self._listed_name(target.host, target.port):
            await self.addresses(target.host, target.port, scheme=target.scheme)

    async def validate(self, url: str, *, field: str) -> None:
        """:meth:`check` for a value a person typed: :class:`InvalidInput` on ``field``."""
        try:
            await self.check(url)
        except DestinationRefused as refused:
            raise InvalidInput(str(refused), field=field) from None

    async def addresses(
        self, host: str, port: int, *, scheme: str | None = None
    ) -> list[IPAddress]:
        """The addresses a connection to ``host:port`` may use: all of those the host
        resolves to, if every one is allowed (for ``scheme``, when known); else
        :class:`DestinationRefused`."""
        literal = _literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            try:
                async with asyncio.timeout(self._resolve_timeout):
                    addresses = list(await self._resolver(host, port))
            except (OSError, TimeoutError, UnicodeError, ValueError):
                addresses = []
            if not addresses:
                raise DestinationRefused(
                    f"{_NOT_PUBLIC_NAME.format(host=host)}; {_EXCEPTION_HINT}."
                )
        if self._listed_name(host, port):
            return addresses
        for address in addresses:
            if self._listed_address(address, port):
                continue
            kind = address_class(address)
            if kind is not None:
                # A name's addresses are not told, nor whether it resolves at all: that
                # would map the private network for whoever asks.
                what = f"{host} is a {kind} address" if literal else _NOT_PUBLIC_NAME
                raise DestinationRefused(f"{what.format(host=host)}; {_EXCEPTION_HINT}.")
            if scheme not in (None, "https"):
                raise DestinationRefused(
                    "Use https://; plain http is only for hosts the server's operator allows "
                    f"in {SETTING}."
                )
            if port != HTTPS_PORT:
                raise DestinationRefused(
                    f"Port {port} is not allowed, only the https port ({HTTPS_PORT}); "
                    f"{_EXCEPTION_HINT}."
                )
        return addresses

    def _listed_name(self, host: str, port: int) -> bool:
        name = _host_name(host)
        return name is not None and any(e.matches_name(name, port) for e in self.allowed)

    def _listed_address(self, address: IPAddress, port: int) -> bool:
        return any(
            e.matches_address(candidate, port)
            for e in self.allowed
            for candidate in {address, unmapped(address)}
        )

    # -- enforcement in the HTTP client --

    def transport(
        self, *, verify: ssl.SSLContext | bool = True, limits: httpx.Limits = DEFAULT_LIMITS
    ) -> httpx.AsyncHTTPTransport:
        """An httpx transport that holds every request, and every connection it opens, to
        the policy. Give it to a client with ``trust_env=False`` (see :meth:`client`): an
        environment proxy would resolve and connect where the policy cannot see."""
        return _PolicyTransport(self, verify=verify, limits=limits)

    def client(self, *, timeout: float, **options: Any) -> httpx.AsyncClient:
        """An httpx client for tenant-chosen URLs: :meth:`transport`, no proxy from the
        environment, no redirects followed (a redirect is an answer, not a new request)."""
        return httpx.AsyncClient(
            transport=self.transport(),
            timeout=httpx.Timeout(timeout),
            trust_env=False,
            follow_redirects=False,
            **options,
        )


@functools.lru_cache(maxsize=8)
def policy_for(allowed: str) -> OutboundPolicy:
    """The policy of an allow-list setting, made once per process."""
    return OutboundPolicy(allowed)


class _PolicyBackend(httpcore.AsyncNetworkBackend):
    """Connects to an address the policy has just allowed, never to a name re-resolved
    behind its back: the check and the connection see the same address."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._policy.addresses(host, port)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("Unix sockets are not an outbound destination.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PolicyTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self, policy: OutboundPolicy, *, verify: ssl.SSLContext | bool, limits: httpx.Limits
    ) -> None:
        # The process's one context by default; a context given is used as it is.
        context = client_context() if verify is True else httpx.create_ssl_context(verify=verify)
        super().__init__(verify=context, limits=limits)
        self._policy = policy
        # httpx 0.28 takes no network backend: its pool is made again, with ours (if
        # httpx stops using ``_pool``, tests/test_egress.py's listed-name test fails).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PolicyBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Every request, so that a redirect a client follows is checked like the first.
        await self._policy.check(request.url)
        return await super().handle_async_request(request)
