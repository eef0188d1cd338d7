"""WhatsApp's customer-service window: free-form messages may go only within 24 hours
of the customer's last message; after that, only an approved template. The one place
the rule is written: the adapter answers the conversation core with it, the delivery
job refuses a send with it, and the reply write's SQL is given its length."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

SERVICE_WINDOW = timedelta(hours=24)


def window_open(last_inbound_at: datetime | None, *, now: datetime | None = None) -> bool:
    """Whether a free-form message may go now, the customer having last written at
    ``last_inbound_at`` (never: no)."""
    return last_inbound_at is not None and (
        (now or datetime.now(UTC)) - last_inbound_at < SERVICE_WINDOW
    )
