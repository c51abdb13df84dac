"""Replay logic: target resolution, header rewriting and the move loop.

Nothing here does I/O by itself: the loop talks to a :class:`ReplayChannel`, which the pika
adapter (``broker.py``) implements for real and the unit tests implement in memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from signup_contracts.amqp import (
    DEAD_LETTER_SUFFIX,
    FAILURE_HEADERS,
    ORIGINAL_QUEUE_HEADER,
    REPLAY_COUNT_HEADER,
    REPLAYED_AT_HEADER,
)
from signup_dlq.deadletter import (
    DELIVERY_COUNT_HEADER,
    FIRST_DEATH_QUEUE_HEADER,
    X_DEATH_HEADER,
    RawMessage,
    as_int,
    as_str,
    is_dlq_name,
)
from signup_dlq.errors import PublishFailedError, UsageError
from signup_dlq.walk import StoppableWalk

# Broker-set headers that describe a previous death/delivery and must not follow a replay.
BROKER_DEATH_HEADERS: Final = frozenset({X_DEATH_HEADER, DELIVERY_COUNT_HEADER})
BROKER_DEATH_HEADER_PREFIXES: Final = ("x-first-death-", "x-last-death-")

# `<queue>.retry.<delay>`: a message whose first death was in a retry queue belongs to `<queue>`.
_RETRY_QUEUE_RE: Final = re.compile(r"^(?P<base>.+)\.retry\.[^.]+$")


def default_target(dlq: str) -> str:
    """The queue a DLQ belongs to by naming convention: ``<queue>.dlq`` -> ``<queue>``."""
    if not is_dlq_name(dlq):
        raise UsageError(
            f"{dlq!r} is not a dead-letter queue (its name must end in {DEAD_LETTER_SUFFIX})"
        )
    return dlq[: -len(DEAD_LETTER_SUFFIX)]


def resolve_target_queue(dlq: str, headers: Mapping[str, Any]) -> str:
    """The queue a dead letter from ``dlq`` should be replayed to.

    ``x-signup-original-queue``, else ``x-first-death-queue``, else the DLQ name without
    ``.dlq``. A retry queue (``<queue>.retry.<delay>``) resolves to its ``<queue>``, and a
    candidate that is itself a DLQ is ignored (replaying into a DLQ would move nothing).
    """
    fallback = default_target(dlq)
    for name in (ORIGINAL_QUEUE_HEADER, FIRST_DEATH_QUEUE_HEADER):
        candidate = (as_str(headers.get(name)) or "").strip()
        if not candidate:
            continue
        match = _RETRY_QUEUE_RE.match(candidate)
        if match:
            candidate = match["base"]
        if candidate == dlq or is_dlq_name(candidate):
            continue
        return candidate
    return fallback


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_removed_on_replay(name: str) -> bool:
    return (
        name in FAILURE_HEADERS
        or name in BROKER_DEATH_HEADERS
        or name.startswith(BROKER_DEATH_HEADER_PREFIXES)
    )


def replay_headers(headers: Mapping[str, Any] | None, replayed_at: datetime) -> dict[str, Any]:
    """The headers a replayed message is published with.

    Failure headers (``x-signup-*`` of the failure, including ``x-signup-attempts``) and the
    broker's ``x-death`` / ``x-first-death-*`` / ``x-last-death-*`` / ``x-delivery-count`` are
    dropped, so the consumer starts counting attempts afresh; every other header is kept.
    ``x-signup-replayed-at`` is set and ``x-signup-replay-count`` incremented.
    """
    headers = headers if isinstance(headers, Mapping) else {}
    previous = as_int(headers.get(REPLAY_COUNT_HEADER))
    rewritten = {k: v for k, v in headers.items() if not _is_removed_on_replay(str(k))}
    rewritten[REPLAYED_AT_HEADER] = format_timestamp(replayed_at)
    rewritten[REPLAY_COUNT_HEADER] = max(previous or 0, 0) + 1
    return rewritten


def replay_properties(properties: Mapping[str, Any], headers: Mapping[str, Any]) -> dict[str, Any]:
    """The original properties (message id, content type, delivery mode...) with new headers."""
    copied = {k: v for k, v in properties.items() if v is not None}
    copied["headers"] = dict(headers)
    return copied


def utc_now() -> datetime:
    return datetime.now(UTC)


class ReplayChannel(Protocol):
    """The four broker operations the replay loop needs."""

    def get(self, queue: str) -> RawMessage | None:
        """Take the next message (manual ack), or ``None`` if the queue is empty."""

    def publish(self, routing_key: str, body: bytes, properties: Mapping[str, Any]) -> None:
        """Publish to the default exchange, mandatory, and return once the broker confirmed.

        Raises :class:`PublishFailedError` if the message was returned or nacked.
        """

    def ack(self, delivery_tag: int) -> None:
        """Acknowledge (remove) a message taken with :meth:`get`."""

    def requeue(self, delivery_tag: int) -> None:
        """Give a message taken with :meth:`get` back to its queue."""


@dataclass
class ReplayOutcome:
    """How many messages were moved so far, per target queue (kept current during the loop)."""

    moved: int = 0
    targets: dict[str, int] = field(default_factory=dict)
    stopped: bool = False  # True when a stop was requested before everything was moved

    def record(self, target: str) -> None:
        self.moved += 1
        self.targets[target] = self.targets.get(target, 0) + 1

    def target_label(self, fallback: str) -> str:
        return ", ".join(sorted(self.targets)) if self.targets else fallback


class Replayer(StoppableWalk):
    """Moves up to ``max_messages`` messages from a DLQ back to their original queues.

    One message at a time: take it, publish the rewritten copy with publisher confirms and
    ``mandatory``, and only once the broker confirmed the publish acknowledge the original.
    An interruption at any point therefore loses nothing: at worst one message is both
    replayed and still in the DLQ (consumers deduplicate by message id).

    ``max_messages`` must be bounded by the DLQ depth seen before starting, so messages that
    fail again and come back into the DLQ during the replay are not replayed a second time.

    :meth:`request_stop` ends it at a message boundary (:class:`StoppableWalk`).
    """

    def __init__(
        self,
        channel: ReplayChannel,
        queue: str,
        *,
        max_messages: int,
        clock: Callable[[], datetime] = utc_now,
        on_moved: Callable[[str], None] | None = None,
    ) -> None:
        self.fallback_target = default_target(queue)
        self.channel = channel
        self.queue = queue
        self.max_messages = max(max_messages, 0)
        self.clock = clock
        self.on_moved = on_moved
        self.outcome = ReplayOutcome()

    def run(self) -> ReplayOutcome:
        self.outcome.stopped = self.walk(
            self.channel,
            self.queue,
            limit=self.max_messages,
            done=lambda: self.outcome.moved,
            handle=self._move,
        )
        return self.outcome

    def _move(self, message: RawMessage) -> None:
        target = resolve_target_queue(self.queue, message.headers)
        headers = replay_headers(message.headers, self.clock())
        properties = replay_properties(message.properties, headers)
        try:
            self.channel.publish(target, message.body, properties)
        except PublishFailedError as exc:
            self.channel.requeue(message.delivery_tag)
            raise PublishFailedError(
                f"{exc}; the message was left in {self.queue}; "
                f"stopped after replaying {self.outcome.moved} message(s)"
            ) from exc
        self.channel.ack(message.delivery_tag)
        self.outcome.record(target)
        if self.on_moved is not None:
            self.on_moved(target)
