"""Carrying out a customer's data-subject request (policy §14), once the team has verified
who asked: each right does what the policy says, through the one implementation of it.

- access, portability: the customer's export (``privacy.subjects.export_customer``, a
  structured, machine-readable copy of everything the registry declares);
- erasure: ``privacy.subjects.erase_customer``;
- rectification: their name and phone number (:func:`rectify_customer`);
- restriction: processing stops (:func:`restrict_processing`): their messages are still
  stored, but no reply is made, nothing goes to a model or an embeddings endpoint (the
  reply verdict, ``conversations.replies``, reads ``processing_restricted_at``), and the
  inbox shows it; it can be lifted. Their rights are still handled: a right they exercise
  in the chat is acknowledged and recorded, decided by phrase alone
  (``conversations.pipeline._rights_only``);
- objection: the assistant stops answering them and people take over
  (:func:`object_to_assistant`): their open conversations wait for a person;
- human review: a person has reviewed the automated decision (the chat already handed the
  conversation to people with the review flag).

The request is closed as done in the same transaction, and every step is audited with the
request's id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.principal import Principal
from cybergine.conversations.customers import phone_digits
from cybergine.conversations.models import Conversation, ConversationState, Customer
from cybergine.conversations.service import hand_off
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Conflict, InvalidInput
from cybergine.privacy import audit, subjects
from cybergine.privacy.request_models import (
    PrivacyRequest,
    RequestKind,
    RequestStatus,
    Verification,
)
from cybergine.privacy.requests import close, get_request

NAME_MAX = 200
OBJECTION_REASON = "The customer objected to the assistant: only people answer them."


@dataclass(frozen=True)
class Rectification:
    """The corrected values; None leaves a field as it is, "" clears it."""

    display_name: str | None = None
    phone_number: str | None = None


@dataclass
class CarriedOut:
    request: PrivacyRequest
    # access, portability: the customer's export.
    export: dict[str, Any] | None = None
    # What changed, in counts and field names (as audited).
    details: dict[str, Any] = field(default_factory=dict)


async def carry_out(
    scope: TenantScope,
    caller: Principal,
    request_id: uuid.UUID,
    *,
    rectification: Rectification | None = None,
    public_url: str,
) -> CarriedOut:
    """Do what ``request_id`` asks and close it as done."""
    request = await get_request(scope, request_id, for_update=True)
    if request.status not in (RequestStatus.OPEN, RequestStatus.IN_PROGRESS):
        raise Conflict(f"The request is already {request.status.value}.")
    if request.verification != Verification.VERIFIED:
        raise Conflict("Verify the person's identity before carrying out the request.")
    if request.customer_id is None:
        raise Conflict(
            "A staff user exercises this right from their own account (the Account page, "
            "or /api/v1/account); mark the request done when they have."
        )
    if request.kind != RequestKind.RECTIFICATION and rectification is not None:
        raise InvalidInput("Only a rectification takes new values.", field="display_name")
    customer_id = request.customer_id
    done = CarriedOut(request)
    if request.kind in (RequestKind.ACCESS, RequestKind.PORTABILITY):
        done.export = await subjects.export_customer(scope, caller, customer_id)
    elif request.kind == RequestKind.ERASURE:
        erasure = await subjects.erase_customer(scope, caller, customer_id)
        # A web visitor's row is replaced: the request follows it (the old one is gone).
        request.customer_id = erasure.customer_id
        done.details = {
            "conversations": erasure.conversations,
            "messages": erasure.messages,
            "attachments": erasure.attachments,
        }
    elif request.kind == RequestKind.RECTIFICATION:
        if rectification is None:
            raise InvalidInput("Give the corrected name or phone number.", field="display_name")
        changed = await rectify_customer(
            scope, caller, customer_id, rectification, request_id=request.id
        )
        done.details = {"fields": changed}
    elif request.kind == RequestKind.RESTRICTION:
        await restrict_processing(scope, caller, customer_id, request_id=request.id)
    elif request.kind == RequestKind.OBJECTION:
        handed = await object_to_assistant(
            scope, caller, customer_id, request_id=request.id, public_url=public_url
        )
        done.details = {"conversations_handed_off": handed}
    await close(scope, caller.actor, request, RequestStatus.DONE, carried_out=True, **done.details)
    return done


async def rectify_customer(
    scope: TenantScope,
    caller: Principal,
    customer_id: uuid.UUID,
    rectification: Rectification,
    *,
    request_id: uuid.UUID | None = None,
) -> list[str]:
    """Correct a customer's name and phone number (policy §14, rectification); answers
    the names of the fields that changed. The audit entry names the fields, never the
    values."""
    customer = await scope.get(Customer, customer_id, what="customer", for_update=True)
    if customer.erased:
        raise Conflict("This customer's data was erased.")
    changed: list[str] = []
    if rectification.display_name is not None:
        name = " ".join(rectification.display_name.split()) or None
        if name is not None and len(name) > NAME_MAX:
            raise InvalidInput(f"A name has at most {NAME_MAX} characters.", field="display_name")
        if name != customer.display_name:
            customer.display_name = name
            changed.append("display_name")
    if rectification.phone_number is not None:
        typed = rectification.phone_number.strip()
        number: str | None = None
        if typed:
            digits = phone_digits(typed)
            if digits is None:
                raise InvalidInput("That is not a phone number.", field="phone_number")
            number = f"+{digits}"
        if number != customer.phone_number:
            customer.phone_number = number
            changed.append("phone_number")
    if not changed:
        raise InvalidInput(
            "Nothing to correct: the values are the ones held.", field="display_name"
        )
    await scope.session.flush()
    await _audit_customer(scope, caller, customer, "customer.rectified", request_id, fields=changed)
    return changed


async def restrict_processing(
    scope: TenantScope,
    caller: Principal,
    customer_id: uuid.UUID,
    *,
    request_id: uuid.UUID | None = None,
) -> None:
    customer = await scope.get(Customer, customer_id, what="customer", for_update=True)
    if customer.processing_restricted_at is None:
        customer.processing_restricted_at = datetime.now(UTC)
        await scope.session.flush()
    await _audit_customer(scope, caller, customer, "customer.processing_restricted", request_id)


async def lift_restriction(
    scope: TenantScope,
    caller: Principal,
    customer_id: uuid.UUID,
    *,
    request_id: uuid.UUID | None = None,
) -> None:
    """The restriction ends (the customer asked, or its ground fell away): the assistant
    answers their next message again."""
    customer = await scope.get(Customer, customer_id, what="customer", for_update=True)
    if customer.processing_restricted_at is None:
        raise Conflict("Processing of this customer's data is not restricted.")
    customer.processing_restricted_at = None
    await scope.session.flush()
    await _audit_customer(scope, caller, customer, "customer.restriction_lifted", request_id)


async def object_to_assistant(
    scope: TenantScope,
    caller: Principal,
    customer_id: uuid.UUID,
    *,
    request_id: uuid.UUID | None = None,
    public_url: str,
) -> int:
    """From now on only people answer this customer: the assistant is silent for them
    (the reply verdict reads ``objected_at``) and their open conversations wait for a
    person. Answers how many conversations were handed to people."""
    customer = await scope.get(Customer, customer_id, what="customer", for_update=True)
    if customer.objected_at is None:
        customer.objected_at = datetime.now(UTC)
    # Locked after the customer's row, in the order inbound messages take them.
    waiting = list(
        (
            await scope.session.execute(
                scope.select(Conversation)
                .where(
                    Conversation.customer_id == customer.id,
                    Conversation.state == ConversationState.BOT,
                )
                .order_by(Conversation.id)
                .with_for_update()
            )
        ).scalars()
    )
    for conversation in waiting:
        await hand_off(
            scope.session,
            conversation,
            reason=OBJECTION_REASON,
            human_review=False,
            public_url=public_url,
        )
    await scope.session.flush()
    await _audit_customer(
        scope, caller, customer, "customer.objected", request_id, conversations=len(waiting)
    )
    return len(waiting)


async def left_to_the_assistant_after_objecting(
    session: AsyncSession, *, organisation_id: uuid.UUID, conversation_id: uuid.UUID
) -> bool:
    """Whether the conversation is still the assistant's though its customer objected or
    opted out (STOP): a read without a lock, for the reply pipeline to ask before
    :func:`people_only`. The assistant answers neither, but a right either exercises in
    their words ("delete my data") is still recorded for the team (policy §14); an
    objecting customer's conversation goes to people as well, an opted-out customer is
    sent nothing (the team answers the request)."""
    found = await session.scalar(
        select(Conversation.id)
        .join(Customer, Customer.id == Conversation.customer_id)
        .where(
            Conversation.organisation_id == organisation_id,
            Conversation.id == conversation_id,
            Conversation.state == ConversationState.BOT,
            or_(Customer.objected_at.is_not(None), Customer.opted_out_at.is_not(None)),
        )
    )
    return found is not None


async def people_only(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    conversation_id: uuid.UUID,
    public_url: str,
) -> bool:
    """A conversation an objecting customer started after their objection (the assistant
    stays silent: the reply verdict) goes to people too; answers whether it was handed
    off now. Called by the reply pipeline when the verdict says the assistant must not
    answer."""
    scope = TenantScope(session, organisation_id)
    conversation = await scope.find(Conversation, conversation_id, for_update=True)
    if conversation is None or conversation.state != ConversationState.BOT:
        return False
    customer = await scope.find(Customer, conversation.customer_id)
    if customer is None or customer.objected_at is None:
        return False
    await hand_off(
        session, conversation, reason=OBJECTION_REASON, human_review=False, public_url=public_url
    )
    return True


async def _audit_customer(
    scope: TenantScope,
    caller: Principal,
    customer: Customer,
    action: str,
    request_id: uuid.UUID | None,
    **details: object,
) -> None:
    await audit.record(
        scope.session,
        action=action,
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="customer",
        target_id=str(customer.id),
        details={**({"request_id": str(request_id)} if request_id else {}), **details},
    )


__all__ = [
    "CarriedOut",
    "Rectification",
    "carry_out",
    "left_to_the_assistant_after_objecting",
    "lift_restriction",
    "object_to_assistant",
    "people_only",
    "rectify_customer",
    "restrict_processing",
]
