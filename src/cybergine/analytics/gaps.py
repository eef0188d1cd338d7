"""The customers' questions, grouped by meaning: the top questions, and among them the
knowledge gaps, the ones the assistant could not answer from the knowledge base (README,
"Analytics: what each figure means").

**What counts.** A customer's message in their own words (not a tap on a button or a
list row) that got, as its reply (``messages.reply_to_id``), one of

- an assistant answer grounded in a source (``grounded`` true: a passage above the
  threshold or products the catalogue matched); ``cause`` "grounded";
- the fallback: an assistant answer not grounded in a source (``grounded`` false: no
  source above the threshold, the model said nothing usable, the best source fell below
  the threshold, a product question no product matches); ``cause`` "fallback";
- a hand-off decided by the model (the platform's hand-off notice written with the
  model that called ``handoff_to_human``, which it is told to do when the sources do not
  answer); ``cause`` "handoff". Hand-offs the customer asked for (their words, the
  button, a keyword) are not questions: the question behind a button is already counted
  by the fallback that offered it; so is the one behind a customer's "yes please" to
  that offer, which the model hands off (the assistant's answer before it was a fallback).

Greetings and messages with nothing to read get no grounded answer either way
(``grounded`` null) and are not questions. The top questions are the groups by all
their questions; the knowledge gaps (``GAP_CAUSES``) the same groups by their fallbacks
and hand-offs only.

**Collection** (off the request path: embedding a few thousand questions takes seconds).
The periodic ``analytics:knowledge_gaps_sweep`` defers one ``COLLECT_KNOWLEDGE_GAPS`` job
per organisation whose conversations changed since its mark; the job embeds the new
questions with the organisation's embedding model (the one knowledge retrieval uses) and
puts each in the group whose centroid is nearest, if its cosine is at least
``SIMILARITY``, else in a new group; the centroid is the normalised mean of its
questions' vectors. A group ages by its newest question (its ``created_at``), so the
retention purge removes groups nobody asked about for 12 months; a question whose group
went joins a group again at the next collection. Without an embedding model nothing is
collected (and the mark stays, so history is collected once there is one). A collection
reads at most ``BACKFILL_WINDOW`` of conversation changes: the first one of a busy
organisation (its last 12 months) is a chain of jobs, each deferring the next.

**Reading** (``analytics.question_report``): the questions asked in the period (a
question counts when it was asked), narrowed by assistant and channel, per group: how
many, of which cause, in how many conversations, first and last asked, the question
nearest the centroid as the group's representative, the newest examples. Knowledge gap
groups someone answered (a Q&A pair written from the page, :func:`mark_answered`) are
marked answered and listed after the open ones, with the questions still asked since
the answer exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Uuid, column, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Subquery

from cybergine.analytics.periods import Filters
from cybergine.conversations.models import ERASED_PREFIX, Direction, Sender
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.embeddings import EmbeddingProvider
from cybergine.llm.redaction import Redactor
from cybergine.privacy.retention import MAXIMUM_AGE, Retention

# The cosine to a group's centroid a question needs to join it (all-MiniLM-L6-v2:
# paraphrases of one question score 0.5-0.9 against each other, unrelated shop
# questions below 0.45).
SIMILARITY = 0.47
# What of a question is embedded: a question is short; a long message is cut.
EMBEDDED_CHARACTERS = 500
# A transaction that began before a collection and commits after it wrote
# ``updated_at`` earlier than the mark; looking this far back catches it.
CHANGES_LOOKBACK = timedelta(minutes=5)
# How much of the conversations' history one collection reads (by ``updated_at``): the
# first collection of a busy organisation's year runs as a chain of jobs, each a
# statement well within the statement timeout.
BACKFILL_WINDOW = timedelta(days=7)
# Groups a report lists, and examples per group.
MAX_GROUPS = 100
DEFAULT_GROUPS = 50
EXAMPLES = 5

GROUNDED = "grounded"
FALLBACK = "fallback"
HANDOFF = "handoff"
# The causes of a knowledge gap: the questions the knowledge base did not answer.
GAP_CAUSES = (FALLBACK, HANDOFF)
CAUSES = (GROUNDED, *GAP_CAUSES)

_ASSISTANT = f"'{Sender.ASSISTANT.value}'"
_SYSTEM = f"'{Sender.SYSTEM.value}'"
_INBOUND = f"'{Direction.INBOUND.value}'"

# The customers' questions answered since ``:since`` (a grounded answer, the fallback or
# a model's hand-off), not yet collected (``conversations.updated_at`` moves with every
# message written); a question with more than one reply counts by its first.
# Never those of a customer whose processing is restricted, who objected, opted out or
# was erased (policy §13, §14): nothing of theirs goes to an embeddings endpoint. ``redact``
# follows the assistant's setting, as the retrieval query's does (an assistant deleted
# since: redacted).
_CANDIDATES = f"""
    SELECT * FROM (
    SELECT DISTINCT ON (q.id)
           q.id AS message_id, q.conversation_id, c.assistant_id, c.channel,
           q.created_at AS asked_at, q.text,
           CASE WHEN a.sender = {_SYSTEM} THEN '{HANDOFF}'
                WHEN a.grounded THEN '{GROUNDED}' ELSE '{FALLBACK}' END AS cause,
           coalesce(bot.redact_personal_data, true) AS redact
      FROM conversations c
      JOIN customers cu ON cu.id = c.customer_id
      LEFT JOIN assistants bot ON bot.id = c.assistant_id
      JOIN messages a ON a.conversation_id = c.id AND a.created_at >= :oldest
      JOIN messages q ON q.id = a.reply_to_id
     WHERE c.organisation_id = :organisation_id
       AND c.updated_at >= :since AND c.updated_at < :until
       AND cu.processing_restricted_at IS NULL AND cu.objected_at IS NULL
       AND cu.opted_out_at IS NULL AND cu.external_id NOT LIKE '{ERASED_PREFIX}%'
       AND ((a.sender = {_ASSISTANT} AND a.grounded IS NOT NULL)
            OR (a.sender = {_SYSTEM} AND a.llm_provider IS NOT NULL
                -- A customer accepting the offer of a person that came with a fallback
                -- ("yes please") is no new question: that fallback's question counted.
                AND NOT coalesce((SELECT p.grounded = false FROM messages p
                                   WHERE p.conversation_id = q.conversation_id
                                     AND p.sender = {_ASSISTANT}
                                     AND p.created_at < q.created_at
                                   ORDER BY p.created_at DESC LIMIT 1), false)))
       AND q.direction = {_INBOUND} AND q.text IS NOT NULL AND btrim(q.text) <> ''
       AND NOT coalesce(q.payload ? 'choice_id', false)
       AND NOT EXISTS (SELECT 1 FROM knowledge_gap_questions g WHERE g.message_id = q.id)
     ORDER BY q.id, a.created_at, a.id) AS found
     ORDER BY asked_at, message_id
"""  # noqa: S608

# When each question's conversation last asked in the same group before it, and for a
# knowledge gap's question when it last asked there a question of a gap's cause (the
# trigger on the questions moves the day's counts of each row this changes).
_PREVIOUS = f"""
    UPDATE knowledge_gap_questions q
       SET previous_at = p.previous_at, previous_gap_at = p.previous_gap_at
      FROM (SELECT id,
                   lag(created_at) OVER (PARTITION BY conversation_id, group_id
                                         ORDER BY created_at, id) AS previous_at,
                   CASE WHEN cause <> '{GROUNDED}' THEN
                        lag(created_at) OVER (PARTITION BY conversation_id, group_id,
                                                           cause = '{GROUNDED}'
                                              ORDER BY created_at, id) END AS previous_gap_at
              FROM knowledge_gap_questions
             WHERE organisation_id = :organisation_id AND group_id IS NOT NULL
               AND conversation_id = ANY(CAST(:conversations AS uuid[]))) AS p
     WHERE q.id = p.id AND (q.previous_at IS DISTINCT FROM p.previous_at
                            OR q.previous_gap_at IS DISTINCT FROM p.previous_gap_at)
"""  # noqa: S608

# Only active organisations: one in its deletion grace period or hidden since its shop
# uninstalled the app embeds nothing (policy §11).
_STALE_ORGANISATIONS = """
    SELECT o.id
      FROM organisations o
      LEFT JOIN knowledge_gap_marks m ON m.organisation_id = o.id
     WHERE o.status = 'active' AND EXISTS (SELECT 1 FROM conversations c
                    WHERE c.organisation_id = o.id
                      AND c.updated_at > coalesce(m.collected_until, '-infinity'))
"""


def collect_lock(organisation_id: uuid.UUID) -> str:
    """The queueing lock of an organisation's collection: one waits at a time."""
    return f"knowledge_gaps:{organisation_id}"


async def stale_organisations(session: AsyncSession) -> list[uuid.UUID]:
    """The organisations with conversations changed since their last collection."""
    return list(await session.scalars(text(_STALE_ORGANISATIONS)))


def _vector(value: Any) -> npt.NDArray[np.float32]:
    return np.asarray(value, dtype=np.float32)


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 1e-12 else vector


@dataclass
class _Groups:
    """An organisation's groups of one model, as the collection moves them."""

    ids: list[uuid.UUID] = field(default_factory=list)
    centroids: list[npt.NDArray[np.float32]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    newest: list[datetime | None] = field(default_factory=list)
    new: set[int] = field(default_factory=set)
    changed: set[int] = field(default_factory=set)

    def place(self, vector: npt.NDArray[np.float32], asked_at: datetime) -> tuple[uuid.UUID, float]:
        """The group ``vector`` joins (a new one when none is near enough), and its cosine
        to the centroid it joined."""
        if self.centroids:
            similarities = np.stack(self.centroids) @ vector
            best = int(similarities.argmax())
            if float(similarities[best]) >= SIMILARITY:
                size = self.sizes[best]
                self.centroids[best] = _unit(self.centroids[best] * size + vector)
                self.sizes[best] = size + 1
                previous = self.newest[best]
                self.newest[best] = asked_at if previous is None else max(previous, asked_at)
                self.changed.add(best)
                return self.ids[best], float(similarities[best])
        self.ids.append(uuid.uuid4())
        self.centroids.append(_unit(vector))
        self.sizes.append(1)
        self.newest.append(asked_at)
        self.new.add(len(self.ids) - 1)
        return self.ids[-1], 1.0


async def _groups_of(session: AsyncSession, organisation_id: uuid.UUID, model: str) -> _Groups:
    rows = await session.execute(
        text(
            "SELECT id, CAST(centroid AS real[]) AS centroid, size FROM knowledge_gap_groups"
            " WHERE organisation_id = :organisation_id AND embedding_model = :model"
            " ORDER BY id"
        ),
        {"organisation_id": organisation_id, "model": model},
    )
    groups = _Groups()
    for row in rows:
        groups.ids.append(row.id)
        groups.centroids.append(_vector(row.centroid))
        groups.sizes.append(int(row.size))
        groups.newest.append(None)
    return groups


async def _save_groups(
    session: AsyncSession, organisation_id: uuid.UUID, groups: _Groups, model: str
) -> None:
    for index in sorted(groups.new | groups.changed):
        await session.execute(
            text(
                "INSERT INTO knowledge_gap_groups"
                " (id, organisation_id, centroid, embedding_model, size, created_at, updated_at)"
                " VALUES (:id, :organisation_id, CAST(:centroid AS vector), :model, :size,"
                "         :newest, now())"
                " ON CONFLICT (id) DO UPDATE SET centroid = excluded.centroid,"
                "   size = excluded.size, updated_at = now(),"
                "   created_at = greatest(knowledge_gap_groups.created_at, excluded.created_at)"
            ),
            {
                "id": groups.ids[index],
                "organisation_id": organisation_id,
                "centroid": str([float(x) for x in groups.centroids[index]]),
                "model": model,
                "size": groups.sizes[index],
                "newest": groups.newest[index],
            },
        )


@dataclass(frozen=True)
class Collected:
    added: int  # questions collected
    done: bool  # False: older changes read, newer ones wait for the next collection


async def collect(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    embeddings: EmbeddingProvider | None,
    now: datetime,
) -> Collected:
    """Collect the questions of the organisation's conversations changed since its mark
    (the last 12 months the first time), ``BACKFILL_WINDOW`` of changes at most, into
    their groups. Idempotent."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": collect_lock(organisation_id)},
    )
    if embeddings is None or embeddings.dimensions == 0:
        return Collected(0, True)
    status = await session.scalar(
        text("SELECT status FROM organisations WHERE id = :o"), {"o": organisation_id}
    )
    if status != "active":
        # Closing or hidden (policy §11): nothing embedded; the mark stays, so a
        # cancelled deletion or a reinstall collects what waited.
        return Collected(0, True)
    mark = await session.scalar(
        text("SELECT collected_until FROM knowledge_gap_marks WHERE organisation_id = :o"),
        {"o": organisation_id},
    )
    oldest = now - MAXIMUM_AGE[Retention.USAGE_LOG]
    since = oldest if mark is None else max(oldest, mark - CHANGES_LOOKBACK)
    first_change = await session.scalar(
        text(
            "SELECT min(updated_at) FROM conversations"
            " WHERE organisation_id = :o AND updated_at >= :since"
        ),
        {"o": organisation_id, "since": since},
    )
    until = now if first_change is None else min(now, first_change + BACKFILL_WINDOW)
    found = (
        await session.execute(
            text(_CANDIDATES),
            {"organisation_id": organisation_id, "since": since, "until": until, "oldest": oldest},
        )
    ).all()
    # Questions whose group the retention purge removed join one again.
    orphans = (
        await session.execute(
            text(
                "SELECT id, conversation_id, CAST(embedding AS real[]) AS embedding, created_at"
                " FROM knowledge_gap_questions"
                " WHERE organisation_id = :o AND group_id IS NULL AND embedding_model = :model"
                " ORDER BY created_at, id"
            ),
            {"o": organisation_id, "model": embeddings.name},
        )
    ).all()
    groups = await _groups_of(session, organisation_id, embeddings.name)
    regrouped = []
    for orphan in orphans:
        group_id, similarity = groups.place(_vector(orphan.embedding), orphan.created_at)
        regrouped.append({"g": group_id, "s": similarity, "id": orphan.id})
    vectors = await _embed(
        embeddings, [Redactor().redact(row.text) if row.redact else row.text for row in found]
    )
    placed: list[dict[str, Any]] = []
    for row, vector in zip(found, vectors, strict=True):
        group_id, similarity = groups.place(vector, row.asked_at)
        placed.append(
            {
                "id": uuid.uuid4(),
                "organisation_id": organisation_id,
                "message_id": row.message_id,
                "conversation_id": row.conversation_id,
                "assistant_id": row.assistant_id,
                "channel": row.channel,
                "cause": row.cause,
                "group_id": group_id,
                "similarity": similarity,
                "embedding": str([float(x) for x in vector]),
                "model": embeddings.name,
                "asked_at": row.asked_at,
            }
        )
    await _save_groups(session, organisation_id, groups, embeddings.name)
    if regrouped:
        await session.execute(
            text(
                "UPDATE knowledge_gap_questions SET group_id = :g, similarity = :s WHERE id = :id"
            ),
            regrouped,
        )
    if placed:
        await session.execute(
            text(
                "INSERT INTO knowledge_gap_questions"
                " (id, organisation_id, message_id, conversation_id, assistant_id, channel,"
                "  cause, group_id, similarity, embedding, embedding_model, created_at,"
                "  updated_at)"
                " VALUES (:id, :organisation_id, :message_id, :conversation_id, :assistant_id,"
                "  CAST(:channel AS channel), :cause, :group_id, :similarity,"
                "  CAST(:embedding AS vector), :model, :asked_at, now())"
                " ON CONFLICT (message_id) DO NOTHING"
            ),
            placed,
        )
    await link_previous(
        session,
        organisation_id,
        {row["conversation_id"] for row in placed} | {o.conversation_id for o in orphans},
    )
    # A group whose questions all left (erased, purged with their conversation) goes.
    await session.execute(
        text(
            "DELETE FROM knowledge_gap_groups g WHERE g.organisation_id = :o"
            " AND NOT EXISTS (SELECT 1 FROM knowledge_gap_questions q WHERE q.group_id = g.id)"
        ),
        {"o": organisation_id},
    )
    # created_at moves too: the retention purge ages a mark by it.
    await session.execute(
        text(
            "INSERT INTO knowledge_gap_marks (id, organisation_id, collected_until,"
            " created_at, updated_at) VALUES (:id, :o, :now, now(), now())"
            " ON CONFLICT (organisation_id) DO UPDATE SET"
            " collected_until = excluded.collected_until, created_at = now(), updated_at = now()"
        ),
        {"id": uuid.uuid4(), "o": organisation_id, "now": until},
    )
    return Collected(len(placed), until >= now)


async def link_previous(
    session: AsyncSession, organisation_id: uuid.UUID, conversations: Iterable[uuid.UUID]
) -> None:
    """Set ``previous_at`` on the questions of ``conversations``: when the conversation
    last asked in the same group before each (the collection calls it for the
    conversations it added questions to or regrouped)."""
    ids = list(conversations)
    if ids:
        await session.execute(
            text(_PREVIOUS), {"organisation_id": organisation_id, "conversations": ids}
        )


async def _embed(
    embeddings: EmbeddingProvider, texts: Sequence[str]
) -> list[npt.NDArray[np.float32]]:
    found: list[npt.NDArray[np.float32]] = []
    step = 256
    for start in range(0, len(texts), step):
        batch = [" ".join(t.split())[:EMBEDDED_CHARACTERS] for t in texts[start : start + step]]
        found += [_vector(v) for v in await embeddings.embed(batch, kind="query")]
    return found


async def mark_answered(scope: TenantScope, group_id: uuid.UUID, item_id: uuid.UUID | None) -> bool:
    """Record that the Q&A pair ``item_id`` answers the group (False: no such group of
    the organisation's, e.g. regrouped since the page was shown)."""
    result = await scope.session.execute(
        text(
            "UPDATE knowledge_gap_groups SET answered_at = now(), answer_item_id = :item,"
            " updated_at = now() WHERE id = :id AND organisation_id = :o"
        ),
        {"item": item_id, "id": group_id, "o": scope.organisation_id},
    )
    return bool(getattr(result, "rowcount", 0))


def group_conversations(
    organisation_id: uuid.UUID,
    group_id: uuid.UUID,
    filters: Filters,
    causes: Sequence[str] = GAP_CAUSES,
) -> Subquery:
    """The ids of the conversations behind a group's questions of ``causes`` in the
    period (``conversation_id``): what the drill-down lists (a knowledge gap's by
    default, a top question's with every cause)."""
    sql = f"""
        SELECT DISTINCT q.conversation_id FROM knowledge_gap_questions q
         WHERE q.organisation_id = :gap_organisation_id AND q.group_id = :gap_group_id
           AND q.created_at >= :gap_start AND q.created_at < :gap_end
           AND q.cause = ANY(CAST(:gap_causes AS text[])) AND {filters.where("q")}
    """  # noqa: S608
    statement = (
        text(sql)
        .bindparams(
            gap_organisation_id=organisation_id,
            gap_group_id=group_id,
            gap_start=filters.period.start,
            gap_end=filters.period.end,
            gap_causes=list(causes),
            **filters.parameters,
        )
        .columns(column("conversation_id", Uuid))
    )
    return statement.subquery("gap_conversations")
