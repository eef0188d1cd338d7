from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from cybergine.shopify.simulator import ShopifySimulator
from tests.support.server import TLS, LiveServer

CLIENT_ID = "simulator-client-id"
CLIENT_SECRET = "simulator-client-secret-0123456789"
SHOP = "trail-gear.myshopify.com"


@pytest.fixture
def simulator() -> Iterator[ShopifySimulator]:
    with ShopifySimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        sim.add_shop(SHOP, name="Trail Gear", email="owner@trail-gear.example")
        yield sim


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, verify=TLS) as client:
        yield client


def access_token(sim: ShopifySimulator, http: httpx.Client, shop: str = SHOP) -> str:
    """An offline token obtained by token exchange, as the platform obtains one."""
    from cybergine.shopify.oauth_names import (
        ID_TOKEN_TYPE,
        OFFLINE_TOKEN_TYPE,
        TOKEN_EXCHANGE_GRANT,
    )

    answer = http.post(
        f"{sim.shop_url(shop)}/admin/oauth/access_token",
        data={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": sim.session_token(shop),
            "subject_token_type": ID_TOKEN_TYPE,
            "requested_token_type": OFFLINE_TOKEN_TYPE,
            "expiring": "1",
        },
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


class Admin:
    """The GraphQL Admin API of one simulated shop, spoken to over HTTP."""

    def __init__(self, sim: ShopifySimulator, http: httpx.Client, shop: str = SHOP) -> None:
        self.url = f"{sim.shop_url(shop)}/admin/api/{sim.version}/graphql.json"
        self.http = http
        self.token = access_token(sim, http, shop)

    def post(self, query: str, variables: dict[str, object] | None = None) -> httpx.Response:
        return self.http.post(
            self.url,
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": self.token},
        )

    def data(self, query: str, variables: dict[str, object] | None = None) -> dict[str, Any]:
        answer = self.post(query, variables)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


class Receiver:
    """The app's webhook endpoint: records what arrives and answers ``statuses`` in turn
    (then 200), so a test can make deliveries fail and watch them retried."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.app = FastAPI()
        self.app.add_api_route("/webhooks/shopify", self._receive, methods=["POST"])

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self._received.append(Received(dict(request.headers), body))
            status = self.statuses.pop(0) if self.statuses else 200
        return Response(status_code=status)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    endpoint = Receiver()
    with LiveServer(endpoint.app) as server:
        yield endpoint, f"{server.url}/webhooks/shopify"


@pytest.fixture
def wired(receiver: tuple[Receiver, str]) -> Iterator[tuple[ShopifySimulator, Receiver]]:
    """A simulator whose webhooks reach ``receiver``, retried quickly."""
    endpoint, url = receiver
    with ShopifySimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, webhook_url=url) as sim:
        sim.webhooks.backoff_seconds = 0.01
        sim.add_shop(SHOP, name="Trail Gear", email="owner@trail-gear.example")
        yield sim, endpoint
