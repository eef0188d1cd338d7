"""The channels this build knows, registered with the conversation core: called by the
composition root (``cybergine.jobs``, ``cybergine.app``), so that ``conversations``
reaches every channel through ``conversations.channel`` and imports none of them."""

from __future__ import annotations

from cybergine.channels.webchat.adapter import WebChatAdapter
from cybergine.channels.whatsapp.adapter import WhatsAppAdapter
from cybergine.conversations.channel import register


def register_channel_adapters() -> None:
    register(WhatsAppAdapter())
    register(WebChatAdapter())
