"""The outbound-URL policy: every address class a tenant could aim the platform at, the
spellings that hide them, and the check again at connect time (DNS rebinding), over real
sockets. The only stand-in is the policy's resolver (the seam production uses, given to
the constructor): a DNS zone the test controls, for names that must not reach real DNS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cybergine.egress import (
    DestinationRefused,
    IPAddress,
    OutboundPolicy,
    parse_allowed,
)
from cybergine.errors import InvalidInput

PUBLIC = ipaddress.ip_address("93.184.215.14")
LOOPBACK = ipaddress.ip_address("127.0.0.1")


@dataclass
class Zone:
    """A DNS zone the test writes: ``answers`` per name, in turn (the last one repeats),
    as an attacker's server with a zero TTL answers each query afresh."""

    answers: dict[str, list[list[IPAddress]]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        self.queries.append(host)
        turns = self.answers.get(host)
        if not turns:
            raise OSError(f"{host}: Name or service not known")
        return turns.pop(0) if len(turns) > 1 else turns[0]


async def refusal(policy: OutboundPolicy, url: str) -> str:
    with pytest.raises(DestinationRefused) as refused:
        await policy.check(url)
    return str(refused.value)


# --- addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (a destination here, not a bind)
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.0.8", "special-purpose"),
        ("192.0.2.1", "private"),  # documentation
        ("198.18.0.1", "private"),  # benchmarking
        ("[::1]", "loopback"),
        ("[0:0:0:0:0:0:0:1]", "loopback"),
        ("[::]", "unspecified"),
        ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped
        ("[::ffff:7f00:1]", "loopback"),
        ("[::ffff:169.254.169.254]", "link-local"),
        ("[::ffff:10.0.0.1]", "private"),
        ("[fe80::1]", "link-local"),
        ("[fc00::1]", "private"),  # unique local
        ("[fd12:3456::1]", "private"),
        ("[ff02::1]", "multicast"),
        ("[2002:7f00:1::]", "6to4"),  # 6to4 of 127.0.0.1
        ("[2002:a00:1::]", "6to4"),  # 6to4 of 10.0.0.1
        ("[64:ff9b::7f00:1]", "reserved"),  # NAT64 of 127.0.0.1
        ("[2001::1]", "Teredo"),
        ("[2001:db8::1]", "private"),  # documentation
    ],
)
async def test_every_non_public_address_is_refused(host: str, kind: str) -> None:
    message = await refusal(OutboundPolicy(), f"https://{host}/v1")
    assert kind in message
    assert "CYBERGINE_OUTBOUND_ALLOWED_HOSTS" in message


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "https://2130706433/",
        "https://0x7f.1/",  # hexadecimal, short form
        "https://0x7f000001/",
        "https://017700000001/",  # octal
        "https://127.1/",
        "https://localhost/v1",
        "https://LOCALHOST./v1",
    ],
)
async def test_spellings_of_loopback_are_refused_after_the_system_resolver(url: str) -> None:
    # The real resolver reads these as inet_aton does; the policy judges what it answers.
    message = await refusal(OutboundPolicy(), url)
    assert "is not a public host" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/v1",
        "https://[2606:4700:4700::1111]/v1",
        "https://[::ffff:8.8.8.8]/v1",
        "https://api.example.com/v1",
        "https://API.Example.com.:443/v1",
    ],
)
async def test_public_https_hosts_are_allowed(url: str) -> None:
    zone = Zone({"api.example.com": [[PUBLIC]], "api.example.com.": [[PUBLIC]]})
    await OutboundPolicy(resolver=zone.resolve).check(url)


async def test_a_name_is_refused_if_any_of_its_addresses_is_not_public() -> None:
    zone = Zone({"mixed.example": [[PUBLIC, ipaddress.ip_address("10.0.0.7")]]})
    policy = OutboundPolicy(resolver=zone.resolve)
    message = await refusal(policy, "https://mixed.example/v1")
    # Neither the private address nor whether the name resolves is told to the tenant.
    assert "10.0.0.7" not in message
    unknown = await refusal(policy, "https://nowhere.example/v1")
    assert message == unknown.replace("nowhere.example", "mixed.example")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://user:secret@api.example.com/v1", "user name or password"),
        ("https://sk-123@api.example.com/v1", "user name or password"),
        ("https://api.example.com:8443/v1", "Port 8443"),
        ("https://api.example.com:80/v1", "Port 80"),
        ("https://api.example.com:0/v1", "Port 0"),
        ("https://api.example.com:99999/v1", "Port 99999"),
        ("http://api.example.com/v1", "Use https://"),
        ("ftp://api.example.com/v1", "https://"),
        ("file:///etc/passwd", "https://"),
        ("//api.example.com/v1", "https://"),
        ("api.example.com/v1", "https://"),
        ("", "https://"),
        ("http://[::1", "not a valid URL"),
        ("https://api.example.com:abc/v1", "not a valid URL"),
        ("https://[::1]]/v1", "not a valid URL"),
        ("https://[not-an-address]/v1", "not a valid URL"),
        ("https://api.exa mple.com/v1", "not a valid host name"),
        ("https://api\x00.example.com/v1", "not a valid URL"),
        ("https://api_.example.com%2F@x/v1", "user name or password"),
        ("https://[fe80::1%25eth0]/v1", "zone"),
        ("https://0177.0.0.1/", "not a valid URL"),  # httpx refuses leading zeros
        ("https://" + "a" * 2100 + ".example.com/", "longer than"),
    ],
)
async def test_what_is_not_a_clean_https_url_is_refused_with_a_reason(url: str, says: str) -> None:
    zone = Zone({"api.example.com": [[PUBLIC]]})
    assert says in await refusal(OutboundPolicy(resolver=zone.resolve), url)


async def test_validation_names_the_field() -> None:
    with pytest.raises(InvalidInput) as refused:
        await OutboundPolicy().validate("https://169.254.169.254/", field="llm_base_url")
    assert refused.value.extra == {"field": "llm_base_url"}


# --- the operator's allow-list ---------------------------------------------------------


async def test_the_allow_list_admits_names_addresses_and_networks_with_their_ports() -> None:
    zone = Zone({"ollama.lan": [[ipaddress.ip_address("192.168.1.20")]]})
    policy = OutboundPolicy(
        "ollama.lan:11434, 10.0.0.0/8, [fd00::/8]:8000, 127.0.0.1:9000", resolver=zone.resolve
    )
    for url in (
        "http://ollama.lan:11434/v1",  # http, odd port: listed
        "http://OLLAMA.lan.:11434/v1",
        "http://10.20.30.40:8080/v1",  # any port of a network without one
        "https://10.0.0.1/v1",
        "http://[fd00::5]:8000/v1",
        "http://127.0.0.1:9000/v1",
        "http://[::ffff:127.0.0.1]:9000/v1",
    ):
        await policy.check(url)
    for url, says in (
        ("http://ollama.lan:8080/v1", "is not a public host"),  # another port
        ("http://[fd00::5]:8001/v1", "private"),
        ("http://127.0.0.1:9001/v1", "loopback"),
        ("http://11.0.0.1/v1", "Use https://"),
    ):
        assert says in await refusal(policy, url)


@pytest.mark.parametrize("entry", ["a b", "10.0.0.0/33", "10.0.0.1/8", "x:0", "x:", "[::1", "h:p"])
def test_a_bad_allow_list_entry_is_named(entry: str) -> None:
    with pytest.raises(ValueError, match="CYBERGINE_OUTBOUND_ALLOWED_HOSTS") as refused:
        parse_allowed(f"ollama.lan, {entry}")
    assert repr(entry) in str(refused.value)


# --- at connect time -------------------------------------------------------------------


@pytest.fixture
async def local_http() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A one-route HTTP/1.1 server on 127.0.0.1; ``/redirect`` sends to the metadata
    service. Yields its port and the request lines it received."""
    received: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0]
        received.append(line)
        if b" /redirect " in line:
            writer.write(
                b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data\r\n"
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], received


async def test_a_name_rebound_to_loopback_after_validation_is_refused() -> None:
    # An attacker's DNS answers public to validation, then loopback.
    zone = Zone({"rebind.example": [[PUBLIC], [LOOPBACK]]})
    policy = OutboundPolicy(resolver=zone.resolve)
    await policy.validate("https://rebind.example/v1", field="llm_base_url")
    async with policy.client(timeout=5) as client:
        with pytest.raises(DestinationRefused, match="is not a public host"):
            await client.get("https://rebind.example/v1/models")


async def test_the_connection_checks_the_address_it_connects_to() -> None:
    # Public to validation and to the request's own check; loopback when connecting.
    zone = Zone({"rebind.example": [[PUBLIC], [PUBLIC], [LOOPBACK]]})
    policy = OutboundPolicy(resolver=zone.resolve)
    await policy.validate("https://rebind.example/v1", field="llm_base_url")
    async with policy.client(timeout=5) as client:
        with pytest.raises(DestinationRefused, match="is not a public host"):
            await client.get("https://rebind.example/v1/models")
    assert zone.queries == ["rebind.example"] * 3  # the third was the connection's


async def test_a_listed_name_connects_to_the_address_its_check_resolved(
    local_http: tuple[int, list[bytes]],
) -> None:
    port, received = local_http
    # "ollama.lan" exists only in this zone: reaching the server proves the connection
    # went to the address the policy resolved, not to a second lookup of its own.
    zone = Zone({"ollama.lan": [[LOOPBACK]]})
    allowed = OutboundPolicy(f"ollama.lan:{port}", resolver=zone.resolve)
    async with allowed.client(timeout=5) as client:
        response = await client.get(f"http://ollama.lan:{port}/v1/models")
    assert response.status_code == 200
    assert received == [b"GET /v1/models HTTP/1.1"]

    unlisted = OutboundPolicy(resolver=zone.resolve)
    async with unlisted.client(timeout=5) as client:
        with pytest.raises(DestinationRefused):
            await client.get(f"http://ollama.lan:{port}/v1/models")
    assert len(received) == 1


async def test_redirects_are_not_followed_and_a_followed_one_is_checked(
    local_http: tuple[int, list[bytes]],
) -> None:
    port, received = local_http
    policy = OutboundPolicy(f"127.0.0.1:{port}")
    async with policy.client(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{port}/redirect")
        assert response.status_code == 302  # an answer, not a new request
        with pytest.raises(DestinationRefused, match=r"169\.254\.169\.254 is a link-local"):
            await client.get(f"http://127.0.0.1:{port}/redirect", follow_redirects=True)
    assert len(received) == 2


async def test_proxies_from_the_environment_do_not_bypass_the_policy(
    local_http: tuple[int, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, received = local_http
    # A proxy would take any URL and connect on its own; the policy's client ignores it.
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{port}")
    async with OutboundPolicy().client(timeout=5) as client:
        with pytest.raises(DestinationRefused):
            await client.get("https://169.254.169.254/latest/meta-data")
    assert received == []


# --- TLS still verifies the name ---------------------------------------------------------


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_is_verified_against_the_host_name_not_the_address(tmp_path: Path) -> None:
    cert_path, key_path = _certificate(tmp_path, "models.lan")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    names: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,func-returns-value]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    trusting = ssl.create_default_context(cafile=str(cert_path))
    zone = Zone({"models.lan": [[LOOPBACK]], "other.lan": [[LOOPBACK]]})
    policy = OutboundPolicy("models.lan, other.lan", resolver=zone.resolve)
    async with (
        server,
        httpx.AsyncClient(transport=policy.transport(verify=trusting), trust_env=False) as client,
    ):
        response = await client.get(f"https://models.lan:{port}/v1/models")
        assert response.status_code == 200
        assert names == ["models.lan"]  # SNI carries the name, not 127.0.0.1
        # Same address, another name: the certificate does not match it.
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await client.get(f"https://other.lan:{port}/v1/models")
