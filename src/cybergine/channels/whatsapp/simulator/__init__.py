"""A local WhatsApp Cloud API (Meta's Graph API) for tests, benchmarks and the demo.

Written from Meta's documented formats: ``POST /{version}/{phone-number-id}/messages``
(messages and read receipts), ``GET /{version}/{media-id}`` (a short-lived download URL)
and the download itself, ``GET /{version}/{phone-number-id}`` (the number's fields, which
the platform asks for to check credentials before saving them), with Meta's error body
``{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"},
"fbtrace_id"}}``. After accepting a message it sends the status webhooks Meta would
("sent", "delivered", and "read" with ``auto_read``), signed with the app secret::

    with GraphSimulator(webhook_url=..., app_secret="s3cret") as sim:
        sim.add_number("1234567890", "EAAG-token")
        client = GraphClient(base_url=sim.base_url)
        sim.fail_next(code=131056)          # the next send hits the pair rate limit
        sim.fail_next(status=500, endpoint="read")  # ... or the next read receipt
        sim.delay_seconds = 2               # every call answers slowly
        sim.sent                            # what was accepted, in order
        sim.deliver(sim.inbound_webhook(...))  # a customer writes (signed, to webhook_url)

``with`` serves it on 127.0.0.1 in a thread (a free port, chosen by the OS).

Decisions:
- Requests are checked as Meta checks them (required fields, types, Meta's length limits
  counted in characters), and refused with code 100 and a ``details`` saying what is
  wrong, so a body our builders let through but Meta would refuse fails in tests too.
- A bad or missing token is a 401 with code 190; a valid token used for a number it does
  not belong to is Meta's "object does not exist" (code 100, subcode 33).
- Webhook bodies are serialised as Meta serialises them (compact, non-ASCII escaped) and
  signed over exactly the bytes sent. A status webhook the receiver does not take is
  tried again as Meta does, less and less often for up to 7 days (``webhook_retries``,
  ``webhook_retries.META_RETRIES``; tests pass a shorter ``WebhookRetries``), then
  recorded in ``webhook_deliveries``, as is one still being tried when the simulator
  stops; it never fails the send that caused it.
- Records (``sent``, ``read_receipts``, ``webhook_deliveries``) are snapshots taken under a
  lock: tests read them from another thread while the simulator serves.

Layout: ``server`` (the simulator), ``meta_formats`` (webhook and error bodies, usable
without a simulator), ``checks`` (what a request must be to be accepted), ``records``
(what it records and serves), ``webhook_retries`` (how a status webhook is delivered).
"""

from __future__ import annotations

from cybergine.channels.whatsapp.simulator.meta_formats import (
    DEFAULT_VERSION,
    DEFAULT_WABA_ID,
    graph_error_body,
    inbound_webhook,
    new_wamid,
    status_webhook,
    webhook_request,
)
from cybergine.channels.whatsapp.simulator.records import (
    Fault,
    ReadReceipt,
    SentMessage,
    WebhookDelivery,
)
from cybergine.channels.whatsapp.simulator.server import GraphSimulator

__all__ = [
    "DEFAULT_VERSION",
    "DEFAULT_WABA_ID",
    "Fault",
    "GraphSimulator",
    "ReadReceipt",
    "SentMessage",
    "WebhookDelivery",
    "graph_error_body",
    "inbound_webhook",
    "new_wamid",
    "status_webhook",
    "webhook_request",
]
