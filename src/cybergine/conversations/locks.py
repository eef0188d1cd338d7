"""The job locks of a conversation, one name each: Procrastinate runs the jobs that hold
the same lock one at a time, in the order they were deferred. The SQL that defers jobs
itself (``cybergine_record_inbound``, the outbound writes) is given the prefixes as
parameters, never its own copy."""

from __future__ import annotations

import uuid

CONVERSATION_LOCK_PREFIX = "conversation:"
SEND_LOCK_PREFIX = "send:"


def conversation_lock(conversation_id: uuid.UUID) -> str:
    """Jobs of one conversation (its replies) run one at a time, in order."""
    return f"{CONVERSATION_LOCK_PREFIX}{conversation_id}"


def send_lock(conversation_id: uuid.UUID) -> str:
    """The delivery jobs of one conversation's messages, one at a time, in order."""
    return f"{SEND_LOCK_PREFIX}{conversation_id}"
