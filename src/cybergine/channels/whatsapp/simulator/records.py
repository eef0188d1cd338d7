"""What the simulated Graph API records (sent messages, read receipts, webhook
deliveries), the faults a test scripts, and the numbers and media it serves."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class SentMessage:
    phone_number_id: str
    to: str
    type: str
    body: Mapping[str, Any]  # the request body as received
    wamid: str
    at: datetime

    @property
    def callback_data(self) -> str | None:
        value = self.body.get("biz_opaque_callback_data")
        return value if isinstance(value, str) else None

    @property
    def text(self) -> str | None:
        """The text the customer reads first: a text body, or an interactive body."""
        if self.type == "text":
            return str(self.body["text"]["body"])
        if self.type == "interactive":
            return str(self.body["interactive"].get("body", {}).get("text", "")) or None
        return None

    @property
    def reply_to(self) -> str | None:
        context = self.body.get("context")
        return context.get("message_id") if isinstance(context, Mapping) else None


@dataclass(frozen=True)
class ReadReceipt:
    phone_number_id: str
    message_id: str
    typing_indicator: bool
    at: datetime


@dataclass(frozen=True)
class WebhookDelivery:
    url: str
    body: bytes  # exactly what was posted (and signed)
    status_code: int | None  # of the last attempt; None when no answer came
    error: str | None
    attempts: int
    # The first try: when it began (time.monotonic()), how long it took, and the answer's
    # status (None: no answer): a receiver's acknowledgement as Meta sees it.
    first_try_at: float | None = None
    first_try_seconds: float | None = None
    first_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Fault:
    """One scripted failure (see ``GraphSimulator.fail_next``)."""

    status: int
    code: int | None
    subcode: int | None
    message: str
    details: str | None
    retry_after: float | None
    endpoint: str  # "send", "read", "media", "download", "number" or "any"
    raw_body: str | None = None


@dataclass
class Number:
    access_token: str
    display_phone_number: str
    verified_name: str = "Test Business"


@dataclass
class Media:
    content: bytes
    mime_type: str
    phone_number_id: str | None
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.content).hexdigest()

    async def chunks(self, size: int = 16 * 1024) -> AsyncIterator[bytes]:
        """The content a piece at a time (a download without Content-Length)."""
        for start in range(0, len(self.content), size):
            yield self.content[start : start + size]
            await asyncio.sleep(0)
