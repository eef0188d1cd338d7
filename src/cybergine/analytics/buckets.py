"""The response-time buckets a distribution counts conversations in: defined once, kept
per hour in the aggregates (``analytics_hourly.<duration>_bucket_<index>``, made by
``rollups`` with :func:`bucket_index`) and used by the drill-down to list a bucket's
conversations (:meth:`Bucket.predicate`), so the two cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

# The response times counted in buckets, and what each is called.
RESPONSE_TIMES = {
    "first_response": "Assistant",
    "agent_first_response": "People",
}


@dataclass(frozen=True)
class Bucket:
    """[low, high) seconds; ``high`` None: no upper bound."""

    low: int
    high: int | None
    label: str

    def predicate(self, duration: str) -> str:
        """SQL over a ``definitions.conversation_metrics`` row aliased ``metrics``."""
        value = f"metrics.{duration}_seconds"
        upper = f" AND {value} < {self.high}" if self.high is not None else ""
        return f"({value} >= {self.low}{upper})"


BUCKETS = (
    Bucket(0, 10, "under 10 s"),
    Bucket(10, 30, "10-30 s"),
    Bucket(30, 60, "30-60 s"),
    Bucket(60, 300, "1-5 min"),
    Bucket(300, 900, "5-15 min"),
    Bucket(900, 3600, "15-60 min"),
    Bucket(3600, 4 * 3600, "1-4 h"),
    Bucket(4 * 3600, 24 * 3600, "4-24 h"),
    Bucket(24 * 3600, None, "a day or more"),
)


def column(duration: str, index: int) -> str:
    """The aggregate column counting ``duration``'s conversations in bucket ``index``."""
    return f"{duration}_bucket_{index}"


COLUMNS = tuple(column(duration, i) for duration in RESPONSE_TIMES for i in range(len(BUCKETS)))
