import time
import uuid
from datetime import UTC, datetime, timedelta

from cybergine.db.ids import uuid7, uuid7_at, uuid7_time_ms


def test_uuid7_has_version_7_and_rfc_variant() -> None:
    value = uuid7()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_uuid7_encodes_the_current_time() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= uuid7_time_ms(value) <= after + 1


def test_uuid7_sorts_in_creation_order_within_one_millisecond() -> None:
    values = [uuid7() for _ in range(20_000)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)


def test_uuid7_at_encodes_the_given_millisecond_exactly() -> None:
    moments = [datetime(2026, 2, 3, 4, 5, 6, micros, tzinfo=UTC) for micros in (0, 999_999)]
    # Its float timestamp times 1000 falls just below the whole millisecond it is.
    moments.append(datetime(1987, 1, 28, 11, 22, 47, 933_000, tzinfo=UTC))
    for moment in moments:
        value = uuid7_at(moment)
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
        expected = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
        assert uuid7_time_ms(value) == expected
    # Back-dated, it sorts below an id made now; a later moment sorts above.
    old = uuid7_at(datetime(2026, 1, 1, tzinfo=UTC))
    assert old < uuid7_at(datetime(2026, 1, 1, 0, 0, 0, 1_000, tzinfo=UTC)) < uuid7()
