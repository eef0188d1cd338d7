"""What each analytics figure means, written once (the README's "Analytics: what each
figure means" says the same in words).

Everything is derived from one statement, :func:`conversation_metrics`: a row per
conversation with its counts, the moments that matter and the outcome, which the refresh
keeps as each conversation's row of figures (``facts``). The hourly aggregates
(``rollups``), the CSV export and the drill-down (the conversations behind a figure,
``Figure.predicate``) all read those rows, so a figure and its conversations cannot
disagree, and a fix here reaches history with ``cybergine analytics rebuild``.

Period rule: a conversation counts in the hour it began (``conversations.created_at``),
with everything that happened in it since. Parameters every statement takes:
``:organisation_id``, ``:now`` (what "idle" is measured against) and ``:idle_seconds``.
"""

from __future__ import annotations

import enum

from cybergine.assistants.business_hours import WEEKDAYS
from cybergine.conversations import intents
from cybergine.conversations.csat_models import POSITIVE_RATING
from cybergine.conversations.models import ConversationState, Direction, Sender

# The hand-off reasons counted by name; any other reason (a model's own words, a
# sentence written by the platform) is counted as OTHER_REASON, so no text a customer
# could have influenced reaches the aggregates.
HANDOFF_REASON_CODES = (
    intents.REASON_CUSTOMER_REQUEST,
    intents.REASON_HUMAN_REVIEW,
    intents.REASON_KEYWORD,
)
OTHER_REASON = "other"

_INBOUND = f"'{Direction.INBOUND.value}'"
_OUTBOUND = f"'{Direction.OUTBOUND.value}'"
_ASSISTANT = f"'{Sender.ASSISTANT.value}'"
_AGENT = f"'{Sender.AGENT.value}'"
_CLOSED = f"'{ConversationState.CLOSED.value}'"

# Per conversation, from its messages. "In": what the customer wrote; "out": what was
# sent to them (the assistant's answers, people's replies, the platform's notices);
# team-only notes are neither. An assistant answer is grounded when it rests on a
# source above the threshold and a fallback when it was not (``messages.grounded``).
# People's first replies are kept as a list so the ones after a given moment (the
# customer's first message, the hand-off) can be picked without a second pass.
_MESSAGE_FACTS = f"""
    SELECT count(*) FILTER (WHERE m.direction = {_INBOUND}) AS messages_in,
           count(*) FILTER (WHERE m.direction = {_OUTBOUND}) AS messages_out,
           count(*) FILTER (WHERE m.direction = {_OUTBOUND} AND m.sender = {_ASSISTANT})
               AS assistant_answers,
           count(*) FILTER (WHERE m.sender = {_ASSISTANT} AND m.grounded) AS grounded_answers,
           count(*) FILTER (WHERE m.sender = {_ASSISTANT} AND NOT m.grounded) AS fallbacks,
           count(*) FILTER (WHERE m.direction = {_OUTBOUND} AND m.sender = {_AGENT})
               AS agent_messages,
           coalesce(sum(m.prompt_tokens), 0) AS prompt_tokens,
           coalesce(sum(m.completion_tokens), 0) AS completion_tokens,
           min(m.created_at) FILTER (WHERE m.direction = {_INBOUND}) AS first_customer_at,
           min(m.created_at) FILTER (WHERE m.direction = {_OUTBOUND} AND m.sender = {_ASSISTANT})
               AS first_assistant_at,
           array_agg(m.created_at) FILTER (WHERE m.direction = {_OUTBOUND} AND m.sender = {_AGENT})
               AS agent_times
      FROM messages m
     WHERE m.conversation_id = c.id
"""  # noqa: S608

# Each assistant's business hours (``assistants.business_hours``) as a week of ranges in
# seconds from local Monday 00:00, read once per statement for their business clock (``_clock``).
_DAYS = "ARRAY[" + ", ".join(f"'{day}'" for day in WEEKDAYS) + "]"
_BUSINESS_WEEKS = f"""
    SELECT a.id AS assistant_id, a.business_hours->>'timezone' AS timezone,
           array_agg(w.start) AS starts, array_agg(w.finish) AS ends,
           sum(w.finish - w.start) AS weekly
      FROM assistants a
     CROSS JOIN LATERAL jsonb_each(a.business_hours->'days') AS d(day, spans)
     CROSS JOIN LATERAL jsonb_array_elements(d.spans) AS span(value)
     CROSS JOIN LATERAL (
           SELECT (array_position({_DAYS}, d.day) - 1) * 86400.0
                  + extract(epoch FROM (span.value->>0)::interval)::double precision AS start,
                  (array_position({_DAYS}, d.day) - 1) * 86400.0
                  + extract(epoch FROM (span.value->>1)::interval)::double precision AS finish
           ) AS w
     WHERE a.organisation_id = :organisation_id AND a.business_hours IS NOT NULL
     GROUP BY a.id
"""  # noqa: S608

# CSAT (``conversations.csat``): a survey was sent when the conversation closed, the
# customer answered it (a 1-5 rating), and the answer was positive (4 or 5); over the
# conversation's survey ``s``.
CSAT = f"""(s.id IS NOT NULL) AS csat_surveys_sent,
           (s.rating IS NOT NULL) AS csat_responses,
           coalesce(s.rating >= {POSITIVE_RATING}, false) AS csat_positive,
           s.rating AS csat_rating"""

_FACTS = f"""
    SELECT c.id AS conversation_id,
           c.assistant_id,
           c.channel,
           c.state,
           c.customer_id,
           c.created_at AS started_at,
           date_trunc('hour', c.created_at) AS hour,
           c.handoff_at,
           c.handoff_reason,
           c.closed_at,
           c.last_message_at,
           -- The version of the conversation's row these figures were read from.
           c.xmin::text::bigint AS conversation_version,
           hours.timezone AS business_timezone,
           hours.starts AS business_starts,
           hours.ends AS business_ends,
           hours.weekly AS business_weekly,
           {CSAT},
           f.*,
           (SELECT min(t) FROM unnest(f.agent_times) AS t WHERE t >= f.first_customer_at)
               AS first_agent_at,
           (SELECT min(t) FROM unnest(f.agent_times) AS t WHERE t >= c.handoff_at)
               AS first_agent_after_handoff_at,
           CASE WHEN c.state = {_CLOSED} THEN c.closed_at
                WHEN c.last_message_at <= CAST(:now AS timestamptz)
                                          - make_interval(secs => :idle_seconds)
                THEN c.last_message_at
           END AS resolved_at
      FROM conversations c
      LEFT JOIN ({_BUSINESS_WEEKS}) AS hours ON hours.assistant_id = c.assistant_id
      LEFT JOIN csat_surveys s ON s.conversation_id = c.id
     CROSS JOIN LATERAL ({_MESSAGE_FACTS}) AS f
     WHERE c.organisation_id = :organisation_id AND ({{where}})
"""  # noqa: S608


# The moments a duration starts or ends at; each gets its business clock once per row.
_MOMENTS = (
    "started_at",
    "resolved_at",
    "first_customer_at",
    "first_assistant_at",
    "first_agent_at",
    "handoff_at",
    "first_agent_after_handoff_at",
)


def _clock(moment: str) -> str:
    """The assistant's business clock at ``moment``: business seconds from local Monday
    1969-12-29 (259200 s before the epoch's Thursday) on the wall clock of its zone,
    whole weeks times the week's total plus the part of this week's ranges passed.
    NULL without hours (no ranges: the sum is NULL) or without the moment."""
    local = (
        f"(extract(epoch FROM x.{moment} AT TIME ZONE x.business_timezone)::double precision"
        " + 259200)"
    )
    week = f"floor({local} / 604800)"
    return (
        f"{week} * x.business_weekly"
        f" + sum(least(greatest({local} - {week} * 604800 - r.s, 0), r.e - r.s))"
        f" AS {moment}_clock"
    )


# Every moment's clock in one pass over the assistant's ranges.
_CLOCKS = f"""
    SELECT {", ".join(_clock(moment) for moment in _MOMENTS)}
      FROM unnest(x.business_starts, x.business_ends) AS r(s, e)
"""  # noqa: S608


def _duration(name: str, start: str, end: str) -> str:
    """Seconds from ``start`` to ``end``, and the same counting only the assistant's
    business hours (NULL when it has none): the difference of its business clock."""
    return (
        f"extract(epoch FROM x.{end} - x.{start})::double precision AS {name}_seconds,\n"
        f"clocks.{end}_clock - clocks.{start}_clock AS {name}_business_seconds"
    )


# The outcome of a conversation: handed to a person (a hand-off was recorded, or someone
# on the team wrote to the customer), resolved (closed, or idle for the configured time:
# no message either way since), resolved by the assistant (resolved, the assistant
# answered at least once, and never handed to a person); and, as Fin's report counts
# the conversations its agent was involved in, with a grounded answer (at least one
# answer from a source: Fin's "answered") and deflected (answered by the assistant and
# never handed to a person, resolved or not yet).
_HANDED = "(x.handoff_at IS NOT NULL OR x.agent_messages > 0)"
_RESOLVED = "(x.resolved_at IS NOT NULL)"
_ANSWERED = "(x.assistant_answers > 0)"
_OUTCOMES = f"""
    {_HANDED} AS handed_to_person,
    {_RESOLVED} AS resolved,
    {_ANSWERED} AS answered_by_assistant,
    (x.fallbacks > 0) AS with_fallback,
    (x.grounded_answers > 0) AS with_grounded_answer,
    ({_ANSWERED} AND NOT {_HANDED}) AS deflected,
    ({_RESOLVED} AND {_ANSWERED} AND NOT {_HANDED}) AS resolved_by_assistant
"""


def conversation_metrics(where: str) -> str:
    """One row per conversation of the organisation matching ``where`` (SQL over the
    conversation ``c``), with every per-conversation figure."""
    durations = ",\n".join(
        (
            # The customer's first message to the assistant's first answer.
            _duration("first_response", "first_customer_at", "first_assistant_at"),
            # The customer's first message to the first reply of a person.
            _duration("agent_first_response", "first_customer_at", "first_agent_at"),
            # The hand-off to the first reply of a person after it.
            _duration("human_first_response", "handoff_at", "first_agent_after_handoff_at"),
            # The conversation's start to its resolution.
            _duration("resolution", "started_at", "resolved_at"),
        )
    )
    return f"""
    SELECT x.*, {_OUTCOMES}, {durations}
      FROM ({_FACTS.format(where=where)}) AS x
     CROSS JOIN LATERAL ({_CLOCKS}) AS clocks
    """  # noqa: S608


class Figure(enum.StrEnum):
    """A count of conversations, each of which the drill-down can list."""

    CONVERSATIONS = "conversations"
    ANSWERED_BY_ASSISTANT = "answered_by_assistant"
    RESOLVED_BY_ASSISTANT = "resolved_by_assistant"
    HANDED_TO_PERSON = "handed_to_person"
    RESOLVED = "resolved"
    WITH_FALLBACK = "with_fallback"
    WITH_GROUNDED_ANSWER = "with_grounded_answer"
    DEFLECTED = "deflected"
    CSAT_SURVEYS_SENT = "csat_surveys_sent"
    CSAT_RESPONSES = "csat_responses"
    CSAT_POSITIVE = "csat_positive"

    @property
    def predicate(self) -> str:
        """SQL over a :func:`conversation_metrics` row aliased ``metrics``."""
        return "true" if self == Figure.CONVERSATIONS else f"metrics.{self.value}"


# The states a conversation can be in now, each counted.
STATES = tuple(ConversationState)

# The per-conversation counts the aggregates sum (``conversation_metrics`` columns).
TOTALS = (
    "messages_in",
    "messages_out",
    "assistant_answers",
    "grounded_answers",
    "fallbacks",
    "prompt_tokens",
    "completion_tokens",
)


def cited_sources(conversation: str) -> str:
    """SQL: a jsonb array of each source the assistant's answers in the conversation
    (id ``conversation``) cited, ``{"item", "citations"}`` (``messages.sources``; an
    entry marked ``"cited": false`` was shown to the model but not used)."""
    return f"""
    (SELECT coalesce(jsonb_agg(jsonb_build_object('item', s.item, 'citations', s.citations)
                               ORDER BY s.item), '[]')
       FROM (SELECT source.value->>'item_id' AS item, count(*) AS citations
               FROM messages answer
              CROSS JOIN LATERAL jsonb_array_elements(
                        CASE WHEN jsonb_typeof(answer.sources) = 'array'
                             THEN answer.sources ELSE '[]' END
                    ) AS source(value)
              WHERE answer.conversation_id = {conversation}
                AND answer.sender = {_ASSISTANT} AND answer.sources IS NOT NULL
                AND source.value->>'item_id' IS NOT NULL
                AND coalesce((source.value->>'cited')::boolean, true)
              GROUP BY 1) AS s)
    """  # noqa: S608


def model_usage(conversation: str) -> str:
    """SQL: a jsonb array of the assistant's answers in the conversation (id
    ``conversation``) that went to a model, per provider and model (``item``:
    "provider/model"), with their prompt and completion tokens."""
    return f"""
    (SELECT coalesce(jsonb_agg(to_jsonb(u) ORDER BY u.item), '[]')
       FROM (SELECT coalesce(answer.llm_provider, '') || '/' || coalesce(answer.llm_model, '')
                        AS item,
                    min(answer.llm_provider) AS provider, min(answer.llm_model) AS model,
                    count(*) AS answers,
                    coalesce(sum(answer.prompt_tokens), 0) AS prompt_tokens,
                    coalesce(sum(answer.completion_tokens), 0) AS completion_tokens
               FROM messages answer
              WHERE answer.conversation_id = {conversation}
                AND answer.sender = {_ASSISTANT} AND answer.direction = {_OUTBOUND}
                AND (answer.llm_provider IS NOT NULL OR answer.llm_model IS NOT NULL)
              GROUP BY 1) AS u)
    """  # noqa: S608


def handoff_reason_code(column: str) -> str:
    """The reason a hand-off is counted under: its code when it is one of
    ``HANDOFF_REASON_CODES``, else ``OTHER_REASON``."""
    codes = ", ".join(f"'{code}'" for code in HANDOFF_REASON_CODES)
    return f"CASE WHEN {column} IN ({codes}) THEN {column} ELSE '{OTHER_REASON}' END"
