"""Data-subject requests, tracked (policy §14 and §15): opening one (from the chat, the
dashboard, the API or an e-mail the team received), the list the team works from (open
ones first, the most urgent on top), verifying who asked, closing it (done, or refused
with a reason), and the owners' reminder when one is overdue.

What carrying a request out does to the data is ``privacy.request_actions``. Every step
is audited with the request as the entry's target (or its id in ``details``), so the
request's trail is read back from the audit trail (:func:`trail`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine import pagination
from cybergine.accounts.models import Membership, Organisation, Role, User
from cybergine.accounts.principal import Principal
from cybergine.conversations.models import Channel, Customer
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Conflict, InvalidInput, NotFound
from cybergine.privacy import audit
from cybergine.privacy.audit_labels import AuditActorLabel, joins
from cybergine.privacy.request_models import (
    RESPONSE_DAYS,
    PrivacyRequest,
    RefusalReason,
    RequestChannel,
    RequestKind,
    RequestStatus,
    Verification,
    VerificationMethod,
)
from cybergine.privacy.retention import MAXIMUM_AGE, Retention

DUE_WITHIN = timedelta(days=RESPONSE_DAYS)

# Still waiting for the team: these are the ones that can be overdue.
ACTIVE = (RequestStatus.OPEN, RequestStatus.IN_PROGRESS)
CLOSED = (RequestStatus.DONE, RequestStatus.REFUSED)

TARGET = "privacy_request"
PAGE_MAX = 200

# How the chat's channel is recorded as the request's.
_FROM_CHANNEL = {Channel.WHATSAPP: RequestChannel.WHATSAPP, Channel.WEBCHAT: RequestChannel.WEBCHAT}


def is_overdue(request: PrivacyRequest, now: datetime | None = None) -> bool:
    return request.status in ACTIVE and request.due_at < (now or datetime.now(UTC))


# --- opening ---------------------------------------------------------------------------


async def open_request(
    scope: TenantScope,
    actor: audit.Actor,
    *,
    kind: RequestKind,
    channel: RequestChannel,
    customer_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    received_at: datetime | None = None,
    message_id: uuid.UUID | None = None,
) -> PrivacyRequest:
    """A new request about one customer or one member of the organisation, due
    ``DUE_WITHIN`` after it was received (now, or when the team says an e-mail came)."""
    now = datetime.now(UTC)
    if (customer_id is None) == (user_id is None):
        raise InvalidInput("Name either a customer or a staff user.", field="customer_id")
    if customer_id is not None:
        await scope.get(Customer, customer_id, what="customer")
    if user_id is not None and not await _is_member(scope, user_id):
        raise NotFound("No such staff user.")
    received = received_at or now
    if received.tzinfo is None:
        raise InvalidInput("Give the time with its timezone.", field="received_at")
    if received > now + timedelta(minutes=5):
        raise InvalidInput("A request cannot be received in the future.", field="received_at")
    # Older than the audit trail keeps, it could have no trail of what was done.
    if received < now - MAXIMUM_AGE[Retention.AUDIT]:
        raise InvalidInput("That is too long ago to record.", field="received_at")
    request = scope.add(
        PrivacyRequest(
            kind=kind,
            channel=channel,
            customer_id=customer_id,
            user_id=user_id,
            message_id=message_id,
            received_at=received,
            due_at=received + DUE_WITHIN,
            verification=Verification.UNVERIFIED,
            status=RequestStatus.OPEN,
        )
    )
    await scope.session.flush()
    await _audit(scope, actor, request, "privacy.request.opened", channel=channel.value)
    return request


async def open_from_chat(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    customer_id: uuid.UUID,
    channel: Channel,
    message_id: uuid.UUID,
    kind: str,
) -> PrivacyRequest:
    """The request a customer's chat message made ("delete my data"); the same message
    opens it once, however often its reply job runs."""
    scope = TenantScope(session, organisation_id)
    found = (
        await session.execute(
            scope.select(PrivacyRequest).where(
                PrivacyRequest.message_id == message_id, PrivacyRequest.kind == kind
            )
        )
    ).scalar_one_or_none()
    if found is not None:
        return found
    return await open_request(
        scope,
        audit.Actor.system("chat"),
        kind=RequestKind(kind),
        channel=_FROM_CHANNEL[channel],
        customer_id=customer_id,
        message_id=message_id,
    )


async def _is_member(scope: TenantScope, user_id: uuid.UUID) -> bool:
    found = await scope.session.scalar(
        scope.select(Membership)
        .where(Membership.user_id == user_id)
        .with_only_columns(Membership.id)
    )
    return found is not None


# --- the list --------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    requests: list[PrivacyRequest]
    next_cursor: str | None


def _rank() -> ColumnElement[int]:
    """0 for a request still waiting for the team, 1 for a closed one: open ones first."""
    return case((PrivacyRequest.status.in_(ACTIVE), 0), else_=1)


async def list_requests(
    scope: TenantScope,
    *,
    statuses: Sequence[RequestStatus] = (),
    overdue: bool | None = None,
    customer_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Requests still waiting first, the earliest due on top (so overdue ones lead),
    then closed ones; ``cursor``: a page's ``next_cursor``."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"Ask for 1 to {PAGE_MAX} requests.", field="limit")
    now = datetime.now(UTC)
    rank = _rank()
    statement: Select[PrivacyRequest] = scope.select(PrivacyRequest)
    if statuses:
        statement = statement.where(PrivacyRequest.status.in_(statuses))
    if overdue is not None:
        late = and_(PrivacyRequest.status.in_(ACTIVE), PrivacyRequest.due_at < now)
        statement = statement.where(late if overdue else ~late)
    if customer_id is not None:
        statement = statement.where(PrivacyRequest.customer_id == customer_id)
    if cursor:
        after = pagination.decode(cursor, pagination.INT, pagination.TIMESTAMP, pagination.UUID)
        statement = statement.where(
            tuple_(rank, PrivacyRequest.due_at, PrivacyRequest.id) > tuple_(*after)
        )
    statement = statement.order_by(rank, PrivacyRequest.due_at, PrivacyRequest.id).limit(limit + 1)
    found = list((await scope.session.execute(statement)).scalars())
    more = len(found) > limit
    found = found[:limit]
    next_cursor = None
    if more:
        last = found[-1]
        next_cursor = pagination.encode(0 if last.status in ACTIVE else 1, last.due_at, last.id)
    return Page(found, next_cursor)


async def count_overdue(scope: TenantScope) -> int:
    return await scope.count(
        scope.select(PrivacyRequest).where(
            PrivacyRequest.status.in_(ACTIVE), PrivacyRequest.due_at < datetime.now(UTC)
        )
    )


async def get_request(
    scope: TenantScope, request_id: uuid.UUID, *, for_update: bool = False
) -> PrivacyRequest:
    return await scope.get(
        PrivacyRequest, request_id, what="privacy request", for_update=for_update
    )


# --- handling ----------------------------------------------------------------------------


async def verify_identity(
    scope: TenantScope,
    caller: Principal,
    request_id: uuid.UUID,
    *,
    outcome: Verification,
    method: VerificationMethod,
) -> PrivacyRequest:
    """Record whether the person who asked is the subject, and how the team knows; a
    request whose verification failed can be refused for it."""
    if outcome == Verification.UNVERIFIED:
        raise InvalidInput("Say whether the identity was verified or not.", field="verification")
    request = await get_request(scope, request_id, for_update=True)
    _still_open(request)
    request.verification = outcome
    request.verification_method = method
    request.verified_by_user_id = caller.user_id
    request.verified_at = datetime.now(UTC)
    await scope.session.flush()
    await _audit(
        scope,
        caller.actor,
        request,
        "privacy.request.verified",
        verification=outcome.value,
        method=method.value,
    )
    return request


async def set_status(
    scope: TenantScope,
    caller: Principal,
    request_id: uuid.UUID,
    status: RequestStatus,
    *,
    refusal_reason: RefusalReason | None = None,
) -> PrivacyRequest:
    """Move a request on: in progress, done, or refused (with a reason). A closed request
    stays closed; marking one done needs the person's identity verified first."""
    request = await get_request(scope, request_id, for_update=True)
    _still_open(request)
    if status == RequestStatus.OPEN:
        raise InvalidInput("A request cannot be opened again.", field="status")
    if (status == RequestStatus.REFUSED) != (refusal_reason is not None):
        raise InvalidInput(
            "A refusal needs a reason, and only a refusal has one.", field="refusal_reason"
        )
    if status == RequestStatus.DONE and request.verification != Verification.VERIFIED:
        raise Conflict("Verify the person's identity before marking the request done.")
    await close(scope, caller.actor, request, status, refusal_reason=refusal_reason)
    return request


async def close(
    scope: TenantScope,
    actor: audit.Actor,
    request: PrivacyRequest,
    status: RequestStatus,
    *,
    refusal_reason: RefusalReason | None = None,
    **details: object,
) -> None:
    request.status = status
    request.refusal_reason = refusal_reason
    if status in CLOSED:
        request.closed_at = datetime.now(UTC)
    await scope.session.flush()
    await _audit(
        scope,
        actor,
        request,
        "privacy.request.status_changed",
        status=status.value,
        **({"refusal_reason": refusal_reason.value} if refusal_reason else {}),
        **details,
    )


def _still_open(request: PrivacyRequest) -> None:
    if request.status in CLOSED:
        raise Conflict(f"The request is already {request.status.value}.")


async def _audit(
    scope: TenantScope,
    actor: audit.Actor,
    request: PrivacyRequest,
    action: str,
    **details: object,
) -> None:
    await audit.record(
        scope.session,
        action=action,
        actor=actor,
        organisation_id=scope.organisation_id,
        target_type=TARGET,
        target_id=str(request.id),
        details={"kind": request.kind.value, **details},
    )


# --- the trail ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    at: datetime
    action: str
    actor_type: str
    actor_label: str | None
    details: dict[str, object]


async def trail(scope: TenantScope, request: PrivacyRequest) -> list[Step]:
    """What was done about ``request``, oldest first: the audit entries that name it."""
    events = audit.AuditEvent
    rows = await scope.session.execute(
        select(events, AuditActorLabel.label)
        .outerjoin(AuditActorLabel, joins(events.actor_type, events.actor_id))
        .where(
            events.organisation_id == scope.organisation_id,
            or_(
                and_(events.target_type == TARGET, events.target_id == str(request.id)),
                events.details["request_id"].astext == str(request.id),
            ),
        )
        .order_by(events.seq)
    )
    return [
        Step(event.at, event.action, event.actor_type, label, dict(event.details))
        for event, label in rows.all()
    ]


# --- overdue: the owners are told, at most once a day per request ------------------------


@dataclass(frozen=True)
class OverdueNotice:
    organisation_id: uuid.UUID
    request_ids: list[uuid.UUID]
    recipients: list[str]


async def notify_overdue(
    session: AsyncSession, *, public_url: str, today: date | None = None
) -> list[OverdueNotice]:
    """E-mail each organisation's owners about its requests past their due date that
    nobody was told about today; the mark and the e-mail commit together, so a job run
    twice (or two workers) sends one e-mail per request and day. The e-mail names no
    one: it links to the dashboard's list."""
    from cybergine.mail.service import queue_email

    day = today or datetime.now(UTC).date()
    marked = await session.execute(
        update(PrivacyRequest)
        .where(
            PrivacyRequest.status.in_(ACTIVE),
            PrivacyRequest.due_at < func.now(),
            or_(
                PrivacyRequest.overdue_notified_on.is_(None),
                PrivacyRequest.overdue_notified_on < day,
            ),
        )
        .values(overdue_notified_on=day)
        .returning(PrivacyRequest.organisation_id, PrivacyRequest.id)
        .execution_options(synchronize_session=False)
    )
    by_organisation: dict[uuid.UUID, list[uuid.UUID]] = {}
    for organisation_id, request_id in marked.all():
        by_organisation.setdefault(organisation_id, []).append(request_id)
    notices: list[OverdueNotice] = []
    for organisation_id, request_ids in sorted(by_organisation.items()):
        organisation = await session.get(Organisation, organisation_id)
        owners = list(
            await session.scalars(
                select(User.email)
                .join(Membership, Membership.user_id == User.id)
                .where(
                    Membership.organisation_id == organisation_id,
                    Membership.role == Role.OWNER,
                )
                .order_by(User.email)
            )
        )
        count = len(request_ids)
        noun = "request is" if count == 1 else "requests are"
        for email in owners:
            await queue_email(
                session,
                to=email,
                subject=f"Overdue privacy requests: {count}",
                body=(
                    f"{count} data-subject {noun} past the {RESPONSE_DAYS} days the privacy "
                    f"policy promises for an answer"
                    f"{f' in {organisation.name}' if organisation else ''}.\n\n"
                    f"See them: {public_url.rstrip('/')}/privacy/requests?overdue=1\n"
                ),
            )
        notices.append(OverdueNotice(organisation_id, request_ids, owners))
    return notices
