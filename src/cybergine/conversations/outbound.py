"""Writing an outbound message: one statement family for every sender.

The assistant's answer (``replies.write_answer``) and every other outbound message (a
person's reply, a notice that a person joined, a consent confirmation:
:func:`write_outbound`) are single statements built from the fragments here, so each
rule is written once: the message's id above the conversation's newest (ids follow
commit order: the statement locks the conversation's row), its status by how its
channel delivers (``sent`` at once when the channel delivers by storing, else
``queued`` with its delivery job under the conversation's send lock), the conversation
moved on, and the message announced on commit. The channel's facts come from its
adapter (:func:`channel_parameters`); only constants are spliced into the SQL, every
value is a bound parameter.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from procrastinate.jobs import DEFAULT_QUEUE
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.conversations.channel import ChannelAdapter
from cybergine.conversations.locks import SEND_LOCK_PREFIX
from cybergine.conversations.models import Sender
from cybergine.db.ids import uuid7
from cybergine.observability.tracing import job_arguments
from cybergine.realtime.events import CHANNEL

# The new message's id, from the conversation ``c`` locked by the statement: ``:id``
# (a fresh UUIDv7) unless the conversation's newest is not below it.
NEXT_ID = """
    CASE WHEN c.last_message_id IS NOT NULL AND CAST(:id AS uuid) <= c.last_message_id
         THEN cybergine_uuid_after(c.last_message_id) ELSE CAST(:id AS uuid) END
"""

# Its status and ``sent_at``, for a row ``r`` that says whether it is sent at once
# (``send_now``, claimed by the reply job).
DELIVERY_STATUS = """
    CASE WHEN CAST(:delivered_by_storing AS boolean) THEN 'sent'
         WHEN r.send_now THEN 'sending' ELSE 'queued' END::message_status
"""
SENT_AT = "CASE WHEN CAST(:delivered_by_storing AS boolean) THEN now() END"

# The conversation ``c`` after message ``r.id``.
MOVED_ON = "last_message_at = now(), last_message_id = r.id, updated_at = now()"

# The delivery job of each row of ``{rows}`` not sent at once, when its channel has one;
# its arguments carry the writer's trace context when traces are on (``send_carries``).
DELIVERY_JOB = """
    SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
               CAST(:send_queue AS text), CAST(:send_task AS text), 0,
               CAST(:send_lock_prefix AS text) || r.conversation_id, NULL,
               jsonb_build_object('message_id', r.id::text) || CAST(:send_carries AS jsonb),
               NULL
           )]::procrastinate_job_to_defer_v1[]) AS ids
      FROM {rows} r
     WHERE CAST(:send_task AS text) IS NOT NULL AND NOT r.send_now
"""

# The message ``s.id`` announced to whoever watches the conversation (``realtime``).
ANNOUNCE = """
    pg_notify(CAST(:events_channel AS text), json_build_object(
        'o', s.organisation_id, 'c', s.conversation_id, 'k', 'message', 'm', s.id,
        'u', s.customer_id, 'd', '{}'::json)::text)
"""


def channel_parameters(adapter: ChannelAdapter) -> dict[str, Any]:
    """What the fragments ask of the conversation's channel, from its adapter."""
    return {
        "delivered_by_storing": adapter.delivers_by_storing,
        "send_task": adapter.delivery_job,
        "send_queue": DEFAULT_QUEUE,
        "send_lock_prefix": SEND_LOCK_PREFIX,
        "send_carries": json.dumps(job_arguments()),
        "events_channel": CHANNEL,
        "id": uuid7(),
    }


_OUTBOUND = text(
    f"""
    WITH state AS MATERIALIZED (
        SELECT c.id AS conversation_id, c.organisation_id, c.customer_id,
               {NEXT_ID} AS id, false AS send_now
          FROM conversations c
         WHERE c.id = :conversation_id AND c.organisation_id = :organisation_id
           FOR UPDATE OF c
    ),
    stored AS (
        INSERT INTO messages
            (id, organisation_id, conversation_id, direction, sender, author_user_id, type,
             text, payload, status, reply_to_id, send_attempts, sent_at, created_at,
             updated_at)
        SELECT r.id, r.organisation_id, r.conversation_id, 'outbound'::message_direction,
               CAST(:sender AS message_sender), CAST(:author_user_id AS uuid),
               CAST(:type AS varchar), CAST(:text AS text), CAST(:payload AS jsonb),
               {DELIVERY_STATUS}, CAST(:reply_to_id AS uuid), 0, {SENT_AT}, now(), now()
          FROM state r
        RETURNING id
    ),
    moved_on AS (
        UPDATE conversations c SET {MOVED_ON} FROM state r WHERE c.id = r.conversation_id
    ),
    delivery_job AS ({DELIVERY_JOB.format(rows="state")})
    SELECT s.id, (SELECT count(*) FROM stored) AS stored,
           (SELECT count(*) FROM delivery_job) AS queued, {ANNOUNCE} AS announced
      FROM state s
    """  # noqa: S608
).bindparams(bindparam("payload", type_=JSONB(none_as_null=True)))


async def write_outbound(
    session: AsyncSession,
    adapter: ChannelAdapter,
    organisation_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    sender: Sender,
    type: str,
    text: str | None,
    payload: Mapping[str, Any] | None = None,
    reply_to_id: uuid.UUID | None = None,
    author_user_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """An outbound message of a person or the system in ``conversation_id`` (a channel
    ``adapter``'s), queued for delivery or, on a channel that delivers by storing, sent;
    its id. Raises ``LookupError`` for a conversation the organisation does not have."""
    row = (
        await session.execute(
            _OUTBOUND,
            {
                **channel_parameters(adapter),
                "organisation_id": organisation_id,
                "conversation_id": conversation_id,
                "sender": sender.value,
                "author_user_id": author_user_id,
                "type": type,
                "text": text,
                "payload": dict(payload) if payload else None,
                "reply_to_id": reply_to_id,
            },
        )
    ).one_or_none()
    if row is None:
        raise LookupError(f"no conversation {conversation_id} in organisation {organisation_id}")
    message_id: uuid.UUID = row.id
    return message_id
