"""Message types with a meaning shared by every path that records or answers messages."""

from __future__ import annotations

# Inbound types the assistant does not answer, and that do not supersede an earlier
# message of a burst waiting for its answer: a reaction or a system notice is not a
# question, answering one would only add noise to the customer's chat, and letting one
# supersede the question before it would leave that question unanswered.
# The one list: the single-message ingest reads it, the batch ingest hands it to the SQL
# function of migration 0008 as each message's ``answerable`` flag (so the SQL holds no
# copy), the reply job splices it into its "superseded" check, the hand-back filters by it.
SILENT_TYPES: frozenset[str] = frozenset(
    {"reaction", "system", "request_welcome", "unsupported", "unknown"}
)
