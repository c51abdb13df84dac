"""Unit tests: body rendering, printable text, show rows and JSON records (no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from signup_dlq.deadletter import RawMessage, decode_dead_letter
from signup_dlq.render import (
    BODY_REPR_MAX_CHARS,
    ELLIPSIS,
    MISSING,
    describe,
    failure_summary,
    human_size,
    jsonable,
    message_record,
    printable,
    render_body,
)


def test_json_body_is_pretty_printed() -> None:
    body = render_body(b'{"id":"e-1","data":{"email":"a@b.c"}}')
    assert body.is_json
    assert not body.truncated
    assert body.text == '{\n  "id": "e-1",\n  "data": {\n    "email": "a@b.c"\n  }\n}'
    assert body.value == {"id": "e-1", "data": {"email": "a@b.c"}}
    assert body.size == 37


def test_non_ascii_json_is_kept_readable() -> None:
    body = render_body('{"name": "Zoë"}'.encode())
    assert "Zoë" in body.text


def test_large_json_is_truncated() -> None:
    raw = json.dumps({"items": list(range(5000))}).encode()
    body = render_body(raw, json_max_chars=100)
    assert body.is_json
    assert body.truncated
    assert len(body.text) == 100 + len(ELLIPSIS)


def test_non_json_body_is_a_truncated_repr() -> None:
    body = render_body(b"\x00\x01hello\xff" * 1000)
    assert not body.is_json
    assert body.truncated
    assert body.text.startswith("b'\\x00\\x01hello\\xff")
    assert len(body.text) <= BODY_REPR_MAX_CHARS + len(ELLIPSIS)
    assert body.size == 8000


def test_short_non_json_body_is_not_truncated() -> None:
    body = render_body(b"plain text")
    assert body.text == "b'plain text'"
    assert not body.truncated


def test_exactly_limit_sized_body_is_not_marked_truncated() -> None:
    body = render_body(b"a" * 10, repr_max_chars=13)  # b'aaaaaaaaaa' is 13 chars
    assert body.text == "b'" + "a" * 10 + "'"
    assert not body.truncated


def test_empty_body() -> None:
    body = render_body(b"")
    assert not body.is_json
    assert body.text == "b''"
    assert body.size == 0


def test_huge_body_is_not_parsed_and_stays_short() -> None:
    raw = b'{"x": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    body = render_body(raw)
    assert not body.is_json
    assert len(body.text) <= BODY_REPR_MAX_CHARS + len(ELLIPSIS)


def test_deeply_nested_json_does_not_crash() -> None:
    body = render_body(b"[" * 200_000 + b"]" * 200_000)
    assert not body.is_json
    assert body.truncated


def test_terminal_escapes_in_json_are_neutralised() -> None:
    body = render_body(json.dumps({"evil": "\x1b[31mred\u009b"}).encode())
    assert "\x1b" not in body.text
    assert "\x9b" not in body.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("a\nb", "a\\nb"),
        ("\x1b[2J", "\\x1b[2J"),
        ("tab\there", "tab\\there"),
        ("Zoë ✓", "Zoë ✓"),
    ],
)
def test_printable(text: str, expected: str) -> None:
    assert printable(text) == expected


def test_printable_truncates() -> None:
    assert printable("x" * 50, max_chars=10) == "x" * 10 + ELLIPSIS


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (3 * 1024**2, "3.0 MiB")],
)
def test_human_size(size: int, expected: str) -> None:
    assert human_size(size) == expected


CONSUMER = {
    "x-signup-failure-kind": "exhausted",
    "x-signup-error-type": "SmtpTimeout",
    "x-signup-error-message": "no answer\nafter 10s",
    "x-signup-service": "notifications",
    "x-signup-attempts": 5,
    "x-signup-original-queue": "notifications.user_signed_up",
    "x-signup-original-exchange": "events",
    "x-signup-original-routing-key": "accounts.user_signed_up",
}


def test_describe_consumer_dead_letter() -> None:
    rows = dict(describe(decode_dead_letter(CONSUMER, b"{}", {"message_id": "m-1"})))
    assert rows["message_id"] == "m-1"
    assert rows["failure"] == "exhausted"
    assert rows["error"] == "SmtpTimeout: no answer\\nafter 10s"
    assert rows["service"] == "notifications"
    assert rows["attempts"] == "5"
    assert rows["original queue"] == "notifications.user_signed_up"
    assert rows["original routing key"] == "accounts.user_signed_up"
    assert rows["first failure"] == MISSING
    assert "replayed before" not in rows


def test_describe_broker_dead_letter() -> None:
    headers = {
        "x-first-death-queue": "provisioning.user_signed_up",
        "x-first-death-reason": "delivery_limit",
        "x-death": [{"count": 2, "reason": "delivery_limit", "exchange": ""}],
    }
    rows = dict(describe(decode_dead_letter(headers, b"", {})))
    assert rows["failure"] == "broker: delivery_limit"
    assert rows["attempts"] == f"{MISSING} (dead-lettered 2x by the broker)"
    assert rows["original exchange"] == '"" (default exchange)'
    assert rows["error"] == MISSING


def test_describe_shows_previous_replays() -> None:
    rows = dict(describe(decode_dead_letter({"x-signup-replay-count": 2}, b"")))
    assert rows["replayed before"] == "2x"
    assert rows["failure"] == "unknown (no failure headers)"


def test_failure_summary_consumer_with_broker_reason() -> None:
    headers = {"x-signup-failure-kind": "permanent", "x-first-death-reason": "rejected"}
    assert failure_summary(decode_dead_letter(headers, b"")) == "permanent (broker: rejected)"


def test_jsonable_converts_amqp_values() -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    value = {
        "x-death": [{"time": moment, "routing-keys": ("a",), "count": 1}],
        "bytes": b"text",
        "binary": b"\xff",
        "nested": {1: {2}},
        "obj": object,
    }
    out = jsonable(value)
    json.dumps(out)  # must not raise
    assert out["x-death"][0]["time"] == moment.isoformat()
    assert out["x-death"][0]["routing-keys"] == ["a"]
    assert out["bytes"] == "text"
    assert out["binary"] == "b'\\xff'"
    assert out["nested"] == {"1": [2]}


def test_message_record_for_json_and_poison_bodies() -> None:
    good = RawMessage(
        7,
        b'{"id": "e-1", "type": "user_signed_up"}',
        {"message_id": "e-1", "timestamp": 1700000000, "headers": CONSUMER},
        redelivered=True,
    )
    record = message_record(1, good)
    json.dumps(record)
    assert record["index"] == 1
    assert record["message_id"] == "e-1"
    assert record["failure_kind"] == "exhausted"
    assert record["body_is_json"] is True
    assert record["body"] == {"id": "e-1", "type": "user_signed_up"}
    assert record["redelivered"] is True
    assert record["properties"] == {"message_id": "e-1", "timestamp": 1700000000}
    assert record["headers"]["x-signup-attempts"] == 5

    poison = message_record(2, RawMessage(8, b"\xff" * 2000, {}))
    json.dumps(poison)
    assert poison["body_is_json"] is False
    assert poison["body_truncated"] is True
    assert poison["body_size"] == 2000
    assert poison["body"].startswith("b'\\xff")
