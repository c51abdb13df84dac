"""Decoding of dead-lettered messages from plain dicts (no I/O, no pika).

Two kinds of dead letters end up in a ``<queue>.dlq``:

* dead-lettered by our consumers: they carry the ``x-signup-*`` failure headers;
* dead-lettered by the broker itself (quorum ``delivery-limit``, ``rejected``, ``expired``):
  they carry RabbitMQ's ``x-death`` list and ``x-first-death-*`` headers.

Header values are untrusted (other code, other versions, hand-published messages): every
accessor tolerates missing keys and unexpected types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from signup_contracts.amqp import (
    ATTEMPTS_HEADER,
    DEAD_LETTER_SUFFIX,
    ERROR_MESSAGE_HEADER,
    ERROR_TYPE_HEADER,
    FAILURE_KIND_HEADER,
    FIRST_FAILURE_AT_HEADER,
    LAST_FAILURE_AT_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_QUEUE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REPLAY_COUNT_HEADER,
    SERVICE_HEADER,
)

# Our own headers (what consumers write on a dead letter, what this tool writes on a replay) are
# the contract's: ``signup_contracts.amqp``. The ones below are RabbitMQ's, set by the broker.
X_DEATH_HEADER: Final = "x-death"
FIRST_DEATH_QUEUE_HEADER: Final = "x-first-death-queue"
FIRST_DEATH_REASON_HEADER: Final = "x-first-death-reason"
FIRST_DEATH_EXCHANGE_HEADER: Final = "x-first-death-exchange"
DELIVERY_COUNT_HEADER: Final = "x-delivery-count"

# Bodies larger than this are not parsed as JSON (parsing is only for display).
MAX_JSON_PARSE_BYTES: Final = 1024 * 1024

DEAD_LETTERED_BY_CONSUMER: Final = "consumer"
DEAD_LETTERED_BY_BROKER: Final = "broker"
DEAD_LETTERED_BY_UNKNOWN: Final = "unknown"


@dataclass(frozen=True)
class RawMessage:
    """A message as fetched from a queue, with its AMQP properties as a plain dict."""

    delivery_tag: int
    body: bytes
    properties: Mapping[str, Any] = field(default_factory=dict)
    redelivered: bool = False

    @property
    def headers(self) -> Mapping[str, Any]:
        headers = self.properties.get("headers")
        return headers if isinstance(headers, Mapping) else {}


@dataclass(frozen=True)
class DeadLetter:
    """What an operator needs to know about one dead-lettered message."""

    message_id: str | None
    event_type: str | None
    correlation_id: str | None
    dead_lettered_by: str
    failure_kind: str | None
    failure_reason: str | None
    error_type: str | None
    error_message: str | None
    service: str | None
    attempts: int | None
    death_count: int | None
    first_failure_at: str | None
    last_failure_at: str | None
    original_exchange: str | None
    original_routing_key: str | None
    original_queue: str | None
    replay_count: int
    body_size: int


def is_dlq_name(queue: str) -> bool:
    """True for a dead-letter queue name (``<queue>.dlq``, with a non-empty ``<queue>``)."""
    return queue.endswith(DEAD_LETTER_SUFFIX) and len(queue) > len(DEAD_LETTER_SUFFIX)


def as_str(value: object) -> str | None:
    """A header value as text (AMQP longstr may arrive as ``bytes``); ``None`` if absent."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def as_int(value: object) -> int | None:
    """A header value as an int (accepts ints, integral floats and digit strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = as_str(value)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def x_death_entries(headers: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The well-formed entries of the broker's ``x-death`` list (most recent death first)."""
    raw = headers.get(X_DEATH_HEADER)
    if not isinstance(raw, list | tuple):
        return []
    return [entry for entry in raw if isinstance(entry, Mapping)]


def _first_routing_key(entry: Mapping[str, Any]) -> str | None:
    keys = entry.get("routing-keys")
    if isinstance(keys, list | tuple) and keys:
        return as_str(keys[0])
    return None


def parse_json_body(body: bytes) -> tuple[bool, Any]:
    """``(True, value)`` if the body is UTF-8 JSON (and not too large), else ``(False, None)``."""
    if len(body) > MAX_JSON_PARSE_BYTES:
        return False, None
    try:
        return True, json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False, None


def _envelope_str(envelope: Any, key: str) -> str | None:
    if isinstance(envelope, Mapping):
        value = envelope.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def decode_dead_letter(
    headers: Mapping[str, Any] | None,
    body: bytes,
    properties: Mapping[str, Any] | None = None,
) -> DeadLetter:
    """Decode the failure information of a dead letter.

    ``properties`` are the AMQP basic properties as a dict (``message_id``, ``type``,
    ``correlation_id``...); where a property is missing, the JSON envelope's ``id``, ``type``
    and ``correlation_id`` fields are used instead.
    """
    headers = headers if isinstance(headers, Mapping) else {}
    properties = properties if isinstance(properties, Mapping) else {}
    _, envelope = parse_json_body(body)

    deaths = x_death_entries(headers)
    latest_death = deaths[0] if deaths else {}
    oldest_death = deaths[-1] if deaths else {}

    failure_kind = as_str(headers.get(FAILURE_KIND_HEADER))
    broker_reason = as_str(headers.get(FIRST_DEATH_REASON_HEADER)) or as_str(
        latest_death.get("reason")
    )
    if failure_kind is not None:
        dead_lettered_by = DEAD_LETTERED_BY_CONSUMER
    elif deaths or FIRST_DEATH_QUEUE_HEADER in headers or FIRST_DEATH_REASON_HEADER in headers:
        dead_lettered_by = DEAD_LETTERED_BY_BROKER
    else:
        dead_lettered_by = DEAD_LETTERED_BY_UNKNOWN

    death_times = [t for t in (entry.get("time") for entry in deaths) if t is not None]
    death_count = sum(as_int(entry.get("count")) or 0 for entry in deaths) if deaths else None

    first_failure_at = as_str(headers.get(FIRST_FAILURE_AT_HEADER))
    last_failure_at = as_str(headers.get(LAST_FAILURE_AT_HEADER))
    if first_failure_at is None and death_times:
        first_failure_at = as_str(_sortable_min(death_times))
    if last_failure_at is None and death_times:
        last_failure_at = as_str(_sortable_max(death_times))

    original_queue = (
        as_str(headers.get(ORIGINAL_QUEUE_HEADER))
        or as_str(headers.get(FIRST_DEATH_QUEUE_HEADER))
        or as_str(oldest_death.get("queue"))
    )
    # "" (the default exchange) is a valid exchange name: take the first header present.
    original_exchange = _first_present(
        as_str(headers.get(ORIGINAL_EXCHANGE_HEADER)),
        as_str(headers.get(FIRST_DEATH_EXCHANGE_HEADER)),
        as_str(oldest_death.get("exchange")),
    )
    original_routing_key = as_str(headers.get(ORIGINAL_ROUTING_KEY_HEADER)) or _first_routing_key(
        oldest_death
    )

    return DeadLetter(
        message_id=as_str(properties.get("message_id")) or _envelope_str(envelope, "id"),
        event_type=as_str(properties.get("type")) or _envelope_str(envelope, "type"),
        correlation_id=as_str(properties.get("correlation_id"))
        or _envelope_str(envelope, "correlation_id"),
        dead_lettered_by=dead_lettered_by,
        failure_kind=failure_kind,
        failure_reason=broker_reason,
        error_type=as_str(headers.get(ERROR_TYPE_HEADER)),
        error_message=as_str(headers.get(ERROR_MESSAGE_HEADER)),
        service=as_str(headers.get(SERVICE_HEADER)),
        attempts=as_int(headers.get(ATTEMPTS_HEADER)),
        death_count=death_count,
        first_failure_at=first_failure_at,
        last_failure_at=last_failure_at,
        original_exchange=original_exchange,
        original_routing_key=original_routing_key,
        original_queue=original_queue,
        replay_count=as_int(headers.get(REPLAY_COUNT_HEADER)) or 0,
        body_size=len(body),
    )


def _first_present(*values: str | None) -> str | None:
    return next((value for value in values if value is not None), None)


def _sortable_min(values: list[Any]) -> Any:
    try:
        return min(values)
    except TypeError:  # mixed types: keep the broker's order (oldest is last)
        return values[-1]


def _sortable_max(values: list[Any]) -> Any:
    try:
        return max(values)
    except TypeError:
        return values[0]
