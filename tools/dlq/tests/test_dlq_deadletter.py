"""Unit tests: decoding dead-letter headers into DeadLetter (plain dicts, no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from signup_dlq.deadletter import (
    DEAD_LETTERED_BY_BROKER,
    DEAD_LETTERED_BY_CONSUMER,
    DEAD_LETTERED_BY_UNKNOWN,
    MAX_JSON_PARSE_BYTES,
    RawMessage,
    as_int,
    as_str,
    decode_dead_letter,
    is_dlq_name,
    parse_json_body,
    x_death_entries,
)

ENVELOPE = json.dumps(
    {
        "id": "evt-1",
        "type": "user_signed_up",
        "version": 1,
        "occurred_at": "2024-05-01T12:00:00Z",
        "producer": "accounts",
        "correlation_id": "corr-1",
        "causation_id": None,
        "data": {"user_id": "u-1"},
    }
).encode()

CONSUMER_HEADERS: dict[str, Any] = {
    "x-signup-failure-kind": "permanent",
    "x-signup-error-type": "ValidationError",
    "x-signup-error-message": "email is missing",
    "x-signup-service": "notifications",
    "x-signup-attempts": 1,
    "x-signup-first-failure-at": "2024-05-01T12:00:01Z",
    "x-signup-last-failure-at": "2024-05-01T12:00:02Z",
    "x-signup-original-exchange": "events",
    "x-signup-original-routing-key": "accounts.user_signed_up",
    "x-signup-original-queue": "notifications.user_signed_up",
}

T1 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T2 = datetime(2024, 5, 1, 12, 30, 0, tzinfo=UTC)

BROKER_HEADERS: dict[str, Any] = {
    "x-first-death-queue": "provisioning.user_signed_up",
    "x-first-death-reason": "delivery_limit",
    "x-first-death-exchange": "events",
    "x-death": [
        {
            "count": 1,
            "reason": "delivery_limit",
            "queue": "provisioning.user_signed_up",
            "time": T2,
            "exchange": "events",
            "routing-keys": ["accounts.user_signed_up"],
        }
    ],
}


def test_consumer_dead_letter_is_fully_decoded() -> None:
    dl = decode_dead_letter(CONSUMER_HEADERS, ENVELOPE, {"message_id": "msg-1"})
    assert dl.dead_lettered_by == DEAD_LETTERED_BY_CONSUMER
    assert dl.message_id == "msg-1"
    assert dl.event_type == "user_signed_up"
    assert dl.correlation_id == "corr-1"
    assert dl.failure_kind == "permanent"
    assert dl.failure_reason is None
    assert dl.error_type == "ValidationError"
    assert dl.error_message == "email is missing"
    assert dl.service == "notifications"
    assert dl.attempts == 1
    assert dl.first_failure_at == "2024-05-01T12:00:01Z"
    assert dl.last_failure_at == "2024-05-01T12:00:02Z"
    assert dl.original_exchange == "events"
    assert dl.original_routing_key == "accounts.user_signed_up"
    assert dl.original_queue == "notifications.user_signed_up"
    assert dl.replay_count == 0
    assert dl.body_size == len(ENVELOPE)
    assert dl.death_count is None


def test_broker_dead_letter_uses_x_death() -> None:
    dl = decode_dead_letter(BROKER_HEADERS, ENVELOPE, {})
    assert dl.dead_lettered_by == DEAD_LETTERED_BY_BROKER
    assert dl.failure_kind is None
    assert dl.failure_reason == "delivery_limit"
    assert dl.original_queue == "provisioning.user_signed_up"
    assert dl.original_exchange == "events"
    assert dl.original_routing_key == "accounts.user_signed_up"
    assert dl.death_count == 1
    assert dl.first_failure_at == T2.isoformat()
    assert dl.last_failure_at == T2.isoformat()
    assert dl.attempts is None


def test_broker_dead_letter_without_first_death_headers_falls_back_to_oldest_x_death() -> None:
    headers = {
        "x-death": [
            {"count": 2, "reason": "rejected", "queue": "b.q", "time": T2, "exchange": ""},
            {"count": 3, "reason": "expired", "queue": "a.q.retry.5000", "time": T1},
        ]
    }
    dl = decode_dead_letter(headers, b"{}")
    assert dl.dead_lettered_by == DEAD_LETTERED_BY_BROKER
    assert dl.failure_reason == "rejected"  # the latest death comes first
    assert dl.original_queue == "a.q.retry.5000"
    assert dl.death_count == 5
    assert dl.first_failure_at == T1.isoformat()
    assert dl.last_failure_at == T2.isoformat()


def test_properties_win_over_envelope_fields() -> None:
    dl = decode_dead_letter({}, ENVELOPE, {"message_id": "m", "type": "t", "correlation_id": "c"})
    assert (dl.message_id, dl.event_type, dl.correlation_id) == ("m", "t", "c")


def test_envelope_fields_used_when_properties_missing() -> None:
    dl = decode_dead_letter(None, ENVELOPE, None)
    assert (dl.message_id, dl.event_type, dl.correlation_id) == (
        "evt-1",
        "user_signed_up",
        "corr-1",
    )
    assert dl.dead_lettered_by == DEAD_LETTERED_BY_UNKNOWN


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json at all",
        b"\xff\xfe\x00binary",
        b"[" * 100_000,  # deeply nested: RecursionError in json
        b"123",
        b'"just a string"',
        b"[1, 2, 3]",
        b'{"id": {"nested": true}, "type": 7}',
        b"x" * (MAX_JSON_PARSE_BYTES + 10),
    ],
)
def test_poison_bodies_never_crash(body: bytes) -> None:
    dl = decode_dead_letter(CONSUMER_HEADERS, body, {})
    assert dl.body_size == len(body)
    assert dl.failure_kind == "permanent"


def test_non_string_envelope_ids_are_ignored_or_stringified() -> None:
    dl = decode_dead_letter({}, b'{"id": {"x": 1}, "type": 7, "correlation_id": true}')
    assert dl.message_id is None
    assert dl.event_type == "7"
    assert dl.correlation_id is None


def test_bytes_header_values_are_decoded() -> None:
    headers = {
        "x-signup-failure-kind": b"exhausted",
        "x-signup-error-message": "caf\u00e9".encode() + b"\xff",
        "x-signup-attempts": b"7",
        "x-signup-original-queue": b"stats.user_signed_up",
    }
    dl = decode_dead_letter(headers, b"")
    assert dl.failure_kind == "exhausted"
    assert dl.error_message is not None and dl.error_message.startswith("caf\u00e9")
    assert dl.attempts == 7
    assert dl.original_queue == "stats.user_signed_up"


def test_garbage_header_types_do_not_crash() -> None:
    headers: dict[str, Any] = {
        "x-signup-failure-kind": "exhausted",
        "x-signup-attempts": "many",
        "x-signup-replay-count": {"a": 1},
        "x-death": "not a list",
        "x-first-death-reason": 42,
    }
    dl = decode_dead_letter(headers, b"{}")
    assert dl.attempts is None
    assert dl.replay_count == 0
    assert dl.death_count is None
    assert dl.failure_reason == "42"


def test_x_death_entries_skip_malformed_items() -> None:
    assert x_death_entries({"x-death": [{"count": 1}, "junk", None]}) == [{"count": 1}]
    assert x_death_entries({"x-death": None}) == []
    assert x_death_entries({}) == []


def test_mixed_time_types_in_x_death_do_not_crash() -> None:
    headers = {"x-death": [{"time": T2}, {"time": "2024-01-01"}]}
    dl = decode_dead_letter(headers, b"")
    assert dl.first_failure_at is not None
    assert dl.last_failure_at is not None


def test_empty_original_exchange_means_default_exchange() -> None:
    dl = decode_dead_letter({**CONSUMER_HEADERS, "x-signup-original-exchange": ""}, b"")
    assert dl.original_exchange == ""


def test_replay_count_is_read() -> None:
    dl = decode_dead_letter({**CONSUMER_HEADERS, "x-signup-replay-count": 2}, b"")
    assert dl.replay_count == 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notifications.user_signed_up.dlq", True),
        ("a.dlq", True),
        (".dlq", False),
        ("notifications.user_signed_up", False),
        ("notifications.user_signed_up.retry.5000", False),
        ("something.dlq.retry", False),
        ("dlq", False),
    ],
)
def test_is_dlq_name(name: str, expected: bool) -> None:
    assert is_dlq_name(name) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5), ("5", 5), (b" 6 ", 6), (3.0, 3), (3.5, None), (True, None), ("x", None), (None, None)],
)
def test_as_int(value: object, expected: int | None) -> None:
    assert as_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s", "s"),
        (b"b", "b"),
        (bytearray(b"ba"), "ba"),
        (12, "12"),
        (None, None),
        (T1, T1.isoformat()),
    ],
)
def test_as_str(value: object, expected: str | None) -> None:
    assert as_str(value) == expected


def test_parse_json_body() -> None:
    assert parse_json_body(b'{"a": 1}') == (True, {"a": 1})
    assert parse_json_body(b"{") == (False, None)
    assert parse_json_body(b"\xff") == (False, None)


def test_raw_message_headers_tolerate_missing_or_bad_headers() -> None:
    assert RawMessage(1, b"").headers == {}
    assert RawMessage(1, b"", {"headers": "junk"}).headers == {}
    assert RawMessage(1, b"", {"headers": {"a": 1}}).headers == {"a": 1}
