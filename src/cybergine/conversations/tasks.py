"""Jobs of conversations: answering a customer's message."""

from __future__ import annotations

import uuid

import procrastinate
import structlog

from cybergine.conversations.pipeline import Pipeline
from cybergine.job_names import JobName
from cybergine.knowledge.providers import embedding_provider
from cybergine.queue import DATABASE_CONTEXT_KEY, Backoff, job_settings

log = structlog.get_logger(__name__)

blueprint = procrastinate.Blueprint()

# A customer is waiting: retry soon and not for long. The pipeline itself degrades to the
# offline answer when a language model fails, so what is retried here is the database.
REPLY_RETRY = Backoff(max_attempts=6, base_seconds=1.0, cap_seconds=60.0)


@blueprint.task(name=JobName.REPLY.task, pass_context=True, retry=REPLY_RETRY)
async def reply(context: procrastinate.JobContext, message_id: str) -> str:
    """Answer one inbound message (exactly once; see ``conversations.pipeline``)."""
    settings = job_settings(context)
    pipeline = Pipeline(
        context.additional_context[DATABASE_CONTEXT_KEY], settings, embedding_provider(settings)
    )
    outcome = await pipeline.reply(uuid.UUID(message_id))
    log.info("reply.done", message_id=message_id, outcome=outcome)
    return outcome
