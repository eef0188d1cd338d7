"""The organisation's customers as the team looks them up: a search by name, phone number
or visitor id, newest first and a page at a time, and one customer with their
conversations.

An organisation may hold tens of thousands of customers, so a page reads only the rows it
shows: the customers by keyset (``id`` is a UUIDv7, so newest first is ``id DESC`` and
the next page starts below the last id shown), then when each of those last wrote, in one
grouped query over their conversations.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select

from cybergine import pagination
from cybergine.conversations.inbox_views import assistant_names, customer_label
from cybergine.conversations.models import Conversation, Customer
from cybergine.db.tenancy import TenantScope

CUSTOMER_PAGE = 50
# A customer's page lists this many of their conversations, newest activity first.
PROFILE_CONVERSATIONS = 100
MAX_QUERY = 200
# Fewer digits than this is not a phone number (E.164 numbers have at least 7 or so).
MIN_PHONE_DIGITS = 6
# What people type around the digits of a number: "+49 151 2345-678", "(1) 555.000.1111".
_PHONE = re.compile(r"\+?[0-9\s().\-/]+")


def phone_digits(text: str) -> str | None:
    """The digits of ``text`` when it reads as a phone number, else None."""
    if not _PHONE.fullmatch(text):
        return None
    digits = "".join(ch for ch in text if ch in "0123456789")
    return digits if len(digits) >= MIN_PHONE_DIGITS else None


def search_statement(
    scope: TenantScope, query: str = "", *, before: uuid.UUID | None = None
) -> Select[Customer]:
    """The organisation's customers matching ``query``, newest first, below ``before``.

    ``query`` matches a part of the name (any case), the start of the channel's id (a
    WhatsApp id, a web visitor's id as the inbox shortens it), the customer's own id, or,
    when it reads as a phone number, the number in E.164 (``+49 151 …`` finds
    ``+49151…``) and the WhatsApp id made of the same digits."""
    statement = scope.select(Customer)
    text = " ".join(query.split())[:MAX_QUERY]
    if text:
        conditions = [
            Customer.display_name.icontains(text, autoescape=True),
            Customer.external_id.startswith(text, autoescape=True),
        ]
        digits = phone_digits(text)
        if digits is not None:
            conditions += [
                Customer.phone_number.startswith(f"+{digits}"),
                Customer.external_id == digits,
            ]
        with contextlib.suppress(ValueError):  # not an id: the other conditions decide
            conditions.append(Customer.id == uuid.UUID(text))
        statement = statement.where(or_(*conditions))
    if before is not None:
        statement = statement.where(Customer.id < before)
    return statement.order_by(Customer.id.desc())


@dataclass(frozen=True)
class CustomerRow:
    customer: Customer
    label: str
    last_seen: datetime | None  # when they last wrote, on any of their conversations


@dataclass(frozen=True)
class CustomerPage:
    rows: list[CustomerRow]
    # Where the next page starts (a ``cybergine.pagination`` cursor); None on the last one.
    next_cursor: str | None


async def search_customers(
    scope: TenantScope,
    query: str = "",
    *,
    cursor: str | None = None,
    limit: int = CUSTOMER_PAGE,
) -> CustomerPage:
    """Newest first (by id), a page at a time: ``cursor`` is the last page's next_cursor."""
    before = pagination.decode(cursor, pagination.UUID)[0] if cursor else None
    statement = search_statement(scope, query, before=before).limit(limit + 1)
    found = list((await scope.session.execute(statement)).scalars())
    shown = found[:limit]
    seen = await last_seen(scope, [customer.id for customer in shown])
    return CustomerPage(
        rows=[
            CustomerRow(customer, customer_label(customer), seen.get(customer.id))
            for customer in shown
        ],
        next_cursor=pagination.encode(shown[-1].id) if len(found) > limit else None,
    )


async def last_seen(scope: TenantScope, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """When each of these customers last wrote (their conversations' customer index)."""
    if not customer_ids:
        return {}
    result = await scope.session.execute(
        select(Conversation.customer_id, func.max(Conversation.last_inbound_at))
        .where(
            Conversation.organisation_id == scope.organisation_id,
            Conversation.customer_id.in_(customer_ids),
        )
        .group_by(Conversation.customer_id)
    )
    return {customer_id: at for customer_id, at in result.all() if at is not None}


@dataclass(frozen=True)
class CustomerProfile:
    customer: Customer
    label: str
    last_seen: datetime | None
    # Newest activity first, at most PROFILE_CONVERSATIONS of them.
    conversations: list[Conversation]
    more_conversations: bool
    assistant_names: dict[uuid.UUID | None, str]


async def customer_profile(
    scope: TenantScope, customer_id: uuid.UUID, *, limit: int = PROFILE_CONVERSATIONS
) -> CustomerProfile:
    customer = await scope.get(Customer, customer_id, what="customer")
    conversations = list(
        (
            await scope.session.execute(
                scope.select(Conversation)
                .where(Conversation.customer_id == customer.id)
                .order_by(Conversation.last_message_at.desc().nulls_last(), Conversation.id.desc())
                .limit(limit + 1)
            )
        ).scalars()
    )
    shown = conversations[:limit]
    seen = [c.last_inbound_at for c in conversations if c.last_inbound_at is not None]
    return CustomerProfile(
        customer=customer,
        label=customer_label(customer),
        last_seen=max(seen) if seen else None,
        conversations=shown,
        more_conversations=len(conversations) > limit,
        assistant_names=await assistant_names(scope, (c.assistant_id for c in shown)),
    )
