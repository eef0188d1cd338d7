"""Shopify's GraphQL Admin API for one shop: cost-aware, retrying what a retry can fix.

Facts from shopify.dev this client is built on:
- One endpoint per shop and version, ``POST https://{shop}/admin/api/{version}/graphql.json``,
  the offline token in ``X-Shopify-Access-Token``.
- Rate limits are a leaky bucket of cost points per app and shop. Every answer carries
  ``extensions.cost`` (``requestedQueryCost``, ``actualQueryCost``, ``throttleStatus``:
  ``maximumAvailable``, ``currentlyAvailable``, ``restoreRate`` points per second).
- A throttled query answers HTTP 200 with ``errors[].extensions.code == "THROTTLED"``
  and no data; the wait that lets it through is (requested cost - currently available) /
  restore rate. Some proxies answer 429 instead: read it the same way (Retry-After wins).
- A revoked or expired token answers 401 (``[API] Invalid API key or access token``):
  no retry helps; the shop must grant a new token (``AccessRevoked``).
- Mutations report refusals in ``userErrors`` beside their data (``UserErrors``).

Network errors and 5xx answers are retried a bounded number of times with exponential
backoff and full jitter; everything else is final. The token is a parameter: obtaining
and refreshing it is ``shopify.tokens``'s business.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from cybergine.outbound import AsyncClosable, retry_after_seconds, server_message
from cybergine.settings import Settings
from cybergine.tls import client_context

THROTTLED = "THROTTLED"
# Bounded: a call gives up after this many tries of a retryable failure (5xx, network)…
MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
# …and after this many waits for the bucket (each one long enough to let it through).
MAX_THROTTLE_WAITS = 8
# A wait for the bucket is never longer than this (a bucket of 2,000 points at 50/s
# refills in 40 s).
MAX_THROTTLE_WAIT_SECONDS = 60.0
REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DOWNLOAD_TIMEOUT = httpx.Timeout(120.0, connect=10.0)

Sleep = Callable[[float], Awaitable[None]]


class AdminApiError(Exception):
    """A call that failed for good (after the retries it deserved)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


class AccessRevoked(AdminApiError):
    """401: the shop's token no longer works (app uninstalled, token revoked or expired);
    the shop needs to grant a new one before any call can succeed."""


class GraphQLErrors(AdminApiError):
    """The query itself was refused (a field that does not exist, a missing scope)."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        messages = "; ".join(str(e.get("message", e)) for e in errors[:5])
        super().__init__(f"Shopify refused the query: {messages}")


class UserErrors(AdminApiError):
    """A mutation Shopify answered with ``userErrors`` (its input was refused)."""

    def __init__(self, mutation: str, errors: list[dict[str, Any]]):
        self.mutation = mutation
        self.errors = errors
        messages = "; ".join(
            f"{'.'.join(str(p) for p in e.get('field') or [])}: {e.get('message')}".lstrip(": ")
            for e in errors[:5]
        )
        super().__init__(f"Shopify refused {mutation}: {messages}")


@dataclass(frozen=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float

    @classmethod
    def read(cls, extensions: object) -> ThrottleStatus | None:
        try:
            status = extensions["cost"]["throttleStatus"]  # type: ignore[index]
            return cls(
                float(status["maximumAvailable"]),
                float(status["currentlyAvailable"]),
                float(status["restoreRate"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def wait_for(self, cost: float) -> float:
        """Seconds until the bucket holds ``cost`` points."""
        if self.restore_rate <= 0:
            return MAX_THROTTLE_WAIT_SECONDS
        missing = min(cost, self.maximum_available) - self.currently_available
        return max(0.0, missing / self.restore_rate)


def requested_cost(extensions: object) -> float | None:
    try:
        return float(extensions["cost"]["requestedQueryCost"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None


def backoff_delay(attempt: int) -> float:
    """Full jitter over an exponential ceiling: attempt 1 waits up to 0.5 s, 2 up to 1 s…"""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)  # noqa: S311 (jitter, not crypto)


def graphql_url(settings: Settings, shop_domain: str) -> str:
    origin = settings.shopify_admin_url.format(shop=shop_domain).rstrip("/")
    return f"{origin}/admin/api/{settings.shopify_api_version}/graphql.json"


def throttled(errors: object) -> bool:
    return isinstance(errors, list) and any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == THROTTLED for e in errors
    )


def check_user_errors(payload: Mapping[str, Any], mutation: str) -> Mapping[str, Any]:
    """The mutation's payload (``data[mutation]``), or ``UserErrors`` when it has some."""
    result = payload.get(mutation)
    if not isinstance(result, Mapping):
        raise AdminApiError(f"Shopify's answer to {mutation} has no payload.")
    errors = result.get("userErrors") or []
    if errors:
        raise UserErrors(mutation, list(errors))
    return result


class AdminClient(AsyncClosable):
    """The GraphQL Admin API of one shop.

    ``last_throttle`` is the bucket as the last answer described it; a query whose
    expected cost (``cost``) the bucket cannot pay yet waits for it first rather than
    being refused."""

    def __init__(
        self,
        settings: Settings,
        shop_domain: str,
        access_token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.shop_domain = shop_domain
        self.url = graphql_url(settings, shop_domain)
        self._token = access_token
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            timeout=REQUEST_TIMEOUT, transport=transport, verify=client_context()
        )
        self.last_throttle: ThrottleStatus | None = None
        self._last_seen = 0.0
        # What the waits cost, for the sync's report and the tests.
        self.throttle_waits = 0
        self.retries = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    def _available_now(self) -> float | None:
        status = self.last_throttle
        if status is None:
            return None
        restored = (time.monotonic() - self._last_seen) * status.restore_rate
        return min(status.maximum_available, status.currently_available + restored)

    async def _pay_ahead(self, cost: float | None) -> None:
        available = self._available_now()
        if cost is None or available is None or self.last_throttle is None:
            return
        if available < cost:
            wait = (cost - available) / max(self.last_throttle.restore_rate, 0.001)
            await self._sleep(min(wait, MAX_THROTTLE_WAIT_SECONDS))

    async def query(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        cost: float | None = None,
    ) -> dict[str, Any]:
        """``data`` of the answer; throttling waited out, 5xx and network errors retried."""
        await self._pay_ahead(cost)
        body = {"query": document, "variables": dict(variables or {})}
        attempts = 0
        waits = 0
        while True:
            attempts += 1
            try:
                response = await self._http.post(
                    self.url,
                    json=body,
                    headers={
                        "X-Shopify-Access-Token": self._token,
                        "Content-Type": "application/json",
                        "Accept": "application/json",
                    },
                )
            except httpx.TransportError as exc:
                if attempts >= MAX_ATTEMPTS:
                    raise AdminApiError(
                        f"Shopify could not be reached ({type(exc).__name__}) after "
                        f"{attempts} attempts.",
                        retryable=True,
                    ) from exc
                self.retries += 1
                await self._sleep(backoff_delay(attempts))
                continue
            wait = self._judge(response, attempts, waits)
            if wait is None:
                return self._data(response)
            if response.status_code == 429 or throttled(self._errors(response)):
                waits += 1
                self.throttle_waits += 1
            else:
                self.retries += 1
            await self._sleep(wait)

    @staticmethod
    def _errors(response: httpx.Response) -> object:
        try:
            return response.json().get("errors")
        except (ValueError, AttributeError):
            return None

    def _judge(self, response: httpx.Response, attempts: int, waits: int) -> float | None:
        """None when the answer is final (data, or an exception raised); else how long to
        wait before trying again."""
        status = response.status_code
        if status == 401:
            raise AccessRevoked(
                f"Shopify refused the access token of {self.shop_domain} (HTTP 401): "
                "the shop has to open the app again to grant a new one.",
                status=401,
            )
        if status >= 500:
            if attempts >= MAX_ATTEMPTS:
                raise AdminApiError(
                    f"Shopify answered HTTP {status} {attempts} times: "
                    f"{server_message(response.content, response.reason_phrase)}",
                    status=status,
                    retryable=True,
                )
            return retry_after_seconds(response.headers) or backoff_delay(attempts)
        try:
            answer = response.json()
        except ValueError as exc:
            raise AdminApiError(
                f"Shopify answered HTTP {status} with a body that is not JSON.", status=status
            ) from exc
        extensions = answer.get("extensions") if isinstance(answer, dict) else None
        if (bucket := ThrottleStatus.read(extensions)) is not None:
            self.last_throttle = bucket
            self._last_seen = time.monotonic()
        if status == 429 or throttled(answer.get("errors") if isinstance(answer, dict) else None):
            if waits >= MAX_THROTTLE_WAITS:
                raise AdminApiError(
                    f"Shopify kept throttling the query after {waits} waits for its bucket.",
                    status=status,
                    retryable=True,
                )
            wait = retry_after_seconds(response.headers)
            if wait is None:
                cost = requested_cost(extensions)
                wait = bucket.wait_for(cost) if bucket and cost is not None else 1.0
            return min(max(wait, 0.05), MAX_THROTTLE_WAIT_SECONDS)
        if status >= 400:
            raise AdminApiError(
                f"Shopify answered HTTP {status}: "
                f"{server_message(response.content, response.reason_phrase)}",
                status=status,
            )
        return None

    @staticmethod
    def _data(response: httpx.Response) -> dict[str, Any]:
        answer = response.json()
        errors = answer.get("errors")
        if errors:
            raise GraphQLErrors(errors if isinstance(errors, list) else [{"message": errors}])
        data = answer.get("data")
        if not isinstance(data, dict):
            raise AdminApiError("Shopify's answer has no data.")
        return data

    async def mutate(
        self, document: str, mutation: str, variables: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        """The mutation's payload; ``UserErrors`` when Shopify refused its input."""
        return check_user_errors(await self.query(document, variables), mutation)

    async def stream_lines(self, url: str) -> AsyncIterator[bytes]:
        """The lines of a bulk operation's result file, as they arrive (never the whole
        file in memory). The file's URL is signed: no token goes with it."""
        async with self._http.stream("GET", url, timeout=DOWNLOAD_TIMEOUT) as response:
            if response.status_code != 200:
                raise AdminApiError(
                    f"The bulk operation's file answered HTTP {response.status_code}.",
                    status=response.status_code,
                    retryable=response.status_code >= 500,
                )
            pending = b""
            async for piece in response.aiter_bytes():
                pending += piece
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield line
            if pending.strip():
                yield pending


def loads(line: bytes) -> dict[str, Any]:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("a bulk operation line is not a JSON object")
    return record
