"""Product cards for tests: a card as the catalogue's search makes them, and an assistant's
answer showing cards written by the outbound service (``queue_outbound``), as a reply
would be, into an organisation's conversation."""

from __future__ import annotations

import struct
import uuid
import zlib
from typing import Any

from sqlalchemy import select

from cybergine.conversations.models import Conversation, Sender
from cybergine.conversations.service import queue_outbound
from cybergine.db.engine import Database

HOSTILE_TITLE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def card(n: int = 0, **changes: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=n + 1)),
        "title": f"Ridge Runner shoe {n}",
        "url": f"https://shop.example/products/ridge-runner-{n}",
        "image_url": f"https://shop.example/cdn/ridge-runner-{n}.png",
        "price": "49.90",
        "currency": "EUR",
        "compare_at_price": None,
        "available": True,
        "variant": None,
        **changes,
    }


async def send_cards(
    database: Database,
    organisation_id: uuid.UUID,
    cards: list[dict[str, Any]],
    *,
    text: str = "Here are our trail shoes.",
) -> uuid.UUID:
    """The assistant's answer with ``cards`` in the organisation's newest conversation."""
    async with database.transaction() as session:
        conversation = (
            await session.execute(
                select(Conversation)
                .where(Conversation.organisation_id == organisation_id)
                .order_by(Conversation.id.desc())
                .limit(1)
                .with_for_update()
            )
        ).scalar_one()
        message = await queue_outbound(
            session,
            conversation,
            sender=Sender.ASSISTANT,
            type="interactive",
            text=text,
            payload={"products": cards},
        )
        return message.id


def one_pixel_png() -> bytes:
    """A valid one-pixel PNG, for a route standing in for a shop's image CDN."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x20\x60\xa0")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
