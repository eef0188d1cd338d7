"""A customer's erasure (policy §14; Shopify's customers/redact, §8b).

Conversation records are anonymised (they stay, for the organisation's statistics, with
no one behind them) and everything the registry declares as the customer's is dealt with
as it says (``privacy.registry``): texts, structured content, errors and hand-off
reasons cleared; media files and the raw webhook deliveries that mention them deleted;
the channel's message ids replaced by keyed hashes (``privacy.pseudonyms``), so a status
webhook arriving later still finds its message and nothing names them. The customer row
keeps no identifier: a WhatsApp customer writing again starts afresh as a new customer;
an erased web visitor's row gets a new id (a visitor's customer id is derived from their
token) and their token is refused from then on, so their browser starts a fresh visitor
with a fresh conversation and sees none of the old history.

Their open conversations are closed for good, their queued outbound messages failed and
the reply and delivery jobs not started yet cancelled. The dead row versions the erasure
leaves are vacuumed by a job deferred with it (``VACUUM_ERASED`` in ``privacy.tasks``).
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.principal import Principal
from cybergine.conversations.locks import conversation_lock, send_lock
from cybergine.conversations.models import (
    ERASED_PREFIX,
    Channel,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Message,
    MessageStatus,
)
from cybergine.conversations.service import state_event
from cybergine.db.base import Base
from cybergine.db.ids import uuid7
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput
from cybergine.job_names import JobName
from cybergine.privacy import audit, registry
from cybergine.privacy.holdings import Holdings, locate
from cybergine.privacy.pseudonyms import erased_external_id
from cybergine.queue import cancel_waiting_jobs, cancel_waiting_jobs_about, defer
from cybergine.realtime.events import publish

# What a message queued for an erased customer says instead of going out.
NOT_SENT_ERASED = "Not sent: the customer's data was erased."
# The word typed to confirm the erasure of a customer who has no name to type.
ERASE_WORD = "erase"
# At most one vacuum waits at a time, however many customers are erased meanwhile.
VACUUM_QUEUEING_LOCK = "vacuum_erased"


@dataclass(frozen=True)
class Erasure:
    # The erased customer's id from now on (a web visitor's row gets a new one).
    customer_id: uuid.UUID
    conversations: int
    messages: int
    attachments: int
    webhook_events: int
    conversations_closed: int


async def erase_customer(
    scope: TenantScope, caller: Principal | None, customer_id: uuid.UUID
) -> Erasure:
    """Erase one customer's personal data; ``caller`` None: a platform job (a webhook).
    Idempotent: erasing an erased customer finds nothing more to erase."""
    session = scope.session
    customer = await scope.get(Customer, customer_id, what="customer", for_update=True)
    holdings = await locate(scope, customer)
    closed = await _close_for_good(scope, customer)
    # Their files not fetched yet stay with the channel: nothing fetches them any more.
    await cancel_waiting_jobs_about(
        session,
        JobName.FETCH_WHATSAPP_MEDIA,
        "attachment_id",
        [str(id) for id in holdings.of("message_attachments")],
    )
    for table in registry.tables(registry.Subject.CUSTOMER):
        await _apply(scope, table, holdings.of(table))
    erased_id = await _anonymise(scope, customer, holdings)
    erasure = Erasure(
        customer_id=erased_id,
        conversations=len(holdings.of("conversations")),
        messages=len(holdings.of("messages")),
        attachments=len(holdings.of("message_attachments")),
        webhook_events=len(holdings.of("whatsapp_webhook_events")),
        conversations_closed=closed,
    )
    await audit.record(
        session,
        action="customer.erased",
        actor=caller.actor if caller is not None else audit.Actor.system(),
        organisation_id=scope.organisation_id,
        target_type="customer",
        target_id=str(erased_id),
        details={
            "conversations": erasure.conversations,
            "messages": erasure.messages,
            "attachments": erasure.attachments,
            "webhook_events": erasure.webhook_events,
            "conversations_closed": erasure.conversations_closed,
        },
    )
    await defer_vacuum(scope.session)
    return erasure


async def defer_vacuum(session: AsyncSession) -> None:
    """The job that vacuums the customer tables, after an erasure or a purge removed rows
    of them. One waits at most: in a savepoint, since the queueing lock refuses a second
    one by a failed insert."""
    try:
        async with session.begin_nested():
            await defer(session, JobName.VACUUM_ERASED, queueing_lock=VACUUM_QUEUEING_LOCK)
    except AlreadyEnqueued:
        pass  # the waiting one will vacuum this erasure's rows too


async def _apply(scope: TenantScope, table_name: str, ids: list[uuid.UUID]) -> None:
    """What the registry says erasure does to each of ``table``'s personal columns, for
    the rows ``ids``. The customer's own external id is ``_anonymise``'s."""
    if not ids:
        return
    table = Base.metadata.tables[table_name]
    declared = registry.personal(subject=registry.Subject.CUSTOMER, table=table_name)
    rows = sa.and_(table.c.organisation_id == scope.organisation_id, table.c.id.in_(ids))
    if any(d.erasure == registry.ErasureAction.DELETE_ROW for d in declared):
        await scope.session.execute(sa.delete(table).where(rows))
        return
    cleared = {d.column: None for d in declared if d.erasure == registry.ErasureAction.CLEAR}
    if cleared:
        await scope.session.execute(
            sa.update(table)
            .where(rows)
            .values(cleared)
            .execution_options(synchronize_session=False)
        )
    for keyed in (d.column for d in declared if d.erasure == registry.ErasureAction.KEYED_HASH):
        column = table.c[keyed]
        found = (
            await scope.session.execute(
                sa.select(table.c.id, column).where(
                    rows, column.is_not(None), column.not_like(f"{ERASED_PREFIX}%")
                )
            )
        ).all()
        if not found:
            continue
        hashed = sa.select(
            func.unnest(sa.cast([id for id, _ in found], sa.ARRAY(sa.Uuid))).label("id"),
            func.unnest(
                sa.cast([erased_external_id(str(value)) for _, value in found], sa.ARRAY(sa.Text))
            ).label("value"),
        ).subquery()
        await scope.session.execute(
            sa.update(table)
            .where(table.c.id == hashed.c.id)
            .values({keyed: hashed.c.value})
            .execution_options(synchronize_session=False)
        )


async def _anonymise(scope: TenantScope, customer: Customer, holdings: Holdings) -> uuid.UUID:
    """The customer row names nobody from now on; answers its id. A web visitor's row
    gets a new id, since the old one is derived from the token their browser keeps, and
    a marker by which that token is refused (``pseudonyms.erased_on_channel``)."""
    session = scope.session
    await session.refresh(customer)
    if customer.erased:
        return customer.id
    if customer.channel != Channel.WEBCHAT:
        customer.external_id = f"{ERASED_PREFIX}{customer.id}"
        await session.flush()
        return customer.id
    successor = Customer(
        id=uuid7(),
        organisation_id=customer.organisation_id,
        channel=customer.channel,
        external_id=erased_external_id(customer.external_id),
        created_at=customer.created_at,
        opted_in_at=customer.opted_in_at,
        opted_out_at=customer.opted_out_at,
    )
    session.add(successor)
    await session.flush()
    await session.execute(
        update(Conversation)
        .where(
            Conversation.organisation_id == scope.organisation_id,
            Conversation.id.in_(holdings.of("conversations")),
        )
        .values(customer_id=successor.id)
        .execution_options(synchronize_session=False)
    )
    await session.execute(sa.delete(Customer).where(Customer.id == customer.id))
    session.expunge(customer)
    return successor.id


async def _close_for_good(scope: TenantScope, customer: Customer) -> int:
    """Close the customer's open conversations (the inbox then shows them closed, with no
    reply box), fail their messages still queued for delivery, and cancel the reply and
    delivery jobs that have not started: the customer's next message starts afresh, as a
    new customer. Answers how many conversations were closed."""
    session = scope.session
    # Locked after the customer's row, in the order inbound messages take them.
    still_open = list(
        (
            await session.execute(
                scope.select(Conversation)
                .where(
                    Conversation.customer_id == customer.id,
                    Conversation.state != ConversationState.CLOSED,
                )
                .order_by(Conversation.id)
                .with_for_update()
            )
        ).scalars()
    )
    for conversation in still_open:
        conversation.state = ConversationState.CLOSED
        conversation.closed_at = datetime.now(UTC)
        conversation.unread_count = 0
    await session.flush()
    for conversation in still_open:
        await publish(session, state_event(conversation))
    ids = [conversation.id for conversation in still_open]
    if not ids:
        return 0
    await session.execute(
        update(Message)
        .where(
            Message.organisation_id == scope.organisation_id,
            Message.conversation_id.in_(ids),
            Message.direction == Direction.OUTBOUND,
            Message.status == MessageStatus.QUEUED,
        )
        .values(status=MessageStatus.FAILED, failed_at=func.now(), error_title=NOT_SENT_ERASED)
        .execution_options(synchronize_session=False)
    )
    await cancel_waiting_jobs(
        session, [lock for id in ids for lock in (conversation_lock(id), send_lock(id))]
    )
    return len(ids)


def erasure_confirmation(customer: Customer) -> str:
    """What a person types to confirm erasing ``customer``: their name, or the word
    "erase" for a customer without one."""
    name = " ".join((customer.display_name or "").split())
    return name or ERASE_WORD


def _comparable(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


async def erase_confirmed(
    scope: TenantScope, caller: Principal, customer_id: uuid.UUID, typed: str
) -> Erasure:
    """Erasure as a person asks for it in the dashboard: only once they have typed the
    customer's name (or the word shown), so a slip of the mouse erases nobody."""
    customer = await scope.get(Customer, customer_id, what="customer")
    expected = erasure_confirmation(customer)
    if _comparable(typed) != _comparable(expected):
        raise InvalidInput(
            f"Type “{expected}” exactly as shown to confirm the erasure.", field="confirmation"
        )
    return await erase_customer(scope, caller, customer.id)


__all__ = [
    "ERASE_WORD",
    "NOT_SENT_ERASED",
    "Erasure",
    "erase_confirmed",
    "erase_customer",
    "erasure_confirmation",
]
