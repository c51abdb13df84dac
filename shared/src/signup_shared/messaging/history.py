"""Reading the ``events.history`` stream over AMQP 0-9-1: where to start, where it ends.

RabbitMQ (3.9+) consumes a stream through ``basic.consume`` with a prefetch (``basic.qos`` is
required), manual acks and the consume argument ``x-stream-offset``: ``first``, ``last``,
``next``, an offset (an integer) or a point in time (an AMQP timestamp, second resolution).
Each delivery carries its offset in the ``x-stream-offset`` header. A stream never ends: the
tail is read once (``read_tail``) and a reader stops after it.

The tail: ``queue.declare`` answers a message count that lags behind what the stream holds
(seen on RabbitMQ 3.10: 5 of 8 messages), so it is not used. Consuming from ``last`` delivers
the whole last chunk the stream has committed; the highest offset seen while it arrives is at
least the tail at the moment of the ``basic.consume``. Reading a few more messages than that
(new ones arriving meanwhile) is harmless: the inbox absorbs them.
"""

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.messaging import Consumer

from signup_contracts.amqp import HISTORY_STREAM
from signup_shared.messaging.wire import header_int

OFFSET_HEADER = "x-stream-offset"
Position = str | int | datetime
"""Where a reader starts: ``"first"``, an offset, or a time (timezone-aware, UTC if naive)."""


class HistoryError(Exception):
    """The history cannot be read as asked (the message says why and what to do)."""


def parse_position(text: str) -> Position:
    """``first`` | ``<offset>`` (an integer >= 0) | ``<ISO 8601 time>`` (UTC when it names no
    offset). Raises ``ValueError`` naming what is accepted."""
    value = text.strip()
    if value.lower() == "first":
        return "first"
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"catch-up start {text!r}: expected 'first', a stream offset (an integer >= 0) "
            f"or an ISO 8601 time such as 2026-01-31T00:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def describe(position: Position) -> str:
    return position.isoformat() if isinstance(position, datetime) else str(position)


def offset_of(message: Any) -> int | None:
    """The stream offset of a delivery (None if the header is missing or not an integer)."""
    headers = getattr(message, "headers", None) or {}
    value = headers.get(OFFSET_HEADER) if isinstance(headers, dict) else None
    offset = header_int(value, -1, low=0, high=2**63 - 1)
    return offset if offset >= 0 else None


def stream_queue(position: Position) -> Queue:
    """The stream as kombu consumes it: never declared by a reader (it lacks the permission)."""
    return Queue(HISTORY_STREAM, no_declare=True, consumer_arguments={OFFSET_HEADER: position})


def check_exists(connection: Connection) -> None:
    """A clear error instead of a channel error when the stream was never declared."""
    channel = connection.channel()
    try:
        channel.queue_declare(HISTORY_STREAM, passive=True)
    except Exception as exc:
        raise HistoryError(
            f"the stream {HISTORY_STREAM!r} cannot be read ({exc}): it is declared by the "
            f"broker definitions (deploy/credentials/setup.py, deploy/rabbitmq/definitions.json)"
        ) from exc
    finally:
        with contextlib.suppress(Exception):
            channel.close()


@dataclass(frozen=True)
class Tail:
    """The last offset of the stream when it was read, and that message's timestamp."""

    offset: int
    timestamp: int | None


def read_tail(
    connection: Connection, wait: float = 2.0, quiet: float = 0.3, prefetch: int = 500
) -> Tail | None:
    """The tail of the stream (None if it holds nothing): the highest offset of the last chunk,
    read until ``quiet`` seconds pass without a delivery (``wait`` for the first one)."""
    seen: list[tuple[int, int | None]] = []
    channel = connection.channel()
    try:
        channel.basic_qos(0, prefetch, False)
        consumer = Consumer(
            channel, queues=[stream_queue("last")], on_message=_collect(seen), no_ack=False
        )
        consumer.consume()
        deadline = time.monotonic() + wait
        while True:
            count = len(seen)
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=quiet if seen else 0.1)
            if seen and len(seen) == count:
                break
            if not seen and time.monotonic() > deadline:
                return None
        consumer.cancel()
    finally:
        with contextlib.suppress(Exception):
            channel.close()
    offset, timestamp = max(seen)
    return Tail(offset, timestamp)


def _collect(seen: list[tuple[int, int | None]]) -> Callable[[Any], None]:
    def collect(message: Any) -> None:
        offset = offset_of(message)
        if offset is not None:
            stamp = (getattr(message, "properties", None) or {}).get("timestamp")
            seen.append((offset, _epoch(stamp)))
        message.ack()

    return collect


def _epoch(stamp: object) -> int | None:
    if isinstance(stamp, datetime):
        return int(stamp.timestamp())
    return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None


def after_tail(start: Position, tail: Tail) -> bool:
    """True when ``start`` lies after the tail: there is nothing to read."""
    if isinstance(start, int):
        return start > tail.offset
    if isinstance(start, datetime) and tail.timestamp is not None:
        return start.timestamp() > tail.timestamp + 1  # timestamps have a second's resolution
    return False
