"""The WhatsApp sandbox of a development server (``cybergine serve --whatsapp-simulator``).

Meta's side is played by the Graph API simulator, running in the server's process: the
server sends to it through ``CYBERGINE_WHATSAPP_GRAPH_URL`` exactly as it would send to
Meta, and a person at ``/dev/whatsapp`` writes as a customer, which the simulator posts
to the server as a signed webhook, exactly as Meta would. Nothing is short-circuited: the
whole path (signature, storage, reply job, Graph API call, status webhooks) runs.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import SecretStr

from cybergine.channels.whatsapp.simulator import GraphSimulator, new_wamid
from cybergine.settings import Settings

# The business number the simulator plays. Meta's ids are digits; these are reserved for
# the sandbox, and ``cybergine demo`` registers this number for the demo shop.
SANDBOX_PHONE_NUMBER_ID = "100000000000001"
SANDBOX_DISPLAY_PHONE_NUMBER = "+1 555 010 0100"
SANDBOX_ACCESS_TOKEN = "demo-whatsapp-access-token"  # noqa: S105 (the simulator's)
SANDBOX_CUSTOMER = "15550100200"
SANDBOX_CUSTOMER_NAME = "Sandbox Customer"
MAX_TEXT = 4096


@dataclass(frozen=True)
class Bubble:
    side: Literal["customer", "business"]
    text: str
    at: datetime
    buttons: tuple[tuple[str, str], ...] = ()  # (id, title) of reply buttons


class Sandbox:
    def __init__(self, settings: Settings, server_url: str) -> None:
        secret = settings.whatsapp_app_secret
        # Without a configured app secret the sandbox makes one up for this run: the
        # webhook still has to pass the same signature check as Meta's.
        self.app_secret = secret.get_secret_value() if secret else secrets.token_urlsafe(24)
        self.simulator = GraphSimulator(
            webhook_url=f"{server_url}/webhooks/whatsapp", app_secret=self.app_secret
        )
        self.simulator.auto_read = True
        self.simulator.add_number(
            SANDBOX_PHONE_NUMBER_ID,
            SANDBOX_ACCESS_TOKEN,
            display_phone_number=SANDBOX_DISPLAY_PHONE_NUMBER,
        )
        self._lock = threading.Lock()
        self._said: list[Bubble] = []

    def start(self, settings: Settings) -> Settings:
        """Serve the simulator; the settings the server must run with to use it."""
        self.simulator.__enter__()
        return settings.model_copy(
            update={
                "whatsapp_graph_url": self.simulator.base_url,
                "whatsapp_app_secret": SecretStr(self.app_secret),
            }
        )

    def stop(self) -> None:
        self.simulator.__exit__(None, None, None)

    async def customer_says(self, text: str) -> int:
        text = text.strip()[:MAX_TEXT]
        body = self.simulator.inbound_webhook(
            SANDBOX_PHONE_NUMBER_ID, SANDBOX_CUSTOMER, text, name=SANDBOX_CUSTOMER_NAME
        )
        with self._lock:
            self._said.append(Bubble("customer", text, datetime.now(UTC)))
        return await self.simulator.adeliver(body)

    async def customer_taps(self, button_id: str, title: str) -> int:
        """The customer taps a reply button: WhatsApp sends an interactive button_reply."""
        body: dict[str, Any] = self.simulator.inbound_webhook(
            SANDBOX_PHONE_NUMBER_ID, SANDBOX_CUSTOMER, title, name=SANDBOX_CUSTOMER_NAME
        )
        message = body["entry"][0]["changes"][0]["value"]["messages"][0]
        message.pop("text")
        message["id"] = new_wamid()
        message["timestamp"] = str(int(time.time()))
        message["type"] = "interactive"
        message["interactive"] = {
            "type": "button_reply",
            "button_reply": {"id": button_id[:256], "title": title[:20]},
        }
        with self._lock:
            self._said.append(Bubble("customer", title, datetime.now(UTC)))
        return await self.simulator.adeliver(body)

    def thread(self) -> list[Bubble]:
        """The sandbox customer's chat, as their phone would show it."""
        with self._lock:
            bubbles = list(self._said)
        for sent in self.simulator.sent:
            if sent.to != SANDBOX_CUSTOMER:
                continue
            buttons: tuple[tuple[str, str], ...] = ()
            if sent.type == "interactive":
                action = sent.body.get("interactive", {}).get("action", {})
                buttons = tuple(
                    (str(b["reply"]["id"]), str(b["reply"]["title"]))
                    for b in action.get("buttons", [])
                    if isinstance(b, dict) and isinstance(b.get("reply"), dict)
                )
            text = sent.text or f"[{sent.type}]"
            bubbles.append(Bubble("business", text, sent.at, buttons))
        return sorted(bubbles, key=lambda bubble: bubble.at)
