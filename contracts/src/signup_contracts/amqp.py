"""How events travel on RabbitMQ: the exchange, routing keys, AMQP properties and headers.

Every event is published to the durable topic exchange ``events`` with the routing key of its
(producer, type, version): ``<producer>.<event_name>`` for version 1
(``accounts.user_signed_up``), ``<producer>.<event_name>.v<n>`` for version n >= 2
(``accounts.user_signed_up.v2``), as a persistent JSON message whose AMQP properties mirror the
envelope. A consumer binds its queue to the key of the version it reads, so it never receives a
version it cannot parse; the version is also a header (``x-event-version``).
"""

import re
from typing import ClassVar, Final, Protocol

EVENTS_EXCHANGE: Final = "events"
EVENTS_EXCHANGE_TYPE: Final = "topic"
UNROUTED_EXCHANGE: Final = "events.unrouted"
"""Alternate exchange of ``events``: what no queue is bound for lands here, not nowhere."""
RETRY_EXCHANGE: Final = "events.retry"
"""Where consumers publish a failed event's copy for a delayed retry (``<queue>.retry.<n>``)."""
DEAD_LETTER_EXCHANGE: Final = "events.dlx"
"""Where consumers publish (or the broker dead-letters) what is given up on (``<queue>.dlq``)."""
DEAD_LETTER_SUFFIX: Final = ".dlq"
HISTORY_STREAM: Final = "events.history"
"""The stream that keeps every event published on ``events`` (bound with ``#``) for replays."""
CONTENT_TYPE: Final = "application/json"
PERSISTENT: Final = 2
SHORTSTR_BYTES: Final = 255
"""An AMQP short string (message_id, correlation_id, type, app_id) holds at most 255 bytes."""
EVENT_VERSION_HEADER: Final = "x-event-version"
TRACEPARENT_HEADER: Final = "traceparent"
"""Optional W3C trace context of the request behind the event (``00-<trace>-<span>-<flags>``)."""
TRACEPARENT_PATTERN: Final = r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"

# Failure headers: what a consumer writes on the retry and dead-letter copies it publishes. The
# operator tool reads them; consumers count attempts in their own header, not in ``x-death``.
FAILURE_HEADER_PREFIX: Final = "x-signup-"
ATTEMPTS_HEADER: Final = "x-signup-attempts"
FAILURE_KIND_HEADER: Final = "x-signup-failure-kind"
ERROR_TYPE_HEADER: Final = "x-signup-error-type"
ERROR_MESSAGE_HEADER: Final = "x-signup-error-message"
SERVICE_HEADER: Final = "x-signup-service"
FIRST_FAILURE_AT_HEADER: Final = "x-signup-first-failure-at"
LAST_FAILURE_AT_HEADER: Final = "x-signup-last-failure-at"
ORIGINAL_EXCHANGE_HEADER: Final = "x-signup-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER: Final = "x-signup-original-routing-key"
ORIGINAL_QUEUE_HEADER: Final = "x-signup-original-queue"
REPLAYED_AT_HEADER: Final = "x-signup-replayed-at"
"""Set by the operator tool on a dead letter it re-publishes, with ``REPLAY_COUNT_HEADER``."""
REPLAY_COUNT_HEADER: Final = "x-signup-replay-count"
FAILURE_HEADERS: Final = (
    ATTEMPTS_HEADER,
    FAILURE_KIND_HEADER,
    ERROR_TYPE_HEADER,
    ERROR_MESSAGE_HEADER,
    SERVICE_HEADER,
    FIRST_FAILURE_AT_HEADER,
    LAST_FAILURE_AT_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    ORIGINAL_QUEUE_HEADER,
)

AMQP_PROPERTIES: Final[dict[str, str]] = {
    "content_type": f"always {CONTENT_TYPE}",
    "delivery_mode": f"{PERSISTENT} (persistent)",
    "message_id": "the envelope's id (deduplicate on it: delivery is at least once)",
    "type": "the envelope's type, e.g. UserSignedUp",
    "correlation_id": "the envelope's correlation_id",
    "app_id": "the envelope's producer",
    "timestamp": "when the relay published the message (seconds since the epoch)",
}
"""The AMQP basic properties every event carries, and what each holds."""


_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def event_name(event_type: str) -> str:
    """``UserSignedUp`` -> ``user_signed_up`` (the last part of a routing key and queue name)."""
    return _CAMEL_BOUNDARY.sub("_", event_type).lower()


FIRST_VERSION: Final = 1
"""The version whose routing key carries no version suffix (what consumers bound before v2)."""
_VERSION_SUFFIX = re.compile(r"\.v([1-9][0-9]*)$")


def routing_key(producer: str, event_type: str, version: int = FIRST_VERSION) -> str:
    """The routing key of ``event_type`` ``version`` published by ``producer``.

    ``routing_key("accounts", "UserSignedUp")`` -> ``accounts.user_signed_up``;
    ``routing_key("accounts", "UserSignedUp", 2)`` -> ``accounts.user_signed_up.v2``.
    Version 1 keeps the key it was published with before there were versions, so consumers
    bound to it see no change; each later version has a key of its own.
    """
    if version < FIRST_VERSION:
        raise ValueError(f"an event version is 1 or more, not {version}")
    key = f"{producer}.{event_name(event_type)}"
    return key if version == FIRST_VERSION else f"{key}.v{version}"


def unversioned_key(key: str) -> str:
    """``accounts.user_signed_up.v2`` -> ``accounts.user_signed_up`` (the key of the event type,
    whatever its version; what a consumer queue is named after)."""
    return _VERSION_SUFFIX.sub("", key)


def key_version(key: str) -> int:
    """The version a routing key carries: ``...v2`` -> 2; no suffix -> 1."""
    found = _VERSION_SUFFIX.search(key)
    return int(found.group(1)) if found else FIRST_VERSION


class _Published(Protocol):
    """What an ``EventData`` class says about itself (this module imports no model)."""

    event_type: ClassVar[str]
    version: ClassVar[int]
    producer: ClassVar[str]


def published_routing_key(event: type[_Published]) -> str:
    """The routing key the event's producer publishes this (type, version) with."""
    return routing_key(event.producer, event.event_type, event.version)


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words."""
    return _match(pattern.split("."), key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[skip:]) for skip in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and _match(rest, words[1:])
