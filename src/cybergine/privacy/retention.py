"""What the privacy policy (§11) promises about how long each retention class is kept.

The classes themselves (``Retention``) are declared with the tables, in ``db.retention``;
they are re-exported here for the code that applies the policy.
"""

from __future__ import annotations

from datetime import timedelta

from cybergine.db.retention import Retention

__all__ = [
    "CONVERSATION_DAYS_MAX",
    "CONVERSATION_DAYS_MIN",
    "MAXIMUM_AGE",
    "Retention",
]

# Upper bounds the policy promises, where it names one.
MAXIMUM_AGE: dict[Retention, timedelta] = {
    Retention.USAGE_LOG: timedelta(days=365),
    Retention.ANALYTICS: timedelta(days=730),
    Retention.AUDIT: timedelta(days=7 * 365 + 2),
    Retention.BILLING: timedelta(days=7 * 365 + 2),
}

# Conversation history is kept while the account is active unless the organisation sets
# a period (measured from a conversation's last activity); the bounds of that period.
CONVERSATION_DAYS_MIN = 1
CONVERSATION_DAYS_MAX = 3650
