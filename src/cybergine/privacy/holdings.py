"""Which rows hold one customer's data: the ids of their rows in every table the registry
names for customers. The export and the erasure both start here, so they cannot
disagree about whose rows are whose."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import String, any_, bindparam, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import ARRAY

from cybergine.analytics.gap_models import GapQuestion
from cybergine.channels.whatsapp.models import WebhookEvent
from cybergine.conversations.csat_models import CsatSurvey
from cybergine.conversations.customers import phone_digits
from cybergine.conversations.models import Attachment, Channel, Conversation, Customer, Message
from cybergine.db.tenancy import TenantScope
from cybergine.privacy import registry
from cybergine.privacy.pseudonyms import matching_external_ids
from cybergine.ratelimits.limiter import customer_key
from cybergine.ratelimits.models import RateCounter
from cybergine.shopify.models import WebhookDelivery


@dataclass
class Holdings:
    """Ids per table name, each list in id order."""

    customer: Customer
    ids: dict[str, list[uuid.UUID]] = field(default_factory=dict)

    def of(self, table: str) -> list[uuid.UUID]:
        return self.ids.get(table, [])


async def locate(scope: TenantScope, customer: Customer) -> Holdings:
    """Every row of ``customer``'s in the tables ``registry.tables(CUSTOMER)`` names; a
    table there that is not located here is an error, not a silent gap."""
    session = scope.session
    org = scope.organisation_id
    holdings = Holdings(customer, {"customers": [customer.id]})
    conversations = list(
        (
            await session.execute(
                select(Conversation.id)
                .where(Conversation.organisation_id == org, Conversation.customer_id == customer.id)
                .order_by(Conversation.id)
            )
        ).scalars()
    )
    holdings.ids["conversations"] = conversations
    rows = (
        await session.execute(
            select(Message.id, Message.external_id)
            .where(Message.organisation_id == org, Message.conversation_id.in_(conversations))
            .order_by(Message.id)
        )
    ).all()
    holdings.ids["messages"] = [id for id, _ in rows]
    holdings.ids["message_attachments"] = list(
        (
            await session.execute(
                select(Attachment.id)
                .where(
                    Attachment.organisation_id == org,
                    Attachment.message_id.in_(holdings.ids["messages"]),
                )
                .order_by(Attachment.id)
            )
        ).scalars()
    )
    holdings.ids["knowledge_gap_questions"] = list(
        (
            await session.execute(
                select(GapQuestion.id)
                .where(
                    GapQuestion.organisation_id == org,
                    GapQuestion.conversation_id.in_(conversations),
                )
                .order_by(GapQuestion.id)
            )
        ).scalars()
    )
    # A raw delivery may name a message by Meta's id or by its keyed hash.
    wamids = [form for _, external in rows if external for form in matching_external_ids(external)]
    holdings.ids["whatsapp_webhook_events"] = await _webhook_events(scope, customer, wamids)
    holdings.ids["shopify_webhook_deliveries"] = await _shopify_deliveries(scope, customer)
    holdings.ids["csat_surveys"] = list(
        (
            await session.execute(
                select(CsatSurvey.id)
                .where(CsatSurvey.organisation_id == org, CsatSurvey.customer_id == customer.id)
                .order_by(CsatSurvey.id)
            )
        ).scalars()
    )
    holdings.ids["rate_counters"] = list(
        (
            await session.execute(
                select(RateCounter.id)
                .where(
                    RateCounter.organisation_id == org,
                    RateCounter.key_hash == customer_key(customer.id),
                )
                .order_by(RateCounter.id)
            )
        ).scalars()
    )
    missing = set(registry.tables(registry.Subject.CUSTOMER)) - set(holdings.ids)
    if missing:  # pragma: no cover - tests/privacy/test_registry.py keeps this empty
        raise RuntimeError(f"no way to find a customer's rows in {sorted(missing)}")
    return holdings


async def _webhook_events(
    scope: TenantScope, customer: Customer, wamids: list[str]
) -> list[uuid.UUID]:
    """The raw deliveries that mention the customer: as sender, as contact, as recipient,
    or by the id of one of their messages (Meta's ids hold the phone number)."""
    if customer.channel != Channel.WHATSAPP or customer.erased:
        return []
    wa_id = customer.external_id
    mentions = [
        WebhookEvent.value.contains({"contacts": [{"wa_id": wa_id}]}),
        WebhookEvent.value.contains({"messages": [{"from": wa_id}]}),
        WebhookEvent.value.contains({"statuses": [{"recipient_id": wa_id}]}),
    ]
    if wamids:
        # Any status or message of the change whose id is one of theirs: each id looked up
        # in the array (hashed by PostgreSQL), not the array scanned for each delivery
        # (``?|``), which made this the whole cost of a big customer's export.
        ids = bindparam("wamids", wamids, type_=ARRAY(String()))
        for key in ("statuses", "messages"):
            named = func.jsonb_array_elements_text(
                func.jsonb_path_query_array(
                    WebhookEvent.value, literal_column(f"'$.{key}[*].id'::jsonpath")
                )
            ).table_valued("value")
            mentions.append(select(named.c.value).where(named.c.value == any_(ids)).exists())
    return list(
        (
            await scope.session.execute(
                select(WebhookEvent.id)
                .where(WebhookEvent.organisation_id == scope.organisation_id, or_(*mentions))
                .order_by(WebhookEvent.id)
            )
        ).scalars()
    )


async def _shopify_deliveries(scope: TenantScope, customer: Customer) -> list[uuid.UUID]:
    """Shopify's compliance deliveries that name the customer by phone number (the
    digits of theirs: E.164 as stored, or their WhatsApp id), as
    ``shopify.compliance`` matches them."""
    if customer.erased:
        return []
    numbers = {
        digits
        for value in (customer.phone_number, customer.external_id)
        if value and (digits := phone_digits(value)) is not None
    }
    if customer.channel != Channel.WHATSAPP:
        numbers.discard(phone_digits(customer.external_id) or "")
    if not numbers:
        return []
    named = func.regexp_replace(
        WebhookDelivery.payload["customer"]["phone"].astext, "[^0-9]", "", "g"
    )
    return list(
        (
            await scope.session.execute(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.organisation_id == scope.organisation_id,
                    named.in_(sorted(numbers)),
                )
                .order_by(WebhookDelivery.id)
            )
        ).scalars()
    )


__all__ = ["Holdings", "locate"]
