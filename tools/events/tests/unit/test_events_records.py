"""Range parsing, the record of a delivery, formatting and counting (no broker)."""

import json
from datetime import UTC, datetime

import pytest

from signup_events.errors import UsageError
from signup_events.records import (
    EventRecord,
    Stats,
    check_range,
    json_lines,
    parse_bound,
    parse_end,
    past_end,
    record_of,
    table,
)
from signup_shared.testing import FakeMessage

T0 = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)


def message(
    offset: int,
    kind: str = "UserSignedUp",
    key: str = "accounts.user_signed_up.v2",
    stamp: object = 1769903999,
    **headers: object,
) -> FakeMessage:
    return FakeMessage(
        b"{}",
        {"x-stream-offset": offset, **headers},
        {"message_id": f"id-{offset}", "type": kind, "app_id": "accounts", "timestamp": stamp},
        {"exchange": "events", "routing_key": key},
    )


def record(
    offset: int, kind: str = "UserSignedUp", version: int = 2, time: datetime | None = T0
) -> EventRecord:
    return EventRecord(offset, f"id-{offset}", kind, version, "accounts", "k", time)


def test_record_of_reads_offset_id_type_producer_key_and_time() -> None:
    got = record_of(message(7))
    assert got == EventRecord(
        7, "id-7", "UserSignedUp", 2, "accounts", "accounts.user_signed_up.v2", T0
    )


def test_record_version_prefers_the_header_over_the_routing_key() -> None:
    assert (
        record_of(message(1, key="accounts.user_signed_up", **{"x-event-version": 3})).version == 3
    )
    assert record_of(message(1, key="accounts.user_signed_up")).version == 1


def test_record_of_a_bare_message_never_raises() -> None:
    got = record_of(FakeMessage(None, None, None, None))
    assert (got.offset, got.id, got.type, got.time) == (None, "?", "?", None)


def test_record_time_accepts_a_datetime() -> None:
    assert record_of(message(1, stamp=datetime(2026, 1, 31, 23, 59, 59))).time == T0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("first", "first"), ("42", 42), ("2026-01-31T23:59:59Z", T0), ("2026-01-31T23:59:59", T0)],
)
def test_parse_bound(text: str, expected: object) -> None:
    assert parse_bound(text, "--from") == expected


def test_parse_bound_names_the_option_and_what_is_accepted() -> None:
    with pytest.raises(UsageError, match=r"--from 'yesterday': expected 'first', a stream offset"):
        parse_bound("yesterday", "--from")


def test_parse_end_refuses_first_and_accepts_none() -> None:
    assert parse_end(None) is None
    assert parse_end("10") == 10
    with pytest.raises(UsageError, match="--to 'first'"):
        parse_end("first")


def test_check_range_refuses_an_end_before_the_start() -> None:
    check_range(5, 5)
    check_range("first", 3)
    check_range(5, T0)  # different kinds: the broker decides
    with pytest.raises(UsageError, match="--to 4 lies before --from 5"):
        check_range(5, 4)
    with pytest.raises(UsageError, match="lies before"):
        check_range(T0, datetime(2026, 1, 1, tzinfo=UTC))


def test_past_end_by_offset_and_by_time() -> None:
    assert not past_end(record(10), None)
    assert not past_end(record(10), 10)
    assert past_end(record(11), 10)
    assert not past_end(record(1), T0)
    assert past_end(record(1, time=datetime(2026, 2, 1, tzinfo=UTC)), T0)


def test_table_aligns_columns_under_a_header() -> None:
    lines = table([record(9), record(10, kind="SpaceProvisioned", version=1)])
    header = ["offset", "time", "type", "v", "personal", "producer", "routing", "key", "id"]
    assert lines[0].split() == header
    assert lines[1].split() == [
        "9",
        "2026-01-31T23:59:59Z",
        "UserSignedUp",
        "2",
        "clear",
        "accounts",
        "k",
        "id-9",
    ]
    assert lines[1].index("2026") == lines[2].index("2026") == lines[0].index("time")


def test_a_sealed_signup_shows_personal_sealed_without_any_key() -> None:
    assert record(4, version=3).personal == "sealed"
    assert record(5, kind="SpaceProvisioned", version=1).personal == "-"
    assert record(6, version=2).personal == "clear"  # the history binds no such version
    assert table([record(4, version=3)])[1].split()[4] == "sealed"


def test_json_lines_one_object_per_event() -> None:
    [line] = json_lines([record(3)])
    assert json.loads(line) == {
        "offset": 3,
        "id": "id-3",
        "type": "UserSignedUp",
        "version": 2,
        "producer": "accounts",
        "personal": "clear",
        "routing_key": "k",
        "time": "2026-01-31T23:59:59Z",
    }


def test_stats_counts_by_type_version_and_day() -> None:
    stats = Stats()
    next_day = datetime(2026, 2, 1, 8, tzinfo=UTC)
    for item in [
        record(1),
        record(2),
        record(3, version=1, time=next_day),
        record(4, kind="SpaceProvisioned", version=1, time=None),
    ]:
        stats.add(item)
    assert stats.total == 4
    assert (stats.first_offset, stats.last_offset) == (1, 4)
    assert stats.by_type == {
        ("UserSignedUp", 2): 2,
        ("UserSignedUp", 1): 1,
        ("SpaceProvisioned", 1): 1,
    }
    assert stats.by_day == {"2026-01-31": 2, "2026-02-01": 1, "?": 1}
    text = "\n".join(stats.lines())
    assert "4 event(s), offsets 1..4" in text
    assert "UserSignedUp v2" in text and "2026-02-01" in text
    assert stats.as_json()["by_type"][0] == {"type": "SpaceProvisioned", "version": 1, "count": 1}


def test_stats_of_nothing_says_so() -> None:
    assert Stats().lines() == ["no events in this range"]
