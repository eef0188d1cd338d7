"""The platform's outbound HTTPS clients share one TLS context (cybergine/tls.py): making
a client does not load the certificate store again, and the context still verifies."""

from __future__ import annotations

import ssl

from cybergine.egress import policy_for
from cybergine.outbound import BearerClient
from cybergine.shopify.simulator.webhooks import WebhookSender
from cybergine.tls import client_context


async def test_the_outbound_clients_share_one_context_that_verifies() -> None:
    shared = client_context()
    assert shared.verify_mode == ssl.CERT_REQUIRED
    assert shared.check_hostname
    bearer = BearerClient(api_key="k", timeout=5, headers=None, params=None, transport=None)
    sender = WebhookSender("secret", api_version="2026-01")
    try:
        pools = [
            policy_for("models.example").transport()._pool,
            bearer._http()._transport._pool,
            sender._client._transport._pool,
        ]
        # httpcore keeps the context its connections are wrapped with.
        assert [pool._ssl_context for pool in pools] == [shared] * len(pools)
    finally:
        await bearer.aclose()
        sender.close()
