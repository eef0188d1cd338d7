"""The reply pipeline's two statements: where a customer's message stands, and the
answer written under its conversation's lock.

A reply job makes one round trip to read and one to write; each costs the worker and the
database more than the SQL inside it, and a busy assistant answers dozens of messages a
second. So the write is one statement that checks again, under the conversation's row
lock, that the answer is still wanted (the *verdict*, shared with the read), and then
stores the answer, moves its conversation on, marks the answered message read, takes the
WhatsApp number's next send slot or queues the delivery job, and announces the message.
It commits on its own, or inside the caller's transaction when more must go with it (a
handoff). The write is built from the fragments of every outbound write
(``conversations.outbound``): an answer and a person's message get their ids, statuses
and delivery jobs by the same rules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.conversations.channel import ChannelAdapter
from cybergine.conversations.message_types import SILENT_TYPES
from cybergine.conversations.models import Channel, MessageStatus, Sender
from cybergine.conversations.outbound import (
    ANNOUNCE,
    DELIVERY_JOB,
    DELIVERY_STATUS,
    MOVED_ON,
    NEXT_ID,
    SENT_AT,
    channel_parameters,
)
from cybergine.privacy.crypto import EncryptedString

Verdict = Literal["not_for_the_assistant", "already_answered", "superseded", "restricted"]

# The team's record, kept with the conversation (an internal message), that a person dealt
# with the customer's waiting message when handing the conversation back.
DEALT_WITH_TYPE = "dealt_with"

# A burst of messages is answered once, after its last: a newer message supersedes an
# older one, unless it says nothing (a reaction, a system notice).
_NOT_SUPERSEDING = sorted(SILENT_TYPES)

# Only constants are spliced into these statements; every value is a bound parameter.
#
# Each connection plans them once (prepared statements), and a plan made while the tables
# were small and had no statistics (a new installation) is kept while they grow, so the
# message and its conversation are reached in ways no such plan can turn into a scan:
# the message as one row (a lookup of every partition would count as one row each, and
# make a hash join with the whole conversations table look cheaper than one lookup),
# and the conversation by its id only; its organisation is a filter, not a join key,
# which would let the plan read the organisation's conversations through one of its
# indexes. The answer is one row at most too: autovacuum analyses the partitions of
# messages, never the partitioned table, so a join on it is estimated from guesses, and
# one that made the message several rows multiplied the cost of every check below;
# after each analysis the kept plan then looked dearer than planning each run anew, and
# connections did that, about a millisecond a time (tests/conversations/test_reply_plans.py).
_FROM = """
      FROM (SELECT * FROM messages WHERE id = :message_id LIMIT 1) m
      JOIN conversations c
        ON c.id = m.conversation_id AND (c.organisation_id = m.organisation_id) IS TRUE
      JOIN customers cu ON cu.id = c.customer_id
      JOIN organisations o ON o.id = m.organisation_id
      LEFT JOIN LATERAL (
          SELECT id, status FROM messages WHERE reply_to_id = m.id LIMIT 1
      ) answer ON true
      LEFT JOIN assistants a
             ON a.id = c.assistant_id AND a.organisation_id = m.organisation_id AND a.active
      LEFT JOIN whatsapp_numbers n
             ON n.id = c.whatsapp_number_id AND n.organisation_id = m.organisation_id
"""

# NULL when the assistant should answer the message now, else why not.
_VERDICT = f"""
    CASE
        WHEN m.direction <> 'inbound' OR c.state <> 'bot' OR c.assistant_id IS NULL
            THEN 'not_for_the_assistant'
        WHEN answer.id IS NOT NULL THEN 'already_answered'
        -- a person answered it (a reply from the team after it), or said on handing the
        -- conversation back that they had dealt with it: the assistant must not answer
        -- again, even from a reply job queued before the person took over
        WHEN EXISTS (
            SELECT 1 FROM messages person
             WHERE person.conversation_id = m.conversation_id AND person.id > m.id
               AND person.sender = 'agent'
               AND (person.direction = 'outbound' OR person.type = '{DEALT_WITH_TYPE}')
        ) THEN 'already_answered'
        -- policy §11: an organisation scheduled for deletion (or hidden since its shop
        -- uninstalled the app) answers no one, even from a reply job queued before
        WHEN o.status <> 'active' THEN 'not_for_the_assistant'
        WHEN cu.opted_out_at IS NOT NULL THEN 'not_for_the_assistant'
        -- policy §14: an objection to the assistant (people only)
        WHEN cu.objected_at IS NOT NULL THEN 'not_for_the_assistant'
        -- processing restricted: nothing answers them but the acknowledgement of a right
        -- they exercise, decided by phrase alone (the write's :rights_request)
        WHEN cu.processing_restricted_at IS NOT NULL AND NOT CAST(:rights_request AS boolean)
            THEN 'restricted'
        WHEN EXISTS (
            SELECT 1 FROM messages newer
             WHERE newer.conversation_id = m.conversation_id AND newer.direction = 'inbound'
               AND newer.id > m.id
               AND newer.type NOT IN ({", ".join(f"'{t}'" for t in _NOT_SUPERSEDING)})
        ) THEN 'superseded'
    END
"""  # noqa: S608

# The answer goes out from the reply job itself when nothing stands in the way: the
# channel sends by a job (its adapter names one), the number is connected, the customer
# wrote within the channel's free-form window, and no earlier message of the
# conversation is still waiting to be sent (it would be overtaken).
_SEND_NOW = """
    (CAST(:send_task AS text) IS NOT NULL AND coalesce(n.active, false)
     AND (CAST(:window AS float8) IS NULL
          OR c.last_inbound_at > now() - make_interval(secs => CAST(:window AS float8)))
     AND NOT EXISTS (
         SELECT 1 FROM messages pending
          WHERE pending.conversation_id = m.conversation_id AND pending.direction = 'outbound'
            AND pending.status IN ('queued', 'sending')))
"""

_READ = (
    text(
        f"""
    SELECT m.organisation_id, m.conversation_id, m.type, m.text, m.payload, m.external_id,
           c.channel, c.assistant_id, c.customer_id, cu.external_id AS customer_wa_id,
           {_VERDICT} AS verdict,
           answer.id AS answer_id, answer.status AS answer_status,
           a.updated_at AS assistant_updated_at,
           n.phone_number_id, n.access_token, coalesce(n.active, false) AS number_active,
           -- the conversation's last turns before the message, oldest first: its own
           -- customer's words and the replies they got, never anyone else's; never the
           -- team's notes (they are for the team: never in a prompt, never repeated)
           (SELECT coalesce(json_agg(json_build_array(h.sender, h.text) ORDER BY h.id), '[]')
              FROM (SELECT t.id, t.sender, t.text FROM messages t
                     WHERE t.conversation_id = m.conversation_id AND t.id < m.id
                       AND t.text IS NOT NULL AND t.sender <> 'system'
                       AND t.direction <> 'internal'
                     ORDER BY t.id DESC LIMIT :history_turns) h) AS history
    {_FROM}
    """  # noqa: S608
    )
    .bindparams(bindparam("message_id"))
    .columns(access_token=EncryptedString())
)

_WRITE = text(
    f"""
    WITH state AS MATERIALIZED (
        SELECT c.id AS conversation_id, c.organisation_id, c.customer_id, c.channel,
               c.whatsapp_number_id, c.ai_disclosed_at, n.send_rate,
               -- above every earlier message of the conversation: ids follow commit order
               {NEXT_ID} AS id,
               {_VERDICT} AS verdict,
               {_SEND_NOW} AS send_now
        {_FROM}
           FOR UPDATE OF c
    ),
    reply AS MATERIALIZED (SELECT * FROM state WHERE verdict IS NULL),
    stored AS (
        INSERT INTO messages
            (id, organisation_id, conversation_id, direction, sender, type, text, payload,
             status, reply_to_id, sources, grounded, llm_provider, llm_model,
             prompt_tokens, completion_tokens, send_attempts, send_started_at, sent_at,
             created_at, updated_at)
        SELECT r.id, r.organisation_id, r.conversation_id, 'outbound'::message_direction,
               CAST(:sender AS message_sender), CAST(:type AS varchar),
               -- policy §7: the first reply of a conversation says it comes from an AI
               CASE WHEN r.ai_disclosed_at IS NULL THEN CAST(:disclosure AS text) ELSE '' END
                   || CAST(:text AS text) || CAST(:footer AS text),
               CAST(:payload AS jsonb),
               {DELIVERY_STATUS},
               CAST(:message_id AS uuid), CAST(:sources AS jsonb), CAST(:grounded AS boolean),
               CAST(:llm_provider AS varchar), CAST(:llm_model AS varchar),
               CAST(:prompt_tokens AS integer), CAST(:completion_tokens AS integer),
               CASE WHEN r.send_now THEN 1 ELSE 0 END,
               CASE WHEN r.send_now THEN now() END,
               {SENT_AT}, now(), now()
          FROM reply r
        RETURNING text
    ),
    touched AS (
        UPDATE conversations c
           SET {MOVED_ON}, ai_disclosed_at = coalesce(c.ai_disclosed_at, now())
          FROM reply r
         WHERE c.id = r.conversation_id
    ),
    marked AS (
        UPDATE messages SET status = 'read', updated_at = now()
         WHERE CAST(:marked_read AS boolean) AND id = CAST(:message_id AS uuid)
           AND status = 'received'
           AND EXISTS (SELECT 1 FROM reply)
    ),
    slot AS (
        -- the number's rate limit: the next 1/rate s of the clock kept in its row, the
        -- same clock as the delivery job's (channels.whatsapp.delivery._SLOT)
        UPDATE whatsapp_numbers n
           SET next_send_at = greatest(n.next_send_at, clock_timestamp()) + r.step
          FROM (SELECT *, make_interval(secs => 1.0 / coalesce(send_rate, CAST(:rate AS float8)))
                       AS step
                  FROM reply) r
         WHERE n.id = r.whatsapp_number_id AND r.send_now
        RETURNING extract(epoch FROM n.next_send_at - r.step - clock_timestamp()) AS wait
    ),
    delivery_job AS ({DELIVERY_JOB.format(rows="reply")})
    SELECT s.verdict, s.id, s.send_now, s.whatsapp_number_id, s.send_rate,
           (SELECT text FROM stored) AS text,
           (SELECT wait FROM slot) AS wait,
           (SELECT count(*) FROM delivery_job) AS queued,
           CASE WHEN s.verdict IS NULL THEN {ANNOUNCE} END AS announced
      FROM state s
    """  # noqa: S608
).bindparams(
    bindparam("payload", type_=JSONB(none_as_null=True)),
    bindparam("sources", type_=JSONB(none_as_null=True)),
)


class MessageState(NamedTuple):
    """Where a customer's message stands, as :data:`_READ` reads it."""

    organisation_id: uuid.UUID
    conversation_id: uuid.UUID
    type: str
    text: str | None
    payload: dict[str, Any] | None
    external_id: str | None
    channel: Channel
    assistant_id: uuid.UUID | None
    customer_id: uuid.UUID
    customer_wa_id: str
    verdict: Verdict | None  # None: to be answered now
    answer_id: uuid.UUID | None
    answer_status: MessageStatus | None
    assistant_updated_at: datetime | None
    phone_number_id: str | None
    access_token: str | None
    number_active: bool
    history: list[list[str]]  # [sender, text], oldest first


async def read_state(
    session: AsyncSession, message_id: uuid.UUID, *, history_turns: int
) -> MessageState | None:
    """Where ``message_id`` stands: ``verdict`` (None: to be answered now), its
    conversation, the answer it already has, its assistant's version, its number, and
    ``history``: up to ``history_turns`` earlier [sender, text] pairs, oldest first."""
    row = (
        await session.execute(
            _READ,
            {"message_id": message_id, "history_turns": history_turns, "rights_request": False},
        )
    ).one_or_none()
    if row is None:
        return None
    state = MessageState(**row._mapping)
    return state._replace(
        channel=Channel(state.channel),
        answer_status=MessageStatus(state.answer_status) if state.answer_status else None,
    )


@dataclass(frozen=True)
class Reply:
    """An assistant's answer to one customer message, as stored."""

    sender: Sender
    type: str
    text: str
    footer: str  # appended on channels that cannot show sources apart
    disclosure: str  # prepended when it is the conversation's first reply
    payload: dict[str, Any] | None
    sources: list[dict[str, Any]] | None
    grounded: bool | None
    llm_provider: str | None
    llm_model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True)
class Written:
    verdict: Verdict | Literal["gone"] | None  # None: written
    id: uuid.UUID | None = None
    text: str | None = None  # as stored (disclosure and sources included)
    # Claimed for sending now (``sending``), with the wait for the number's send slot;
    # otherwise queued with its delivery job, or (web chat) delivered by being stored.
    send_now: bool = False
    number_id: uuid.UUID | None = None
    send_rate: float | None = None
    slot_wait: float | None = None


async def write_answer(
    session: AsyncSession,
    message_id: uuid.UUID,
    reply: Reply,
    *,
    adapter: ChannelAdapter,
    marked_read: bool,
    default_send_rate: float,
    rights_request: bool = False,
) -> Written:
    """``reply`` to ``message_id``, if it is still wanted (see the module's docstring),
    written by the rules of ``adapter``, its conversation's channel. ``rights_request``:
    ``reply`` acknowledges a right the customer exercises (policy §14), which a customer
    whose processing is restricted still gets."""
    window = adapter.free_form_window
    row = (
        await session.execute(
            _WRITE,
            {
                **channel_parameters(adapter),
                "message_id": message_id,
                "window": window.total_seconds() if window is not None else None,
                "sender": reply.sender.value,
                "type": reply.type,
                "text": reply.text,
                # the widget lists sources under the answer; other channels inline
                "footer": "" if adapter.shows_sources_apart else reply.footer,
                "disclosure": reply.disclosure,
                "payload": reply.payload,
                "sources": reply.sources,
                "grounded": reply.grounded,
                "llm_provider": reply.llm_provider,
                "llm_model": reply.llm_model,
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "marked_read": marked_read,
                "rate": default_send_rate,
                "rights_request": rights_request,
            },
        )
    ).one_or_none()
    if row is None:
        return Written("gone")
    if row.verdict is not None:
        return Written(row.verdict)
    return Written(
        None,
        id=row.id,
        text=row.text,
        send_now=row.send_now,
        number_id=row.whatsapp_number_id,
        send_rate=row.send_rate,
        slot_wait=float(row.wait) if row.wait is not None else None,
    )


# An answer in these states has not reached the channel yet.
ANSWER_PENDING = (MessageStatus.QUEUED, MessageStatus.SENDING)
