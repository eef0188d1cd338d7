"""How the WhatsApp jobs retry: the tasks run under these policies (``tasks.py``), and
the adapter schedules a send Meta throttled no earlier than the policy's first retry, so
the two never disagree."""

from __future__ import annotations

from cybergine.queue import Backoff

# Meta's throttling clears within seconds to minutes; a reply older than about an hour
# is no longer worth sending, and the message is marked failed for an agent to see.
SEND_RETRY = Backoff(max_attempts=12, base_seconds=1.0, cap_seconds=300.0)
MEDIA_RETRY = Backoff(max_attempts=8, base_seconds=2.0, cap_seconds=600.0)
